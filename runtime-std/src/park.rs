//! Parking idle keep-alive connections, so that they do not hold workers while others
//! wait. The seed's model stays — a worker owns a connection while it is active — but a
//! connection between requests, when connections are waiting in the queue, is handed
//! (with its `protocol::Connection`) to the parker thread and its worker takes the next
//! job (after [`AFTER_MS`] of silence). The parker waits for all parked sockets at once (`poll` on Unix; a short `peek`
//! round elsewhere); a socket that turns readable goes back into the queue with its
//! connection, one whose idle deadline passes is closed, and at shutdown all are closed.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use host::clock::Clock;
use host::shutdown::Shutdown;
use host::transport::Transport;
use log::debug;
use protocol::{Connection, Input};

use crate::pool::Submitter;

/// A connection for a worker: a new one (no `Connection` yet), or one coming back from
/// the parker.
pub struct Job {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// The connection's state and its transport (plain or TLS) when it comes back.
    pub conn: Option<(Connection, Transport)>,
}

/// The most connections parked at once; past it, an idle connection keeps its worker.
pub const MAX_PARKED: usize = 4096;
/// How often an idle worker looks whether connections are waiting for a worker.
pub const CHECK: Duration = Duration::from_millis(100);
/// How long a connection must have been idle before it yields its worker: a client in
/// the middle of a conversation (the next request a moment after the answer) keeps it,
/// as in the seed's model; one that stays silent frees it within a few hundred ms.
pub const AFTER_MS: u64 = 250;
/// The parker's longest sleep (new arrivals wait at most this long to be watched).
const TICK: Duration = Duration::from_millis(20);

/// What workers use to park a connection.
#[derive(Clone)]
pub struct Parking {
    /// Connections waiting in the pool's queue for a worker.
    pub waiting: Arc<AtomicUsize>,
    parked: Arc<AtomicUsize>,
    tx: Sender<Job>,
}

impl Parking {
    /// Whether an idle connection should give its worker up now.
    pub fn pressure(&self) -> bool {
        self.waiting.load(Ordering::Acquire) > 0 && self.parked.load(Ordering::Acquire) < MAX_PARKED
    }

    /// Hands an idle connection to the parker.
    pub fn park(&self, job: Job) {
        self.parked.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(job).is_err() {
            self.parked.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Starts the parker thread; returns what workers use, and the receiving end for
/// [`run`].
pub fn channel() -> (Parking, Receiver<Job>) {
    let (tx, rx) = mpsc::channel();
    let parking = Parking {
        waiting: Arc::new(AtomicUsize::new(0)),
        parked: Arc::new(AtomicUsize::new(0)),
        tx,
    };
    (parking, rx)
}

/// The parker: until shutdown, watches parked connections and requeues those that
/// turn readable.
pub fn spawn(
    parking: &Parking,
    rx: Receiver<Job>,
    pool: Submitter<Job>,
    clock: Clock,
    shutdown: Shutdown,
) -> std::io::Result<thread::JoinHandle<()>> {
    let parked = Arc::clone(&parking.parked);
    thread::Builder::new().name("parker".into()).spawn(move || {
        let mut jobs: Vec<Job> = Vec::new();
        loop {
            while let Ok(job) = rx.try_recv() {
                debug!("{} parked while others wait for a worker", job.peer);
                jobs.push(job);
            }
            if shutdown.requested() {
                for mut job in jobs.drain(..) {
                    if let Some((conn, _)) = job.conn.as_mut() {
                        conn.handle(clock.now(), Input::Drain);
                    }
                }
                return;
            }
            let ready = readable(&jobs, TICK);
            let now = clock.now();
            let mut keep = Vec::with_capacity(jobs.len());
            for (mut job, ready) in jobs.drain(..).zip(ready) {
                if ready {
                    match pool.try_submit(job) {
                        Ok(()) => {
                            parked.fetch_sub(1, Ordering::AcqRel);
                        }
                        // The queue is full: stay parked, try again next round.
                        Err(job) => keep.push(job),
                    }
                    continue;
                }
                let expired = job
                    .conn
                    .as_ref()
                    .and_then(|(conn, _)| conn.deadline())
                    .is_none_or(|d| now.mono_ms >= d);
                if expired {
                    // Idle timeout: the core closes silently; the socket closes here.
                    if let Some((conn, _)) = job.conn.as_mut() {
                        conn.handle(now, Input::Timeout);
                    }
                    parked.fetch_sub(1, Ordering::AcqRel);
                } else {
                    keep.push(job);
                }
            }
            jobs = keep;
        }
    })
}

/// Which parked sockets have something to read (or were closed), waiting up to `wait`.
#[cfg(unix)]
fn readable(jobs: &[Job], wait: Duration) -> Vec<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut fds: Vec<PollFd<'_>> = jobs
        .iter()
        .map(|j| PollFd::new(&j.stream, PollFlags::IN))
        .collect();
    let ts = Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(wait.subsec_nanos()),
    };
    if fds.is_empty() {
        thread::sleep(wait);
        return Vec::new();
    }
    match rustix::event::poll(&mut fds, Some(&ts)) {
        Ok(_) => fds.iter().map(|f| !f.revents().is_empty()).collect(),
        Err(_) => vec![false; jobs.len()],
    }
}

/// Which parked sockets have something to read (or were closed): a `peek` of each in
/// non-blocking mode, then a short sleep when none had.
#[cfg(not(unix))]
fn readable(jobs: &[Job], wait: Duration) -> Vec<bool> {
    let ready: Vec<bool> = jobs
        .iter()
        .map(|j| {
            let mut b = [0u8; 1];
            let _ = j.stream.set_nonblocking(true);
            let r = !matches!(j.stream.peek(&mut b), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock);
            let _ = j.stream.set_nonblocking(false);
            r
        })
        .collect();
    if !ready.iter().any(|&r| r) {
        thread::sleep(wait);
    }
    ready
}
