//! The HTTP/2 server: one [`H2Conn`] (frames, HPACK, flow control, the defences) and,
//! for each stream, one HTTP/1.1 [`Connection`] that answers it — request handling is
//! written once, in `conn/`, and HTTP/2 is a second framing of it.
//!
//! ```text
//!  handle(now, H2Input)                               poll() -> H2Action
//!  Received(bytes) ──▶ H2Conn ──Event::Request──▶ rebuild the HTTP/1.1 head ─┐
//!                          │ ──Event::Data────▶ body bytes (chunks if no     │
//!                          │                    content-length)              ▼
//!                          │                                    one Connection per stream
//!                          │      Send(head + body) ◀── its actions ──────────┤
//!  H2Conn::send_headers ◀──┤      parsed back: :status and fields;            │
//!  H2Conn::send_data    ◀──┘      body bytes → DATA, within the windows       │
//!                                 OpenFile, SendFile, uploads, … ─▶ Stream(id, action)
//!  Stream(id, Input) ─────────────── the result, to that stream's Connection ◀┘
//!  send_body(id, bytes, last) ────── a file's bytes (the session reads them) → DATA
//!  output() / take_output() ──────── the bytes to write, in order
//! ```
//!
//! - A request's header list (already checked by the connection, RFC 9113 §8) becomes
//!   an HTTP/1.1 head (`request`): `Host` from `:authority`, the body framed by the
//!   client's `content-length` or as chunks. So every route, header rule, limit, refusal
//!   and access-log line of HTTP/1.1 holds per stream, decided by the same code.
//! - The stream's answer (`answer`) is parsed back into a HEADERS frame; the hop-by-hop
//!   fields go (`Connection`, `Keep-Alive`, `Transfer-Encoding`); a chunked body is
//!   de-chunked into DATA. `100 Continue` is a 1xx HEADERS.
//! - The core's actions that need the runtime come out tagged with their stream
//!   ([`H2Action::Stream`]); their results go back the same way
//!   ([`H2Input::Stream`]). A `SendFile` is the session's cue to read the file into
//!   [`H2Server::send_body`] as the windows allow ([`H2Server::body_room`]). Once a
//!   stream is over, [`H2Action::Done`] tells the session to drop what it holds for it.
//! - A stream's answer is "written" (its access-log line, [`Input::Written`]) when its
//!   last DATA frame is handed to the connection.
//! - Request bodies: flow-control credit is given back only for the bytes the stream's
//!   `Connection` consumed ([`Connection::buffered`]), so a streamed upload's
//!   back-pressure reaches the client (at most a stream window per stream in memory).
//! - Bounded memory: the connection's limits (streams, header blocks, output), and per
//!   stream at most one piece of body the windows did not take yet.
//!
//! `--max-requests` holds per connection as over HTTP/1.1: the stream that reaches it
//! is answered, and the connection drains (GOAWAY). Sans-IO like the rest: no clock,
//! I/O or thread; time comes with every input.

mod answer;
mod request;
mod send;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use log::{debug, error, warn};

use super::conn::{Event, H2Conn, H2Settings};
use super::frame::ErrorCode;
use crate::framing::ChunkedDecoder;
use crate::response::{write_error, DateCache};
use crate::{Action, Config, Connection, HttpVersion, Input, Now, RequestRecord, Wait};
use answer::Framing;

pub use super::frame::PREFACE;

/// What the session hands an HTTP/2 server, always with the time
/// ([`H2Server::handle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum H2Input<'a> {
    /// Bytes read from the client (decrypted, under TLS).
    Received(&'a [u8]),
    /// The client closed its sending side: streams that still need its bytes end, the
    /// others are answered, then the connection closes.
    Eof,
    /// A deadline of [`H2Server::deadline`] passed (an early call does nothing).
    Timeout,
    /// The server is shutting down: GOAWAY, the open streams finish.
    Drain,
    /// The output could not be written: the connection is over.
    WriteFailed,
    /// The result of an action of this stream ([`H2Action::Stream`]); `WriteFailed`:
    /// its body could not be read.
    Stream(u32, Input<'a>),
}

/// What the session must do for an HTTP/2 connection, besides writing its output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum H2Action {
    /// An action of the `Connection` of this stream, to execute as for HTTP/1.1 and to
    /// report with [`H2Input::Stream`]. `Action::SendFile` means: read the opened file
    /// (or its compressed variant) into [`H2Server::send_body`]. Never `Send`,
    /// `Continue` or `Close` (the server turns those into frames).
    Stream(u32, Action),
    /// The stream is over (answered, reset, or the connection closed): drop what is
    /// held for it (abort an upload begun, close its file).
    Done(u32),
}

