//! The [`Connection`] state machine: one per TCP connection, fed events by a runtime,
//! answering with [`Action`]s.
//!
//! States: reading a head → (reading a body) → routing → (waiting for a file or an
//! upload write) → answering → reading the next head; or closed. Pipelined bytes wait in
//! the input buffer and are parsed only when the previous answer is out, so answers
//! always leave in request order.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use log::{debug, error, info, warn};

use crate::conditional::{self, RangeAnswer};
use crate::framing::{ChunkedDecoder, Framing};
use crate::mime::{self, ContentType};
use crate::parse::{parse_head, Method, Parsed, RequestHead};
use crate::response::{error_page, write_http_date, DateCache, HeadWriter, ALLOW};
use crate::target::{resolve_path, split_absolute, SafePath};
use crate::{Config, Now, Refusal};

/// What the runtime must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the socket.
    Send(Vec<u8>),
    /// Open this file below the root (checking that it resolves under the root), then
    /// report [`Connection::file_opened`] or [`Connection::file_failed`].
    OpenFile(SafePath),
    /// Stream `len` bytes of the opened file, from `offset`, to the socket.
    SendFile { offset: u64, len: u64 },
    /// Create `uploads/NAME` with these bytes, atomically and never overwriting, then
    /// report [`Connection::upload_written`].
    WriteUpload { name: String, body: Vec<u8> },
    /// Close the connection (after writing everything sent before).
    Close,
}

/// What the runtime learned about an opened file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FileMeta {
    pub len: u64,
    pub mtime_secs: u64,
    pub mtime_nanos: u32,
    pub is_dir: bool,
}

/// Why a file could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileError {
    /// No such file.
    NotFound,
    /// It resolves outside the root (a symlink), or the permissions refuse it.
    Forbidden,
    /// Any other I/O error.
    Other,
}

/// Why an upload could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadError {
    /// A file of that name exists already (never overwritten).
    AlreadyExists,
    /// Any other I/O error.
    Other,
}

/// What the request asks for, decided when its head is read.
#[derive(Debug)]
enum Route {
    File(SafePath),
    Upload,
    Options,
    /// Answered with this refusal once the body is read (or at once if it closes).
    Refuse(Refusal),
}

#[derive(Debug)]
enum BodyReader {
    Length(u64),
    /// The decoder, and the body bytes decoded so far (stored or not: a discarded body
    /// counts against `max_body` too).
    Chunked(ChunkedDecoder, u64),
}

/// A request whose head has been read.
#[derive(Debug)]
struct Request {
    head: Box<RequestHead>,
    route: Route,
    started_ms: u64,
}

/// Precompressed variants, tried in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Br,
    Gzip,
    Identity,
}

impl Encoding {
    fn suffix(self) -> &'static str {
        match self {
            Encoding::Br => ".br",
            Encoding::Gzip => ".gz",
            Encoding::Identity => "",
        }
    }
}

/// Which open a file request is waiting for. The file itself is opened first, so a
/// precompressed sibling is only served beside an existing `NAME`; when no sibling
/// opens, the file is opened again (the runtime holds one open file at a time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    First,
    Variant(Encoding),
    Reopen,
}

#[derive(Debug)]
enum State {
    /// Reading a request head (or idle between requests).
    Head,
    /// Reading a body.
    Body {
        req: Request,
        reader: BodyReader,
        body: Vec<u8>,
        store: bool,
    },
    /// Waiting for `file_opened` / `file_failed`.
    AwaitFile {
        req: Request,
        path: SafePath,
        stage: Stage,
        content_type: Option<ContentType>,
    },
    /// Waiting for `upload_written`.
    AwaitUpload {
        req: Request,
        name: String,
    },
    Closed,
}

