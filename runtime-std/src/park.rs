//! Where a connection waits without holding a worker: for its next request, for the
//! rest of a request (a head or a body the client trickles), for the client to read
//! (a socket that takes no more), or for the end of a linger. Every wait of a session
//! ([`host::session::Need::Read`] and [`host::session::Need::Writable`]) ends up here.
//!
//! The socket waits in one poller the workers share ([`host::event`]: epoll on Linux,
//! `polling` elsewhere), with the wait's deadline in an ordered map, and the connection
//! kept in a table. The pool's idle workers take turns waiting on the poller (one at a
//! time: see `pool.rs`); the one waiting takes every parked connection that turned
//! ready, and every one whose deadline passed, and hands them to the pool's queue: a
//! worker then resumes its session ([`Woke`]).
//!
//! Two ways to register, and neither lets two workers hold one connection:
//!
//! - epoll (Linux): edge-triggered, once per connection, for both directions. No system
//!   call when a connection is parked again. An edge that comes while a worker holds the
//!   connection is kept in the table (the entry says "out", with the readiness seen
//!   since); when the worker parks it and that readiness is what it waits for, it gets
//!   the connection back at once ([`Parked::Ready`]) instead of waiting for an edge that
//!   already passed. The worker's reads rely on edges too: a short read means the
//!   receive queue was empty then (unless the peer closed: no edge follows the end), so
//!   any later byte makes an edge.
//! - elsewhere (and `PORTABLE_IO=1`): oneshot, armed again (one system call) each time
//!   it is parked: one event, then disarmed.
//!
//! With epoll the cache's change notification waits in the same poller: the waiting
//! worker reads it before it hands out the connections of the same wait, so a request
//! read right after such a wake-up was preceded by every change that came before it, and
//! is looked up with no `FIONREAD` (the session's `fresh`; the same promise runtime-smol's
//! reactor makes).
//!
//! At shutdown ([`Parking::drain`]) the idle connections are handed to the workers to be
//! closed; one waiting for the rest of a request stays until it comes, or the drain
//! limit ends the process.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use host::clock::Clock;
use host::event::{Events, Interest, Mode, Poller};
use host::net::Stream;
use host::session::{Service, Session};
use log::{debug, error};
use protocol::Now;

use crate::pool::Source;

/// One connection: its socket and its session, moving between the queue, the workers
/// and the parking.
pub struct Conn {
    pub stream: Stream,
    pub session: Box<Session>,
    /// The key the socket is registered under in the poller, once it was parked.
    key: Option<usize>,
    /// How it came back from the parking (`None`: a new connection).
    pub woke: Option<Woke>,
    /// The last read came back short: wait for the poller before reading again.
    pub drained: bool,
    /// The poller said the peer closed (or the socket failed): no edge follows, so a
    /// short read no longer means drained.
    pub closed: bool,
    /// The next read follows a wait of the poller that read the cache's change
    /// notification first (see the module documentation).
    pub fresh: bool,
    /// The session was told that the server is shutting down.
    pub drain_given: bool,
    _count: Counted,
}

/// Why a parked connection was handed back.
#[derive(Clone, Copy, Debug)]
pub enum Woke {
    /// Its socket turned ready, at that time (read once per wait of the poller).
    Ready(Now),
    /// Its deadline passed.
    Expired(Now),
}

/// Counts a connection in one of the server's counters while it lives.
pub struct Counted(Arc<AtomicUsize>);

impl Counted {
    /// Counts one more in `counter` if it holds fewer than `limit`.
    pub fn take(counter: &Arc<AtomicUsize>, limit: usize) -> Option<Counted> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Counted(Arc::clone(counter)))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Conn {
    pub fn new(stream: Stream, session: Session, count: Counted) -> Conn {
        Conn {
            stream,
            session: Box::new(session),
            key: None,
            woke: None,
            drained: false,
            closed: false,
            fresh: false,
            drain_given: false,
            _count: count,
        }
    }
}

/// What [`Parking::park`] did with a connection.
pub enum Parked {
    /// It waits in the poller.
    Waiting,
    /// The server is draining and it is idle: close it now.
    Close(Conn),
    /// What it waits for already happened while the worker held it: serve it again now
    /// (its `drained`, `closed` and `fresh` say what the poller saw).
    Ready(Conn),
}

/// Events taken from the poller per wait.
const EVENTS: usize = 128;
/// The longest one wait of the poller lasts with no deadline nearer (the drain is
/// noticed through `notify`; this only bounds a lost wake-up).
const LONGEST_WAIT: Duration = Duration::from_secs(1);
/// The key of the cache's change notification in the poller.
const WATCH_KEY: usize = host::event::NOTIFY_KEY - 1;

/// The parked connections and the poller that watches them (one per server).
pub struct Parking {
    poller: Poller,
    /// Edge-triggered registration (epoll), else oneshot.
    edge: bool,
    table: Mutex<Table>,
    /// The waiting worker's event buffer (one worker waits at a time).
    events: Mutex<Events>,
    clock: Clock,
    /// The cache's change notification, when it waits in the poller (epoll).
    watch: Option<Watched>,
}