impl H2Action {
    fn stream_id(&self) -> u32 {
        match *self {
            H2Action::Stream(id, _) | H2Action::Done(id) => id,
        }
    }
}

/// How much of a stream's answer has gone to the connection.
#[derive(Debug)]
enum Reply {
    /// The head, as far as the core sent it.
    Head(Vec<u8>),
    /// The head went; the body follows: `left` bytes (`None`: until the last chunk or
    /// the session's last piece), de-chunked when it comes from the core.
    Body {
        left: Option<u64>,
        dechunk: Option<ChunkedDecoder>,
    },
    /// The last DATA (or a head with END_STREAM) is handed to the connection, or waits
    /// in `pending`.
    Ended,
}

/// One stream being answered.
#[derive(Debug)]
struct Task {
    core: Connection,
    head_only: bool,
    /// The body goes to the core framed as chunks.
    chunked_in: bool,
    /// Bytes handed to the core (head, body and chunk framing)...
    fed: u64,
    /// ...and, per DATA frame not yet credited back: where its bytes end in `fed`, and
    /// how many flow-controlled bytes it had.
    owed: VecDeque<(u64, usize)>,
    reply: Reply,
    /// Body bytes the windows did not take yet, and whether END_STREAM follows them.
    pending: Vec<u8>,
    pending_last: bool,
    /// What is left of the request body by its `content-length` (`None`: unknown).
    body_left: Option<u64>,
    /// Answered while the client still sends its body (a refusal before the body is
    /// read, as `428`): since when the rest is read and dropped, so that the client
    /// sees the answer (a reset in the middle of its upload makes some clients, curl
    /// among them, report an error instead). At most [`DISCARD_MAX`] bytes, within the
    /// idle timeout; past either, or when more is announced, the stream is reset
    /// (NO_ERROR, RFC 9113 §8.1), where HTTP/1.1 would close the connection.
    discarding: Option<u64>,
    /// Body bytes of the answer handed to the connection (the record's, when the core
    /// cannot know them: a body the session compressed as it went).
    sent: u64,
}

/// The most of a request body read and dropped after its answer.
const DISCARD_MAX: u64 = 1 << 20;

impl Task {
    /// When the stream's wait for the client ends: its core's deadline (a body's), or
    /// the end of the discarding.
    fn deadline(&self, config: &Config) -> Option<u64> {
        if let Some(since) = self.discarding {
            return Some(since.saturating_add(config.idle_timeout_ms));
        }
        match self.core.wait() {
            Wait::Read { until, .. } => Some(until),
            _ => None,
        }
    }
}

/// One HTTP/2 server connection; see the module documentation.
pub struct H2Server {
    conn: H2Conn,
    config: Arc<Config>,
    peer: String,
    seed: [u8; 16],
    now: Now,
    tasks: BTreeMap<u32, Task>,
    actions: VecDeque<H2Action>,
    /// Streams begun (`--max-requests`).
    begun: u32,
    ignored: u64,
    date: DateCache,
    /// The records of the streams answered ([`H2Server::take_record`]).
    records: VecDeque<RequestRecord>,
}

/// The records a server keeps for a session that does not take them.
const RECORDS_KEPT: usize = 64;

/// Moves the records of a stream's core (with [`Config::records`]) into `into`, as
/// HTTP/2, with the body bytes counted here when the core could not know them.
fn collect(into: &mut VecDeque<RequestRecord>, task: &mut Task) {
    while let Some(mut record) = task.core.take_record() {
        record.version = HttpVersion::Http2;
        if record.body_bytes.is_none() {
            record.body_bytes = Some(task.sent);
        }
        if into.len() >= RECORDS_KEPT {
            into.pop_front();
        }
        into.push_back(record);
    }
}

