//! # runtime-smol — the same server on a smol executor with a capped worker count
//!
//! Exactly MAX_THREADS OS threads (the main thread and MAX_THREADS − 1 more) each run one
//! of smol's executors (`async_executor::LocalExecutor`) over a reactor of its own
//! (`reactor.rs`: edge-triggered epoll through `host::event`, deadlines as the wait's
//! timeout). Each thread accepts from the one listening socket and keeps the connections
//! it accepted. Every TCP connection is one task driving one `host::session::Session`
//! (`conn.rs`); a connection that waits for bytes is a parked task with a deadline, not a
//! thread, so 10,000 idle keep-alive connections cost memory only.
//!
//! ```text
//!  accept task (one per thread) ── over --max-connections? ──▶ refusal session (503)
//!      │ spawn
//!      ▼
//!  connection task (conn.rs): session.need() →
//!      Write / SendFile / Cork → the socket, now
//!      Read / Writable         → wait: readable | writable, deadline timer, shutdown
//!      Blocking(job)           → smol's blocking pool (a cache miss, a listing, an upload)
//!      Yield                   → let the thread's other tasks run
//!      Shutdown / Close        → the socket
//! ```
//!
//! Start-up and everything a connection does are the `host` crate's (`host::start`,
//! `host::session`); this crate only schedules them.
//!
//! Platforms: the reactor is epoll on Linux, and the `polling` crate elsewhere (kqueue on
//! macOS and FreeBSD, IOCP on Windows) and on Linux with `PORTABLE_IO=1`. The shutdown
//! descriptor is waited on as readable; with portable sockets
//! ([`host::portable_sockets`]: Windows, and Linux with `PORTABLE_IO=1`) the shutdown
//! flag is checked every 100 ms instead.

mod conn;
mod reactor;

use std::future::Future;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use log::{error, info, warn};
use smol::channel::{Receiver, Sender};

use host::cli::{self, Runtime};
use host::linger::MAX_REFUSING;
use host::net::Listener;
use host::session::{Refused, Schedule, Service, Session};
use host::shutdown::{Shutdown, DRAIN_LIMIT};

use crate::reactor::{Io, Timer};

/// What every connection task shares.
pub(crate) struct Shared {
    pub service: Arc<Service>,
    /// Closes when the server shuts down.
    pub closing: Closing,
    /// Open connections (for `--max-connections` and the drain at shutdown).
    pub active: AtomicUsize,
    /// Refused connections still being answered (at most `host::linger::MAX_REFUSING`).
    pub refusing: AtomicUsize,
    pub max_connections: usize,
    /// The shutdown request itself: a connection drains from the moment it is set (when
    /// `/readyz` says 503), not only once the main task has seen it and closed `closing`.
    pub stop: Shutdown,
}

impl Shared {
    /// Whether the server is shutting down.
    pub fn shutting_down(&self) -> bool {
        self.stop.requested() || self.closing.is_closed()
    }
}

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
pub fn run() -> ExitCode {
    let mut started = host::start::start(Runtime::Smol, Schedule::EventLoop);
    // Each executor thread accepts on every listener; the last of them to stop
    // accepting at the drain closes it.
    let listeners: Vec<(Arc<Listener>, Arc<Service>)> = std::mem::take(&mut started.listeners)
        .into_iter()
        .map(|(listener, service)| {
            if let Err(e) = listener.set_nonblocking(true) {
                cli::fail(&format!(
                    "cannot make the listening socket non-blocking: {e}"
                ));
            }
            (Arc::new(listener), service)
        })
        .collect();
    let closed: Vec<Weak<Listener>> = listeners.iter().map(|(l, _)| Arc::downgrade(l)).collect();
    let threads = started.args.threads();
    let (closing_tx, closing_rx) = smol::channel::bounded::<()>(1);
    let shared = Arc::new(Shared {
        service: Arc::clone(&started.service),
        closing: closing_rx,
        active: AtomicUsize::new(0),
        refusing: AtomicUsize::new(0),
        max_connections: started.max_connections,
        stop: started.shutdown.clone(),
    });
    for i in 1..threads {
        let (shared, listeners) = (Arc::clone(&shared), listeners.clone());
        let spawned = thread::Builder::new()
            .name(format!("smol-{i}"))
            .spawn(move || executor_thread(shared, listeners, std::future::pending()));
        if let Err(e) = spawned {
            cli::fail(&format!("cannot start executor thread {i}: {e}"));
        }
    }
    // Connections made from now on wait in the backlog until a thread accepts them.
    started.announce();
    let main_shared = Arc::clone(&shared);
    let stop = started.shutdown.clone();
    executor_thread(shared, listeners, async move {
        wait_for_signal(&stop).await;
        info!("shutting down: no new connections, in-flight requests get up to 5 s");
        stop_and_drain(&main_shared, closing_tx, &closed).await;
    });
    info!("stopped");
    ExitCode::SUCCESS
}

