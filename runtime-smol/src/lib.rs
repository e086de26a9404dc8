//! # runtime-smol — the same server on a smol executor with a capped worker count
//!
//! Exactly MAX_THREADS OS threads (the main thread and MAX_THREADS − 1 more) each run one
//! of smol's executors (`async_executor::LocalExecutor`) over a reactor of its own
//! (`reactor.rs`: edge-triggered epoll, deadlines as `epoll_wait`'s timeout). Each thread
//! accepts from the one listening socket and keeps the connections it accepted. Every
//! TCP connection is one task driving one sans-IO [`protocol::Connection`]; a connection
//! that waits for bytes is a parked task with a deadline, not a thread, so 10,000 idle
//! keep-alive connections cost memory only.
//!
//! ```text
//!  accept task (one per thread) ── over --max-connections? ──▶ 503, close
//!      │ spawn
//!      ▼
//!  connection task (conn.rs): wait readable | deadline timer | shutdown
//!      read ─▶ Connection::receive ─▶ poll() actions:
//!        Send        → appended to one buffer, written before the next read / at close
//!        OpenFile    → files.rs: host::files::Root::open_file on the blocking
//!                      pool (smol::unblock); small files are read there too
//!        SendFile    → small: copied from the bytes read at open; large: host::sendfile
//!                      (the platform's sendfile, or a buffered copy) on the non-blocking
//!                      socket (retried when the reactor says it has room)
//!        WriteUpload → Root::write_upload (atomic) on the blocking pool
//!        Close       → flush, shut down our side, drain briefly, close
//! ```
//!
//! Everything both runtimes share — the command line, the web root (opening files
//! beneath it, atomic uploads), sendfile, logging, clocks, signals — is the `host`
//! crate; this crate only schedules it differently.
//!
//! Platforms: the reactor is epoll on Linux, and the `polling` crate elsewhere (kqueue on
//! macOS and FreeBSD, IOCP on Windows) and on Linux with `PORTABLE_IO=1`; the code here
//! is the same on all but for one Unix-only call. The shutdown descriptor is waited on
//! as readable; with portable sockets ([`host::portable_sockets`]: Windows, and Linux
//! with `PORTABLE_IO=1`) the shutdown flag is checked every 100 ms instead. The listen backlog is raised to 4096 on Unix by
//! `host::cli::Args::listen` (both runtimes); Windows keeps std's. The file body goes by `host::sendfile` (see there).

mod conn;
mod files;
mod reactor;

use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use log::{error, info, warn};
use smol::channel::{Receiver, Sender};

use host::cli::{self, Args};
use host::clock::Clock;
use host::linger::MAX_REFUSING;
use host::shutdown::{Shutdown, DRAIN_LIMIT};

use crate::conn::Shared;
use crate::reactor::{Io, Timer};

/// Pause after a failed `accept` (e.g. EMFILE) before trying again.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Without a shutdown descriptor to wait on, how often the flag is checked.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

thread_local! {
    /// This thread's executor: it runs the tasks of the connections this thread accepted.
    static EXECUTOR: LocalExecutor<'static> = const { LocalExecutor::new() };
}

/// Starts a task on this thread's executor.
pub(crate) fn spawn(task: impl Future<Output = ()> + 'static) {
    EXECUTOR.with(|ex| ex.spawn(task).detach());
}

