//! One connection task: drives one [`protocol::Connection`] over one non-blocking socket.
//!
//! The loop: execute every action the core has queued (an answer is appended to one
//! output buffer; a file open or an upload write waits on the blocking pool), write the
//! buffer and report it written (`Input::Written`, which lets the core go on to a
//! pipelined request), then wait for whichever comes first — bytes from the client, the
//! core's deadline, or the server shutting down — and feed it to the core.
//!
//! Memory per idle connection is the task itself: the read buffer is per thread, the
//! output buffer goes back to the core once written (which keeps it only if it is a few
//! KiB at most), and the deadline timer is one entry in the
//! reactor that is moved only when the deadline comes earlier (a later deadline just
//! lets the timer fire once early; the core then ignores `timeout`).
//!
//! System calls per keep-alive request: the `recv` that brings it, the `send` of the
//! answer (head and a small body in one), and a share of the thread's `epoll_wait`. A
//! read that comes back shorter than the buffer emptied the socket, so the task waits
//! for the reactor's next edge instead of reading again to see `WouldBlock`.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use log::{debug, warn};
use protocol::{Action, Config, Connection, Input, Listing};
use smol::future;

use host::clock::{self, Clock};
use host::linger::{LINGER, LINGER_BYTES};
use host::pace::WriteWatch;
use host::sendfile::set_cork;
use host::transport::{self, Transport};

use crate::files::{self, Body, Opened};
use crate::reactor::{self, Io, Timer};
use crate::Closing;
use host::webroot::WebRoot;

/// Bytes read per `read(2)`; one buffer per executor thread.
const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// What every connection task shares.
pub(crate) struct Shared {
    pub config: Arc<Config>,
    pub web: Arc<WebRoot>,
    pub clock: Clock,
    /// Closes when the server shuts down.
    pub closing: Closing,
    /// Open connections (for `--max-connections` and the drain at shutdown).
    pub active: AtomicUsize,
    /// Refused connections still being answered (at most `host::linger::MAX_REFUSING`).
    pub refusing: AtomicUsize,
    /// `--max-connections`, lowered to what fits the open-file limit.
    pub max_connections: usize,
    /// HTTPS: the configuration each new connection's TLS state starts from.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<host::tls::Tls>>,
}

/// Serves one connection until it closes.
pub(crate) async fn serve(shared: &Shared, stream: Io<TcpStream>, peer: SocketAddr) {
    let now = now(&shared.clock);
    let mut conn = Connection::new(
        Arc::clone(&shared.config),
        now,
        clock::seed(),
        peer.to_string(),
    );
    let Some(mut transport) = new_transport(shared, peer) else {
        return;
    };
    // A TLS handshake must be done within the head deadline.
    let handshake_until = transport
        .is_tls()
        .then(|| now.mono_ms.saturating_add(shared.config.head_timeout_ms));
    match drive(shared, &stream, &mut transport, &mut conn, handshake_until).await {
        Ok(()) => {
            transport.close(stream.get_ref());
            linger_close(&stream, &shared.closing).await
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            // TLS refused (a garbage ClientHello, an unknown SNI, plain HTTP).
            warn!("{peer} refused: {e}");
            if e.to_string() == transport::PLAIN_HTTP {
                let _ = stream.get_ref().write_all(&transport::plain_http_answer());
                linger_close(&stream, &shared.closing).await;
            }
        }
        Err(e) => debug!("{peer} connection ended: {e}"),
    }
}

/// Plain, or TLS when the server has a certificate.
fn new_transport(shared: &Shared, peer: SocketAddr) -> Option<Transport> {
    #[cfg(feature = "tls")]
    if let Some(tls) = &shared.tls {
        return match Transport::tls(tls.config()) {
            Ok(t) => Some(t),
            Err(e) => {
                log::error!("{peer} no TLS state: {e}");
                None
            }
        };
    }
    let _ = (shared, peer);
    Some(Transport::Plain)
}

/// The time for the core: the clocks as this thread's reactor last read them.
fn now(clock: &Clock) -> protocol::Now {
    let (mono, wall) = reactor::now();
    clock.at(mono, wall)
}

/// What ended a wait for the client.
enum Event {
    /// `n` bytes (0: end of stream) were read and handed to the core; `fresh`: by a
    /// plain read that followed the reactor's event (see `notified` below).
    Read(usize, bool),
    Deadline,
    Closing,
}

