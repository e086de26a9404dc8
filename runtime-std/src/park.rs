//! Waiting for a keep-alive connection's next request without holding a worker.
//!
//! A worker owns a connection while a request is in progress (it blocks in `read` and
//! `write`, as in the seed's model). Between requests — the answer written, nothing of
//! the next one received — the connection is *parked*: its socket is armed, once, in a
//! poller the workers share (Linux: epoll; elsewhere, and with `PORTABLE_IO=1`, the
//! `polling` crate: kqueue, IOCP, poll), its `protocol::Connection` kept in a table, and
//! the worker takes the next job. The pool's idle workers take turns waiting on the
//! poller (one at a time: see `pool.rs`); the one waiting takes every parked connection
//! that turned readable (or was closed) and hands them to the pool's queue.
//!
//! So a worker costs nothing while its client thinks, and a busy server answers a batch
//! of ready connections on one thread, one after another, instead of waking a blocked
//! thread per request (measured: 1.05 context switches per request before).
//!
//! A socket is registered once per connection, in oneshot mode (one event, then disarmed
//! until parked again), so two workers never hold one connection. The worker that waits
//! also closes parked connections whose deadline (the idle timeout) has passed, checked
//! every [`SWEEP`]; at shutdown every parked connection is closed.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use host::clock::Clock;
use host::transport::Transport;
use log::{debug, error};
use protocol::{Connection, Input};

use crate::pool::Source;

/// A connection for a worker: a new one (no `Connection` yet), or one coming back from
/// the poller.
pub struct Job {
    /// Shared with the worker's slot (shutdown wakes an idle worker through it) without
    /// duplicating the descriptor per request.
    pub stream: Arc<TcpStream>,
    pub peer: SocketAddr,
    /// The connection's state and its transport (plain or TLS) when it comes back.
    pub conn: Option<Box<(Connection, Transport)>>,
    /// The key the socket is registered under in the poller, once it has been parked.
    pub key: Option<usize>,
    /// Back from the poller: the time its wait returned (both clocks are read once per
    /// wait, not per request; the lag is the batch served before it).
    pub woke: Option<protocol::Now>,
}

/// The most connections parked at once; past it, an idle connection keeps its worker.
pub const MAX_PARKED: usize = 16_384;
/// How often the waiting worker closes parked connections whose deadline has passed.
const SWEEP: Duration = Duration::from_millis(100);
/// Events taken from the poller per wait.
const EVENTS: usize = 128;
/// The poller's key for its own wake-up.
const NOTIFY_KEY: usize = usize::MAX;

/// The parked connections and the poller that watches them (one per server).
pub struct Parking {
    poller: Poller,
    table: Mutex<Table>,
    clock: Clock,
}

struct Table {
    jobs: HashMap<usize, Job>,
    next_key: usize,
    /// Shut down: nothing more is parked.
    closed: bool,
    /// When the next sweep for expired connections is due (monotonic ms).
    next_sweep: u64,
}