/// Runs the server until Ctrl-C / SIGTERM; the exit code is what `main` returns.
pub fn run(args: &Args) -> ExitCode {
    let root = args.open_root().unwrap_or_else(|e| cli::fail(&e));
    // Before anything is sized from it (the cache's descriptors, the connections).
    host::limits::raise_nofile();
    // A certificate that cannot be used is a start-up error, before the port is bound.
    let tls = args.tls().unwrap_or_else(|e| cli::fail(&e));
    // Likewise an upload store that cannot be used.
    let web = args.web_root(root).unwrap_or_else(|e| cli::fail(&e));
    let listener = args.listen().unwrap_or_else(|e| cli::fail(&e));
    // Only once the port is ours: a second copy started by mistake must not touch the
    // running server's uploads.
    web.clean_up();
    if let Err(e) = listener.set_nonblocking(true) {
        cli::fail(&format!(
            "cannot make the listening socket non-blocking: {e}"
        ));
    }
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => cli::fail(&format!("cannot read the bound address: {e}")),
    };
    let config = Arc::new(args.config(addr.port()));
    let threads = args.threads();
    // Every connection holds a descriptor: no more than fit beside the cache's.
    let fit = usize::try_from(host::limits::connections_that_fit()).unwrap_or(usize::MAX);
    let max_connections = args.max_connections().min(fit);
    if max_connections < args.max_connections() {
        warn!(
            "--max-connections {} does not fit the open-file limit of {}: at most {max_connections}",
            args.max_connections(),
            host::limits::nofile()
        );
    }
    let stop = match host::shutdown::Shutdown::install() {
        Ok(s) => s,
        Err(e) => cli::fail(&format!("cannot install the signal handlers: {e}")),
    };
    let (https, note) = cli::tls_note(tls.as_deref());
    let scheme = if https { "https" } else { "http" };
    info!(
        "runtime-smol listening on {scheme}://{addr}, root {}, {threads} executor threads, \
         at most {max_connections} connections",
        args.root.display()
    );
    #[cfg(feature = "tls")]
    if let Some(tls) = &tls {
        tls.reload_on_sighup();
    }

    let (closing_tx, closing_rx) = smol::channel::bounded::<()>(1);
    let shared = Arc::new(Shared {
        config,
        web,
        clock: Clock::new(),
        closing: closing_rx,
        active: AtomicUsize::new(0),
        refusing: AtomicUsize::new(0),
        max_connections,
        #[cfg(feature = "tls")]
        tls,
    });
    let listener = Arc::new(listener);
    // The open-file cache's change notification, read by every thread's reactor.
    #[cfg(target_os = "linux")]
    let _ = shared.web.watch_changes();
    for i in 1..threads {
        let (shared, listener) = (Arc::clone(&shared), Arc::clone(&listener));
        let spawned = thread::Builder::new()
            .name(format!("smol-{i}"))
            .spawn(move || executor_thread(shared, listener, std::future::pending()));
        if let Err(e) = spawned {
            cli::fail(&format!("cannot start executor thread {i}: {e}"));
        }
    }
    // Connections made from now on wait in the backlog until a thread accepts them.
    cli::announce(addr, https, &note);
    let main_shared = Arc::clone(&shared);
    executor_thread(shared, listener, async move {
        wait_for_signal(&stop).await;
        info!("shutting down: no new connections, in-flight requests get up to 5 s");
        stop_and_drain(&main_shared, closing_tx).await;
    });
    info!("stopped");
    ExitCode::SUCCESS
}

/// One executor thread: its reactor and executor, an accept task on the shared
/// listening socket, and a task that wakes its connections when the server starts
/// closing; runs until `until` completes.
fn executor_thread(
    shared: Arc<Shared>,
    listener: Arc<TcpListener>,
    until: impl Future<Output = ()>,
) {
    let ran = EXECUTOR.with(|ex| {
        reactor::block_on(ex.run(async {
            match Io::new(listener) {
                Ok(listener) => spawn(accept_loop(listener, Arc::clone(&shared))),
                Err(e) => error!("cannot watch the listening socket: {e}"),
            }
            #[cfg(target_os = "linux")]
            if let Some(fd) = shared.web.watch_changes() {
                let web = Arc::clone(&shared.web);
                let watched = fd
                    .try_clone_to_owned()
                    .is_ok_and(|fd| reactor::on_readable(fd, move || web.changed()));
                if !watched {
                    warn!(
                        "the open-file cache's change notification is not watched on this thread"
                    );
                }
            }
            let closing = shared.closing.clone();
            spawn(async move {
                let _ = closing.recv().await;
                // Idle connections (and the accept task) look again and see it.
                reactor::wake_readers();
            });
            until.await
        }))
    });
    if let Err(e) = ran {
        error!("executor thread stopped: {e}");
    }
}

/// Waits until Ctrl-C or SIGTERM: on Unix until the shutdown descriptor turns readable;
/// with portable sockets (or if the descriptor cannot be watched), by checking the flag
/// every [`SIGNAL_POLL`].
async fn wait_for_signal(stop: &Shutdown) {
    #[cfg(unix)]
    if !host::portable_sockets() {
        match stop.as_fd().try_clone_to_owned().and_then(Io::new) {
            Ok(fd) => {
                while !stop.requested() {
                    fd.drained();
                    fd.readable().await;
                }
                return;
            }
            Err(e) => warn!("cannot watch the shutdown descriptor ({e}); checking every 100 ms"),
        }
    }
    while !stop.requested() {
        Timer::after(SIGNAL_POLL).await;
    }
}

/// Tells every connection that the server is closing (idle ones close at once), then
/// waits until none is left or [`DRAIN_LIMIT`] has passed.
async fn stop_and_drain(shared: &Shared, closing: Sender<()>) {
    closing.close();
    let until = Instant::now() + DRAIN_LIMIT;
    while shared.active.load(Ordering::Acquire) > 0 && Instant::now() < until {
        Timer::after(Duration::from_millis(10)).await;
    }
    let left = shared.active.load(Ordering::Acquire);
    if left > 0 {
        warn!("{left} connections still open after 5 s; closing them");
    }
}

