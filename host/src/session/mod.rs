//! The session: one connection as the runtimes drive it. A second sans-IO layer over
//! [`protocol::Connection`]: it owns the transport state (plain, or TLS through rustls),
//! the output buffer, the body being sent, the open-file cache's hits, the pace of a
//! slow reader, the TLS handshake deadline and the linger after the last answer; it
//! executes every action of the core that needs no blocking and no socket, and hands
//! the runtime one [`Need`] at a time:
//!
//! ```text
//!   runtime                         Session::need() -> Need
//!   ───────                         ──────────────────────
//!   write(bytes)          ◀── Write(bytes)           ──▶ sent(result)
//!   sendfile(file range)  ◀── SendFile{file,off,len} ──▶ sent(result)
//!   cork / uncork         ◀── Cork(on)
//!   read, or wait until   ◀── Read { until }         ──▶ received(now, bytes) · wake(now)
//!   wait writable until   ◀── Writable { until }     ──▶ ready(now) · wake(now)
//!   run where blocking ok ◀── Blocking(job)          ──▶ finish(now, job.run())
//!   let others run        ◀── Yield
//!   shutdown(Write)       ◀── Shutdown
//!   close                 ◀── Close
//!   (shutting down)                                  ──▶ drain(now)
//! ```
//!
//! A wait always comes with its deadline (`until`, on [`protocol::Now::mono_ms`]'s
//! clock); when it passes, the runtime calls [`Session::wake`]. Needs that report
//! nothing (`Cork`, `Yield`, `Shutdown`) are taken as done when the runtime asks for the
//! next one. A runtime's driver is a `match` on the need: blocking in runtime-std (a
//! wait parks the connection in the poller its workers share), awaiting in
//! runtime-smol. A feature that needs new I/O adds a need or a [`Job`] here, never code
//! in a runtime.

mod archive;
mod body;
mod compress;
mod drain;
#[cfg(test)]
mod drain_tests;
mod h2;
mod jobs;
mod machine;
mod refuse;
#[cfg(feature = "tls")]
mod tls;

use std::fs::File;
use std::io;
use std::sync::Arc;

use log::warn;
use protocol::{Config, Connection, Input, Listing, Now};

use crate::cache::{Body, Opened};
use crate::clock::Clock;
use crate::linger::LINGER_BYTES;
use crate::net::Peer;
use crate::pace::WriteWatch;
use crate::webroot::WebRoot;

pub use jobs::{Done, Job};
#[cfg(feature = "tls")]
pub use tls::TlsError;

use body::Body_;
#[cfg(feature = "s3")]
use body::RemoteState;
use jobs::Result_;

/// What every session of one server shares.
pub struct Service {
    pub(crate) config: Arc<Config>,
    pub(crate) web: Arc<WebRoot>,
    /// The clock every `Now` of this server's sessions is read from.
    pub clock: Clock,
    /// HTTPS: the configuration each new connection's TLS state starts from.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Arc<crate::tls::Tls>>,
    pub(crate) schedule: Schedule,
    /// Credentials verified lately (`--auth`), shared by all sessions.
    pub(crate) credentials: Arc<crate::auth::CredentialCache>,
    /// `--metrics` and `--access-log`: what each answered request is handed to.
    pub(crate) ops: crate::ops::Ops,
}

impl Service {
    /// Turns the open-file cache's change notification on (Linux): the descriptor that
    /// turns readable when something below the root changed. A runtime that watches it
    /// calls [`Service::changed`] when it does, before it serves the requests that came
    /// after (and says so with the `fresh` of [`Session::received`]).
    #[cfg(target_os = "linux")]
    pub fn watch_changes(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.web.watch_changes()
    }

    /// The descriptor of [`Service::watch_changes`] turned readable.
    pub fn changed(&self) {
        self.web.changed();
    }
}