/// One HTTP/1.1 server connection.
pub struct Connection {
    config: Arc<Config>,
    peer: String,
    input: Vec<u8>,
    pos: usize,
    state: State,
    out: VecDeque<Action>,
    served: u32,
    now: Now,
    last_activity_ms: u64,
    head_started_ms: Option<u64>,
    eof: bool,
    /// Buffers reused from answer to answer: a spare output buffer (see `recycle`), the
    /// last ETag, and the last Last-Modified with its seconds.
    spare: Vec<u8>,
    etag: String,
    last_modified: (u64, String),
    /// The answer just queued ends the connection: close once its body is queued too.
    close_pending: bool,
    /// The server is shutting down: the next answer says `Connection: close`.
    draining: bool,
    date: DateCache,
    seed: [u8; 16],
    uploads: u64,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("state", &self.state)
            .field("served", &self.served)
            .finish()
    }
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

impl Connection {
    /// A new connection from `peer` (used in logs). `seed` is 16 random bytes from the
    /// runtime: upload names are UUIDs derived from it.
    pub fn new(config: Arc<Config>, now: Now, seed: [u8; 16], peer: impl Into<String>) -> Self {
        let peer = peer.into();
        debug!("{peer} connection open");
        Connection {
            config,
            peer,
            input: Vec::new(),
            pos: 0,
            state: State::Head,
            out: VecDeque::new(),
            served: 0,
            now,
            last_activity_ms: now.mono_ms,
            head_started_ms: None,
            eof: false,
            spare: Vec::new(),
            etag: String::new(),
            last_modified: (0, String::new()),
            close_pending: false,
            draining: false,
            date: DateCache::default(),
            seed,
            uploads: 0,
        }
    }

    /// Bytes read from the socket.
    pub fn receive(&mut self, bytes: &[u8], now: Now) {
        if matches!(self.state, State::Closed) {
            return;
        }
        self.now = now;
        self.last_activity_ms = now.mono_ms;
        self.input.extend_from_slice(bytes);
        self.advance();
    }

    /// The client closed its sending side: answer what is complete, then close.
    pub fn receive_eof(&mut self, now: Now) {
        self.now = now;
        self.eof = true;
        self.advance();
    }

    /// The deadline from [`Connection::deadline`] has passed (or `now` is later).
    pub fn timeout(&mut self, now: Now) {
        self.now = now;
        let Some(deadline) = self.deadline() else {
            return;
        };
        if now.mono_ms < deadline {
            return;
        }
        match self.state {
            State::Head if self.head_started_ms.is_none() => {
                debug!("{} idle timeout", self.peer);
                self.close();
            }
            State::Head => {
                self.refuse_unparsed(Refusal::close(408, "request head not received in time"))
            }
            State::Body { .. } => {
                let State::Body { req, .. } = std::mem::replace(&mut self.state, State::Head)
                else {
                    return;
                };
                self.refuse(
                    &req,
                    Refusal::close(408, "request body not received in time"),
                );
                self.close();
            }
            _ => {}
        }
    }

    /// When the runtime should call [`Connection::timeout`] if nothing else happens.
    pub fn deadline(&self) -> Option<u64> {
        match self.state {
            State::Head => Some(match self.head_started_ms {
                Some(t) => t + self.config.head_timeout_ms,
                None => self.last_activity_ms + self.config.idle_timeout_ms,
            }),
            State::Body { .. } => Some(self.last_activity_ms + self.config.idle_timeout_ms),
            _ => None,
        }
    }

    /// The next action, until `None`.
    pub fn poll(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// Whether the connection has asked to close (nothing more will come).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed) && self.out.is_empty()
    }

    /// Whether the core is waiting for bytes from the client (no action pending).
    pub fn wants_read(&self) -> bool {
        self.out.is_empty() && matches!(self.state, State::Head | State::Body { .. })
    }

    /// The server is shutting down: an idle connection closes now; a request in progress
    /// is answered with `Connection: close`, and the connection closes after it.
    pub fn drain(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        if matches!(self.state, State::Head) && self.pos == self.input.len() {
            self.close();
        }
    }