/// The cache's change notification: its descriptor, and whom to tell.
struct Watched {
    #[cfg(target_os = "linux")]
    _fd: std::os::fd::OwnedFd,
    service: Arc<Service>,
}

#[derive(Default)]
struct Table {
    conns: HashMap<usize, Slot>,
    /// (deadline, key) of every parked connection.
    deadlines: BTreeSet<(u64, usize)>,
    /// Connections to hand out at the next wait, without waiting (edge mode).
    ready: Vec<Conn>,
    next_key: usize,
    /// Shutting down: idle connections are not parked but closed.
    draining: bool,
}

/// A registered connection.
enum Slot {
    /// In the poller, until its deadline.
    Parked {
        conn: Conn,
        until: u64,
        interest: Interest,
    },
    /// Held by a worker (edge mode): the readiness seen since it left.
    Out(Seen),
}

/// Readiness reported by the poller.
#[derive(Clone, Copy, Default)]
struct Seen {
    readable: bool,
    writable: bool,
    closed: bool,
}

impl Seen {
    fn add(&mut self, ev: &host::event::Event) {
        self.readable |= ev.readable;
        self.writable |= ev.writable;
        self.closed |= ev.closed;
    }

    fn satisfies(&self, interest: Interest) -> bool {
        (interest.read && (self.readable || self.closed)) || (interest.write && self.writable)
    }

    /// What a connection learns from it.
    fn tell(&self, conn: &mut Conn) {
        if self.readable || self.closed {
            conn.drained = false;
        }
        conn.closed |= self.closed;
    }
}

impl Parking {
    /// The parking of a server; with epoll, the cache's change notification of `service`
    /// waits in its poller too.
    pub fn new(clock: Clock, service: &Arc<Service>) -> std::io::Result<Self> {
        let poller = Poller::new()?;
        let events = Mutex::new(poller.events(EVENTS));
        let edge = poller.has_edge();
        let watch = if edge {
            Self::watch(&poller, service)
        } else {
            None
        };
        Ok(Parking {
            poller,
            edge,
            table: Mutex::new(Table::default()),
            events,
            clock,
            watch,
        })
    }