/// Why a connection is refused with `503` ([`Session::refusal`]); the `reason` of
/// `rfs_connections_refused_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `--max-connections` connections are open.
    Connections { limit: usize },
    /// runtime-std: every worker is busy and the queue is full.
    Queue,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Connections { limit } => write!(f, "{limit} connections open"),
            Refused::Queue => f.write_str("all workers busy and the queue is full"),
        }
    }
}

impl Refused {
    /// Counts a refusal (done by [`Session::refusal`]; a runtime calls it for a
    /// connection it closes unanswered, in a flood).
    pub fn count(self) {
        crate::ops::count(
            match self {
                Refused::Connections { .. } => crate::ops::Count::RefusedConnections,
                Refused::Queue => crate::ops::Count::RefusedQueue,
            },
            1,
        );
    }
}

/// How the runtime runs sessions, which changes two things the session does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Threads that may block, one session at a time each (runtime-std): the cache's
    /// change notifications are read before each open; a large body goes in one
    /// `SendFile` (the thread may wait on the disk).
    Threads,
    /// Many sessions per thread (runtime-smol): the reactor reads change notifications
    /// (the `fresh` of [`Session::received`]); a large body goes in steps, each read
    /// ahead on the blocking pool, with a [`Need::Yield`] between steps.
    EventLoop,
}

/// What the session needs from the runtime next: see the module documentation.
#[derive(Debug)]
pub enum Need<'a> {
    /// Write these bytes (may be partly); report with [`Session::sent`].
    Write(&'a [u8]),
    /// Send up to `len` bytes of `file` from `offset` (`host::sendfile::send_file`);
    /// report with [`Session::sent`].
    SendFile {
        file: &'a File,
        offset: u64,
        len: u64,
    },
    /// Cork (or uncork) the socket (`host::sendfile::set_cork`).
    Cork(bool),
    /// Read what the client sent, waiting for it until `until` at most: report bytes
    /// with [`Session::received`], the deadline with [`Session::wake`].
    Read { until: u64 },
    /// The socket takes no more: wait until it does, or until `until`; then
    /// [`Session::wake`].
    Writable { until: u64 },
    /// Run the job where blocking is allowed; hand back [`Job::run`]'s result with
    /// [`Session::finish`].
    Blocking(Job),
    /// A large body made a step: let other connections of this thread run.
    Yield,
    /// Shut down the sending side of the socket (the linger begins).
    Shutdown,
    /// Close the socket: the session is over.
    Close,
}

/// [`Need`] without borrows (see [`Session::need`]).
enum Step {
    Write,
    SendFile,
    Cork(bool),
    Read(u64),
    Writable(u64),
    Blocking(Job),
    Yield,
    Shutdown,
    Close,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Serving requests.
    Serving,
    /// Refusing the connection (the 503 of a full server): the answer is in `out`.
    Refusing,
    /// The core closed: write what is left, then shut down and linger, or close.
    Closing {
        linger: bool,
    },
    /// Reading and dropping what the client still sends, until `until` or its end.
    Lingering {
        until: u64,
        dropped: usize,
    },
    Closed,
}

