//! The runtime-std server: the accept loop, and a worker driving one
//! [`protocol::Connection`] over a blocking socket.
//!
//! A worker's loop: execute every action the core has queued (buffering `Send` bytes),
//! write the buffer, block in `read` with `SO_RCVTIMEO` set from the core's deadline, and
//! hand the core what happened (`receive`, `receive_eof` or `timeout`). Between requests
//! the connection is parked (`park.rs`) and the worker takes the next job. Small files are
//! read into the same buffer as their head, so a small response is one `write`; large
//! ones go after the head by `host::sendfile` (the platform's `sendfile`, or a buffered
//! copy). The socket calls that differ per platform are in `net.rs`.

use std::cell::RefCell;
use std::fs::File;
#[cfg(feature = "s3")]
use std::io::Read;
use std::io::{self, Write};
use std::net::{Shutdown as Both, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use host::cache::{Body, Opened};
use host::clock::{self, Clock};
use host::linger::Refusals;
use host::pace::{self, WriteWatch};
use host::sendfile::set_cork;
use host::shutdown::{Shutdown, DRAIN_LIMIT};
use host::transport::{self, Transport};
use host::webroot::WebRoot;
use log::{debug, error, info, warn};
use protocol::{Action, Config, Connection, Input, Listing, Now};

use crate::net;
use crate::park::{Job, Parking};
use crate::pool::{Busy, Pool, Source};

/// The read buffer of a worker.
const READ_BUF: usize = 64 * 1024;

/// What every worker shares.
pub struct Server {
    /// The web root and its open-file cache.
    pub web: Arc<WebRoot>,
    pub config: Arc<Config>,
    pub clock: Clock,
    pub shutdown: Shutdown,
    /// HTTPS: the configuration each new connection's TLS state starts from.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<host::tls::Tls>>,
    refusals: Refusals,
    slots: Vec<Slot>,
}

/// The connection a worker is serving, so that shutdown can wake it when it is idle.
#[derive(Default)]
struct Slot {
    stream: Mutex<Option<Arc<TcpStream>>>,
    /// Nothing received since the last response went out: closing loses no request.
    idle: AtomicBool,
}

/// Clears a worker's slot when its connection ends (even by a panic).
struct Registered<'a>(&'a Slot);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        *self.0.stream.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

thread_local! {
    /// Per-worker buffers, reused across connections: (read buffer, output buffer).
    static BUFFERS: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

enum Flow {
    Continue,
    Stop,
}

/// A connection's socket and what is between it and the core.
struct Io<'a> {
    stream: &'a Arc<TcpStream>,
    transport: &'a mut Transport,
    /// A new TLS connection's handshake must be done by then (the head deadline).
    handshake_until: Option<u64>,
    /// Says that this worker is about to block (so an idle one takes over the others).
    busy: &'a Busy<'a>,
    /// Where the connection waits between requests.
    parking: &'a Parking,
}

/// An answer longer than this may not fit the socket's send buffer: its write may wait
/// for the client.
const MAY_BLOCK: usize = 64 * 1024;
/// How often a worker holding an idle connection (new, or the parking full) looks
/// whether it can park it.
const CHECK: Duration = Duration::from_millis(100);

/// How a worker's turn with a connection ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Closed (or failed): nothing more to do.
    Done,
    /// Between requests: park it.
    Park,
}

/// What one batch of actions (up to an answer written) holds.
struct Batch {
    /// The time the batch's input came (read after each blocking read or write, not per
    /// action: a cached file opens in microseconds).
    now: Now,
    /// The file the batch opened.
    file: Option<Arc<Opened>>,
    wrote: Wrote,
    /// The pace of this answer's write.
    watch: WriteWatch,
}

/// What the actions of one batch wrote (into the buffer or by `send_file`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wrote {
    Nothing,
    /// Only a `100 Continue`: the request is still in progress.
    Interim,
    /// An answer.
    Answer,
}

impl Server {
    pub fn new(
        web: Arc<WebRoot>,
        config: Arc<Config>,
        clock: Clock,
        shutdown: Shutdown,
        workers: usize,
    ) -> Self {
        // The open-file cache's change notification: a worker reads it after a request
        // arrived (`WebRoot::open_blocking`), so that a hit needs no `fstatat`.
        #[cfg(target_os = "linux")]
        let _ = web.watch_changes();
        Server {
            web,
            config,
            clock,
            shutdown,
            #[cfg(feature = "tls")]
            tls: None,
            refusals: Refusals::default(),
            slots: (0..workers).map(|_| Slot::default()).collect(),
        }
    }

