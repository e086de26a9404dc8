//! The action checker: after every input the connection expected, the actions it
//! produced are checked, in order, against the invariants of SPEC "Connections" and the
//! one-answer-in-flight rule ([`Checker::check`]). Panics (a fuzz crash) on the first
//! violation.
//!
//! - this module: the checker's model of the connection (what is pending, unwritten,
//!   closing), each kind of action, and what must follow each input;
//! - [`response`]: a final response (its head, its body or `SendFile`, which request it
//!   answers);
//! - [`listing`]: a directory listing page (HTML or JSON);
//! - [`paths`]: paths handed to the runtime, `ListDir`, redirects, upload names.

mod actions;
mod listing;
mod paths;
mod response;

use protocol::sim::Owes;
use protocol::{Action, FileError, Input, Listing, Now, UploadError};

use crate::shadow::Shadow;
use crate::{CONTINUE, UPLOAD_NAME_TRIES};

use actions::upload_follows;
pub use listing::check_listing;
pub use paths::{check_path, target_path};
pub use response::http_date;

/// Which input produced a batch of actions (what may come depends on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Received,
    Eof,
    FileOpened,
    UploadWritten(Result<(), UploadError>),
    DirListed(Result<(), FileError>),
    Verified(bool),
    UploadBegun(Result<(), UploadError>),
    ChunkWritten(Result<(), UploadError>),
    UploadCommitted(Result<(), UploadError>),
    Deleted(Result<(), FileError>),
    Compressed(protocol::Compressed),
    Archived(Result<(), FileError>),
    Written,
    WriteFailed,
    /// `due`: the deadline (as `wait()` said just before) has come.
    Timeout {
        due: bool,
    },
    Drain,
}

impl Step {
    pub fn of(input: &Input<'_>, due: bool) -> Step {
        match input {
            Input::Received(_) => Step::Received,
            Input::Eof => Step::Eof,
            Input::FileOpened(_) => Step::FileOpened,
            Input::UploadWritten(r) => Step::UploadWritten(*r),
            Input::DirListed(r) => Step::DirListed(r.map(|_| ())),
            Input::Verified(ok) => Step::Verified(*ok),
            Input::UploadBegun(r) => Step::UploadBegun(*r),
            Input::ChunkWritten(r) => Step::ChunkWritten(*r),
            Input::UploadCommitted(r) => Step::UploadCommitted(r.map(|_| ())),
            Input::Deleted(r) => Step::Deleted(*r),
            Input::Compressed(r) => Step::Compressed(*r),
            Input::Archived(r) => Step::Archived(*r),
            Input::Written => Step::Written,
            Input::WriteFailed => Step::WriteFailed,
            Input::Timeout => Step::Timeout { due },
            Input::Drain => Step::Drain,
        }
    }
}

/// An action waiting for the runtime's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    File,
    Upload,
    List,
    Verify,
    Begin,
    Chunk,
    Commit,
    Delete,
    Compress,
    Archive,
}

/// The checker's model of the connection, built from the actions alone.
pub struct Checker {
    max_requests: u32,
    max_body: u64,
    /// `Config::dir_listing`.
    pub dir_listing: bool,
    /// The path of the last `OpenFile`, and of the last `ListDir`.
    pub last_open: String,
    pub last_list: String,
    /// Final (non-1xx) responses seen.
    pub finals: u32,
    /// `Close` seen.
    pub closed: bool,
    /// A streamed upload is begun and not committed or aborted.
    pub file_open: bool,
    /// An `OpenFile`, `WriteUpload` or `ListDir` waiting for its answer.
    pub pending: Option<Pending>,
    /// `Send`, `Continue` or `SendFile` bytes not yet reported written.
    pub unwritten: bool,
    /// The unwritten answer closes the connection (`Close` once it is written).
    pub close_pending: bool,
    /// The client half-closed.
    pub eof: bool,
    /// `Drain` was handed in.
    pub draining: bool,
    /// Names the current upload has been tried under, and the last one.
    upload_tries: u32,
    upload_name: String,
    /// The final answer handed out and not yet reported written: its status and the
    /// body bytes it carries (`None`: chunked), for the request record it must give.
    pub answer_out: Option<(u16, Option<u64>)>,
}

/// What the checker knew before the input (what may follow depends on it).
struct Before {
    close_due: bool,
    upload_tries: u32,
    finals: u32,
}

