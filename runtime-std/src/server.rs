//! The runtime-std server: the accept loop, and a worker driving one
//! [`protocol::Connection`] over a blocking socket.
//!
//! A worker's loop: execute every action the core has queued (buffering `Send` bytes),
//! write the buffer, block in `read` with `SO_RCVTIMEO` set from the core's deadline, and
//! hand the core what happened (`receive`, `receive_eof` or `timeout`). Small files are
//! read into the same buffer as their head, so a small response is one `write`; large
//! ones go after the head by `host::sendfile` (the platform's `sendfile`, or a buffered
//! copy). The socket calls that differ per platform are in `net.rs`.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown as Both, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use host::cache::{Body, Opened};
use host::clock::{self, Clock};
use host::linger::Refusals;
use host::pace::{self, WriteWatch};
use host::sendfile::{send_file, set_cork};
use host::shutdown::{Shutdown, DRAIN_LIMIT};
use host::webroot::WebRoot;
use log::{debug, error, info, warn};
use protocol::{Action, Config, Connection, Input, Listing};

use crate::net;
use crate::park::{self, Job, Parking};
use crate::pool::Pool;

/// The read buffer of a worker.
const READ_BUF: usize = 64 * 1024;

/// What every worker shares.
pub struct Server {
    /// The web root and its open-file cache.
    pub web: Arc<WebRoot>,
    pub config: Arc<Config>,
    pub clock: Clock,
    pub shutdown: Shutdown,
    refusals: Refusals,
    slots: Vec<Slot>,
}

/// The connection a worker is serving, so that shutdown can wake it when it is idle.
#[derive(Default)]
struct Slot {
    stream: Mutex<Option<TcpStream>>,
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

/// How a worker's turn with a connection ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Closed (or failed): nothing more to do.
    Done,
    /// Idle while others wait: hand it to the parker.
    Park,
}

