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
//! access log, [`record`] keeps what each answered request was (for the runtime's access
//! log and metrics).

mod answer;
mod archive;
mod body;
mod compress;
mod events;
mod file;
mod flow;
mod gate;
mod listing;
mod record;
mod route;
mod stream;
mod upload;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use log::debug;

use crate::framing::Framing;
use crate::mime::ContentType;
use crate::parse::{parse_head_for, Method, Parsed, RequestHead};
use crate::response::DateCache;
use crate::target::SafePath;
use crate::{Config, Now, Refusal};
use file::EtagOf;

use body::{BodyReader, Held};
pub use events::{
    Action, Compressed, Credentials, FileError, FileMeta, Input, UploadError, UploadTarget, Wait,
};
use file::Stage;
pub use record::{HttpVersion, RequestRecord};

/// What the request asks for, decided when its head is read.
#[derive(Debug)]
enum Route {
    /// A file below the root; `dir` when the target named a directory (`/docs/`).
    File {
        path: SafePath,
        dir: bool,
    },
    Upload,
    /// `POST /upload` of a `multipart/form-data` body with this boundary.
    Multipart {
        boundary: Vec<u8>,
    },
    /// `PUT` and `DELETE` of a path some rule lets be written.
    Put {
        path: SafePath,
    },
    Delete {
        path: SafePath,
    },
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
    /// The user whose credentials were verified for this request (`--auth`).
    user: Option<String>,
    /// Credentials were sent and failed (for the record).
    auth_failed: bool,
    /// An upload (`PUT`, `POST /upload`), and the bytes of it handed to the store.
    upload: bool,
    upload_bytes: u64,
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
    /// Waiting for [`Input::Verified`] of `user`'s password; then the body (of
    /// `body_len`, `None`: chunked).
    AwaitAuth {
        req: Request,
        user: String,
        body_len: Option<u64>,
    },
    /// `PUT` / `DELETE`: waiting for [`Input::FileOpened`] of the target (its version,
    /// for the preconditions).
    AwaitTarget {
        req: Request,
        body_len: Option<u64>,
    },
    /// Waiting for [`Input::Deleted`].
    AwaitDelete {
        req: Request,
    },
    /// A streamed upload (`PUT`, a multipart form).
    Stream(Box<stream::Stream>),
    /// Waiting for [`Input::Compressed`].
    AwaitCompressed(Box<compress::Pending>),
    /// Waiting for [`Input::FileOpened`].
    AwaitFile {
        req: Request,
        path: SafePath,
        stage: Stage,
        content_type: Option<ContentType>,
    },
    /// Waiting for [`Input::Archived`] of this directory.
    AwaitArchive {
        req: Request,
        dir: SafePath,
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
    /// The record of the answer in flight, and those answered and not yet taken
    /// (`Config::records`).
    record: Option<RequestRecord>,
    records: VecDeque<RequestRecord>,
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
    /// The peer's address, for the failure limiter of `--auth` (unspecified when the
    /// peer given is not an address).
    peer_ip: std::net::IpAddr,
    /// The `Retry-After` of a `429` being answered.
    retry_after: u64,
    /// The credentials this connection verified last, and the digest of those being
    /// verified (`--auth`).
    verified: Option<gate::Verified>,
    pending_digest: u64,
    /// One stream of an HTTP/2 connection ([`crate::H2Server`]): no connection
    /// open/close lines in the log.
    quiet: bool,
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
        Connection::make(config, now, seed, peer, false)
    }

    /// The connection that answers one HTTP/2 stream ([`crate::H2Server`]): fed one
    /// request rebuilt as HTTP/1.1, and dropped once it is answered.
    pub(crate) fn for_stream(config: Arc<Config>, now: Now, seed: [u8; 16], peer: String) -> Self {
        Connection::make(config, now, seed, peer, true)
    }