async fn drive(
    shared: &Shared,
    stream: &Io<TcpStream>,
    transport: &mut Transport,
    conn: &mut Connection,
    handshake_until: Option<u64>,
) -> io::Result<()> {
    let window = Duration::from_millis(shared.config.idle_timeout_ms);
    let mut out: Vec<u8> = Vec::new();
    let mut opened: Option<Arc<Opened>> = None;
    let mut timer = Timer::never();
    let mut armed: Option<u64> = None;
    // Whether the core was told that the server is shutting down.
    let mut drained = false;
    // Whether the last bytes read came in through a reactor event, so that the cache's
    // change notification was read before them: the cache may then answer without a
    // fstatat. Not for the first read of a connection, a read of a full buffer's
    // follow-up, or TLS (which reads until WouldBlock).
    let mut notified = false;
    let mut eof = false;
    loop {
        let mut wrote = false;
        // One answer's write, watched for the slowest pace we wait for (host::pace).
        let mut watch = WriteWatch::new(window);
        while let Some(action) = conn.poll() {
            match action {
                Action::Send(bytes) => {
                    wrote = true;
                    if out.is_empty() {
                        out = bytes;
                    } else {
                        out.extend_from_slice(&bytes);
                        conn.recycle(bytes);
                    }
                }
                Action::OpenFile(path) => {
                    let result = files::open(&shared.web, path, notified).await.map(|file| {
                        let meta = file.meta;
                        opened = Some(file);
                        meta
                    });
                    if result.is_err() {
                        opened = None;
                    }
                    conn.handle(now(&shared.clock), Input::FileOpened(result));
                }
                Action::SendFile { offset, len } => {
                    let Some(file) = opened.as_ref() else {
                        return Err(io::Error::other("SendFile without an open file"));
                    };
                    let sent =
                        send_body(stream, transport, &mut out, file, offset, len, &mut watch);
                    if let Err(e) = sent.await {
                        conn.handle(now(&shared.clock), Input::WriteFailed);
                        return Err(e);
                    }
                }
                Action::ListDir(dir) => {
                    // Reading a directory may block on the disk: the blocking pool.
                    let web = Arc::clone(&shared.web);
                    let read = smol::unblock(move || web.list_dir(&dir)).await;
                    let result = match &read {
                        Ok((entries, unread)) => Ok(Listing {
                            entries,
                            unread: *unread,
                        }),
                        Err(e) => Err(*e),
                    };
                    conn.handle(now(&shared.clock), Input::DirListed(result));
                }
                Action::WriteUpload { name, body } => {
                    let result = files::write_upload(&shared.web, name, body).await;
                    conn.handle(now(&shared.clock), Input::UploadWritten(result));
                }
                Action::Close => {
                    flush(stream, transport, &mut out, &mut watch).await?;
                    return Ok(());
                }
            }
        }
        opened = None;
        if wrote {
            // One answer is in flight at a time: write it, tell the core, go on.
            if let Err(e) = flush(stream, transport, &mut out, &mut watch).await {
                conn.handle(now(&shared.clock), Input::WriteFailed);
                return Err(e);
            }
            conn.handle(now(&shared.clock), Input::Written);
            // The core keeps a small buffer for the next answer; a large one is freed,
            // so a waiting connection holds at most a few KiB.
            conn.recycle(std::mem::take(&mut out));
            continue;
        }
        if conn.is_closed() {
            return Ok(());
        }
        let Some(mut deadline) = conn.deadline() else {
            // As in runtime-std: waiting for the client without a deadline would be a
            // core bug; closing is the only safe answer.
            log::error!("the core waits for the client without a deadline; closing");
            return Err(io::Error::other("the core waits for nothing"));
        };
        if let Some(until) = handshake_until.filter(|_| transport.is_handshaking()) {
            if now(&shared.clock).mono_ms >= until {
                warn!("{} refused: TLS handshake not done in time", conn.peer());
                return Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake"));
            }
            deadline = deadline.min(until);
        }
        if eof {
            // The core has had the end of the stream and still waits: nothing will come.
            return Ok(());
        }
        if !drained && shared.closing.is_closed() {
            // Shutting down: an idle connection closes now, a request in progress is
            // answered with `Connection: close`.
            conn.handle(now(&shared.clock), Input::Drain);
            drained = true;
            continue;
        }
        if armed.is_none_or(|a| deadline < a) {
            let now = now(&shared.clock).mono_ms;
            let from = reactor::now().0;
            timer.set_at(from + Duration::from_millis(deadline.saturating_sub(now)));
            armed = Some(deadline);
        }
        let read = async {
            loop {
                if transport.wants_write() {
                    // TLS records (the handshake) wait for room in the socket.
                    stream.writable().await;
                    match transport.flush(stream.get_ref()) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.full(),
                        Err(e) => return Err(e),
                        Ok(()) => {}
                    }
                    continue;
                }
                if !transport.has_buffered() {
                    stream.readable().await;
                }
                // The reactor wakes every waiting reader when the server starts closing.
                if !drained && shared.closing.is_closed() {
                    return Ok(Event::Closing);
                }
                let fresh = stream.take_fresh() && !transport.is_tls();
                match read_into(stream, transport, conn, &shared.clock) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.drained(),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => return other.map(|n| Event::Read(n, fresh)),
                }
            }
        };
        let deadline_hit = async {
            (&mut timer).await;
            Ok(Event::Deadline)
        };
        match future::or(read, deadline_hit).await? {
            Event::Read(n, fresh) => {
                eof = n == 0;
                notified = fresh;
            }
            Event::Deadline => {
                armed = None;
                conn.handle(now(&shared.clock), Input::Timeout);
            }
            Event::Closing => {
                conn.handle(now(&shared.clock), Input::Drain);
                drained = true;
            }
        }
    }
}