/// Connections accepted in a row before the accept task lets the others run. One per
/// turn was measured too few: with 512 clients that reconnect every 100 requests, the
/// accepts fell behind and p99 grew to 200 ms.
const ACCEPT_BATCH: u32 = 64;

/// Accepts connections until the server closes, spawning one task per connection on
/// this thread.
async fn accept_loop(listener: Io<Arc<TcpListener>>, shared: Arc<Shared>) {
    let mut accepted = 0u32;
    loop {
        if accepted >= ACCEPT_BATCH {
            // Let the connections (and the other threads' accept tasks) have a turn.
            accepted = 0;
            smol::future::yield_now().await;
        }
        listener.readable().await;
        if shared.closing.is_closed() {
            return;
        }
        let (stream, peer) = match accept(listener.get_ref()) {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                listener.drained();
                accepted = 0;
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
            Err(e) => {
                error!("accept failed: {e}; retrying in 100 ms");
                Timer::after(ACCEPT_PAUSE).await;
                continue;
            }
        };
        if shared.active.load(Ordering::Acquire) >= shared.max_connections {
            warn!(
                "{peer} refused (503): {} connections open",
                shared.max_connections
            );
            refuse(&shared, stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let stream = match Io::new(stream) {
            Ok(s) => s,
            Err(e) => {
                error!("{peer} could not register the socket: {e}");
                continue;
            }
        };
        shared.active.fetch_add(1, Ordering::AcqRel);
        let guard = Active(Arc::clone(&shared));
        spawn(async move {
            conn::serve(&guard.0, stream, peer).await;
            drop(guard);
        });
        accepted += 1;
    }
}

/// Accepts one connection, its socket non-blocking: on Linux in the same system call
/// (`accept4` with `SOCK_NONBLOCK`), elsewhere with one more.
fn accept(listener: &TcpListener) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    #[cfg(target_os = "linux")]
    {
        use rustix::net::SocketFlags;
        let (fd, peer) =
            rustix::net::acceptfrom_with(listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)?;
        let peer = peer
            .and_then(|p| std::net::SocketAddr::try_from(p).ok())
            .ok_or_else(|| std::io::Error::other("accepted a connection with no address"))?;
        Ok((TcpStream::from(fd), peer))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let (stream, peer) = listener.accept()?;
        stream.set_nonblocking(true)?;
        Ok((stream, peer))
    }
}

/// Counts one open connection until dropped.
struct Active(Arc<Shared>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers a connection over the limit with 503 and closes it. The answer is written at
/// once (a fresh socket's send buffer is empty); a short linger then reads what the
/// client sent so that closing does not reset the connection under the 503.
fn refuse(shared: &Arc<Shared>, stream: TcpStream) {
    let now = shared.clock.now();
    let answer = protocol::overload_response(now.unix_secs, &shared.config.server_name);
    if shared.refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
        shared.refusing.fetch_sub(1, Ordering::AcqRel);
        return; // dropped: closed at once
    }
    #[cfg(feature = "tls")]
    if let Some(tls) = &shared.tls {
        // A TLS client cannot read a plain 503: the handshake first, then the answer,
        // on the blocking pool (bounded by host::linger's limits).
        if let Ok(mut transport) = host::transport::Transport::tls(tls.config()) {
            let shared = Arc::clone(shared);
            spawn(async move {
                smol::unblock(move || {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(host::linger::LINGER));
                    let _ = stream.set_write_timeout(Some(host::linger::LINGER));
                    if transport.refuse_blocking(&stream, &answer) {
                        host::linger::linger(&stream);
                    }
                })
                .await;
                shared.refusing.fetch_sub(1, Ordering::AcqRel);
            });
        } else {
            shared.refusing.fetch_sub(1, Ordering::AcqRel);
        }
        return;
    }
    let _ = stream.set_nonblocking(true);
    let _ = std::io::Write::write(&mut &stream, &answer);
    let Ok(stream) = Io::new(stream) else {
        shared.refusing.fetch_sub(1, Ordering::AcqRel);
        return;
    };
    let shared = Arc::clone(shared);
    spawn(async move {
        conn::linger_close(&stream, &shared.closing).await;
        shared.refusing.fetch_sub(1, Ordering::AcqRel);
    });
}

/// The receiving end that closes when the server starts shutting down.
pub(crate) type Closing = Receiver<()>;