/// What one batch of actions (up to an answer written) holds.
struct Batch {
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
        Server {
            web,
            config,
            clock,
            shutdown,
            refusals: Refusals::default(),
            slots: (0..workers).map(|_| Slot::default()).collect(),
        }
    }

    /// Serves one connection until it closes, or until it is idle while other
    /// connections wait for a worker: then it is parked (see `park`).
    pub fn serve(&self, worker: usize, job: Job, parking: &Parking) {
        let Job { stream, peer, conn } = job;
        let mut conn = match conn {
            Some(conn) => conn,
            None => {
                let _ = stream.set_nodelay(true);
                // A blocked write returns now and then, so that the pace of a slow
                // reader is checked (host::pace): it cannot hold a worker.
                let _ = stream.set_write_timeout(Some(pace::POLL));
                Connection::new(
                    Arc::clone(&self.config),
                    self.clock.now(),
                    clock::seed(),
                    peer.to_string(),
                )
            }
        };
        let slot = self.slots.get(worker);
        let registered = slot.map(|slot| {
            slot.idle.store(true, Ordering::SeqCst);
            *slot.stream.lock().unwrap_or_else(PoisonError::into_inner) = stream.try_clone().ok();
            Registered(slot)
        });
        let ended = BUFFERS.with(|bufs| {
            let mut bufs = bufs.borrow_mut();
            let (input, out) = &mut *bufs;
            input.resize(READ_BUF, 0);
            out.clear();
            let ended = self.drive(&mut conn, &stream, slot, input, out, parking);
            if out.capacity() > 1 << 20 {
                *out = Vec::new();
            }
            ended
        });
        drop(registered);
        if ended == Ended::Park {
            parking.park(Job {
                stream,
                peer,
                conn: Some(conn),
            });
        }
    }

    fn drive(
        &self,
        conn: &mut Connection,
        stream: &TcpStream,
        slot: Option<&Slot>,
        input: &mut [u8],
        out: &mut Vec<u8>,
        parking: &Parking,
    ) -> Ended {
        let mut read_timeout: Option<Duration> = None;
        let mut drained = false;
        loop {
            if !drained && self.shutdown.requested() {
                // The answer in progress says `Connection: close`; an idle one closes.
                conn.handle(self.clock.now(), Input::Drain);
                drained = true;
            }
            // A file is only needed within the batch that opened it (its head and its
            // `SendFile` are queued together): the batch drops it, so it is not held
            // while the client thinks.
            let mut batch = Batch {
                file: None,
                wrote: Wrote::Nothing,
                watch: WriteWatch::new(Duration::from_millis(self.config.idle_timeout_ms)),
            };
            while let Some(action) = conn.poll() {
                match self.execute(action, conn, stream, out, &mut batch) {
                    Flow::Continue => {}
                    Flow::Stop => return Ended::Done,
                }
            }
            let (wrote, mut watch) = (batch.wrote, batch.watch);
            if wrote != Wrote::Nothing {
                // One answer is in flight at a time: write it, tell the core, go on.
                let result = flush(stream, out, &mut watch);
                let now = self.clock.now();
                if let Err(e) = result {
                    debug!("answer not written: {e}");
                    conn.handle(now, Input::WriteFailed);
                    return Ended::Done;
                }
                conn.handle(now, Input::Written);
                if let (Some(slot), Wrote::Answer) = (slot, wrote) {
                    slot.idle.store(true, Ordering::SeqCst);
                }
                continue;
            }
            if conn.is_closed() {
                return Ended::Done;
            }
            if let Some(slot) = slot {
                // Shutting down: an idle connection closes unless a request is waiting.
                if self.shutdown.requested() && slot.idle.load(Ordering::SeqCst) {
                    match net::read_now(stream, input) {
                        Ok(n) if n > 0 => {
                            slot.idle.store(false, Ordering::SeqCst);
                            conn.handle(self.clock.now(), Input::Received(&input[..n]));
                            continue;
                        }
                        _ => return Ended::Done,
                    }
                }
            }
            let now = self.clock.now();
            let Some(deadline) = conn.deadline() else {
                error!("the core waits for the client without a deadline; closing");
                return Ended::Done;
            };
            if now.mono_ms >= deadline {
                conn.handle(now, Input::Timeout);
                if conn.deadline() == Some(deadline) && conn.wants_read() {
                    error!("the core ignored its own deadline; closing the connection");
                    return Ended::Done;
                }
                continue;
            }
            if conn.is_idle() && conn.answered() > 0 && parking.pressure() {
                // A keep-alive connection between requests while others wait for a
                // worker: give this one up. (A new connection that has sent nothing is
                // not parked: a flood of those gets 503s, as the queue's bound says.)
                return Ended::Park;
            }
            let mut remaining = Duration::from_millis(deadline - now.mono_ms);
            if conn.is_idle() {
                // Look now and then whether connections are waiting for a worker.
                remaining = remaining.min(park::CHECK);
            }
            if let Some(cap) = net::read_wait_cap() {
                // Portable sockets: look at the shutdown flag at least this often.
                remaining = remaining.min(cap);
            }
            // Re-arm SO_RCVTIMEO only when it would wake us too late or much too early.
            let rearm = match read_timeout {
                None => true,
                Some(t) => t > remaining + remaining / 16 || t < remaining / 2,
            };
            if rearm {
                if stream.set_read_timeout(Some(remaining)).is_err() {
                    return Ended::Done;
                }
                read_timeout = Some(remaining);
            }
            match (&*stream).read(input) {
                Ok(0) => conn.handle(self.clock.now(), Input::Eof),
                Ok(n) => {
                    if let Some(slot) = slot {
                        slot.idle.store(false, Ordering::SeqCst);
                    }
                    conn.handle(self.clock.now(), Input::Received(&input[..n]));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    conn.handle(self.clock.now(), Input::Timeout)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
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
        stream: &TcpStream,
        out: &mut Vec<u8>,
        batch: &mut Batch,
    ) -> Flow {
        let Batch { file, wrote, watch } = batch;
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
                conn.handle(self.clock.now(), Input::FileOpened(result));
            }
            Action::SendFile { offset, len } => {
                let Some(f) = file.take() else {
                    error!("the core asked to send a file that is not open");
                    return Flow::Stop;
                };
                if let Err(e) = send_body(stream, &f, offset, len, out, watch) {
                    // The head promised `len` bytes: the connection cannot go on.
                    debug!("file body not sent: {e}");
                    conn.handle(self.clock.now(), Input::WriteFailed);
                    return Flow::Stop;
                }
            }
            Action::ListDir(dir) => {
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
                let result = self.web.write_upload(&name, &body);
                conn.handle(self.clock.now(), Input::UploadWritten(result));
            }
            Action::Close => {
                if flush(stream, out, watch).is_ok() {
                    linger(stream);
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

/// Writes out the buffer and empties it, dropping a client that reads too slowly.
fn flush(stream: &TcpStream, out: &mut Vec<u8>, watch: &mut WriteWatch) -> io::Result<()> {
    let mut pos = 0;
    let result = loop {
        if pos == out.len() {
            break Ok(());
        }
        match (&*stream).write(&out[pos..]) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                pos += n;
                watch.sent(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if pace::is_blocked(&e) => {
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
    stream: &TcpStream,
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
            // Cork while the head and the body go out, so the kernel sends full segments.
            set_cork(stream, true);
            let result = flush(stream, out, watch)
                .and_then(|()| send_file_all(stream, f, offset, len, watch));
            set_cork(stream, false);
            result
        }
        Body::None => Err(io::Error::other("SendFile for a directory")),
    }
}

fn send_file_all(
    stream: &TcpStream,
    file: &File,
    mut offset: u64,
    len: u64,
    watch: &mut WriteWatch,
) -> io::Result<()> {
    let end = offset.saturating_add(len);
    while offset < end {
        let left = end - offset;
        match send_file(stream, file, &mut offset, left) {
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
    Ok(())
}

/// After the last answer: linger (see `host::linger`) only when the client has sent
/// more than we read — the usual close after `Connection: close` has nothing pending,
/// and a worker should not wait then.
fn linger(stream: &TcpStream) {
    if net::has_unread(stream) {
        host::linger::linger(stream);
    }
}

/// The accept loop: runs until shutdown, then drains the pool. Never blocks on a worker.
pub fn run(
    listener: TcpListener,
    server: Arc<Server>,
    workers: usize,
    queue: usize,
) -> io::Result<()> {
    let handler_server = Arc::clone(&server);
    let (parking, parked_rx) = park::channel();
    let handler_parking = parking.clone();
    let pool = Pool::new(
        "worker",
        workers,
        queue,
        Arc::clone(&parking.waiting),
        move |i, job| handler_server.serve(i, job, &handler_parking),
    )?;
    let parker = park::spawn(
        &parking,
        parked_rx,
        pool.submitter(),
        server.clock,
        server.shutdown.clone(),
    )?;
    let shutdown = server.shutdown.clone();
    net::accept_until(&listener, &shutdown, |stream, peer| {
        let job = Job {
            stream,
            peer,
            conn: None,
        };
        if let Err(job) = pool.try_submit(job) {
            overload(&server, job.stream, job.peer, workers, queue);
        }
    })?;
    drop(listener);
    let deadline = Instant::now() + DRAIN_LIMIT;
    info!(
        "shutting down: no new connections; in-flight requests get up to {} s",
        DRAIN_LIMIT.as_secs()
    );
    server.wake_idle();
    let _ = parker.join();
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
    server.refusals.refuse(stream, &response);
}