/// One executor thread: its reactor and executor, an accept task on each listening
/// socket, and a task that wakes its connections when the server starts closing; runs
/// until `until` completes.
fn executor_thread(
    shared: Arc<Shared>,
    listeners: Vec<(Arc<Listener>, Arc<Service>)>,
    until: impl Future<Output = ()>,
) {
    let ran = EXECUTOR.with(|ex| {
        reactor::block_on(ex.run(async {
            for (listener, service) in listeners {
                match Io::new(listener) {
                    Ok(listener) => spawn(accept_loop(listener, service, Arc::clone(&shared))),
                    Err(e) => error!("cannot watch the listening socket: {e}"),
                }
            }
            #[cfg(target_os = "linux")]
            if let Some(fd) = shared.service.watch_changes() {
                let service = Arc::clone(&shared.service);
                let watched = fd
                    .try_clone_to_owned()
                    .is_ok_and(|fd| reactor::on_readable(fd, move || service.changed()));
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

/// Tells every connection that the server is closing (idle ones close after the drain's
/// grace, `host::shutdown::DRAIN_GRACE`) and every accept task to stop (each accepts
/// what waits in the backlog, then lets go of its listener), then waits until no
/// connection is left and every listener is closed, or [`DRAIN_LIMIT`] has passed.
async fn stop_and_drain(shared: &Shared, closing: Sender<()>, listeners: &[Weak<Listener>]) {
    closing.close();
    let until = Instant::now() + DRAIN_LIMIT;
    let busy = || {
        shared.active.load(Ordering::Acquire) > 0 || listeners.iter().any(|l| l.strong_count() > 0)
    };
    while busy() && Instant::now() < until {
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

/// Accepts connections on `listener` until the server closes, spawning one task per
/// connection (served by `service`, the listener's) on this thread. Then it accepts what
/// waits in the backlog and returns, dropping its share of the listener: the last share
/// dropped closes it, so that new connections are refused at once rather than accepted
/// and reset.
async fn accept_loop(listener: Io<Arc<Listener>>, service: Arc<Service>, shared: Arc<Shared>) {
    let mut accepted = 0u32;
    loop {
        if accepted >= ACCEPT_BATCH {
            // Let the connections (and the other threads' accept tasks) have a turn.
            accepted = 0;
            smol::future::yield_now().await;
        }
        if !shared.closing.is_closed() {
            listener.readable().await;
        }
        let closing = shared.closing.is_closed();
        let (stream, peer) = match listener.get_ref().accept() {
            Ok(accepted) => accepted,
            Err(_) if closing => return,
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
        accepted += 1;
        // A place is taken atomically (several threads accept at once).
        let refused = !take(&shared.active, shared.max_connections);
        let why = Refused::Connections {
            limit: shared.max_connections,
        };
        if refused && !take(&shared.refusing, MAX_REFUSING) {
            why.count();
            continue; // flooded: closed at once, unanswered
        }
        let guard = Counted(Arc::clone(&shared), refused);
        let now = conn::now(&shared);
        let session = if refused {
            Session::refusal(&service, now, peer, why)
        } else {
            Session::new(&service, now, peer)
        };
        let (Some(session), Ok(stream)) = (session, Io::new(stream)) else {
            continue;
        };
        spawn(async move {
            conn::serve(&guard.0, stream, session).await;
            drop(guard);
        });
    }
}

/// Counts one more in `counter` if it holds fewer than `limit`.
fn take(counter: &AtomicUsize, limit: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < limit).then_some(n + 1)
        })
        .is_ok()
}

/// Counts one connection (open, or refused: `.1`) until dropped.
struct Counted(Arc<Shared>, bool);

impl Drop for Counted {
    fn drop(&mut self) {
        let counter = if self.1 {
            &self.0.refusing
        } else {
            &self.0.active
        };
        counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The receiving end that closes when the server starts shutting down.
pub(crate) type Closing = Receiver<()>;
