//! What the runtime is asked to do and answers, checked one by one: opens, JSON
//! uploads, closes, credential checks, and the streamed uploads' begin, chunk and commit.

use super::*;

impl Checker {
    pub(super) fn on_open(&mut self, path: &str) {
        check_path(path);
        self.last_open.clear();
        self.last_open.push_str(path);
        self.pending = Some(Pending::File);
    }

    /// An upload: a good name, the body the client sent (never over `max_body`), and a
    /// new name for each retry after `AlreadyExists`.
    pub(super) fn on_upload(&mut self, step: Step, name: &str, body: &[u8], shadow: &Shadow) {
        paths::check_upload_name(name);
        assert!(
            body.len() as u64 <= self.max_body,
            "an upload body of {} bytes over max_body {}",
            body.len(),
            self.max_body
        );
        let req = shadow
            .requests
            .get(self.finals as usize)
            .expect("an upload for a request never sent");
        assert!(
            body == req.body.as_slice(),
            "the upload body differs from the request body"
        );
        if matches!(
            step,
            Step::UploadWritten(Err(UploadError::AlreadyExists { .. }))
        ) {
            assert_ne!(
                name, self.upload_name,
                "an upload retried under the same name"
            );
            self.upload_tries += 1;
        } else {
            self.upload_tries = 1;
        }
        self.upload_name.clear();
        self.upload_name.push_str(name);
        self.pending = Some(Pending::Upload);
    }

    /// `Close`: after a closing answer is written or a write failed; otherwise only
    /// after EOF, a drain or a timeout, with every complete request answered.
    pub(super) fn on_close(&mut self, step: Step, close_due: bool, shadow: &Shadow) {
        let after_answer = (close_due && step == Step::Written) || step == Step::WriteFailed;
        if !after_answer {
            assert!(
                self.eof || self.draining || matches!(step, Step::Timeout { .. }),
                "Close without a closing answer, EOF, Drain or timeout (step {step:?})"
            );
            assert_eq!(
                self.finals as usize, shadow.complete,
                "closed with complete requests unanswered"
            );
        }
        self.closed = true;
        self.close_pending = false;
    }

    /// A password to verify: only when a head was read (bytes received, or a pipelined
    /// head once the answer before it was written), never empty of user, with the
    /// generation of the rules in force (one set: 0).
    pub(super) fn on_verify(&mut self, step: Step, c: &protocol::Credentials) {
        assert!(
            matches!(step, Step::Received | Step::Written),
            "Verify after {step:?}"
        );
        assert!(!c.user.is_empty(), "Verify of an empty user name");
        assert_eq!(c.generation, 0, "Verify with a generation never set");
        assert_eq!(
            c.hash.is_some(),
            c.user == crate::FUZZ_USER,
            "the hash of {c:?}"
        );
        self.pending = Some(Pending::Verify);
    }

    /// A streamed upload begins: one at a time, to a good path or name.
    pub(super) fn on_begin(&mut self, target: &protocol::UploadTarget) {
        assert!(!self.file_open, "BeginUpload while another upload is begun");
        check_target(target);
        self.pending = Some(Pending::Begin);
    }

    /// A chunk: only into a file begun, never more than the core may hold.
    pub(super) fn on_chunk(&mut self, bytes: &[u8]) {
        assert!(self.file_open, "WriteChunk with no file begun");
        assert!(!bytes.is_empty(), "an empty WriteChunk");
        assert!(bytes.len() <= 1 << 20, "a chunk of {} bytes", bytes.len());
        self.pending = Some(Pending::Chunk);
    }

    pub(super) fn on_commit(&mut self, target: &protocol::UploadTarget) {
        assert!(self.file_open, "CommitUpload with no file begun");
        check_target(target);
        self.pending = Some(Pending::Commit);
    }
}

/// An upload written gives 201; `AlreadyExists` a new `WriteUpload` (up to
/// [`UPLOAD_NAME_TRIES`] names, then 500); `Unavailable` 503; `Other` 500.
pub(super) fn upload_follows(
    result: Result<(), UploadError>,
    tries_before: u32,
    actions: &[Action],
    statuses: &[u16],
) {
    match result {
        Ok(()) => assert_eq!(
            statuses,
            [201],
            "a written upload not answered 201: {actions:?}"
        ),
        Err(UploadError::AlreadyExists { .. }) if tries_before < UPLOAD_NAME_TRIES => {
            assert!(
                matches!(actions, [Action::WriteUpload { .. }]),
                "AlreadyExists after {tries_before} names, and no retry: {actions:?}"
            )
        }
        Err(UploadError::Unavailable) => assert_eq!(
            statuses,
            [503],
            "an unavailable store not answered 503: {actions:?}"
        ),
        Err(_) => assert_eq!(
            statuses,
            [500],
            "a failed upload not answered 500: {actions:?}"
        ),
    }
}

/// A streamed upload's target: a good path below the root, or a plain name in uploads/.
fn check_target(target: &protocol::UploadTarget) {
    match target {
        protocol::UploadTarget::Path(p) => check_path(p.as_str()),
        protocol::UploadTarget::Uploads(name) => {
            assert!(!name.is_empty(), "an empty upload name");
            assert!(!name.starts_with('.'), "a hidden upload name {name:?}");
            assert!(
                !name.contains(['/', '\\', '\0']),
                "a path as an upload name {name:?}"
            );
        }
    }
}