    /// Hands back the buffer of a [`Action::Send`] once written, so the next answer can
    /// reuse its memory instead of allocating (optional).
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if buf.capacity() <= 64 * 1024 && buf.capacity() > self.spare.capacity() {
            self.spare = buf;
        }
    }

    /// Leaves the AwaitFile state, or `None` when the connection is not waiting for a
    /// file (a runtime bug: the result is ignored rather than trusted).
    fn take_await_file(&mut self) -> Option<(Request, SafePath, Stage, Option<ContentType>)> {
        if !matches!(self.state, State::AwaitFile { .. }) {
            return None;
        }
        match std::mem::replace(&mut self.state, State::Head) {
            State::AwaitFile {
                req,
                path,
                stage,
                content_type,
            } => Some((req, path, stage, content_type)),
            _ => None,
        }
    }

    /// The file asked for by [`Action::OpenFile`] is open.
    pub fn file_opened(&mut self, meta: FileMeta) {
        let Some((req, path, stage, content_type)) = self.take_await_file() else {
            return;
        };
        match (stage, content_type) {
            (Stage::Variant(enc), ct) if meta.is_dir => self.next_variant(req, path, enc, ct),
            (Stage::Variant(enc), Some(ct)) => self.answer_file(&req, &path, enc, &ct, meta),
            (_, _) if meta.is_dir => {
                self.refuse(&req, Refusal::keep(404, "a directory is not a file"))
            }
            (_, None) => self.refuse(&req, Refusal::keep(415, "unknown file type")),
            (Stage::First, Some(ct)) => match first_variant(&req.head, &ct) {
                Some(enc) => self.open(req, path, Stage::Variant(enc), Some(ct)),
                None => self.answer_file(&req, &path, Encoding::Identity, &ct, meta),
            },
            (_, Some(ct)) => self.answer_file(&req, &path, Encoding::Identity, &ct, meta),
        }
        self.advance();
    }

    /// The file asked for by [`Action::OpenFile`] could not be opened.
    pub fn file_failed(&mut self, err: FileError) {
        let Some((req, path, stage, content_type)) = self.take_await_file() else {
            return;
        };
        match (stage, err) {
            // A sibling that is missing, refused or unreadable: the file itself serves.
            (Stage::Variant(enc), _) => self.next_variant(req, path, enc, content_type),
            (_, FileError::NotFound) => self.refuse(&req, Refusal::keep(404, "no such file")),
            (_, FileError::Forbidden) => self.refuse(
                &req,
                Refusal::keep(403, "file resolves outside the web root"),
            ),
            (_, FileError::Other) => {
                error!("{} could not open {}", self.peer, path.as_str());
                self.refuse(&req, Refusal::keep(500, "the file could not be read"));
            }
        }
        self.advance();
    }

    /// The upload asked for by [`Action::WriteUpload`] is written (or not).
    pub fn upload_written(&mut self, result: Result<(), UploadError>) {
        if !matches!(self.state, State::AwaitUpload { .. }) {
            return; // not waiting for this: a runtime bug, ignored rather than trusted
        }
        let State::AwaitUpload { req, name } = std::mem::replace(&mut self.state, State::Head)
        else {
            return;
        };
        match result {
            Ok(()) => {
                let location = format!("/uploads/{name}");
                let body = format!("{{\"status\":\"created\",\"path\":\"{location}\"}}");
                self.respond(&req, 201, false, body.into_bytes(), |w| {
                    w.field("Content-Type", "application/json");
                    w.field("Location", &location);
                });
            }
            Err(e) => {
                error!("{} upload {name} not written: {e:?}", self.peer);
                self.refuse(&req, Refusal::keep(500, "the upload could not be saved"));
            }
        }
        self.advance();
    }

    // ----- the machine -----

    fn close(&mut self) {
        if !matches!(self.state, State::Closed) {
            debug!("{} connection closed", self.peer);
            self.state = State::Closed;
            self.out.push_back(Action::Close);
        }
    }

    /// Parses and answers whatever the input buffer holds, until it needs more bytes or
    /// a result from the runtime.
    fn advance(&mut self) {
        loop {
            if self.close_pending {
                break;
            }
            match std::mem::replace(&mut self.state, State::Head) {
                State::Head => {
                    let buf = &self.input[self.pos..];
                    if buf.is_empty() {
                        self.head_started_ms = None;
                        if self.eof {
                            self.close();
                        }
                        break;
                    }
                    if self.head_started_ms.is_none() {
                        self.head_started_ms = Some(self.now.mono_ms);
                    }
                    match parse_head(buf) {
                        Ok(Parsed::Partial) => {
                            if self.eof {
                                self.close();
                            }
                            break;
                        }
                        Err(r) => {
                            self.refuse_unparsed(r);
                            break;
                        }
                        Ok(Parsed::Complete(head, n)) => {
                            self.pos += n;
                            self.head_started_ms = None;
                            self.begin(head);
                        }
                    }
                }
                State::Body {
                    req,
                    mut reader,
                    mut body,
                    store,
                } => match self.read_body(&mut reader, &mut body, store) {
                    Err(r) => {
                        self.refuse(&req, r);
                        break;
                    }
                    Ok(true) => self.dispatch(req, body),
                    Ok(false) => {
                        self.state = State::Body {
                            req,
                            reader,
                            body,
                            store,
                        };
                        if self.eof {
                            self.close();
                        }
                        break;
                    }
                },
                other => {
                    self.state = other;
                    break;
                }
            }
        }
        if self.close_pending {
            self.close();
        }
        if self.pos == self.input.len() {
            self.input.clear();
            self.pos = 0;
        } else if self.pos > 16 * 1024 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Moves body bytes from the input buffer; `Ok(true)` when the body is complete.
    fn read_body(
        &mut self,
        reader: &mut BodyReader,
        body: &mut Vec<u8>,
        store: bool,
    ) -> Result<bool, Refusal> {
        let avail = &self.input[self.pos..];
        let max = self.config.max_body;
        match reader {
            BodyReader::Length(remaining) => {
                let take = avail
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                if store {
                    body.extend_from_slice(&avail[..take]);
                }
                *remaining -= take as u64;
                self.pos += take;
                Ok(*remaining == 0)
            }
            BodyReader::Chunked(dec, seen) => {
                let mut total = *seen;
                let used = dec.decode(avail, |data| {
                    total += data.len() as u64;
                    if total > max {
                        return Err(Refusal::close(413, "request body too large"));
                    }
                    if store {
                        body.extend_from_slice(data);
                    }
                    Ok(())
                })?;
                // Across calls, so that the limit does not depend on how the body arrives
                // (found by the split fuzz target).
                *seen = total;
                self.pos += used;
                Ok(dec.is_done())
            }
        }
    }

    /// A whole head has been read: check it, route it, and start on its body.
    fn begin(&mut self, head: Box<RequestHead>) {
        let mut req = Request {
            head,
            route: Route::Options,
            started_ms: self.now.mono_ms,
        };
        let path = match self.check_host(&req.head) {
            Ok(path) => path,
            Err(r) => return self.refuse(&req, r),
        };
        let body_len = match req.head.framing {
            Framing::Length(n) if n > self.config.max_body => {
                return self.refuse(&req, Refusal::close(413, "request body too large"));
            }
            Framing::Length(n) => Some(n),
            Framing::Chunked => None,
            Framing::None => Some(0),
        };
        req.route = route(&req.head, path);
        if body_len == Some(0) {
            return self.dispatch(req, Vec::new());
        }
        let wants_body = matches!(req.route, Route::Upload);
        if req.head.expect_continue {
            if wants_body {
                self.out.push_back(Action::Send(CONTINUE.to_vec()));
            } else if let Route::Refuse(r) = req.route {
                // The client waits before sending the body: refuse now and close rather
                // than read a body we would throw away.
                return self.refuse(&req, Refusal { close: true, ..r });
            }
        }
        let reader = match body_len {
            Some(n) => BodyReader::Length(n),
            None => BodyReader::Chunked(ChunkedDecoder::default(), 0),
        };
        let capacity = if wants_body {
            body_len.unwrap_or(0).min(1 << 20) as usize
        } else {
            0
        };
        self.state = State::Body {
            req,
            reader,
            body: Vec::with_capacity(capacity),
            store: wants_body,
        };
    }

    /// The Host rules; returns the path part of the target.
    fn check_host<'h>(&self, head: &'h RequestHead) -> Result<&'h str, Refusal> {
        let hosts = &self.config.hosts;
        if head.host_count > 1 {
            return Err(Refusal::close(400, "more than one Host header"));
        }
        if head.minor == 1 && head.host_count == 0 {
            return Err(Refusal::close(400, "missing Host header"));
        }
        if let Some((authority, path)) = split_absolute(&head.target) {
            // RFC 9112 §3.2.2: the target's authority replaces Host (still required).
            hosts.check(authority.as_bytes())?;
            return Ok(path);
        }
        if head.target.contains("://") {
            return Err(Refusal::close(400, "unsupported absolute-form target"));
        }
        if let Some(host) = &head.host {
            hosts.check(host)?;
        }
        Ok(&head.target)
    }

    /// The request is complete: act on it.
    fn dispatch(&mut self, mut req: Request, body: Vec<u8>) {
        match std::mem::replace(&mut self.state, State::Head) {
            State::Closed => {
                self.state = State::Closed;
                return;
            }
            _ => self.state = State::Head,
        }
        match std::mem::replace(&mut req.route, Route::Options) {
            Route::Refuse(r) => self.refuse(&req, r),
            Route::Options => {
                self.respond(&req, 204, false, Vec::new(), |w| {
                    w.field("Allow", ALLOW);
                });
            }
            Route::Upload => {
                if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
                    return self.refuse(&req, Refusal::keep(400, "the body is not valid JSON"));
                }
                let name = self.next_upload_name();
                self.out.push_back(Action::WriteUpload {
                    name: name.clone(),
                    body,
                });
                self.state = State::AwaitUpload { req, name };
            }
            Route::File(path) => {
                let content_type = mime::content_type(path.file_name());
                self.open(req, path, Stage::First, content_type);
            }
        }
    }

    fn open(
        &mut self,
        req: Request,
        path: SafePath,
        stage: Stage,
        content_type: Option<ContentType>,
    ) {
        let open = match stage {
            Stage::Variant(enc) => path.with_suffix(enc.suffix()),
            Stage::First | Stage::Reopen => path.clone(),
        };
        self.out.push_back(Action::OpenFile(open));
        self.state = State::AwaitFile {
            req,
            path,
            stage,
            content_type,
        };
    }

    /// After sibling `tried` did not open: the next sibling, or the file itself again.
    fn next_variant(
        &mut self,
        req: Request,
        path: SafePath,
        tried: Encoding,
        content_type: Option<ContentType>,
    ) {
        let next = match tried {
            Encoding::Br if req.head.accept_gzip => Stage::Variant(Encoding::Gzip),
            _ => Stage::Reopen,
        };
        self.open(req, path, next, content_type);
    }

    fn answer_file(
        &mut self,
        req: &Request,
        path: &SafePath,
        encoding: Encoding,
        ct: &ContentType,
        meta: FileMeta,
    ) {
        // Both strings are kept in the connection and rewritten only when they change.
        let mut etag = std::mem::take(&mut self.etag);
        etag.clear();
        conditional::write_etag(&mut etag, meta.len, meta.mtime_secs, meta.mtime_nanos);
        let (lm_secs, mut last_modified) = std::mem::take(&mut self.last_modified);
        if last_modified.is_empty() || lm_secs != meta.mtime_secs {
            last_modified.clear();
            write_http_date(&mut last_modified, meta.mtime_secs);
        }
        let config = Arc::clone(&self.config);
        let cache_control = config.cache_control.as_str();
        'answer: {
            let validators = |w: &mut HeadWriter<'_>| {
                w.field("ETag", &etag)
                    .field("Last-Modified", &last_modified);
                if !cache_control.is_empty() {
                    w.field("Cache-Control", cache_control);
                }
                if ct.compressible {
                    w.field("Vary", "Accept-Encoding");
                }
            };
            if conditional::not_modified(&req.head, &etag, meta.mtime_secs) {
                self.respond_head(req, 304, false, None, validators);
                break 'answer;
            }
            let answer = if encoding == Encoding::Identity {
                conditional::range(&req.head, &etag, &last_modified, meta.len)
            } else {
                RangeAnswer::Full
            };
            let (status, offset, len) = match answer {
                RangeAnswer::Full => (200, 0, meta.len),
                RangeAnswer::Partial { start, len } => (206, start, len),
                RangeAnswer::Unsatisfiable => {
                    let body = error_page(416, "the range is outside the file");
                    let content_range = format!("bytes */{}", meta.len);
                    self.respond(req, 416, false, body, |w| {
                        w.field("Content-Type", "text/html; charset=utf-8");
                        w.field("Content-Range", &content_range);
                    });
                    break 'answer;
                }
            };
            let disposition = ct.attachment.then(|| mime::attachment(path.file_name()));
            self.respond_head(req, status, false, Some(len), |w| {
                w.field("Content-Type", &ct.value);
                if let Some(d) = &disposition {
                    w.field("Content-Disposition", d);
                }
                if encoding != Encoding::Identity {
                    w.field(
                        "Content-Encoding",
                        if encoding == Encoding::Br {
                            "br"
                        } else {
                            "gzip"
                        },
                    );
                }
                validators(w);
                w.field("Accept-Ranges", "bytes");
                if status == 206 {
                    let end = offset + len - 1;
                    w.field(
                        "Content-Range",
                        &format!("bytes {offset}-{end}/{}", meta.len),
                    );
                }
            });
            if req.head.method == Method::Get && len > 0 {
                self.out.push_back(Action::SendFile { offset, len });
            }
        }
        self.etag = etag;
        self.last_modified = (meta.mtime_secs, last_modified);
    }

    /// Answers a request with an inline body (none for HEAD, 204, 304).
    fn respond(
        &mut self,
        req: &Request,
        status: u16,
        force_close: bool,
        body: Vec<u8>,
        fields: impl FnOnce(&mut HeadWriter<'_>),
    ) {
        let len = body.len() as u64;
        let send_body = req.head.method != Method::Head && status != 204 && status != 304;
        let body = if send_body { &body[..] } else { &[] };
        self.emit(req, status, force_close, Some(len), body, fields);
    }

    /// Queues a response head (the body follows as `SendFile`, or there is none).
    fn respond_head(
        &mut self,
        req: &Request,
        status: u16,
        force_close: bool,
        content_length: Option<u64>,
        fields: impl FnOnce(&mut HeadWriter<'_>),
    ) {
        self.emit(req, status, force_close, content_length, &[], fields);
    }

    /// Queues a response: head, then `body`; closes after it when it must.
    fn emit(
        &mut self,
        req: &Request,
        status: u16,
        force_close: bool,
        content_length: Option<u64>,
        body: &[u8],
        fields: impl FnOnce(&mut HeadWriter<'_>),
    ) {
        self.served += 1;
        let keep = !force_close
            && !self.draining
            && req.head.keep_alive
            && self.served < self.config.max_requests;
        let mut buf = std::mem::take(&mut self.spare);
        buf.clear();
        buf.reserve(320 + body.len());
        let config = Arc::clone(&self.config);
        let date = self.date.get(self.now.unix_secs);
        let mut w = HeadWriter::new(&mut buf, status, &config.server_name, date);
        fields(&mut w);
        if let Some(len) = content_length {
            if status != 204 && status != 304 {
                w.number("Content-Length", len);
            }
        }
        if keep {
            if req.head.minor == 0 {
                w.field("Connection", "keep-alive");
            }
            w.keep_alive(
                config.idle_timeout_secs(),
                u64::from(config.max_requests - self.served),
            );
        } else {
            w.field("Connection", "close");
        }
        w.finish();
        info!(
            "{} \"{} {}\" {} {} {}ms",
            self.peer,
            Clean(req.head.method.as_str()),
            Clean(&req.head.target),
            status,
            content_length.unwrap_or(0),
            self.now.mono_ms.saturating_sub(req.started_ms)
        );
        buf.extend_from_slice(body);
        self.out.push_back(Action::Send(buf));
        if !keep {
            // Closed by `advance` once the body (a SendFile) is queued too.
            self.close_pending = true;
        }
    }

    /// Answers a parsed request with an error page.
    fn refuse(&mut self, req: &Request, r: Refusal) {
        if !matches!(r.status, 404 | 405 | 415 | 416 | 500) {
            warn!("{} refused ({}): {}", self.peer, r.status, r.reason);
        }
        let body = error_page(r.status, r.reason);
        self.respond(req, r.status, r.close, body, |w| {
            w.field("Content-Type", "text/html; charset=utf-8");
            if r.status == 405 {
                w.field("Allow", ALLOW);
            }
        });
    }

    /// Answers bytes that never became a request head, and closes.
    fn refuse_unparsed(&mut self, r: Refusal) {
        warn!("{} refused ({}): {}", self.peer, r.status, r.reason);
        let body = error_page(r.status, r.reason);
        let mut buf = Vec::with_capacity(256 + body.len());
        let config = Arc::clone(&self.config);
        let date = self.date.get(self.now.unix_secs);
        let mut w = HeadWriter::new(&mut buf, r.status, &config.server_name, date);
        w.field("Content-Type", "text/html; charset=utf-8")
            .number("Content-Length", body.len() as u64)
            .field("Connection", "close");
        w.finish();
        buf.extend_from_slice(&body);
        self.served += 1;
        self.out.push_back(Action::Send(buf));
        self.close();
    }

    /// A UUID (version 4 layout) from the runtime's seed and a counter.
    fn next_upload_name(&mut self) -> String {
        self.uploads += 1;
        let lo = u64::from_le_bytes(self.seed[..8].try_into().unwrap_or([0; 8]));
        let hi = u64::from_le_bytes(self.seed[8..].try_into().unwrap_or([0; 8]));
        let a = splitmix64(lo ^ self.uploads.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let b = splitmix64(hi ^ a);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&a.to_le_bytes());
        bytes[8..].copy_from_slice(&b.to_le_bytes());
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        format!("{}.json", id.hyphenated())
    }
}

/// The first precompressed sibling worth trying for this request, if any: only for
/// compressible types, never for range requests (ranges address the file itself).
fn first_variant(head: &RequestHead, ct: &ContentType) -> Option<Encoding> {
    if !ct.compressible || head.range.is_some() {
        None
    } else if head.accept_br {
        Some(Encoding::Br)
    } else if head.accept_gzip {
        Some(Encoding::Gzip)
    } else {
        None
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Where a request goes, from its method and path.
fn route(head: &RequestHead, path: &str) -> Route {
    if path == "*" {
        return match head.method {
            Method::Options => Route::Options,
            _ => Route::Refuse(Refusal::keep(400, "the * target is only for OPTIONS")),
        };
    }
    match head.method {
        Method::Options => Route::Options,
        Method::Other(_) => Route::Refuse(Refusal::keep(405, "method not allowed")),
        Method::Post => match resolve_path(path) {
            Ok(p) if p.as_str() == "upload" => {
                if head.content_type_json {
                    Route::Upload
                } else {
                    Route::Refuse(Refusal::keep(415, "uploads must be application/json"))
                }
            }
            Ok(_) => Route::Refuse(Refusal::keep(404, "only /upload accepts POST")),
            Err(r) => Route::Refuse(r),
        },
        Method::Get | Method::Head => match resolve_path(path) {
            Ok(p) => Route::File(p),
            Err(r) => Route::Refuse(r),
        },
    }
}

/// Client text in a log line: printable ASCII kept, everything else escaped, cut short.
struct Clean<'a>(&'a str);

impl fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.bytes().enumerate() {
            if i == 200 {
                return f.write_str("...");
            }
            if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
                fmt::Write::write_char(f, b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}
