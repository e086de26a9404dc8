//! The [`Connection`] state machine: one per TCP connection, fed [`Input`]s by a runtime,
//! answering with [`Action`]s. This module is the only one that knows the states.
//!
//! States: reading a head → (reading a body) → (waiting for a file or an upload write)
//! → an answer handed out → [`Input::Written`] → reading the next head; or closed. One
//! answer is in flight at a time: pipelined bytes wait in the input buffer and are parsed
//! only once the previous answer has been written, so answers leave in request order,
//! and every deadline runs from the moment the runtime finished writing, never from the
//! last byte received.
//!
//! The other files of this module name their job: [`body`] reads request bodies,
//! [`route`] applies the `Host` rules and routes a request, [`file`] answers a file
//! (precompressed variants, preconditions, ranges), [`upload`] checks and names uploads,
//! [`listing`] answers a directory (`--dir-listing`), [`answer`] writes answers and the
//! access log.

mod answer;
mod body;
mod events;
mod file;
mod listing;
mod route;
mod upload;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use log::debug;

use crate::framing::Framing;
use crate::mime::ContentType;
use crate::parse::{parse_head, Parsed, RequestHead};
use crate::response::DateCache;
use crate::target::SafePath;
use crate::{Config, Now, Refusal};
use file::EtagOf;

use body::{BodyReader, Held};
pub use events::{Action, FileError, FileMeta, Input, UploadError};
use file::Stage;

/// What the request asks for, decided when its head is read.
#[derive(Debug)]
enum Route {
    /// A file below the root; `dir` when the target named a directory (`/docs/`).
    File {
        path: SafePath,
        dir: bool,
    },
    Upload,
    Options,
    /// Answered with this refusal once the body is read (or at once if it closes).
    Refuse(Refusal),
}