impl Parking {
    pub fn new(clock: Clock) -> io::Result<Self> {
        Ok(Parking {
            poller: Poller::new()?,
            table: Mutex::new(Table {
                jobs: HashMap::new(),
                next_key: 0,
                closed: false,
                next_sweep: 0,
            }),
            clock,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether another connection may be parked.
    pub fn has_room(&self) -> bool {
        self.lock().jobs.len() < MAX_PARKED
    }

    /// Parks an idle connection; closes it when it cannot be (shutting down, or the
    /// poller refused the socket).
    pub fn park(&self, mut job: Job) {
        let mut table = self.lock();
        if table.closed {
            drop(table);
            self.forget(&job.stream, job.key);
            return;
        }
        let (key, first) = match job.key {
            Some(key) => (key, false),
            None => {
                let key = table.next_key;
                table.next_key = table.next_key.wrapping_add(1) % NOTIFY_KEY;
                (key, true)
            }
        };
        // Armed under the table's lock: the event is looked up under it, so the job is
        // in the table before anyone can take it.
        if let Err(e) = self.poller.arm(&job.stream, key, first) {
            drop(table);
            error!("{} cannot be watched between requests: {e}", job.peer);
            self.forget(&job.stream, job.key);
            return;
        }
        if first {
            debug!("{} parked between requests (it holds no worker)", job.peer);
        }
        job.key = Some(key);
        table.jobs.insert(key, job);
    }

    /// A connection is closing (not in the table): if it was ever parked (`key`), its
    /// registration in the poller goes first.
    pub fn forget(&self, stream: &TcpStream, key: Option<usize>) {
        if key.is_some() {
            self.poller.forget(stream);
        }
    }

    /// Shutdown: closes every parked connection, parks nothing more, and wakes the
    /// waiting worker.
    pub fn close_all(&self) {
        let jobs: Vec<Job> = {
            let mut table = self.lock();
            table.closed = true;
            table.jobs.drain().map(|(_, job)| job).collect()
        };
        let now = self.clock.now();
        for mut job in jobs {
            self.poller.forget(&job.stream);
            if let Some(c) = job.conn.as_mut() {
                c.0.handle(now, Input::Drain);
            }
        }
        self.poller.wake();
    }

    /// Closes the parked connections whose deadline has passed.
    fn sweep(&self, table: &mut Table, now: protocol::Now) {
        let expired: Vec<usize> = table
            .jobs
            .iter()
            .filter(|(_, job)| {
                job.conn
                    .as_ref()
                    .and_then(|c| c.0.deadline())
                    .is_none_or(|d| now.mono_ms >= d)
            })
            .map(|(&key, _)| key)
            .collect();
        for key in expired {
            if let Some(mut job) = table.jobs.remove(&key) {
                self.poller.forget(&job.stream);
                // Idle timeout: the core closes silently; the socket closes here.
                if let Some(c) = job.conn.as_mut() {
                    c.0.handle(now, Input::Timeout);
                }
            }
        }
    }
}

impl Source<Job> for Parking {
    fn wait(&self, into: &mut Vec<Job>) {
        let mut keys = Vec::new();
        if let Err(e) = self.poller.wait(SWEEP, &mut keys) {
            error!("waiting for parked connections failed: {e}");
            std::thread::sleep(SWEEP);
        }
        let now = self.clock.now();
        let mut table = self.lock();
        into.extend(keys.into_iter().filter_map(|key| {
            let mut job = table.jobs.remove(&key)?;
            job.woke = Some(now);
            Some(job)
        }));
        if now.mono_ms >= table.next_sweep {
            table.next_sweep = now.mono_ms.saturating_add(SWEEP.as_millis() as u64);
            self.sweep(&mut table, now);
        }
    }

    fn wake(&self) {
        self.poller.wake();
    }
}

/// The poller: epoll on Linux, else (or with `PORTABLE_IO=1`) the `polling` crate.
enum Poller {
    #[cfg(target_os = "linux")]
    Epoll(epoll::Epoll),
    Polling(polling::Poller, Mutex<polling::Events>),
}

impl Poller {
    fn new() -> io::Result<Self> {
        #[cfg(target_os = "linux")]
        if !host::portable_sockets() {
            return Ok(Poller::Epoll(epoll::Epoll::new(NOTIFY_KEY)?));
        }
        let events =
            polling::Events::with_capacity(std::num::NonZeroUsize::MIN.saturating_add(EVENTS - 1));
        Ok(Poller::Polling(polling::Poller::new()?, Mutex::new(events)))
    }

    /// Arms a socket for one readable event (registering it the first time).
    fn arm(&self, stream: &TcpStream, key: usize, first: bool) -> io::Result<()> {
        match self {
            #[cfg(target_os = "linux")]
            Poller::Epoll(e) => e.arm(stream, key, first),
            Poller::Polling(p, _) => {
                let event = polling::Event::readable(key);
                if first {
                    // SAFETY: the socket is deleted from the poller (`forget`) before it is
                    // closed: by the worker that ends the connection, by the sweep, or at
                    // shutdown; all of them hold the `Job` that owns the socket.
                    unsafe { p.add(raw(stream), event) }
                } else {
                    p.modify(stream, event)
                }
            }
        }
    }

    fn forget(&self, stream: &TcpStream) {
        let _ = match self {
            #[cfg(target_os = "linux")]
            Poller::Epoll(e) => e.forget(stream),
            Poller::Polling(p, _) => p.delete(stream),
        };
    }

    /// Waits up to `timeout` for armed sockets to turn readable; appends their keys.
    fn wait(&self, timeout: Duration, keys: &mut Vec<usize>) -> io::Result<()> {
        match self {
            #[cfg(target_os = "linux")]
            Poller::Epoll(e) => e.wait(timeout, keys),
            Poller::Polling(p, events) => {
                let mut events = events.lock().unwrap_or_else(PoisonError::into_inner);
                events.clear();
                p.wait(&mut events, Some(timeout))?;
                keys.extend(events.iter().map(|ev| ev.key));
                Ok(())
            }
        }
    }

    /// Ends a wait in progress (or makes the next one return at once).
    fn wake(&self) {
        let _ = match self {
            #[cfg(target_os = "linux")]
            Poller::Epoll(e) => {
                e.wake();
                Ok(())
            }
            Poller::Polling(p, _) => p.notify(),
        };
    }
}

#[cfg(unix)]
fn raw(stream: &TcpStream) -> std::os::fd::RawFd {
    use std::os::fd::AsRawFd;
    stream.as_raw_fd()
}

#[cfg(windows)]
fn raw(stream: &TcpStream) -> std::os::windows::io::RawSocket {
    use std::os::windows::io::AsRawSocket;
    stream.as_raw_socket()
}

/// Linux: epoll (level-triggered, oneshot) and an eventfd for wake-ups; one system call
/// per wait.
#[cfg(target_os = "linux")]
mod epoll {
    use std::cell::RefCell;
    use std::io;
    use std::net::TcpStream;
    use std::os::fd::OwnedFd;
    use std::time::Duration;

    use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
    use rustix::event::{eventfd, EventfdFlags, Timespec};

    thread_local! {
        /// The waiting worker's event buffer (one worker waits at a time).
        static EVENTS: RefCell<Vec<epoll::Event>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) struct Epoll {
        fd: OwnedFd,
        notify: OwnedFd,
        notify_key: usize,
    }

    impl Epoll {
        pub(super) fn new(notify_key: usize) -> io::Result<Self> {
            let fd = epoll::create(CreateFlags::CLOEXEC)?;
            let notify = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            // Level-triggered: it stays readable until the waiter empties it.
            epoll::add(
                &fd,
                &notify,
                EventData::new_u64(notify_key as u64),
                EventFlags::IN,
            )?;
            Ok(Epoll {
                fd,
                notify,
                notify_key,
            })
        }

        pub(super) fn arm(&self, stream: &TcpStream, key: usize, first: bool) -> io::Result<()> {
            let flags = EventFlags::IN | EventFlags::RDHUP | EventFlags::ONESHOT;
            let data = EventData::new_u64(key as u64);
            if first {
                Ok(epoll::add(&self.fd, stream, data, flags)?)
            } else {
                Ok(epoll::modify(&self.fd, stream, data, flags)?)
            }
        }

        pub(super) fn forget(&self, stream: &TcpStream) -> io::Result<()> {
            Ok(epoll::delete(&self.fd, stream)?)
        }

        pub(super) fn wait(&self, timeout: Duration, keys: &mut Vec<usize>) -> io::Result<()> {
            let ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX / 1000);
            let timeout = Timespec {
                tv_sec: ms / 1000,
                tv_nsec: (ms % 1000) * 1_000_000,
            };
            EVENTS.with(|events| {
                let mut events = events.borrow_mut();
                events.clear();
                events.reserve(super::EVENTS);
                match epoll::wait(
                    &self.fd,
                    rustix::buffer::spare_capacity(&mut *events),
                    Some(&timeout),
                ) {
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
                for ev in events.drain(..) {
                    let key = ev.data.u64() as usize;
                    if key == self.notify_key {
                        let mut buf = [0u8; 8];
                        let _ = rustix::io::read(&self.notify, &mut buf);
                    } else {
                        keys.push(key);
                    }
                }
                Ok(())
            })
        }

        pub(super) fn wake(&self) {
            let _ = rustix::io::write(&self.notify, &1u64.to_ne_bytes());
        }
    }
}