    /// Serves one connection until it closes, or until it is between requests: then it
    /// is parked (see `park`).
    pub fn serve(&self, worker: usize, job: Job, parking: &Parking, busy: &Busy<'_>) {
        let Job {
            stream,
            peer,
            conn,
            key,
            woke,
        } = job;
        let (mut state, handshake_until) = match conn {
            Some(state) => (state, None),
            None => {
                let _ = stream.set_nodelay(true);
                // A blocked write returns now and then, so that the pace of a slow
                // reader is checked (host::pace): it cannot hold a worker.
                let _ = stream.set_write_timeout(Some(pace::POLL));
                let now = self.clock.now();
                let Some(transport) = self.transport(peer) else {
                    return;
                };
                // A TLS handshake must be done within the head deadline.
                let until = transport
                    .is_tls()
                    .then(|| now.mono_ms.saturating_add(self.config.head_timeout_ms));
                let conn = Connection::new(
                    Arc::clone(&self.config),
                    now,
                    clock::seed(),
                    peer.to_string(),
                );
                // Boxed: a job moves between the queue, the parking and workers.
                (Box::new((conn, transport)), until)
            }
        };
        let slot = self.slots.get(worker);
        let ended = BUFFERS.with(|bufs| {
            let mut bufs = bufs.borrow_mut();
            let (input, out) = &mut *bufs;
            input.resize(READ_BUF, 0);
            out.clear();
            let (conn, transport) = &mut *state;
            let mut io = Io {
                stream: &stream,
                transport,
                handshake_until,
                busy,
                parking,
            };
            let ended = self.drive(conn, &mut io, slot, input, out, woke);
            if out.capacity() > 1 << 20 {
                *out = Vec::new();
            }
            ended
        });
        if ended == Ended::Park {
            let job = Job {
                stream,
                peer,
                conn: Some(state),
                key,
                woke: None,
            };
            parking.park(job);
        } else {
            parking.forget(&stream, key);
        }
    }