/// One connection; see the module documentation.
pub struct Session {
    service: Arc<Service>,
    conn: Connection,
    #[cfg(feature = "tls")]
    tls: Option<Box<tls::Tls>>,
    /// A refusal's answer, until the TLS handshake says how to send it.
    #[cfg(feature = "tls")]
    held: Option<refuse::Held>,
    phase: Phase,
    now: Now,
    /// Bytes to write (TLS: records), and how many of them are written.
    out: Vec<u8>,
    at: usize,
    /// An answer (or `100 Continue`) handed out by the core is being written: it hears
    /// `Written` when all of it is out.
    answer: bool,
    /// The last answer was just reported written (a `Close` now follows an answer:
    /// linger).
    just_answered: bool,
    /// The file opened for the answer in progress.
    opened: Option<Arc<Opened>>,
    /// The opened file's compressed answer, prepared ([`protocol::Action::Compress`]).
    compressed: Option<compress::Prepared>,
    /// A zip archive begun or being sent (`GET /DIR/?zip`).
    zip: Option<archive::Zip>,
    /// A streamed upload begun and not yet committed.
    upload: Option<crate::webroot::Upload>,
    body: Option<Body_>,
    cork_pending: bool,
    corked: bool,
    watch: WriteWatch,
    /// A write would block: wait for writability until then.
    blocked: Option<u64>,
    /// A TLS handshake must be done by then.
    handshake_until: Option<u64>,
    /// The last bytes came after the reactor read the change notifications.
    fresh: bool,
    eof: bool,
    drained: bool,
    /// The drain began while the connection waited between requests: until then it
    /// waits for a request already on its way (see [`Session::drain`]).
    grace: Option<u64>,
    /// HTTP/1.1 or HTTP/2, or how it will be decided.
    proto: h2::Proto,
    /// To be counted among the open connections when first driven (a refusal is not,
    /// nor a connection refused before any need was asked for), and counted.
    to_count: bool,
    counted: bool,
    /// The peer's address (none on a Unix-domain socket) and whether it speaks TLS, for
    /// the access log.
    peer_ip: Option<std::net::IpAddr>,
    tls_on: bool,
    /// Body bytes sent of a stream compressed as it goes (the core cannot count them).
    streamed: u64,
}

impl Session {
    /// A session for a connection just accepted from `peer` (a TCP address, or a Unix
    /// socket's client: [`Peer`]). `None` (logged) when its TLS state cannot be made.
    pub fn new(service: &Arc<Service>, now: Now, peer: impl Into<Peer>) -> Option<Session> {
        let mut session = Session::make(service, now, peer.into())?;
        session.to_count = true;
        Some(session)
    }

    fn make(service: &Arc<Service>, now: Now, peer: Peer) -> Option<Session> {
        let conn = Connection::new(
            Arc::clone(&service.config),
            now,
            crate::clock::seed(),
            peer.to_string(),
        );
        #[allow(unused_mut)]
        let mut session = Session {
            service: Arc::clone(service),
            conn,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tls")]
            held: None,
            phase: Phase::Serving,
            now,
            out: Vec::new(),
            at: 0,
            answer: false,
            just_answered: false,
            opened: None,
            compressed: None,
            zip: None,
            upload: None,
            body: None,
            cork_pending: false,
            corked: false,
            watch: WriteWatch::new(service.config.idle_timeout_ms),
            blocked: None,
            handshake_until: None,
            fresh: false,
            eof: false,
            drained: false,
            grace: None,
            proto: match service.config.http2 {
                true => h2::Proto::Sniff(Vec::new()),
                false => h2::Proto::H1,
            },
            to_count: false,
            counted: false,
            peer_ip: match &peer {
                Peer::Ip(addr) => Some(addr.ip()),
                Peer::Local(_) => None,
            },
            tls_on: false,
            streamed: 0,
        };
        #[cfg(feature = "tls")]
        if let Some(config) = &service.tls {
            match tls::Tls::new(config.config()) {
                Ok(t) => session.tls = Some(Box::new(t)),
                Err(e) => {
                    log::error!("{peer} no TLS state: {e}");
                    crate::ops::count(crate::ops::Count::TlsHandshakeFailures, 1);
                    return None;
                }
            }
            session.tls_on = true;
            // A TLS handshake must be done within the head deadline.
            session.handshake_until =
                Some(now.mono_ms.saturating_add(service.config.head_timeout_ms));
            if service.config.http2 {
                session.proto = h2::Proto::Alpn;
            }
        }
        Some(session)
    }

    /// The peer, for the runtime's own log lines.
    pub fn peer(&self) -> &str {
        self.conn.peer()
    }