/// One input's context, for checking its actions.
struct Ctx<'s, 'l> {
    step: Step,
    /// The `Date` every response to it carries.
    date: String,
    shadow: &'s Shadow,
    /// What a `DirListed` step handed in.
    listing: Option<&'l Listing<'l>>,
}

impl Checker {
    pub fn new(max_requests: u32, max_body: u64, dir_listing: bool) -> Self {
        Checker {
            max_requests,
            max_body,
            dir_listing,
            last_open: String::new(),
            last_list: String::new(),
            finals: 0,
            closed: false,
            file_open: false,
            pending: None,
            unwritten: false,
            close_pending: false,
            eof: false,
            draining: false,
            upload_tries: 0,
            upload_name: String::new(),
            answer_out: None,
        }
    }

    /// What the runtime owes the connection, per this model (the driver keeps its own
    /// books; they must agree).
    pub fn owes(&self) -> Owes {
        match self.pending {
            _ if self.closed => Owes::Nothing,
            Some(Pending::File) => Owes::File,
            Some(Pending::Upload) => Owes::Upload,
            Some(Pending::List) => Owes::List,
            Some(Pending::Verify) => Owes::Verify,
            Some(Pending::Begin) => Owes::Begin,
            Some(Pending::Chunk) => Owes::Chunk,
            Some(Pending::Commit) => Owes::Commit,
            Some(Pending::Delete) => Owes::Delete,
            Some(Pending::Compress) => Owes::Compress,
            Some(Pending::Archive) => Owes::Archive,
            None if self.unwritten => Owes::Write,
            None => Owes::Nothing,
        }
    }

    /// Whether the connection expects this input now. An unexpected one (a file,
    /// upload or directory result not asked for, `Written`/`WriteFailed` with nothing
    /// unwritten, anything after `Close`) must be ignored: no action, and `ignored()`
    /// counts it.
    pub fn expects(&self, step: Step) -> bool {
        if self.closed {
            return false;
        }
        match step {
            Step::FileOpened => self.pending == Some(Pending::File),
            Step::UploadWritten(_) => self.pending == Some(Pending::Upload),
            Step::DirListed(_) => self.pending == Some(Pending::List),
            Step::Verified(_) => self.pending == Some(Pending::Verify),
            Step::UploadBegun(_) => self.pending == Some(Pending::Begin),
            Step::ChunkWritten(_) => self.pending == Some(Pending::Chunk),
            Step::UploadCommitted(_) => self.pending == Some(Pending::Commit),
            Step::Deleted(_) => self.pending == Some(Pending::Delete),
            Step::Compressed(_) => self.pending == Some(Pending::Compress),
            Step::Archived(_) => self.pending == Some(Pending::Archive),
            Step::Written | Step::WriteFailed => self.unwritten,
            _ => true,
        }
    }

    /// Checks the actions an expected input produced (at time `now`), in order;
    /// `listing` is what a `DirListed` step handed in.
    pub fn check(
        &mut self,
        step: Step,
        now: Now,
        actions: &[Action],
        shadow: &Shadow,
        listing: Option<&Listing<'_>>,
    ) {
        let before = Before {
            close_due: self.close_pending,
            upload_tries: self.upload_tries,
            finals: self.finals,
        };
        self.begin(step);
        let ctx = Ctx {
            step,
            date: http_date(now.unix_secs),
            shadow,
            listing,
        };
        let mut statuses = Vec::new();
        let mut rest = actions;
        while let Some((action, tail)) = rest.split_first() {
            rest = tail;
            self.one_at_a_time(action, actions);
            match action {
                Action::Continue => self.on_continue(shadow),
                Action::Send(bytes) => {
                    let sendfile = match rest.first() {
                        Some(Action::SendFile { offset, len }) => {
                            rest = &rest[1..];
                            Some((*offset, *len))
                        }
                        _ => None,
                    };
                    statuses.push(self.on_answer(&ctx, bytes, sendfile));
                }
                Action::SendFile { .. } => {
                    panic!("SendFile not right after a response head: {actions:?}")
                }
                Action::OpenFile(path) => self.on_open(path.as_str()),
                Action::ListDir(path) => self.on_list_dir(step, path.as_str(), shadow),
                Action::WriteUpload { name, body } => self.on_upload(step, name, body, shadow),
                Action::Verify(c) => self.on_verify(step, c),
                Action::BeginUpload { target } => self.on_begin(target),
                Action::WriteChunk(bytes) => self.on_chunk(bytes),
                Action::CommitUpload { target, .. } => self.on_commit(target),
                Action::AbortUpload => {
                    assert!(self.file_open, "AbortUpload with no file begun");
                    self.file_open = false;
                }
                Action::Compress { .. } => {
                    assert_eq!(
                        step,
                        Step::FileOpened,
                        "Compress not in answer to an opened file: {actions:?}"
                    );
                    self.pending = Some(Pending::Compress);
                }
                Action::Archive { dir, .. } => {
                    // The root's archive is the empty path, as for ListDir.
                    if !dir.as_str().is_empty() {
                        check_path(dir.as_str());
                    }
                    assert!(self.dir_listing, "an archive with listings off");
                    self.pending = Some(Pending::Archive);
                }
                Action::DeleteFile(path) => {
                    check_path(path.as_str());
                    self.pending = Some(Pending::Delete);
                }
                Action::Close => self.on_close(step, before.close_due, shadow),
            }
        }
        self.follows(step, &before, actions, &statuses);
    }