    fn make(config: Arc<Config>, now: Now, seed: [u8; 16], peer: String, quiet: bool) -> Self {
        let peer_ip = peer
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
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
            record: None,
            records: VecDeque::new(),
            ignored: 0,
            spare: Vec::new(),
            etag: (EtagOf::default(), String::new()),
            last_modified: (0, String::new()),
            date: DateCache::default(),
            seed,
            uploads: 0,
            peer_ip,
            retry_after: 0,
            verified: None,
            pending_digest: 0,
            quiet,
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
            Input::FileOpened(result) if matches!(self.state, State::AwaitTarget { .. }) => {
                self.target_result(result);
                self.advance();
            }
            Input::UploadBegun(r) | Input::ChunkWritten(r) => {
                self.stream_input(r.map(|()| None));
            }
            Input::UploadCommitted(r) => self.stream_input(r.map(Some)),
            Input::Compressed(result) => {
                if matches!(self.state, State::AwaitCompressed(_)) {
                    self.compressed_result(result);
                    self.advance();
                } else {
                    self.ignored += 1;
                }
            }
            Input::Deleted(result) => {
                if matches!(self.state, State::AwaitDelete { .. }) {
                    self.delete_result(result);
                    self.advance();
                } else {
                    self.ignored += 1;
                }
            }
            Input::FileOpened(result) => match self.take_await_file() {
                Some((req, path, stage, ct)) => {
                    self.file_result(req, path, stage, ct, result);
                    self.advance();
                }
                None => self.ignored += 1,
            },
            Input::Verified(ok) => {
                if matches!(self.state, State::AwaitAuth { .. }) {
                    self.verified(ok);
                    self.advance();
                } else {
                    self.ignored += 1;
                }
            }
            Input::Archived(result) => {
                if matches!(self.state, State::AwaitArchive { .. }) {
                    self.archive_result(result);
                    self.advance();
                } else {
                    self.ignored += 1;
                }
            }
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

    /// The result of a streamed upload's action, if one is owed.
    fn stream_input(&mut self, result: Result<Option<FileMeta>, UploadError>) {
        if matches!(&self.state, State::Stream(st) if st.owes()) {
            self.stream_result(result);
            self.advance();
        } else {
            self.ignored += 1;
        }
    }

    /// The next action, until `None`.
    pub fn poll(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// What the connection waits for once [`Connection::poll`] has nothing more: bytes
    /// from the client until a deadline, a result the runtime owes, or nothing (closed).
    /// A wait for the client always comes with its deadline.
    pub fn wait(&self) -> Wait {
        if matches!(self.state, State::Closed) {
            return if self.out.is_empty() {
                Wait::Closed
            } else {
                Wait::Runtime
            };
        }
        if self.unwritten || !self.out.is_empty() {
            return Wait::Runtime;
        }
        let idle_until = self
            .last_activity_ms
            .saturating_add(self.config.idle_timeout_ms);
        let until = match &self.state {
            State::Head => match self.head_started_ms {
                Some(t) => t.saturating_add(self.config.head_timeout_ms),
                None => idle_until,
            },
            State::Body { started_ms, .. } => {
                idle_until.min(started_ms.saturating_add(self.config.body_timeout_ms))
            }
            State::Stream(st) if !st.owes() => st.deadline(self.config.idle_timeout_ms.max(1000)),
            _ => return Wait::Runtime,
        };
        // Between requests: every answer written, nothing of a next request received
        // (empty lines aside); closing such a connection loses nothing.
        let idle = matches!(self.state, State::Head)
            && self.input[self.pos..]
                .iter()
                .all(|&b| b == b'\r' || b == b'\n');
        Wait::Read { until, idle }
    }

    /// The deadline of the current wait for the client, if it waits for the client.
    fn deadline(&self) -> Option<u64> {
        match self.wait() {
            Wait::Read { until, .. } => Some(until),
            _ => None,
        }
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

    /// Bytes received and not yet consumed: a head not yet parsed, or body bytes the
    /// connection holds back until the runtime's result (a streamed upload's chunk).
    /// HTTP/2 announces flow-control credit only for what is consumed.
    pub fn buffered(&self) -> usize {
        self.input.len() - self.pos
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
            State::Stream(st) => self.stream_timeout(st),
            other => self.state = other,
        }
    }

    // ----- the machine -----

    fn close(&mut self) {
        if !matches!(self.state, State::Closed) {
            if !self.quiet {
                debug!("{} connection closed", self.peer);
            }
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
}