    /// What the session needs next (see [`Need`]).
    pub fn need(&mut self) -> Need<'_> {
        if self.to_count {
            self.to_count = false;
            self.counted = true;
            crate::ops::count(crate::ops::Count::ConnectionsOpened, 1);
        }
        match self.advance() {
            Step::Write => Need::Write(&self.out[self.at..]),
            Step::SendFile => match self.body.as_ref().map(|b| (&b.file.body, b)) {
                Some((Body::File(file), b)) => Need::SendFile {
                    file,
                    offset: b.pos,
                    len: b.step_end.max(b.pos) - b.pos,
                },
                _ => Need::Close,
            },
            Step::Cork(on) => Need::Cork(on),
            Step::Read(until) => Need::Read { until },
            Step::Writable(until) => Need::Writable { until },
            Step::Blocking(job) => Need::Blocking(job),
            Step::Yield => Need::Yield,
            Step::Shutdown => Need::Shutdown,
            Step::Close => Need::Close,
        }
    }

    /// The result of a [`Need::Write`] or [`Need::SendFile`].
    pub fn sent(&mut self, result: io::Result<usize>) {
        match result {
            Ok(0) if self.body_sending() => self.fail("the file ended before its size said"),
            Ok(0) => self.fail("the socket took nothing"),
            Ok(n) => {
                self.watch.sent(n);
                match self.body.as_mut() {
                    Some(b) if self.at >= self.out.len() => {
                        b.pos += n as u64;
                        if b.pos >= b.step_end && self.service.schedule == Schedule::EventLoop {
                            b.yield_due = true;
                        }
                    }
                    _ => self.at += n,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let now = self.service.clock.now();
                self.now = now;
                match self.watch.check(now.mono_ms) {
                    Ok(until) => self.blocked = Some(until),
                    Err(slow) => self.fail(&slow.to_string()),
                }
            }
            Err(e) => self.fail(&format!("write failed: {e}")),
        }
    }

    /// Bytes read from the socket (empty: the client closed its side). `fresh`: they came
    /// after the reactor read the cache's change notifications ([`Schedule::EventLoop`]).
    pub fn received(&mut self, now: Now, bytes: &[u8], fresh: bool) {
        self.now = now;
        self.just_answered = false;
        match &mut self.phase {
            Phase::Lingering { dropped, .. } => {
                *dropped += bytes.len();
                if bytes.is_empty() || *dropped >= LINGER_BYTES {
                    self.phase = Phase::Closed;
                }
                return;
            }
            Phase::Closing { .. } | Phase::Closed => return,
            Phase::Serving | Phase::Refusing => {}
        }
        if bytes.is_empty() {
            self.eof = true;
            #[cfg(feature = "tls")]
            if let Some(Err(e)) = self.tls.as_ref().map(|t| t.closed()) {
                return self.tls_failed(e);
            }
            return self.give(Input::Eof);
        }
        self.fresh = fresh;
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            let mut plain = Vec::new();
            let mut deliver = |bytes: &[u8]| plain.extend_from_slice(bytes);
            let result = tls.receive(bytes, &mut self.out, &mut deliver);
            if self.phase == Phase::Serving && !plain.is_empty() {
                self.plain_in(now, &plain);
            } else if self.phase == Phase::Refusing {
                self.refusing_in(&plain);
            }
            match result {
                Ok(true) => {
                    self.eof = true;
                    self.give(Input::Eof);
                }
                Ok(false) => {}
                Err(e) => self.tls_failed(e),
            }
            return;
        }
        if self.phase == Phase::Serving {
            self.plain_in(now, bytes);
        }
    }

    /// The socket turned ready for what the session waits for (writable, after a
    /// [`Need::Writable`]; for a [`Need::Read`], the runtime simply reads).
    pub fn ready(&mut self, now: Now) {
        if self.blocked.is_some() {
            self.wake(now);
        }
    }

    /// The deadline of a [`Need::Read`] or [`Need::Writable`] passed (or, writable, the
    /// socket takes more). An early call does no harm.
    pub fn wake(&mut self, now: Now) {
        self.now = now;
        self.just_answered = false;
        if self.blocked.is_some() {
            match self.watch.check(now.mono_ms) {
                Ok(_) => self.blocked = None,
                Err(slow) => self.fail(&slow.to_string()),
            }
            return;
        }
        match self.phase {
            Phase::Lingering { until, .. } if now.mono_ms >= until => self.phase = Phase::Closed,
            Phase::Serving | Phase::Refusing => {
                if self.handshaking() && self.handshake_until.is_some_and(|t| now.mono_ms >= t) {
                    warn!("{} refused: TLS handshake not done in time", self.peer());
                    crate::ops::count(crate::ops::Count::TlsHandshakeFailures, 1);
                    self.phase = Phase::Closed;
                } else if self.phase == Phase::Refusing {
                    self.refusal_timeout();
                } else {
                    self.give(Input::Timeout);
                }
            }
            _ => {}
        }
    }

    /// The result of a [`Need::Blocking`] job.
    pub fn finish(&mut self, now: Now, done: Done) {
        self.now = now;
        if matches!(self.proto, h2::Proto::H2(_)) {
            return self.h2_finish(now, done);
        }
        match done.0 {
            Result_::Opened(result) => self.file_opened(result),
            Result_::Listed(read) => {
                let result = match &read {
                    Ok((entries, unread)) => Ok(Listing {
                        entries,
                        unread: *unread,
                    }),
                    Err(e) => Err(*e),
                };
                self.conn.handle(now, Input::DirListed(result));
            }
            Result_::Uploaded(result) => self.conn.handle(now, Input::UploadWritten(result)),
            Result_::Prefetched | Result_::Aborted => {}
            Result_::Begun(result) => {
                let result = result.map(|upload| self.upload = Some(upload));
                self.conn.handle(now, Input::UploadBegun(result));
            }
            Result_::Written(upload, result) => {
                self.upload = Some(upload);
                self.conn.handle(now, Input::ChunkWritten(result));
            }
            Result_::Committed(result, back) => {
                self.upload = back;
                self.conn.handle(now, Input::UploadCommitted(result));
            }
            Result_::Deleted(result) => self.conn.handle(now, Input::Deleted(result)),
            Result_::Compressed(result) => self.compressed_whole(result),
            Result_::ArchiveChunk(archive, chunked, first, result) => {
                self.archive_chunk(archive, chunked, first, result)
            }
            Result_::Deflated(encoder, result) => self.deflated(encoder, result),
            Result_::Verified(c, ok) => {
                // Remembered only if the rules did not change meanwhile (a reload).
                let current = self.service.config.access.as_ref().map(|a| a.generation());
                if ok && current == Some(c.generation) {
                    let now = std::time::Instant::now();
                    self.service.credentials.insert(&c.user, &c.password, now);
                }
                self.conn.handle(now, Input::Verified(ok));
            }
            #[cfg(feature = "s3")]
            Result_::Fetched(result) => match (result, self.body.as_mut()) {
                (Ok(remote), Some(b)) => b.remote = Some(RemoteState::Ready(remote)),
                (Err(e), _) => self.fail(&format!("the store: {e}")),
                _ => {}
            },
            #[cfg(feature = "s3")]
            Result_::Chunk(remote, read) => match read {
                Ok(chunk) if chunk.is_empty() => {
                    self.fail("the object is shorter than the store said")
                }
                Ok(chunk) => {
                    if let Some(b) = self.body.as_mut() {
                        b.pos += chunk.len() as u64;
                        b.remote = Some(RemoteState::Ready(remote));
                    }
                    self.push_body_bytes(&chunk);
                }
                Err(e) => self.fail(&format!("the store: {e}")),
            },
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A record the runtime did not ask for the next need after is not lost.
        self.account();
        if self.counted {
            crate::ops::count(crate::ops::Count::ConnectionsClosed, 1);
        }
    }
}