/// One `read(2)` into this thread's buffer, handed straight to the core; returns the
/// byte count (0: end of stream). A plain read shorter than the buffer emptied the
/// socket: the next one waits for the reactor. (TLS may leave bytes in the socket
/// after a short read of plaintext: it reads again until `WouldBlock`.)
fn read_into(
    stream: &Io<TcpStream>,
    transport: &mut Transport,
    conn: &mut Connection,
    clock: &Clock,
) -> io::Result<usize> {
    READ_BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        let n = transport.read(stream.get_ref(), &mut buf[..])?;
        if n < buf.len() && !transport.is_tls() {
            stream.drained();
        }
        let now = now(clock);
        if n == 0 {
            conn.handle(now, Input::Eof);
        } else {
            conn.handle(now, Input::Received(&buf[..n]));
        }
        Ok(n)
    })
}

/// Bytes of a large file sent per step: between steps the task yields to the other
/// connections of its executor thread, and the next step is read ahead from the disk on
/// the blocking pool, so one download neither hogs the thread nor blocks it on the disk.
const STEP: u64 = 1 << 20;
/// The step where the body is copied through the process (the buffered copy of
/// `PORTABLE_IO=1` and Windows, and TLS): that costs the executor thread several times
/// what `sendfile` does per byte, so the
/// other connections get their turn four times as often (measured beside a 512 MiB
/// download, `a_big_download_does_not_starve_small_gets`: p99 of small GETs 15–23 ms
/// with 1 MiB steps).
const COPY_STEP: u64 = 256 << 10;

/// Queues or streams `len` bytes of `file` from `offset`.
async fn send_body(
    stream: &Io<TcpStream>,
    transport: &mut Transport,
    out: &mut Vec<u8>,
    file: &Arc<Opened>,
    offset: u64,
    len: u64,
    watch: &mut WriteWatch,
) -> io::Result<()> {
    match &file.body {
        Body::Bytes(_) => {
            out.extend_from_slice(file.bytes(offset, len)?);
            Ok(())
        }
        Body::File(_) => {
            // Head and body leave in full segments (see `set_cork`).
            set_cork(stream.get_ref(), true);
            let result = send_file_all(stream, transport, out, file, offset, len, watch).await;
            set_cork(stream.get_ref(), false);
            result
        }
        Body::None => Err(io::Error::other("SendFile for a directory")),
        #[cfg(feature = "s3")]
        Body::Remote(store, name) => {
            flush(stream, transport, out, watch).await?;
            send_remote(stream, transport, out, store, name, offset, len, watch).await
        }
    }
}