    #[cfg(target_os = "linux")]
    fn watch(poller: &Poller, service: &Arc<Service>) -> Option<Watched> {
        let fd = service.watch_changes()?.try_clone_to_owned().ok()?;
        match poller.add(&fd, WATCH_KEY, Interest::READ, Mode::Edge) {
            Ok(()) => Some(Watched {
                _fd: fd,
                service: Arc::clone(service),
            }),
            Err(e) => {
                error!("the cache's change notification cannot wait in the poller: {e}");
                None
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn watch(_: &Poller, _: &Arc<Service>) -> Option<Watched> {
        None
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Parks `conn` until its socket is ready for `interest` or `until` passes. Gives it
    /// back when it should rather be closed now (the server is draining and it is idle),
    /// or, when `may_return`, served again now (it is ready already); without
    /// `may_return` a ready one is handed out by the next wait of the poller. A socket
    /// the poller refuses is closed (logged).
    pub fn park(&self, mut conn: Conn, interest: Interest, until: u64, may_return: bool) -> Parked {
        let mut table = self.lock();
        if table.draining && conn.session.is_idle() {
            return Parked::Close(conn);
        }
        let key = match conn.key {
            Some(key) => key,
            None => {
                let key = table.next_key;
                table.next_key = table.next_key.wrapping_add(1) % WATCH_KEY;
                key
            }
        };
        if self.edge {
            if let Some(Slot::Out(seen)) = table.conns.get(&key) {
                let seen = *seen;
                // Kept even when it is not what the connection waits for now: a byte
                // that came while it was out is still there when it next reads.
                seen.tell(&mut conn);
                if seen.satisfies(interest) {
                    conn.fresh = self.watch.is_some();
                    table.conns.insert(key, Slot::Out(Seen::default()));
                    if may_return {
                        return Parked::Ready(conn);
                    }
                    conn.woke = Some(Woke::Ready(self.clock.now()));
                    table.ready.push(conn);
                    drop(table);
                    self.poller.notify();
                    return Parked::Waiting;
                }
            }
        }
        // Armed under the table's lock: an event is looked up under it, so the
        // connection is in the table before anyone can take it.
        let armed = match (conn.key, self.edge) {
            (Some(_), true) => Ok(()),
            (None, true) => self
                .poller
                .add(&conn.stream, key, Interest::BOTH, Mode::Edge),
            (Some(_), false) => self
                .poller
                .modify(&conn.stream, key, interest, Mode::Oneshot),
            (None, false) => self.poller.add(&conn.stream, key, interest, Mode::Oneshot),
        };
        if let Err(e) = armed {
            drop(table);
            error!("{} cannot wait in the poller: {e}", conn.session.peer());
            self.forget(&conn);
            return Parked::Waiting;
        }
        if conn.key.is_none() {
            debug!("{} parked (it holds no worker)", conn.session.peer());
        }
        conn.key = Some(key);
        table.deadlines.insert((until, key));
        table.conns.insert(
            key,
            Slot::Parked {
                conn,
                until,
                interest,
            },
        );
        Parked::Waiting
    }

    /// A connection is closing (not parked): if it was ever parked, its registration in
    /// the poller goes first.
    pub fn forget(&self, conn: &Conn) {
        if let Some(key) = conn.key {
            if self.edge {
                self.lock().conns.remove(&key);
            }
            let _ = self.poller.delete(&conn.stream);
        }
    }

    /// Shutdown: parks no idle connection any more, and takes every parked one for the
    /// workers to tell of the drain (an idle one then closes; one with a request in
    /// progress answers it with `Connection: close`; HTTP/2 sends its `GOAWAY` now, not
    /// when its client next sends a byte).
    pub fn drain(&self) -> Vec<Conn> {
        let mut table = self.lock();
        table.draining = true;
        let parked: Vec<usize> = (table.conns.iter())
            .filter(|(_, slot)| matches!(slot, Slot::Parked { .. }))
            .map(|(&key, _)| key)
            .collect();
        let taken = (parked.into_iter())
            .filter_map(|key| self.take(&mut table, key))
            .collect();
        drop(table);
        self.poller.notify();
        taken
    }

    /// How long the waiting worker may wait: until the nearest deadline (not at all when
    /// connections are ready already).
    fn timeout(&self, now: Now) -> Duration {
        let table = self.lock();
        if !table.ready.is_empty() {
            return Duration::ZERO;
        }
        match table.deadlines.first() {
            Some(&(until, _)) => Duration::from_millis(until.saturating_sub(now.mono_ms)),
            None => LONGEST_WAIT,
        }
        .min(LONGEST_WAIT)
    }

    /// Takes the connection parked under `key` out of the table (edge mode: it stays
    /// registered, as held by a worker).
    fn take(&self, table: &mut Table, key: usize) -> Option<Conn> {
        let slot = if self.edge {
            table.conns.insert(key, Slot::Out(Seen::default()))?
        } else {
            table.conns.remove(&key)?
        };
        match slot {
            Slot::Parked { conn, until, .. } => {
                table.deadlines.remove(&(until, key));
                Some(conn)
            }
            Slot::Out(seen) => {
                // It was not parked: put back what it had seen.
                table.conns.insert(key, Slot::Out(seen));
                None
            }
        }
    }
}

impl Source<Conn> for Parking {
    fn wait(&self, into: &mut Vec<Conn>) {
        let timeout = self.timeout(self.clock.now());
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = self.poller.wait(&mut events, Some(timeout)) {
            error!("waiting for parked connections failed: {e}");
            std::thread::sleep(Duration::from_millis(100));
        }
        // The change notification first: every request read after this wait then finds
        // what changed before it came. Also after a full batch, where its event may have
        // been left for the next wait.
        if let Some(watch) = &self.watch {
            if events.len() >= EVENTS || events.iter().any(|e| e.key == WATCH_KEY) {
                watch.service.changed();
            }
        }
        let fresh = self.watch.is_some();
        let now = self.clock.now();
        let mut table = self.lock();
        for mut conn in table.ready.drain(..) {
            conn.fresh = fresh;
            into.push(conn);
        }
        for ev in events.drain() {
            if ev.key == WATCH_KEY {
                continue;
            }
            let seen = Seen {
                readable: ev.readable,
                writable: ev.writable,
                closed: ev.closed,
            };
            let wanted = match table.conns.get_mut(&ev.key) {
                None => continue,
                Some(Slot::Out(held)) => {
                    held.add(&ev);
                    continue;
                }
                // Oneshot: any event, and it is disarmed now.
                Some(Slot::Parked { .. }) if !self.edge => true,
                Some(Slot::Parked { conn, interest, .. }) => {
                    // Not what it waits for: remembered for later (a byte that came
                    // while it waits to write is still there when it reads).
                    seen.tell(conn);
                    seen.satisfies(*interest)
                }
            };
            if !wanted {
                continue;
            }
            if let Some(mut conn) = self.take(&mut table, ev.key) {
                if self.edge {
                    seen.tell(&mut conn);
                    conn.fresh = fresh && (seen.readable || seen.closed);
                } else {
                    conn.drained = false;
                    conn.closed |= seen.closed;
                }
                conn.woke = Some(Woke::Ready(now));
                into.push(conn);
            }
        }
        while let Some(&(until, key)) = table.deadlines.first() {
            if until > now.mono_ms {
                break;
            }
            table.deadlines.pop_first();
            if let Some(mut conn) = self.take(&mut table, key) {
                conn.fresh = false;
                conn.woke = Some(Woke::Expired(now));
                into.push(conn);
            }
        }
    }

    fn wake(&self) {
        self.poller.notify();
    }
}
