//! Uploads of any file, streamed (SPEC "Uploads of any file"): `PUT /PATH` and the file
//! parts of a `multipart/form-data` `POST /upload` go to the runtime as they arrive,
//! and `DELETE /PATH`.
//!
//! The body is turned into a queue of operations on the runtime's side — begin a file
//! (a temporary beside its target), write a chunk, commit it (sync, then an atomic
//! rename that never overwrites, or the replace a precondition allowed) — handed out one
//! action at a time, each answered by an input. While an operation is out, the core
//! reads nothing more once it holds [`MAX_HELD`] bytes of the upload: back-pressure, and
//! at most that much of one upload in memory however large it is. A client must keep
//! sending at least [`MIN_RATE`] bytes a second over each idle-timeout window, or the
//! upload is a `408`; whatever stops an upload (a refusal, a failure, the client gone)
//! aborts the file begun, so nothing partial is left.

use std::collections::VecDeque;

use log::{error, warn};

use super::body::BodyReader;
use super::{
    Action, Connection, FileError, FileMeta, Request, Route, State, UploadError, UploadTarget,
};
use crate::conditional::{for_write, write_etag, WritePrecondition};
use crate::multipart::{Event, Parser};
use crate::target::SafePath;
use crate::Refusal;

mod finish;
use finish::{commit_action, FormEvent};

/// Bytes of a file written per chunk.
pub(super) const CHUNK: usize = 256 * 1024;
/// The most of one upload the core holds (queued chunks and the one being filled).
pub(super) const MAX_HELD: usize = 768 * 1024;
/// The least a streamed body must bring per second, averaged over each idle-timeout
/// window (SPEC: 1 KiB/s).
pub(super) const MIN_RATE: u64 = 1024;
/// Names tried for one file of a form (`name`, `name-1`, …) before it is a 500.
const NAME_TRIES: u64 = 1000;

/// A streamed upload in progress.
#[derive(Debug)]
pub(super) struct Stream {
    pub(super) req: Request,
    reader: BodyReader,
    kind: Kind,
    ops: VecDeque<Op>,
    /// The data of the file being filled, not yet a chunk.
    buf: Vec<u8>,
    /// The form's file being committed (its name may move on to `name-1`, …).
    committing: Option<Part>,
    /// Bytes of data in `ops` and `buf`.
    held: usize,
    /// The action handed out whose result is awaited.
    owed: Option<Owed>,
    /// A file is begun (its temporary exists) and not yet committed.
    open: bool,
    received: u64,
    window_start: u64,
    window_bytes: u64,
    /// The whole body was read.
    complete: bool,
    /// What was committed: the `Location`s, and the last file's metadata.
    saved: Vec<String>,
    meta: Option<FileMeta>,
}

#[derive(Debug)]
enum Kind {
    Put {
        path: SafePath,
        replace: bool,
    },
    Form {
        parser: Box<Parser>,
        part: Option<Part>,
    },
}

/// The file part of a form being streamed: its sanitised name, and how many numbered
/// names were tried after it.
#[derive(Debug)]
struct Part {
    name: String,
    tried: u64,
}