/// Streams an object from the store: a blocking-pool thread reads it in chunks into a
/// small channel, and the task writes them, so neither the executor thread blocks nor
/// the whole object is held.
#[cfg(feature = "s3")]
#[allow(clippy::too_many_arguments)]
async fn send_remote(
    stream: &Io<TcpStream>,
    transport: &mut Transport,
    out: &mut Vec<u8>,
    store: &Arc<host::store::S3Store>,
    name: &str,
    offset: u64,
    len: u64,
    watch: &mut WriteWatch,
) -> io::Result<()> {
    let (tx, rx) = smol::channel::bounded::<io::Result<Vec<u8>>>(4);
    let (store, name) = (Arc::clone(store), name.to_string());
    smol::unblock(move || {
        let mut reader = match store.get(&name, offset, len) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send_blocking(Err(e));
                return;
            }
        };
        let mut left = len;
        while left > 0 {
            let mut chunk = vec![0u8; 64 * 1024];
            let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            match reader.read(&mut chunk[..want]) {
                Ok(0) => {
                    let _ = tx.send_blocking(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the object is shorter than the store said",
                    )));
                    return;
                }
                Ok(n) => {
                    chunk.truncate(n);
                    left -= n as u64;
                    if tx.send_blocking(Ok(chunk)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send_blocking(Err(e));
                    return;
                }
            }
        }
    })
    .detach();
    let mut sent = 0u64;
    while sent < len {
        let chunk = rx
            .recv()
            .await
            .map_err(|_| io::Error::other("the store reader stopped"))??;
        sent += chunk.len() as u64;
        *out = chunk;
        flush(stream, transport, out, watch).await?;
    }
    Ok(())
}

async fn send_file_all(
    stream: &Io<TcpStream>,
    transport: &mut Transport,
    out: &mut Vec<u8>,
    opened: &Arc<Opened>,
    offset: u64,
    len: u64,
    watch: &mut WriteWatch,
) -> io::Result<()> {
    let Body::File(f) = &opened.body else {
        return Err(io::Error::other("not a large file"));
    };
    flush(stream, transport, out, watch).await?;
    let end = offset.saturating_add(len);
    let mut pos = offset;
    let step = if transport.zero_copy() {
        STEP
    } else {
        COPY_STEP
    };
    while pos < end {
        let step_end = pos.saturating_add(step).min(end);
        let (file, from, n) = (Arc::clone(opened), pos, step_end - pos);
        smol::unblock(move || {
            if let Body::File(f) = &file.body {
                host::sendfile::prefetch(f, from, n);
            }
        })
        .await;
        while pos < step_end {
            let left = step_end - pos;
            match transport.send_file(stream.get_ref(), f, &mut pos, left) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file became shorter while it was sent",
                    ))
                }
                Ok(n) => watch.sent(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    stream.full();
                    wait_writable(stream, watch).await?
                }
                Err(e) => return Err(e),
            }
        }
        future::yield_now().await;
    }
    // Under TLS the last records may still be buffered.
    flush(stream, transport, out, watch).await
}

/// Writes all of `out` (through the transport) and empties it. Tries at once; waits for
/// the socket only when its buffer is full, and drops a client that reads too slowly
/// (host::pace).
async fn flush(
    stream: &Io<TcpStream>,
    transport: &mut Transport,
    out: &mut Vec<u8>,
    watch: &mut WriteWatch,
) -> io::Result<()> {
    let mut pos = 0;
    loop {
        let step = if pos < out.len() {
            transport.write(stream.get_ref(), &out[pos..])
        } else {
            // Everything handed over; TLS may still hold records.
            match transport.flush(stream.get_ref()) {
                Ok(()) => break,
                Err(e) => Err(e),
            }
        };
        match step {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                pos += n;
                watch.sent(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                stream.full();
                wait_writable(stream, watch).await?
            }
            Err(e) => return Err(e),
        }
    }
    out.clear();
    Ok(())
}

/// Waits until the socket takes more, checking the client's pace now and then.
async fn wait_writable(stream: &Io<TcpStream>, watch: &mut WriteWatch) -> io::Result<()> {
    let wait = watch.wait();
    future::or(stream.writable(), Timer::after(wait)).await;
    watch.check()
}

/// Closes our sending side, then reads and drops what the client still sends (at most
/// [`LINGER`] and [`LINGER_BYTES`], or until shutdown), so that closing with unread
/// bytes does not reset the connection before the client has read our last answer.
pub(crate) async fn linger_close(stream: &Io<TcpStream>, closing: &Closing) {
    if stream.get_ref().shutdown(Shutdown::Write).is_err() {
        return;
    }
    let drain = async {
        let mut dropped = 0;
        while dropped < LINGER_BYTES {
            stream.readable().await;
            if closing.is_closed() {
                break;
            }
            // Into this thread's read buffer: a task keeps no buffer of its own.
            let read = READ_BUF.with(|b| (&mut stream.get_ref()).read(&mut b.borrow_mut()[..]));
            match read {
                Ok(0) => break,
                Ok(n) => dropped += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.drained(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    };
    future::or(drain, Timer::after(LINGER)).await;
}