impl std::fmt::Debug for H2Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Server")
            .field("peer", &self.peer)
            .field("streams", &self.tasks.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The connection's limits from the server's settings: the head limit of HTTP/1.1 for
/// header lists, its head deadline for header blocks and the preface, its idle timeout,
/// and the slow-reader rule's window for a window held at zero.
pub(crate) fn h2_settings(config: &Config) -> H2Settings {
    H2Settings {
        // Twice the head limit as HPACK counts it (32 bytes more per field): the head
        // rebuilt from the list then meets HTTP/1.1's own limits in the core, so a
        // long :path gets 414 and a big head 431, as over HTTP/1.1.
        max_header_list_size: 2 * crate::config::MAX_HEAD as u32,
        max_header_count: crate::config::MAX_HEADERS,
        head_timeout_ms: config.head_timeout_ms,
        idle_timeout_ms: config.idle_timeout_ms,
        zero_window_timeout_ms: config.idle_timeout_ms.max(1000),
        ..H2Settings::default()
    }
}

impl H2Server {
    /// A connection that was found to speak HTTP/2 (the preface in clear text, or ALPN
    /// `h2`). Our SETTINGS are in the output at once. `seed`: random bytes for upload
    /// names (each stream derives its own).
    pub fn new(config: Arc<Config>, now: Now, seed: [u8; 16], peer: impl Into<String>) -> Self {
        let peer = peer.into();
        debug!("{peer} HTTP/2 connection");
        H2Server {
            conn: H2Conn::new(h2_settings(&config), now.mono_ms),
            config,
            peer,
            seed,
            now,
            tasks: BTreeMap::new(),
            actions: VecDeque::new(),
            begun: 0,
            ignored: 0,
            date: DateCache::default(),
            records: VecDeque::new(),
        }
    }

    /// Hands the server one input at `now`; then drain [`H2Server::poll`] and the output.
    pub fn handle(&mut self, now: Now, input: H2Input<'_>) {
        self.now = now;
        let ms = now.mono_ms;
        match input {
            H2Input::Received(bytes) => self.conn.receive(bytes, ms),
            H2Input::Timeout => {
                self.conn.timeout(ms);
                let due: Vec<u32> = (self.tasks.iter())
                    .filter(|(_, t)| t.deadline(&self.config).is_some_and(|d| d <= ms))
                    .map(|(&id, _)| id)
                    .collect();
                for id in due {
                    match self.tasks.get(&id).and_then(|t| t.discarding) {
                        Some(_) => self.finish(id, ErrorCode::NO_ERROR),
                        None => self.hand_core(id, Input::Timeout),
                    }
                }
            }
            H2Input::Drain => self.conn.drain(),
            H2Input::Eof => {
                for id in self.tasks.keys().copied().collect::<Vec<_>>() {
                    match self.tasks.get(&id).and_then(|t| t.discarding) {
                        Some(_) => self.finish(id, ErrorCode::NO_ERROR),
                        None => self.hand_core(id, Input::Eof),
                    }
                }
                self.conn.drain();
            }
            H2Input::WriteFailed => {
                for id in self.tasks.keys().copied().collect::<Vec<_>>() {
                    self.drop_task(id);
                }
                self.conn.go_away(ErrorCode::INTERNAL_ERROR);
            }
            H2Input::Stream(id, input) => {
                if self.tasks.contains_key(&id) {
                    self.hand_core(id, input);
                } else {
                    self.ignored += 1;
                }
            }
        }
        self.pump();
    }

    /// The next action for the session, until `None`.
    pub fn poll(&mut self) -> Option<H2Action> {
        self.actions.pop_front()
    }

    /// The bytes waiting to be written to the client.
    pub fn output(&self) -> &[u8] {
        self.conn.output()
    }

    /// Moves all of the output into `into` (as written: the windows and the output
    /// budget open for more).
    pub fn take_output(&mut self, into: &mut Vec<u8>, now: Now) {
        self.now = now;
        self.conn.take_output(into, now.mono_ms);
        self.pump();
    }

    /// How much of a stream's body the session may hand to [`H2Server::send_body`] now:
    /// `None` while earlier bytes still wait for the windows (or the stream takes no
    /// body); else what the windows take at once (the session reads at least one frame
    /// even at 0, so that a window held at zero is seen: the slow-reader rule).
    pub fn body_room(&self, id: u32) -> Option<usize> {
        let task = self.tasks.get(&id)?;
        if !task.pending.is_empty() || !matches!(task.reply, Reply::Body { .. }) {
            return None;
        }
        Some(self.conn.writable(id))
    }

    /// Body bytes of a stream's answer from the session (a file it read, a compressed
    /// piece): sent as DATA as far as the windows allow, the rest kept until they open.
    /// `last`: the body ends with them (else it ends at its `Content-Length`).
    pub fn send_body(&mut self, now: Now, id: u32, bytes: &[u8], last: bool) {
        self.now = now;
        self.body_bytes(id, bytes, last, false);
        self.pump();
    }

    /// The next record of an answered stream, oldest first (only with
    /// [`Config::records`]): what [`crate::Connection::take_record`] gives for HTTP/1.1,
    /// with [`HttpVersion::Http2`]. The session takes them after each input.
    pub fn take_record(&mut self) -> Option<RequestRecord> {
        self.records.pop_front()
    }

    /// When [`H2Input::Timeout`] is due, if ever.
    pub fn deadline(&self) -> Option<u64> {
        let streams = self.tasks.values().filter_map(|t| t.deadline(&self.config));
        streams.chain(self.conn.deadline()).min()
    }

    /// Nothing more will be read or sent: write the output, then close.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// No stream is open (a shutdown loses nothing by closing it).
    pub fn is_idle(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Streams being answered.
    pub fn streams(&self) -> usize {
        self.tasks.len()
    }

    /// The peer, as given to [`H2Server::new`].
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Inputs for streams that were gone, plus those the streams' connections ignored.
    pub fn ignored(&self) -> u64 {
        self.ignored + self.tasks.values().map(|t| t.core.ignored()).sum::<u64>()
    }

    // ----- the connection's events -----

    fn pump(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Request {
                    stream_id,
                    headers,
                    end_stream,
                } => self.request(stream_id, &headers, end_stream),
                Event::Data {
                    stream_id,
                    bytes,
                    end_stream,
                } => self.data(stream_id, &bytes, end_stream),
                Event::HeadersTooLarge { stream_id } => self.too_large(stream_id),
                Event::Malformed { stream_id, reason } => {
                    warn!(
                        "{} refused (HTTP/2 stream {stream_id} reset): {reason}",
                        self.peer
                    );
                    self.drop_task(stream_id);
                }
                Event::Reset {
                    stream_id,
                    code,
                    remote,
                } => {
                    let by = if remote { "the client" } else { "us" };
                    debug!("{} stream {stream_id} reset by {by}: {code:?}", self.peer);
                    self.drop_task(stream_id);
                }
                Event::WindowOpen { stream_id } => self.flush(stream_id),
                Event::GoAway {
                    code,
                    reason,
                    remote,
                } => {
                    if remote || code == ErrorCode::NO_ERROR {
                        debug!("{} HTTP/2 GOAWAY ({code:?}): {reason}", self.peer);
                    } else {
                        warn!("{} refused (HTTP/2 GOAWAY {code:?}): {reason}", self.peer);
                    }
                    if self.conn.is_closed() {
                        for id in self.tasks.keys().copied().collect::<Vec<_>>() {
                            self.drop_task(id);
                        }
                    }
                }
            }
        }
    }

    fn request(&mut self, id: u32, headers: &crate::h2::hpack::HeaderList, end_stream: bool) {
        let rebuilt = request::rebuild(headers, end_stream);
        let length = (headers.iter())
            .find(|(n, _)| n == b"content-length")
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<u64>().ok());
        let mut seed = self.seed;
        for (s, b) in seed.iter_mut().zip(id.to_le_bytes()) {
            *s ^= b;
        }
        let core =
            Connection::for_stream(Arc::clone(&self.config), self.now, seed, self.peer.clone());
        self.tasks.insert(
            id,
            Task {
                core,
                head_only: rebuilt.head_only,
                chunked_in: rebuilt.chunked,
                fed: rebuilt.head.len() as u64,
                owed: VecDeque::new(),
                reply: Reply::Head(Vec::new()),
                pending: Vec::new(),
                pending_last: false,
                body_left: length,
                discarding: None,
                sent: 0,
            },
        );
        self.begun = self.begun.saturating_add(1);
        if self.begun >= self.config.max_requests {
            debug!("{} {} streams: draining", self.peer, self.begun);
            self.conn.drain();
        }
        self.hand_core(id, Input::Received(&rebuilt.head));
    }

    fn data(&mut self, id: u32, bytes: &[u8], end_stream: bool) {
        let Some(task) = self.tasks.get_mut(&id) else {
            // Not ours (never happens: the connection only reports streams we know).
            self.conn.release(id, bytes.len());
            return;
        };
        if let Some(left) = &mut task.body_left {
            *left = left.saturating_sub(bytes.len() as u64);
        }
        if task.discarding.is_some() {
            self.conn.release(id, bytes.len());
            task.fed += bytes.len() as u64;
            if end_stream {
                // Both halves are closed: the connection forgot the stream.
                self.tasks.remove(&id);
            } else if task.fed > DISCARD_MAX {
                self.finish(id, ErrorCode::NO_ERROR);
            }
            return;
        }
        let framed;
        let input: &[u8] = if task.chunked_in {
            let mut b = Vec::with_capacity(bytes.len() + 16);
            request::chunk(bytes, end_stream, &mut b);
            framed = b;
            &framed
        } else {
            bytes
        };
        task.fed += input.len() as u64;
        task.owed.push_back((task.fed, bytes.len()));
        self.hand_core(id, Input::Received(input));
    }

    /// A request head over the limits: 431, as the core answers one over HTTP/1.1.
    fn too_large(&mut self, id: u32) {
        warn!(
            "{} refused (431): request header fields too large (HTTP/2)",
            self.peer
        );
        let core = Connection::for_stream(
            Arc::clone(&self.config),
            self.now,
            self.seed,
            self.peer.clone(),
        );
        self.tasks.insert(
            id,
            Task {
                core,
                head_only: false,
                chunked_in: false,
                fed: 0,
                owed: VecDeque::new(),
                reply: Reply::Head(Vec::new()),
                pending: Vec::new(),
                pending_last: false,
                body_left: None,
                discarding: None,
                sent: 0,
            },
        );
        let mut page = Vec::with_capacity(512);
        let date = self.date.get(self.now.unix_secs).to_string();
        let reason = "request header fields too large";
        write_error(
            &mut page,
            &self.config.server_name,
            &date,
            431,
            reason,
            false,
            |_| {},
        );
        self.answer_bytes(id, &page);
        self.settle(id, false);
    }

    // ----- one stream's Connection -----

    /// Hands an input to a stream's core and carries out what it asks.
    fn hand_core(&mut self, id: u32, input: Input<'_>) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        task.core.handle(self.now, input);
        self.run(id);
    }

    /// Carries out the actions of a stream's core: answers become frames, the rest goes
    /// to the session.
    fn run(&mut self, id: u32) {
        let mut closed = false;
        loop {
            let Some(task) = self.tasks.get_mut(&id) else {
                return;
            };
            let Some(action) = task.core.poll() else {
                break;
            };
            match action {
                Action::Send(bytes) => {
                    self.answer_bytes(id, &bytes);
                    if let Some(task) = self.tasks.get_mut(&id) {
                        task.core.recycle(bytes);
                    }
                }
                Action::Continue => {
                    if self.conn.send_headers(id, 100, &[], false).is_err() {
                        return self.drop_task(id);
                    }
                    // Written as soon as it is framed: the body may come.
                    task.core.handle(self.now, Input::Written);
                }
                Action::Close => closed = true,
                other => self.actions.push_back(H2Action::Stream(id, other)),
            }
        }
        self.credit(id);
        self.settle(id, closed);
    }

    /// Flow-control credit for the body bytes the stream's core has consumed.
    fn credit(&mut self, id: u32) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        let consumed = task.fed.saturating_sub(task.core.buffered() as u64);
        let mut n = 0;
        while let Some(&(end, len)) = task.owed.front() {
            if end > consumed {
                break;
            }
            task.owed.pop_front();
            n += len;
        }
        if n > 0 {
            self.conn.release(id, n);
        }
    }
}