#[derive(Debug)]
enum Op {
    Begin(UploadTarget),
    Data(Vec<u8>),
    /// Commit the file being filled (a form's file: with its name).
    Commit(Option<Part>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owed {
    Begin,
    Chunk,
    Commit,
}

impl Stream {
    fn new(req: Request, body_len: Option<u64>, kind: Kind, now_ms: u64) -> Box<Stream> {
        Box::new(Stream {
            req,
            reader: BodyReader::new(body_len),
            kind,
            ops: VecDeque::new(),
            buf: Vec::new(),
            committing: None,
            held: 0,
            owed: None,
            open: false,
            received: 0,
            window_start: now_ms,
            window_bytes: 0,
            complete: false,
            saved: Vec::new(),
            meta: None,
        })
    }

    /// Whether the core waits for the runtime's answer to an action.
    pub(super) fn owes(&self) -> bool {
        self.owed.is_some()
    }

    /// When the client must have sent more (the end of the rate window).
    pub(super) fn deadline(&self, window_ms: u64) -> u64 {
        self.window_start.saturating_add(window_ms)
    }

    /// Moves the data of the file being filled into a chunk to write.
    fn flush_buf(&mut self) {
        if !self.buf.is_empty() {
            let data = std::mem::take(&mut self.buf);
            self.ops.push_back(Op::Data(data));
        }
    }

    fn data(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.held += bytes.len();
        if self.buf.len() >= CHUNK {
            self.flush_buf();
        }
    }
}

impl Connection {
    /// `PUT` or `DELETE`: the target's current version first (for the preconditions).
    pub(super) fn check_target(&mut self, req: Request, body_len: Option<u64>) {
        let path = match &req.route {
            Route::Put { path } | Route::Delete { path } => path.clone(),
            _ => return,
        };
        self.out.push_back(Action::OpenFile(path));
        self.state = State::AwaitTarget { req, body_len };
    }

    /// What the target is now: the preconditions decide, then the upload streams (or
    /// the file is deleted).
    pub(super) fn target_result(&mut self, result: Result<FileMeta, FileError>) {
        let State::AwaitTarget { req, body_len } = std::mem::replace(&mut self.state, State::Head)
        else {
            return;
        };
        let put = matches!(req.route, Route::Put { .. });
        // A body not read yet: a refusal closes the connection.
        let refusal = |status, reason| {
            if put && body_len != Some(0) {
                Refusal::close(status, reason)
            } else {
                Refusal::keep(status, reason)
            }
        };
        let current = match result {
            Ok(meta) if meta.is_dir => {
                return self.refuse(&req, refusal(409, "the target is a directory"));
            }
            Ok(meta) => {
                let mut tag = String::new();
                write_etag(&mut tag, meta.len, meta.mtime_secs, meta.mtime_nanos);
                Some(tag)
            }
            Err(FileError::NotFound) => None,
            Err(FileError::Forbidden) => {
                return self.refuse(
                    &req,
                    refusal(403, "the target resolves outside the web root"),
                )
            }
            Err(e) => {
                error!(
                    "{} cannot look at the target of {:?}: {e:?}",
                    self.peer, req.head.target
                );
                return self.refuse(&req, refusal(500, "the target could not be looked at"));
            }
        };
        let replace = match for_write(&req.head, current.as_deref(), put) {
            WritePrecondition::Failed => {
                return self.refuse(&req, refusal(412, "a precondition failed"));
            }
            WritePrecondition::Required => {
                return self.refuse(
                    &req,
                    refusal(
                        428,
                        "the file exists: say which version to replace with If-Match",
                    ),
                );
            }
            WritePrecondition::Create => false,
            WritePrecondition::Replace => true,
        };
        match &req.route {
            Route::Delete { path } if current.is_none() => {
                let _ = path;
                self.not_found(req, "no such file")
            }
            Route::Delete { path } => {
                self.out.push_back(Action::DeleteFile(path.clone()));
                self.state = State::AwaitDelete { req };
            }
            Route::Put { path } => {
                let path = path.clone();
                self.start_stream(req, body_len, Kind::Put { path, replace });
            }
            _ => {}
        }
    }

    /// What the runtime reports of a `DeleteFile`.
    pub(super) fn delete_result(&mut self, result: Result<(), FileError>) {
        let State::AwaitDelete { req } = std::mem::replace(&mut self.state, State::Head) else {
            return;
        };
        match result {
            Ok(()) => self.respond(&req, 204, &[], |_| {}),
            Err(FileError::NotFound) => self.not_found(req, "no such file"),
            Err(FileError::Forbidden) => {
                self.refuse(&req, Refusal::keep(403, "the file may not be deleted"))
            }
            Err(e) => {
                error!(
                    "{} could not delete {:?}: {e:?}",
                    self.peer, req.head.target
                );
                self.refuse(&req, Refusal::keep(500, "the file could not be deleted"));
            }
        }
    }

    /// A `multipart/form-data` `POST /upload`.
    pub(super) fn start_form(&mut self, req: Request, body_len: Option<u64>) {
        let Route::Multipart { boundary } = &req.route else {
            return;
        };
        let parser = Box::new(Parser::new(boundary));
        self.start_stream(req, body_len, Kind::Form { parser, part: None });
    }

    fn start_stream(&mut self, req: Request, body_len: Option<u64>, kind: Kind) {
        if req.head.expect_continue && body_len != Some(0) {
            // The client waits for this before it sends the body (none to wait for: a
            // `PUT` of an empty file is answered without it, as in `flow.rs`).
            self.out.push_back(Action::Continue);
            self.unwritten = true;
        }
        let mut st = Stream::new(req, body_len, kind, self.now.mono_ms);
        if let Kind::Put { path, .. } = &st.kind {
            st.ops
                .push_back(Op::Begin(UploadTarget::Path(path.clone())));
        }
        if body_len == Some(0) {
            st.complete = true;
            if matches!(st.kind, Kind::Put { .. }) {
                st.ops.push_back(Op::Commit(None));
            }
        }
        self.state = State::Stream(st);
    }

    /// Moves a streamed upload on: hands out its next operation, reads more of the
    /// body, or answers once all is done. `false`: it waits (for the runtime or the
    /// client).
    pub(super) fn stream(&mut self, mut st: Box<Stream>) -> bool {
        loop {
            if st.owed.is_some() {
                self.state = State::Stream(st);
                return false;
            }
            if let Some(op) = st.ops.pop_front() {
                self.hand_out(&mut st, op);
                self.state = State::Stream(st);
                return false;
            }
            if st.complete {
                self.stream_done(st);
                return true;
            }
            let before = (self.pos, st.complete, st.ops.len());
            if let Err(r) = self.read_stream(&mut st) {
                self.stream_failed(st, r);
                return true;
            }
            if (self.pos, st.complete, st.ops.len()) == before {
                // Nothing more to read now.
                if self.eof {
                    warn!("{} closed in the middle of an upload", self.peer);
                    self.abort(&mut st);
                    self.close();
                    return false;
                }
                self.state = State::Stream(st);
                return false;
            }
        }
    }

    fn hand_out(&mut self, st: &mut Stream, op: Op) {
        let action = match op {
            Op::Begin(target) => {
                st.owed = Some(Owed::Begin);
                Action::BeginUpload { target }
            }
            Op::Data(bytes) => {
                st.held = st.held.saturating_sub(bytes.len());
                st.req.upload_bytes = st.req.upload_bytes.saturating_add(bytes.len() as u64);
                st.owed = Some(Owed::Chunk);
                Action::WriteChunk(bytes)
            }
            Op::Commit(part) => {
                st.owed = Some(Owed::Commit);
                st.committing = part;
                commit_action(st)
            }
        };
        self.out.push_back(action);
    }

    /// Reads what the input buffer holds of the body, within what may be held.
    fn read_stream(&mut self, st: &mut Stream) -> Result<(), Refusal> {
        let room = MAX_HELD.saturating_sub(st.held);
        if room == 0 {
            return Ok(());
        }
        let end = self.input.len().min(self.pos.saturating_add(room));
        let avail = &self.input[self.pos..end];
        let limit = self.config.max_upload;
        let mut decoded: Vec<u8> = Vec::new();
        let put = matches!(st.kind, Kind::Put { .. });
        let (used, complete) = match &mut st.reader {
            BodyReader::Length(remaining) => {
                let take = avail
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                *remaining -= take as u64;
                let complete = *remaining == 0;
                if put {
                    // Straight into the file's chunk: no copy in between.
                    st.received = st.received.saturating_add(take as u64);
                    st.data(&avail[..take]);
                } else {
                    decoded.extend_from_slice(&avail[..take]);
                }
                (take, complete)
            }
            BodyReader::Chunked(dec, seen) => {
                let mut total = *seen;
                let used = dec.decode(avail, |data| {
                    total = total.saturating_add(data.len() as u64);
                    if total > limit {
                        return Err(Refusal::close(413, "the upload is too large"));
                    }
                    decoded.extend_from_slice(data);
                    Ok(())
                })?;
                *seen = total;
                (used, dec.is_done())
            }
        };
        self.pos += used;
        st.received = st.received.saturating_add(decoded.len() as u64);
        st.window_bytes = st.window_bytes.saturating_add(used as u64);
        if st.received > limit {
            return Err(Refusal::close(413, "the upload is too large"));
        }
        self.take_body(st, &decoded)?;
        if complete {
            st.complete = true;
            self.end_body(st)?;
        }
        Ok(())
    }

    /// Body bytes: a `PUT`'s file data, or fed to the form's parser.
    fn take_body(&mut self, st: &mut Stream, bytes: &[u8]) -> Result<(), Refusal> {
        if bytes.is_empty() {
            return Ok(());
        }
        let Kind::Form { parser, .. } = &mut st.kind else {
            st.data(bytes);
            return Ok(());
        };
        let mut events: Vec<FormEvent> = Vec::new();
        parser
            .feed(bytes, &mut |e| events.push(FormEvent::of(e)))
            .map_err(|e| {
                warn!("{} refused (400): {e}", self.peer);
                Refusal::close(400, "the form is malformed")
            })?;
        for e in events {
            self.form_event(st, e);
        }
        Ok(())
    }

    fn form_event(&mut self, st: &mut Stream, event: FormEvent) {
        let in_file = matches!(&st.kind, Kind::Form { part: Some(_), .. });
        match event {
            FormEvent::Start(Some(filename)) if !filename.is_empty() => {
                let name = crate::filename::sanitize(&filename).unwrap_or_else(|| "upload".into());
                st.ops
                    .push_back(Op::Begin(UploadTarget::Uploads(name.clone())));
                if let Kind::Form { part, .. } = &mut st.kind {
                    *part = Some(Part { name, tried: 0 });
                }
            }
            // A form field that is not a file (or an empty file input): dropped.
            FormEvent::Start(_) => {}
            FormEvent::Data(bytes) if in_file => st.data(&bytes),
            FormEvent::Data(_) => {}
            FormEvent::End if in_file => {
                st.flush_buf();
                let part = match &mut st.kind {
                    Kind::Form { part, .. } => part.take(),
                    Kind::Put { .. } => None,
                };
                st.ops.push_back(Op::Commit(part));
            }
            FormEvent::End | FormEvent::Done => {}
        }
    }

    /// The whole body was read.
    fn end_body(&mut self, st: &mut Stream) -> Result<(), Refusal> {
        match &mut st.kind {
            Kind::Put { .. } => {
                st.flush_buf();
                st.ops.push_back(Op::Commit(None));
                Ok(())
            }
            Kind::Form { parser, .. } => parser.finish().map_err(|e| {
                warn!("{} refused (400): {e}", self.peer);
                Refusal::keep(400, "the form is malformed")
            }),
        }
    }
}