    /// The transport for a new connection: plain, or TLS when the server has a
    /// certificate.
    fn transport(&self, peer: SocketAddr) -> Option<Transport> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return match Transport::tls(tls.config()) {
                Ok(t) => Some(t),
                Err(e) => {
                    error!("{peer} no TLS state: {e}");
                    None
                }
            };
        }
        let _ = peer;
        Some(Transport::Plain)
    }

    fn drive(
        &self,
        conn: &mut Connection,
        io: &mut Io<'_>,
        slot: Option<&Slot>,
        input: &mut [u8],
        out: &mut Vec<u8>,
        woke: Option<Now>,
    ) -> Ended {
        // Back from the poller (with the time its wait returned): the socket has
        // something to read; read it before anything else. That read finds its bytes (or
        // the end) at once on plain TCP; not so under TLS, whose read may wait for the
        // rest of a record.
        let mut unread = woke.is_some();
        let mut ready = unread && !io.transport.is_tls();
        // The worker's slot holds the connection only while a read may block in it (so
        // that shutdown can end that read), not for a request that is already there.
        let mut registered: Option<Registered<'_>> = None;
        let mut read_timeout: Option<Duration> = None;
        let mut drained = false;
        // The clocks are read after each read or write that may have waited, not per
        // input; a connection back from the poller starts with the time of that wait.
        let mut now = woke.unwrap_or_else(|| self.clock.now());
        loop {
            if !drained && self.shutdown.requested() {
                // The answer in progress says `Connection: close`; an idle one closes.
                now = self.clock.now();
                conn.handle(now, Input::Drain);
                drained = true;
            }
            // A file is only needed within the batch that opened it (its head and its
            // `SendFile` are queued together): the batch drops it, so it is not held
            // while the client thinks.
            let mut batch = Batch {
                now,
                file: None,
                wrote: Wrote::Nothing,
                watch: WriteWatch::new(Duration::from_millis(self.config.idle_timeout_ms)),
            };
            while let Some(action) = conn.poll() {
                match self.execute(action, conn, io, out, &mut batch) {
                    Flow::Continue => {}
                    Flow::Stop => return Ended::Done,
                }
            }
            let (wrote, mut watch) = (batch.wrote, batch.watch);
            if wrote != Wrote::Nothing {
                // One answer is in flight at a time: write it, tell the core, go on.
                let result = flush(io, out, &mut watch);
                // An answer the socket took at once (the usual small one) keeps the time
                // of its request; one that waited or was long reads the clocks again.
                let (waited, bytes) = watch.waited();
                if waited || bytes > MAY_BLOCK as u64 {
                    now = self.clock.now();
                }
                if let Err(e) = result {
                    debug!("answer not written: {e}");
                    conn.handle(now, Input::WriteFailed);
                    return Ended::Done;
                }
                conn.handle(now, Input::Written);
                if let (Some(r), Wrote::Answer) = (&registered, wrote) {
                    r.0.idle.store(true, Ordering::SeqCst);
                }
                continue;
            }
            if conn.is_closed() {
                return Ended::Done;
            }
            if let Some(Registered(slot)) = &registered {
                // Shutting down: an idle connection closes unless a request is waiting.
                if self.shutdown.requested() && slot.idle.load(Ordering::SeqCst) {
                    if io.transport.is_tls() {
                        // No peeking through TLS: an idle one simply closes.
                        return Ended::Done;
                    }
                    match net::read_now(io.stream, input) {
                        Ok(n) if n > 0 => {
                            slot.idle.store(false, Ordering::SeqCst);
                            conn.handle(self.clock.now(), Input::Received(&input[..n]));
                            continue;
                        }
                        _ => return Ended::Done,
                    }
                }
            }
            let Some(mut deadline) = conn.deadline() else {
                error!("the core waits for the client without a deadline; closing");
                return Ended::Done;
            };
            if let Some(until) = io.handshake_until.filter(|_| io.transport.is_handshaking()) {
                if now.mono_ms >= until {
                    warn!("{} refused: TLS handshake not done in time", conn.peer());
                    return Ended::Done;
                }
                deadline = deadline.min(until);
            }
            if now.mono_ms >= deadline {
                conn.handle(now, Input::Timeout);
                if conn.deadline() == Some(deadline) && conn.wants_read() {
                    error!("the core ignored its own deadline; closing the connection");
                    return Ended::Done;
                }
                continue;
            }
            let between = conn.is_idle() && conn.answered() > 0 && !io.transport.has_buffered();
            if between && !unread && io.parking.has_room() {
                // A keep-alive connection between requests: it waits without a worker.
                // (A new connection that has sent nothing keeps its worker: a flood of
                // those gets 503s, as the queue's bound says.)
                return Ended::Park;
            }
            let mut remaining = Duration::from_millis(deadline - now.mono_ms);
            if between {
                // The parking was full: look now and then whether it has room.
                remaining = remaining.min(CHECK);
            }
            if let Some(cap) = net::read_wait_cap() {
                // Portable sockets: look at the shutdown flag at least this often.
                remaining = remaining.min(cap);
            }
            // A read back from the poller finds its bytes at once. Any other is tried first
            // without waiting (plain TCP on Unix: a new connection's request is usually
            // there already); only one that would wait fills the shutdown slot, sets
            // SO_RCVTIMEO and is a blocking section (an idle worker may take over).
            let mut read = None;
            if ready {
                read = Some(io.transport.read(io.stream, input));
            } else if !io.transport.is_tls() && !host::portable_sockets() {
                match net::read_now(io.stream, input) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    done => read = Some(done),
                }
            }
            let read = match read {
                Some(done) => done,
                None => {
                    if let (None, Some(slot)) = (&registered, slot) {
                        slot.idle.store(conn.is_idle(), Ordering::SeqCst);
                        *slot.stream.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some(Arc::clone(io.stream));
                        registered = Some(Registered(slot));
                        if self.shutdown.requested() {
                            // Shutdown may have looked at the slot before: look here.
                            continue;
                        }
                    }
                    // Re-arm SO_RCVTIMEO only when it would wake us too late or much too
                    // early.
                    let rearm = match read_timeout {
                        None => true,
                        Some(t) => t > remaining + remaining / 16 || t < remaining / 2,
                    };
                    if rearm {
                        if io.stream.set_read_timeout(Some(remaining)).is_err() {
                            return Ended::Done;
                        }
                        read_timeout = Some(remaining);
                    }
                    let busy = io.busy;
                    let _blocking = busy.blocking();
                    io.transport.read(io.stream, input)
                }
            };
            if !ready {
                now = self.clock.now();
            }
            (unread, ready) = (false, false);
            match read {
                Ok(0) => conn.handle(now, Input::Eof),
                Ok(n) => {
                    if let Some(r) = &registered {
                        r.0.idle.store(false, Ordering::SeqCst);
                    }
                    conn.handle(now, Input::Received(&input[..n]));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    conn.handle(now, Input::Timeout)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    // TLS refused (a garbage ClientHello, an unknown SNI, plain HTTP).
                    warn!("{} refused: {e}", conn.peer());
                    if e.to_string() == transport::PLAIN_HTTP {
                        let _ = (&**io.stream).write_all(&transport::plain_http_answer());
                    }
                    return Ended::Done;
                }
                Err(e) => {
                    debug!("read failed: {e}");
                    return Ended::Done;
                }
            }
        }
    }

    /// Executes one action of the core.
    fn execute(
        &self,
        action: Action,
        conn: &mut Connection,
        io: &mut Io<'_>,
        out: &mut Vec<u8>,
        batch: &mut Batch,
    ) -> Flow {
        let Batch {
            now,
            file,
            wrote,
            watch,
        } = batch;
        match action {
            Action::Send(bytes) => {
                *wrote = if bytes.starts_with(b"HTTP/1.1 100 ") {
                    Wrote::Interim
                } else {
                    Wrote::Answer
                };
                out.extend_from_slice(&bytes);
                conn.recycle(bytes);
            }
            Action::OpenFile(path) => {
                *file = None;
                let result = self.web.open_blocking(path).map(|opened| {
                    let meta = opened.meta;
                    if !meta.is_dir {
                        *file = Some(opened);
                    }
                    meta
                });
                conn.handle(*now, Input::FileOpened(result));
            }
            Action::SendFile { offset, len } => {
                let Some(f) = file.take() else {
                    error!("the core asked to send a file that is not open");
                    return Flow::Stop;
                };
                if let Err(e) = send_body(io, &f, offset, len, out, watch) {
                    // The head promised `len` bytes: the connection cannot go on.
                    debug!("file body not sent: {e}");
                    conn.handle(self.clock.now(), Input::WriteFailed);
                    return Flow::Stop;
                }
            }
            Action::ListDir(dir) => {
                let _blocking = io.busy.blocking();
                let read = self.web.list_dir(&dir);
                let result = match &read {
                    Ok((entries, unread)) => Ok(Listing {
                        entries,
                        unread: *unread,
                    }),
                    Err(e) => Err(*e),
                };
                conn.handle(self.clock.now(), Input::DirListed(result));
            }
            Action::WriteUpload { name, body } => {
                let _blocking = io.busy.blocking();
                let result = self.web.write_upload(&name, &body);
                conn.handle(self.clock.now(), Input::UploadWritten(result));
            }
            Action::Close => {
                if flush(io, out, watch).is_ok() {
                    io.transport.close(io.stream);
                    linger(io.stream, io.busy);
                }
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Shutdown: wake the workers whose connections are idle (their blocked `read`
    /// returns end-of-file, and the connection closes).
    fn wake_idle(&self) {
        for slot in &self.slots {
            let guard = slot.stream.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(s) = guard.as_ref() {
                if slot.idle.load(Ordering::SeqCst) {
                    let _ = s.shutdown(Both::Read);
                }
            }
        }
    }
}

/// Writes out the buffer (through the transport) and empties it, dropping a client that
/// reads too slowly.
fn flush(io: &mut Io<'_>, out: &mut Vec<u8>, watch: &mut WriteWatch) -> io::Result<()> {
    let busy = io.busy;
    // A long answer, or one the socket refused once, is a blocking section.
    let mut blocking = (out.len() > MAY_BLOCK).then(|| busy.blocking());
    let mut pos = 0;
    let result = loop {
        let step = if pos < out.len() {
            io.transport.write(io.stream, &out[pos..])
        } else {
            // Everything handed over; TLS may still hold records.
            match io.transport.flush(io.stream) {
                Ok(()) => break Ok(()),
                Err(e) => Err(e),
            }
        };
        match step {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                pos += n;
                watch.sent(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if pace::is_blocked(&e) => {
                blocking.get_or_insert_with(|| busy.blocking());
                if let Err(e) = watch.check() {
                    break Err(e);
                }
            }
            Err(e) => break Err(e),
        }
    };
    out.clear();
    result
}

/// A file body: small ones join the buffered head, large ones go by `send_file`.
fn send_body(
    io: &mut Io<'_>,
    file: &Opened,
    offset: u64,
    len: u64,
    out: &mut Vec<u8>,
    watch: &mut WriteWatch,
) -> io::Result<()> {
    match &file.body {
        // A small file was read whole when opened: it joins the buffered head.
        Body::Bytes(_) => {
            out.extend_from_slice(file.bytes(offset, len)?);
            Ok(())
        }
        Body::File(f) => {
            let busy = io.busy;
            let _blocking = busy.blocking();
            // Cork while the head and the body go out, so the kernel sends full segments.
            set_cork(io.stream, true);
            let result =
                flush(io, out, watch).and_then(|()| send_file_all(io, f, offset, len, watch));
            set_cork(io.stream, false);
            result
        }
        Body::None => Err(io::Error::other("SendFile for a directory")),
        #[cfg(feature = "s3")]
        Body::Remote(store, name) => {
            // Streamed from the object store: its reader, copied in chunks.
            let busy = io.busy;
            let _blocking = busy.blocking();
            flush(io, out, watch)?;
            let mut reader = store.get(name, offset, len)?;
            let mut left = len;
            let mut chunk = vec![0u8; 64 * 1024];
            while left > 0 {
                let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = reader.read(&mut chunk[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the object is shorter than the store said",
                    ));
                }
                out.extend_from_slice(&chunk[..n]);
                flush(io, out, watch)?;
                left -= n as u64;
            }
            Ok(())
        }
    }
}

fn send_file_all(
    io: &mut Io<'_>,
    file: &File,
    mut offset: u64,
    len: u64,
    watch: &mut WriteWatch,
) -> io::Result<()> {
    let end = offset.saturating_add(len);
    while offset < end {
        let left = end - offset;
        match io.transport.send_file(io.stream, file, &mut offset, left) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file is shorter than its size said",
                ))
            }
            Ok(n) => watch.sent(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if pace::is_blocked(&e) => watch.check()?,
            Err(e) => return Err(e),
        }
    }
    // Under TLS the last records may still be buffered.
    loop {
        match io.transport.flush(io.stream) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if pace::is_blocked(&e) => watch.check()?,
            Err(e) => return Err(e),
        }
    }
}

