//! # runtime-smol — the same server on a smol executor with a capped worker count
//!
//! One [`smol::Executor`] is run by exactly MAX_THREADS OS threads (the main thread and
//! MAX_THREADS − 1 more). Every TCP connection is one task driving one sans-IO
//! [`protocol::Connection`]; a connection that waits for bytes is a parked task with a
//! timer, not a thread, so 10,000 idle keep-alive connections cost memory only.
//!
//! ```text
//!  accept task ── over --max-connections? ──▶ 503 (protocol::overload_response), close
//!      │ spawn
//!      ▼
//!  connection task (conn.rs): wait readable | deadline timer | shutdown
//!      read ─▶ Connection::receive ─▶ poll() actions:
//!        Send        → appended to one buffer, written before the next read / at close
//!        OpenFile    → files.rs: host::files::Root::open_file on the blocking
//!                      pool (smol::unblock); small files are read there too
//!        SendFile    → small: copied from the bytes read at open; large: host::sendfile
//!                      (the platform's sendfile, or a buffered copy) on the non-blocking
//!                      socket (Async::write_with, retried when full)
//!        WriteUpload → Root::write_upload (atomic) on the blocking pool
//!        Close       → flush, shut down our side, drain briefly, close
//! ```
//!
//! Everything both runtimes share — the command line, the web root (opening files
//! beneath it, atomic uploads), sendfile, logging, clocks, signals — is the `host`
//! crate; this crate only schedules it differently.
//!
//! Platforms: smol's reactor is epoll on Linux, kqueue on macOS and FreeBSD, IOCP on
//! Windows; the code here is the same on all but for two Unix-only calls. The shutdown
//! descriptor is waited on as readable; with portable sockets ([`host::portable_sockets`]:
//! Windows, and Linux with `PORTABLE_IO=1`) the shutdown flag is checked every 100 ms
//! instead. And on Unix the listen backlog is raised to 4096 by calling `listen(2)`
//! again; Windows keeps std's. The file body goes by `host::sendfile` (see there).

mod conn;
mod files;

use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use smol::channel::{Receiver, Sender};
use smol::{Async, Executor, Timer};

use host::cli::{self, Args};
use host::clock::Clock;
use host::linger::MAX_REFUSING;
use host::shutdown::{Shutdown, DRAIN_LIMIT};

use crate::conn::Shared;

/// Pause after a failed `accept` (e.g. EMFILE) before trying again.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// The listen backlog (std's default is smaller than a burst of connects).
#[cfg(unix)]
const BACKLOG: i32 = 4096;
/// Without a shutdown descriptor to wait on, how often the flag is checked.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

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
    // Re-listening on a listening socket only changes its backlog (Unix).
    #[cfg(unix)]
    if let Err(e) = rustix::net::listen(&listener, BACKLOG) {
        warn!("could not raise the listen backlog: {e}");
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
    let listener = match Async::new(listener) {
        Ok(l) => l,
        Err(e) => cli::fail(&format!("cannot register the listening socket: {e}")),
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
        #[cfg(feature = "tls")]
        tls,
    });
    let ex = Arc::new(Executor::new());
    for i in 1..threads {
        let ex = Arc::clone(&ex);
        let done = shared.closing.clone();
        let spawned = thread::Builder::new()
            .name(format!("smol-{i}"))
            .spawn(move || smol::block_on(ex.run(done.recv())));
        if let Err(e) = spawned {
            cli::fail(&format!("cannot start executor thread {i}: {e}"));
        }
    }
    let accept = ex.spawn(accept_loop(
        Arc::clone(&ex),
        listener,
        Arc::clone(&shared),
        max_connections,
    ));
    // Announced once every executor thread and the accept task exist.
    cli::announce(addr, https, &note);
    smol::block_on(ex.run(async {
        wait_for_signal(&stop).await;
        info!("shutting down: no new connections, in-flight requests get up to 5 s");
        let _ = accept.cancel().await;
        stop_and_drain(&shared, closing_tx).await;
    }));
    info!("stopped");
    ExitCode::SUCCESS
}

/// Waits until Ctrl-C or SIGTERM: on Unix until the shutdown descriptor turns readable;
/// with portable sockets (or if the descriptor cannot be watched), by checking the flag
/// every [`SIGNAL_POLL`].
async fn wait_for_signal(stop: &Shutdown) {
    #[cfg(unix)]
    if !host::portable_sockets() {
        match stop.as_fd().try_clone_to_owned().and_then(Async::new) {
            Ok(fd) => {
                while !stop.requested() {
                    if fd.readable().await.is_err() {
                        break;
                    }
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

/// Accepts connections forever, spawning one task per connection.
async fn accept_loop(
    ex: Arc<Executor<'static>>,
    listener: Async<TcpListener>,
    shared: Arc<Shared>,
    max_connections: usize,
) {
    let refusing = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, peer) = match listener.read_with(|l| l.accept()).await {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
            Err(e) => {
                error!("accept failed: {e}; retrying in 100 ms");
                Timer::after(ACCEPT_PAUSE).await;
                continue;
            }
        };
        if shared.active.load(Ordering::Acquire) >= max_connections {
            warn!("{peer} refused (503): {max_connections} connections open");
            refuse(&ex, &shared, &refusing, stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let stream = match Async::new(stream) {
            Ok(s) => s,
            Err(e) => {
                error!("{peer} could not register the socket: {e}");
                continue;
            }
        };
        shared.active.fetch_add(1, Ordering::AcqRel);
        let guard = Active(Arc::clone(&shared));
        ex.spawn(async move {
            conn::serve(&guard.0, stream, peer).await;
            drop(guard);
        })
        .detach();
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
fn refuse(
    ex: &Executor<'static>,
    shared: &Arc<Shared>,
    refusing: &Arc<AtomicUsize>,
    stream: TcpStream,
) {
    let now = shared.clock.now();
    let answer = protocol::overload_response(now.unix_secs, &shared.config.server_name);
    if refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::AcqRel);
        return; // dropped: closed at once
    }
    #[cfg(feature = "tls")]
    if let Some(tls) = &shared.tls {
        // A TLS client cannot read a plain 503: the handshake first, then the answer,
        // on the blocking pool (bounded by host::linger's limits).
        if let Ok(mut transport) = host::transport::Transport::tls(tls.config()) {
            let refusing = Arc::clone(refusing);
            ex.spawn(async move {
                smol::unblock(move || {
                    let _ = stream.set_read_timeout(Some(host::linger::LINGER));
                    let _ = stream.set_write_timeout(Some(host::linger::LINGER));
                    if transport.refuse_blocking(&stream, &answer) {
                        host::linger::linger(&stream);
                    }
                })
                .await;
                refusing.fetch_sub(1, Ordering::AcqRel);
            })
            .detach();
        } else {
            refusing.fetch_sub(1, Ordering::AcqRel);
        }
        return;
    }
    let _ = stream.set_nonblocking(true);
    let _ = std::io::Write::write(&mut &stream, &answer);
    let Ok(stream) = Async::new(stream) else {
        refusing.fetch_sub(1, Ordering::AcqRel);
        return;
    };
    let refusing = Arc::clone(refusing);
    let closing = shared.closing.clone();
    ex.spawn(async move {
        conn::linger_close(&stream, &closing).await;
        refusing.fetch_sub(1, Ordering::AcqRel);
    })
    .detach();
}

/// The receiving end that closes when the server starts shutting down.
pub(crate) type Closing = Receiver<()>;
