//! The one event loop primitive both runtimes build on: a poller that says which
//! sockets (or other descriptors) are ready, with a wake-up another thread can send.
//!
//! - Linux: epoll (rustix), one system call per wait, and an eventfd for wake-ups.
//!   Sockets may be registered edge-triggered (runtime-smol's reactor: once per socket,
//!   for both directions) or oneshot (runtime-std's shared poller: armed for one event,
//!   then disarmed until armed again, so two workers never hold one connection).
//! - Elsewhere (kqueue on macOS and FreeBSD, IOCP on Windows, `poll` otherwise), and on
//!   Linux with `PORTABLE_IO=1`: the `polling` crate, oneshot only ([`Poller::has_edge`]
//!   is false): a caller that wants edge-triggered behaviour re-arms for each wait.
//!
//! Timeouts are rounded up to the millisecond on every backend, so a wait never returns
//! just before the deadline it was computed from.

use std::io;
use std::time::Duration;

/// The key of the poller's own wake-up; never given to a source.
pub const NOTIFY_KEY: usize = usize::MAX;

/// What a registration waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest {
    pub read: bool,
    pub write: bool,
}

impl Interest {
    pub const READ: Interest = Interest {
        read: true,
        write: false,
    };
    pub const WRITE: Interest = Interest {
        read: false,
        write: true,
    };
    pub const BOTH: Interest = Interest {
        read: true,
        write: true,
    };
}

/// How a registration reports readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Each change to ready is reported once (epoll only: see [`Poller::has_edge`]).
    Edge,
    /// One event, then nothing until the source is armed again with [`Poller::modify`].
    Oneshot,
}

/// One readiness report. An error or hang-up on the source reports it ready both ways
/// (the next read or write then sees what happened).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub key: usize,
    pub readable: bool,
    pub writable: bool,
    /// The peer closed (or the socket failed): a read returns what is left, then the
    /// end, with no further event (known on epoll; always false elsewhere).
    pub closed: bool,
}

/// A poller: see the module documentation. Shared between threads (`&self` throughout).
pub struct Poller {
    backend: Backend,
}

enum Backend {
    #[cfg(target_os = "linux")]
    Epoll(epoll::Epoll),
    Polling(polling::Poller),
}

impl Poller {
    /// epoll on Linux (unless [`crate::portable_sockets`]), else the `polling` crate.
    pub fn new() -> io::Result<Poller> {
        #[cfg(target_os = "linux")]
        if !crate::portable_sockets() {
            return Ok(Poller {
                backend: Backend::Epoll(epoll::Epoll::new()?),
            });
        }
        Ok(Poller {
            backend: Backend::Polling(polling::Poller::new()?),
        })
    }

    /// Whether [`Mode::Edge`] is available (epoll).
    pub fn has_edge(&self) -> bool {
        match self.backend {
            #[cfg(target_os = "linux")]
            Backend::Epoll(_) => true,
            Backend::Polling(_) => false,
        }
    }

    /// Registers `source` under `key` (not [`NOTIFY_KEY`]).
    ///
    /// The caller must [`Poller::delete`] it before the source is closed (epoll forgets
    /// a closed descriptor by itself; the other backends may not).
    pub fn add<S: polling::AsSource>(
        &self,
        source: &S,
        key: usize,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()> {
        match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Epoll(e) => e.ctl(source, key, interest, mode, true),
            Backend::Polling(p) => {
                // SAFETY: the callers delete the source before closing it (see above).
                unsafe { p.add_with_mode(raw(source), event(key, interest), poll_mode(mode)) }
            }
        }
    }

    /// Changes (or, oneshot, re-arms) the registration of `source`.
    pub fn modify<S: polling::AsSource>(
        &self,
        source: &S,
        key: usize,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()> {
        match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Epoll(e) => e.ctl(source, key, interest, mode, false),
            Backend::Polling(p) => {
                p.modify_with_mode(source, event(key, interest), poll_mode(mode))
            }
        }
    }