/// A request whose head has been read.
#[derive(Debug)]
struct Request {
    head: Box<RequestHead>,
    route: Route,
    started_ms: u64,
    /// The target named a directory (`/docs/`): with `--dir-listing`, a missing
    /// `index.html` means "list it".
    dir: bool,
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
        /// The budget a stored (upload) body holds; `None`: read and dropped.
        held: Option<Held>,
        /// When the body began (or the `100 Continue` was written): `--body-timeout`.
        started_ms: u64,
    },
    /// Waiting for [`Input::FileOpened`].
    AwaitFile {
        req: Request,
        path: SafePath,
        stage: Stage,
        content_type: Option<ContentType>,
    },
    /// Waiting for [`Input::DirListed`] of this directory.
    AwaitListing {
        req: Request,
        dir: SafePath,
    },
    /// Waiting for [`Input::UploadWritten`].
    AwaitUpload {
        req: Request,
        name: String,
        body: Arc<Vec<u8>>,
        tries: u32,
        /// Given back to the budget when the write is done.
        held: Option<Held>,
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
    /// The last byte received or the last answer written, whichever is later.
    last_activity_ms: u64,
    head_started_ms: Option<u64>,
    eof: bool,
    /// Bytes handed out (`Send`, `SendFile`) and not yet reported written.
    unwritten: bool,
    /// The answer handed out ends the connection: `Close` once it is written.
    close_pending: bool,
    /// The server is shutting down: the next answer says `Connection: close`.
    draining: bool,
    /// The access-log line of the answer in flight, printed once it is written.
    log_line: String,
    log_started_ms: u64,
    /// Inputs that came when the connection did not expect them (see [`Connection::handle`]).
    ignored: u64,
    /// Buffers reused from answer to answer: a spare output buffer (see `recycle`), the
    /// last ETag with the file version it was written for, and the last Last-Modified
    /// with its seconds.
    spare: Vec<u8>,
    etag: (EtagOf, String),
    last_modified: (u64, String),
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
            unwritten: false,
            close_pending: false,
            draining: false,
            log_line: String::new(),
            log_started_ms: 0,
            ignored: 0,
            spare: Vec::new(),
            etag: (EtagOf::default(), String::new()),
            last_modified: (0, String::new()),
            date: DateCache::default(),
            seed,
            uploads: 0,
        }
    }

    /// Hands the core one input, at time `now`; then drain [`Connection::poll`].
    ///
    /// An input the connection does not expect in its state — a file or upload result it
    /// did not ask for, `Written` or `WriteFailed` with nothing handed out, anything after
    /// `Close` — is ignored and counted ([`Connection::ignored`]); it never changes the
    /// state. A `Timeout` before the deadline is not a misuse (timers fire early): it
    /// does nothing.
    pub fn handle(&mut self, now: Now, input: Input<'_>) {
        if matches!(self.state, State::Closed) {
            self.ignored += 1;
            return;
        }
        self.now = now;
        match input {
            Input::Received(bytes) => self.received(bytes),
            Input::Eof => {
                self.eof = true;
                self.advance();
            }
            Input::FileOpened(result) => match self.take_await_file() {
                Some((req, path, stage, ct)) => {
                    self.file_result(req, path, stage, ct, result);
                    self.advance();
                }
                None => self.ignored += 1,
            },
            Input::DirListed(result) => {
                if matches!(self.state, State::AwaitListing { .. }) {
                    self.listing_result(result);
                    self.advance();
                } else {
                    self.ignored += 1;
                }
            }
            Input::UploadWritten(result) => {
                if matches!(self.state, State::AwaitUpload { .. }) {
                    self.upload_result(result);
                    self.advance();
                } else {
                    self.ignored += 1;
                }
            }
            Input::Written => self.written(),
            Input::WriteFailed => {
                if self.unwritten {
                    self.log_answer(false);
                    self.close();
                } else {
                    self.ignored += 1;
                }
            }
            Input::Timeout => self.timeout(),
            Input::Drain => {
                self.draining = true;
                self.close_if_idle();
            }
        }
    }

    /// The next action, until `None`.
    pub fn poll(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// When the runtime should hand in [`Input::Timeout`] if nothing else happens (on the
    /// same clock as [`Now::mono_ms`]). `None` while the core waits for the runtime: a
    /// file, an upload, or the end of writing an answer.
    pub fn deadline(&self) -> Option<u64> {
        if self.unwritten || !self.out.is_empty() {
            return None;
        }
        let idle = self
            .last_activity_ms
            .saturating_add(self.config.idle_timeout_ms);
        match &self.state {
            State::Head => Some(match self.head_started_ms {
                Some(t) => t.saturating_add(self.config.head_timeout_ms),
                None => idle,
            }),
            State::Body { started_ms, .. } => {
                Some(idle.min(started_ms.saturating_add(self.config.body_timeout_ms)))
            }
            _ => None,
        }
    }

    /// Whether the connection has asked to close (nothing more will come).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed) && self.out.is_empty()
    }

    /// Whether the core is waiting for bytes from the client (nothing else pending).
    pub fn wants_read(&self) -> bool {
        self.out.is_empty()
            && !self.unwritten
            && matches!(self.state, State::Head | State::Body { .. })
    }

    /// Whether the connection is between requests: every answer written, nothing of a
    /// next request received (empty lines aside). Such a connection loses nothing if it
    /// is set aside (runtime-std parks it to free its worker) or closed.
    pub fn is_idle(&self) -> bool {
        self.wants_read()
            && matches!(self.state, State::Head)
            && self.input[self.pos..]
                .iter()
                .all(|&b| b == b'\r' || b == b'\n')
    }

    /// The peer, as given to [`Connection::new`] (for the runtime's own log lines).
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// How many answers the connection has given (refusals included).
    pub fn answered(&self) -> u32 {
        self.served
    }

    /// How many inputs came that the connection did not expect (see [`Connection::handle`]).
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Hands back the buffer of a [`Action::Send`] once written, so the next answer can
    /// reuse its memory instead of allocating. Only a small buffer is kept (a head, an
    /// error page), so an idle connection holds at most a few KiB.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if buf.capacity() <= 4 * 1024 && buf.capacity() > self.spare.capacity() {
            self.spare = buf;
        }
    }

    // ----- the inputs -----

    fn received(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return self.advance();
        }
        self.input.extend_from_slice(bytes);
        // Empty lines before a request line are idle time (RFC 9112 §2.2): they neither
        // start the head deadline (see `advance`) nor keep an idle connection alive.
        let idle_noise = matches!(self.state, State::Head)
            && self.input[self.pos..]
                .iter()
                .all(|&b| b == b'\r' || b == b'\n');
        if !idle_noise {
            self.last_activity_ms = self.now.mono_ms;
        }
        self.advance();
    }

    fn written(&mut self) {
        if !self.unwritten {
            self.ignored += 1;
            return;
        }
        self.unwritten = false;
        self.last_activity_ms = self.now.mono_ms;
        self.log_answer(true);
        if self.close_pending {
            return self.close();
        }
        match &mut self.state {
            // A `100 Continue` is out: the body's time starts now.
            State::Body { started_ms, .. } => *started_ms = self.now.mono_ms,
            // A pipelined head already (partly) here starts now, not when it arrived.
            State::Head if self.head_started_ms.is_some() => {
                self.head_started_ms = Some(self.now.mono_ms)
            }
            _ => {}
        }
        self.close_if_idle();
        self.advance();
    }

    fn timeout(&mut self) {
        let Some(deadline) = self.deadline() else {
            return;
        };
        if self.now.mono_ms < deadline {
            return;
        }
        match std::mem::replace(&mut self.state, State::Head) {
            State::Head if self.head_started_ms.is_none() => {
                debug!("{} idle timeout", self.peer);
                self.close();
            }
            State::Head => {
                self.refuse_unparsed(Refusal::close(408, "request head not received in time"))
            }
            State::Body {
                req, started_ms, ..
            } => {
                let reason =
                    if self.now.mono_ms >= started_ms.saturating_add(self.config.body_timeout_ms) {
                        "request body not complete within the body timeout"
                    } else {
                        "request body stalled"
                    };
                self.refuse(&req, Refusal::close(408, reason));
            }
            other => self.state = other,
        }
    }

    // ----- the machine -----

    fn close(&mut self) {
        if !matches!(self.state, State::Closed) {
            debug!("{} connection closed", self.peer);
            self.state = State::Closed;
            self.out.push_back(Action::Close);
        }
    }

    /// Shutting down, nothing in flight and nothing received: close now.
    fn close_if_idle(&mut self) {
        // Empty lines before a request line are idle time, not a request.
        let nothing_received = self.input[self.pos..]
            .iter()
            .all(|&b| b == b'\r' || b == b'\n');
        if self.draining && !self.unwritten && matches!(self.state, State::Head) && nothing_received
        {
            self.close();
        }
    }

    /// Parses and answers whatever the input buffer holds, until it needs more bytes, a
    /// result from the runtime, or the end of writing an answer.
    fn advance(&mut self) {
        while !self.unwritten && !self.close_pending {
            match std::mem::replace(&mut self.state, State::Head) {
                State::Head => {
                    let buf = &self.input[self.pos..];
                    // Only a byte other than CR or LF starts a request (and its deadline).
                    if buf.iter().any(|&b| b != b'\r' && b != b'\n') {
                        self.head_started_ms.get_or_insert(self.now.mono_ms);
                    } else {
                        self.head_started_ms = None;
                    }
                    if buf.is_empty() {
                        if self.eof {
                            self.close();
                        }
                        break;
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
                    mut held,
                    started_ms,
                } => match self.read_body(&mut reader, &mut body, &mut held) {
                    Err(r) => {
                        self.refuse(&req, r);
                        break;
                    }
                    Ok(true) => self.dispatch(req, body, held),
                    Ok(false) => {
                        self.state = State::Body {
                            req,
                            reader,
                            body,
                            held,
                            started_ms,
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
        if self.pos == self.input.len() {
            self.input.clear();
            self.pos = 0;
        } else if self.pos > 16 * 1024 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// A whole head has been read: check it, route it, and start on its body.
    fn begin(&mut self, head: Box<RequestHead>) {
        let mut req = Request {
            head,
            route: Route::Options,
            started_ms: self.now.mono_ms,
            dir: false,
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
        req.route = route::route(&req.head, path, self.config.path_rules);
        if body_len == Some(0) {
            return self.dispatch(req, Vec::new(), None);
        }
        // An upload body is held in memory until written: it needs room in the budget
        // all connections share (a chunked one takes its room as it grows).
        let held = match req.route {
            Route::Upload => match Held::take(&self.config.body_budget, body_len.unwrap_or(0)) {
                Some(held) => Some(held),
                None => return self.refuse(&req, body::OVER_BUDGET),
            },
            _ => None,
        };
        if req.head.expect_continue {
            if let Route::Refuse(r) = req.route {
                // The client waits before sending the body: refuse now and close rather
                // than read a body we would throw away.
                return self.refuse(&req, Refusal { close: true, ..r });
            }
            // Whatever the method, a client that waits is told to go on (RFC 9110 §10.1.1).
            self.out.push_back(Action::Send(CONTINUE.to_vec()));
            self.unwritten = true;
        }
        let capacity = if held.is_some() {
            body_len.unwrap_or(0).min(1 << 20) as usize
        } else {
            0
        };
        self.state = State::Body {
            req,
            reader: BodyReader::new(body_len),
            body: Vec::with_capacity(capacity),
            held,
            started_ms: self.now.mono_ms,
        };
    }

    /// The request is complete: act on it.
    fn dispatch(&mut self, mut req: Request, body: Vec<u8>, held: Option<Held>) {
        match std::mem::replace(&mut req.route, Route::Options) {
            Route::Refuse(r) => self.refuse(&req, r),
            Route::Options => self.options(&req),
            Route::Upload => self.upload(req, body, held),
            Route::File { path, dir } => self.open_file(req, path, dir),
        }
    }
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