    /// What an expected input settles.
    fn begin(&mut self, step: Step) {
        match step {
            Step::Eof => self.eof = true,
            Step::Drain => self.draining = true,
            Step::FileOpened
            | Step::UploadWritten(_)
            | Step::DirListed(_)
            | Step::Verified(_)
            | Step::ChunkWritten(_)
            | Step::Deleted(_)
            | Step::Compressed(_)
            | Step::Archived(_) => self.pending = None,
            Step::UploadBegun(r) => {
                self.pending = None;
                self.file_open = r.is_ok();
            }
            Step::UploadCommitted(r) => {
                self.pending = None;
                // A name taken keeps the file for another name; anything else ends it.
                if !matches!(r, Err(UploadError::AlreadyExists { .. })) {
                    self.file_open = false;
                }
            }
            Step::Written | Step::WriteFailed => {
                self.unwritten = false;
                self.answer_out = None;
            }
            Step::Received | Step::Timeout { .. } => {}
        }
    }

    /// Nothing after `Close`, nothing while the runtime owes a result, nothing while an
    /// answer is unwritten (one answer in flight; `Close` too waits for `Written`).
    fn one_at_a_time(&self, action: &Action, actions: &[Action]) {
        assert!(!self.closed, "action after Close: {action:?}");
        assert!(
            self.pending.is_none(),
            "action while waiting for the runtime's answer to {:?}: {action:?}",
            self.pending
        );
        if *action == Action::Close {
            assert!(
                !self.unwritten,
                "Close while an answer is unwritten (it must wait for Written): {actions:?}"
            );
        } else {
            assert!(
                !self.unwritten,
                "{action:?} while the previous answer is unwritten (one answer in flight)"
            );
        }
    }

    /// `100 Continue`: exactly [`CONTINUE`] on the wire, only for a request with
    /// `Expect: 100-continue` (HTTP/1.1) and a body; it must be written like an answer.
    fn on_continue(&mut self, shadow: &Shadow) {
        assert_eq!(
            protocol::CONTINUE,
            CONTINUE,
            "the bytes of Action::Continue"
        );
        let req = shadow.requests.get(self.finals as usize);
        assert!(
            req.is_some_and(|r| r.expect_continue && r.has_body),
            "100 Continue for a request without Expect: 100-continue and a body: {req:?}"
        );
        self.unwritten = true;
    }

    /// A final answer (and the `SendFile` after it); returns its status.
    fn on_answer(&mut self, ctx: &Ctx<'_, '_>, bytes: &[u8], sendfile: Option<(u64, u64)>) -> u16 {
        assert!(
            bytes != CONTINUE,
            "a 100 Continue handed out as Send (it is Action::Continue)"
        );
        let head = self.response(bytes, sendfile, ctx);
        if self.draining {
            assert!(
                head.closing,
                "an answer after Drain that keeps the connection"
            );
        }
        if matches!(ctx.step, Step::Timeout { .. }) {
            assert_eq!(head.status, 408, "a Timeout answered with {}", head.status);
        }
        self.unwritten = true;
        self.close_pending = head.closing;
        let inline = (bytes.len() - head.head_len) as u64;
        // A chunked body is compressed or archived as it goes, and an archive to HTTP/1.0
        // ends at the close: the core cannot know its size (the host counts it).
        let body = match sendfile {
            Some(_) if head.chunked => None,
            Some((0, u64::MAX)) if head.content_length.is_none() => None,
            _ => Some(inline + sendfile.map_or(0, |(_, len)| len)),
        };
        self.answer_out = Some((head.status, body));
        head.status
    }