    /// Forgets `source`.
    pub fn delete<S: polling::AsSource>(&self, source: &S) -> io::Result<()> {
        match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Epoll(e) => e.delete(source),
            Backend::Polling(p) => p.delete(source),
        }
    }

    /// Waits until a source is ready, [`Poller::notify`] is called, or `timeout` passes
    /// (`None`: no timeout); appends the ready sources' events to `events` (a wake-up
    /// appends nothing). An interrupted wait returns with nothing.
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        // Rounded up: never woken just before a deadline.
        let timeout =
            timeout.map(|t| Duration::from_millis(t.as_nanos().div_ceil(1_000_000) as u64));
        match (&self.backend, &mut events.inner) {
            #[cfg(target_os = "linux")]
            (Backend::Epoll(e), Inner::Epoll(buf)) => e.wait(buf, timeout, &mut events.ready),
            (Backend::Polling(p), Inner::Polling(buf)) => {
                buf.clear();
                match p.wait(buf, timeout) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
                events.ready.extend(buf.iter().map(|ev| Event {
                    key: ev.key,
                    readable: ev.readable,
                    writable: ev.writable,
                    closed: false,
                }));
                Ok(())
            }
            #[allow(unreachable_patterns)]
            _ => Err(io::Error::other("events made for another poller")),
        }
    }

    /// Ends a wait in progress on any thread, or makes the next one return at once.
    pub fn notify(&self) {
        match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Epoll(e) => e.notify(),
            Backend::Polling(p) => {
                let _ = p.notify();
            }
        }
    }

    /// A buffer for [`Poller::wait`] that takes up to `capacity` events per wait.
    pub fn events(&self, capacity: usize) -> Events {
        let capacity = capacity.max(1);
        let inner = match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Epoll(_) => Inner::Epoll(Vec::with_capacity(capacity)),
            Backend::Polling(_) => Inner::Polling(polling::Events::with_capacity(
                std::num::NonZeroUsize::MIN.saturating_add(capacity - 1),
            )),
        };
        Events {
            inner,
            ready: Vec::with_capacity(capacity),
        }
    }
}

/// The events of the waits so far (see [`Poller::events`]); [`Events::drain`] takes them.
pub struct Events {
    inner: Inner,
    ready: Vec<Event>,
}

// SAFETY: rustix's epoll event holds its user data as a pointer-sized union, which
// makes it `!Send`; this module only ever stores and reads integer keys in it, never a
// pointer, so moving the buffer to another thread is sound.
unsafe impl Send for Events {}

enum Inner {
    #[cfg(target_os = "linux")]
    Epoll(Vec<rustix::event::epoll::Event>),
    Polling(polling::Events),
}

impl Events {
    /// Takes the events collected.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Event> {
        self.ready.drain(..)
    }

    /// The events collected, left in place.
    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.ready.iter()
    }

    /// How many events wait to be taken.
    pub fn len(&self) -> usize {
        self.ready.len()
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }
}

fn event(key: usize, interest: Interest) -> polling::Event {
    polling::Event::new(key, interest.read, interest.write)
}

fn poll_mode(mode: Mode) -> polling::PollMode {
    match mode {
        Mode::Edge => polling::PollMode::Edge,
        Mode::Oneshot => polling::PollMode::Oneshot,
    }
}

#[cfg(unix)]
fn raw<S: polling::AsSource>(source: &S) -> std::os::fd::RawFd {
    use std::os::fd::AsRawFd;
    source.as_fd().as_raw_fd()
}

#[cfg(windows)]
fn raw<S: polling::AsSource>(source: &S) -> std::os::windows::io::RawSocket {
    use std::os::windows::io::AsRawSocket;
    source.as_socket().as_raw_socket()
}

/// Linux: epoll and an eventfd.
#[cfg(target_os = "linux")]
mod epoll {
    use std::io;
    use std::os::fd::{AsFd, OwnedFd};
    use std::time::Duration;

    use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
    use rustix::event::{eventfd, EventfdFlags, Timespec};

    use super::{Event, Interest, Mode, NOTIFY_KEY};

    pub(super) struct Epoll {
        fd: OwnedFd,
        notify: OwnedFd,
    }

    impl Epoll {
        pub(super) fn new() -> io::Result<Epoll> {
            let fd = epoll::create(CreateFlags::CLOEXEC)?;
            let notify = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            // Edge-triggered: each notification makes an edge once the waiter emptied it.
            epoll::add(
                &fd,
                &notify,
                EventData::new_u64(NOTIFY_KEY as u64),
                EventFlags::IN | EventFlags::ET,
            )?;
            Ok(Epoll { fd, notify })
        }