/// After the last answer: linger (see `host::linger`) only when the client has sent
/// more than we read — the usual close after `Connection: close` has nothing pending,
/// and a worker should not wait then.
fn linger(stream: &TcpStream, busy: &Busy<'_>) {
    if net::has_unread(stream) {
        let _blocking = busy.blocking();
        host::linger::linger(stream);
    }
}

/// The accept loop: runs until shutdown, then drains the pool. Never blocks on a worker.
pub fn run(
    listener: TcpListener,
    server: Arc<Server>,
    workers: usize,
    queue: usize,
    announce: impl FnOnce(),
) -> io::Result<()> {
    let handler_server = Arc::clone(&server);
    let parking = Arc::new(Parking::new(server.clock)?);
    let handler_parking = Arc::clone(&parking);
    let source: Arc<dyn Source<Job>> = parking.clone();
    let pool = Pool::new(
        "worker",
        workers,
        queue,
        Some(source),
        move |i, job, busy| handler_server.serve(i, job, &handler_parking, busy),
    )?;
    let shutdown = server.shutdown.clone();
    // The start line goes out once every worker waits for work.
    announce();
    net::accept_until(&listener, &shutdown, |stream, peer| {
        let job = Job {
            stream: Arc::new(stream),
            peer,
            conn: None,
            key: None,
            woke: None,
        };
        if let Err(job) = pool.try_submit(job) {
            // Nobody else holds the stream of a refused job.
            if let Ok(stream) = Arc::try_unwrap(job.stream) {
                overload(&server, stream, job.peer, workers, queue);
            }
        }
    })?;
    drop(listener);
    let deadline = Instant::now() + DRAIN_LIMIT;
    info!(
        "shutting down: no new connections; in-flight requests get up to {} s",
        DRAIN_LIMIT.as_secs()
    );
    parking.close_all();
    server.wake_idle();
    if pool.finish(deadline) {
        info!("shut down cleanly");
    } else {
        warn!(
            "connections still open after {} s; exiting anyway",
            DRAIN_LIMIT.as_secs()
        );
    }
    Ok(())
}

/// Every worker is busy and the queue is full: answer 503 from the accept thread,
/// without blocking it, and close (lingering elsewhere, so the client gets the 503).
fn overload(server: &Server, stream: TcpStream, peer: SocketAddr, workers: usize, queue: usize) {
    warn!("{peer} refused (503): all {workers} workers busy and the queue of {queue} is full");
    let response =
        protocol::overload_response(server.clock.now().unix_secs, &server.config.server_name);
    // Under TLS the 503 goes out after a handshake (on the refusal's own thread).
    let transport = server.transport(peer).filter(Transport::is_tls);
    server.refusals.refuse(stream, &response, transport);
}