    /// The request records an input gave (`Config::records` is on in the fuzzing
    /// configuration): one exactly when a final answer was reported written (or its write
    /// failed), with that answer's status and body bytes, `written` as reported, the
    /// input's time as its end, and a method and target a parsed head could have; none
    /// otherwise (a `100 Continue` written gives none).
    pub fn check_records(
        &mut self,
        step: Step,
        now: Now,
        answered: Option<(u16, Option<u64>)>,
        records: &[protocol::RequestRecord],
    ) {
        let due = match step {
            Step::Written | Step::WriteFailed => answered,
            _ => None,
        };
        let Some((status, body)) = due else {
            assert!(
                records.is_empty(),
                "a record after {step:?} with no answer written: {records:?}"
            );
            return;
        };
        let [r] = records else {
            panic!(
                "{} records for one answer written: {records:?}",
                records.len()
            );
        };
        assert_eq!(
            r.status, status,
            "the record's status is not the answer's: {r:?}"
        );
        assert_eq!(r.written, step == Step::Written, "{r:?} after {step:?}");
        assert_eq!(r.finished_ms, now.mono_ms, "{r:?}");
        assert!(r.started_ms <= r.finished_ms, "{r:?}");
        match (r.body_bytes, body) {
            // HEAD, 204, 304: the head announces a length that is not sent.
            (Some(n), Some(carried)) => assert_eq!(n, carried, "{r:?}: the body bytes carried"),
            (None, None) => {}
            (n, carried) => panic!("body bytes {n:?} in the record, {carried:?} carried: {r:?}"),
        }
        if r.parsed() {
            assert!(r.method.bytes().all(protocol::is_token_byte), "{r:?}");
            assert!(
                !r.target.is_empty() && r.target.bytes().all(|b| (0x21..0x7f).contains(&b)),
                "{r:?}"
            );
        } else {
            assert!(
                r.target.is_empty() && r.user.is_none() && r.upload.is_none(),
                "{r:?}"
            );
        }
        if r.user.is_some() {
            assert_eq!(r.user.as_deref(), Some(crate::FUZZ_USER), "{r:?}");
            assert!(!r.auth_failed, "{r:?}");
        }
        if r.auth_failed {
            // 401, unless the request's body, read before the refusal goes out (to keep
            // the connection), broke first: a framing error (400), too large (413), too
            // slow (408) ends the connection with that answer instead.
            assert!(
                matches!(r.status, 401 | 400 | 408 | 413),
                "failed credentials answered {r:?}"
            );
        }
    }

    /// What must follow each input, all actions seen.
    fn follows(&self, step: Step, before: &Before, actions: &[Action], statuses: &[u16]) {
        match step {
            Step::Written if before.close_due => assert_eq!(
                actions,
                [Action::Close],
                "a closing answer written, then not Close"
            ),
            Step::WriteFailed => {
                assert_eq!(actions, [Action::Close], "WriteFailed did not close")
            }
            Step::FileOpened => assert!(
                !actions.is_empty(),
                "a file result with neither an answer nor another open"
            ),
            // A missing directory is a 404, whose body is the root's 404.html if any.
            Step::DirListed(Err(FileError::NotFound)) if matches!(actions, [Action::OpenFile(p)] if p.as_str() == "404.html") =>
                {}
            Step::DirListed(result) => {
                let expected = match result {
                    Ok(()) => 200,
                    Err(FileError::NotFound) => 404,
                    Err(FileError::Forbidden) => 403,
                    Err(FileError::Other) => 500,
                    Err(FileError::Unavailable) => 503,
                };
                assert_eq!(
                    statuses,
                    [expected],
                    "a directory result {result:?} answered {actions:?}"
                );
            }
            Step::UploadWritten(result) => {
                upload_follows(result, before.upload_tries, actions, statuses)
            }
            Step::Timeout { due: false } => assert!(
                actions.is_empty(),
                "a Timeout before the deadline did something: {actions:?}"
            ),
            Step::Timeout { due: true } => {
                // A deadline reached always does something: close, or a 408 that closes.
                assert!(
                    self.closed || self.close_pending,
                    "a deadline passed and nothing happened"
                );
                assert!(self.finals <= before.finals + 1);
            }
            _ => {}
        }
    }
}