        pub(super) fn ctl(
            &self,
            source: &impl AsFd,
            key: usize,
            interest: Interest,
            mode: Mode,
            add: bool,
        ) -> io::Result<()> {
            let mut flags = match mode {
                Mode::Edge => EventFlags::ET,
                Mode::Oneshot => EventFlags::ONESHOT,
            };
            if interest.read {
                flags |= EventFlags::IN | EventFlags::RDHUP;
            }
            if interest.write {
                flags |= EventFlags::OUT;
            }
            let data = EventData::new_u64(key as u64);
            if add {
                epoll::add(&self.fd, source, data, flags)?;
            } else {
                epoll::modify(&self.fd, source, data, flags)?;
            }
            Ok(())
        }

        pub(super) fn delete(&self, source: &impl AsFd) -> io::Result<()> {
            Ok(epoll::delete(&self.fd, source)?)
        }

        pub(super) fn wait(
            &self,
            buf: &mut Vec<epoll::Event>,
            timeout: Option<Duration>,
            ready: &mut Vec<Event>,
        ) -> io::Result<()> {
            let timeout = timeout.map(|t| {
                let ms = i64::try_from(t.as_millis()).unwrap_or(i64::MAX / 1000);
                Timespec {
                    tv_sec: ms / 1000,
                    tv_nsec: (ms % 1000) * 1_000_000,
                }
            });
            buf.clear();
            match epoll::wait(
                &self.fd,
                rustix::buffer::spare_capacity(&mut *buf),
                timeout.as_ref(),
            ) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            for ev in buf.drain(..) {
                let key = ev.data.u64() as usize;
                if key == NOTIFY_KEY {
                    // Emptied, so that the next notification makes a new edge.
                    let mut count = [0u8; 8];
                    let _ = rustix::io::read(&self.notify, &mut count);
                    continue;
                }
                let f = ev.flags;
                let err = f.intersects(EventFlags::ERR | EventFlags::HUP);
                ready.push(Event {
                    key,
                    readable: err || f.intersects(EventFlags::IN | EventFlags::RDHUP),
                    writable: err || f.contains(EventFlags::OUT),
                    closed: err || f.contains(EventFlags::RDHUP),
                });
            }
            Ok(())
        }

        pub(super) fn notify(&self) {
            let _ = rustix::io::write(&self.notify, &1u64.to_ne_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::Instant;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (client, server)
    }

    #[test]
    fn oneshot_reports_once_until_armed_again() {
        let p = Poller::new().expect("poller");
        let mut events = p.events(8);
        let (mut client, server) = pair();
        p.add(&server, 7, Interest::READ, Mode::Oneshot)
            .expect("add");
        client.write_all(b"x").expect("write");
        p.wait(&mut events, Some(Duration::from_secs(5)))
            .expect("wait");
        let got: Vec<Event> = events.drain().collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].readable && got[0].key == 7);
        // Disarmed: still readable, but no second event.
        p.wait(&mut events, Some(Duration::from_millis(20)))
            .expect("wait");
        assert!(events.is_empty());
        p.modify(&server, 7, Interest::READ, Mode::Oneshot)
            .expect("re-arm");
        p.wait(&mut events, Some(Duration::from_secs(5)))
            .expect("wait");
        assert_eq!(events.drain().count(), 1);
        p.delete(&server).expect("delete");
    }

    #[test]
    fn notify_ends_a_wait_from_another_thread() {
        let p = std::sync::Arc::new(Poller::new().expect("poller"));
        let waker = std::sync::Arc::clone(&p);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            waker.notify();
        });
        let mut events = p.events(4);
        let start = Instant::now();
        p.wait(&mut events, Some(Duration::from_secs(10)))
            .expect("wait");
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(events.is_empty(), "a wake-up is no event");
        t.join().expect("join");
    }

    #[test]
    fn a_timeout_is_never_short() {
        let p = Poller::new().expect("poller");
        let mut events = p.events(4);
        let start = Instant::now();
        p.wait(&mut events, Some(Duration::from_micros(2500)))
            .expect("wait");
        assert!(start.elapsed() >= Duration::from_micros(2500));
    }
}
