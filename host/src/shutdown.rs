//! Ctrl-C and SIGTERM: stop accepting (the runtimes close their listeners at once),
//! let in-flight requests finish (at most [`DRAIN_LIMIT`]; an idle keep-alive connection
//! gets [`DRAIN_GRACE`] for a request already on its way), exit 0.
//!
//! [`Shutdown::install`] registers the signals with `signal-hook`: a signal sets a flag.
//!
//! - On Unix (SIGINT, SIGTERM) it also writes a byte into a socket pair. The byte is
//!   never read, so the read end ([`Shutdown::as_fd`]) stays readable for good: an accept
//!   loop can `poll` it beside the listener, a thread can block in [`Shutdown::wait`],
//!   and an async runtime can wait for it to become readable.
//! - On Windows (SIGINT for Ctrl-C, SIGBREAK for Ctrl-Break, SIGTERM, all through the C
//!   runtime's `signal`) there is only the flag: nothing a signal handler may do there
//!   wakes a waiting thread, so [`Shutdown::wait`] checks the flag every
//!   [`POLL_INTERVAL`], and the runtimes watch the flag the same way.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[cfg(unix)]
use std::io::Write;
#[cfg(unix)]
use std::os::fd::{AsFd, BorrowedFd};
#[cfg(unix)]
use std::os::unix::net::UnixStream;

/// How long in-flight requests get after the signal before the process exits anyway.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// How long a keep-alive connection that waits between requests when the drain begins
/// still waits for a request already on its way (unread in its socket, or sent by a
/// balancer just before it saw the listener close) before it is closed: such a request
/// is answered with `Connection: close` instead of being reset (a balancer does not
/// retry a POST it sent). Long enough for bytes in flight on a LAN and a balancer's
/// event loop, and for a loaded 2-core machine (250 ms was once too short in the
/// tests under load 7); short beside [`DRAIN_LIMIT`].
pub const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Where there is no descriptor to wait on (Windows), how often a waiter checks the
/// flag.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A shutdown request: a flag, plus (on Unix) a descriptor that turns readable when it
/// is set. Cloning shares it.
#[derive(Clone, Debug)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    flag: Arc<AtomicBool>,
    #[cfg(unix)]
    read: UnixStream,
    #[cfg(unix)]
    write: UnixStream,
}

impl Shutdown {
    /// A shutdown request that only [`Shutdown::trigger`] sets (no signal handlers).
    pub fn new() -> io::Result<Shutdown> {
        let flag = Arc::new(AtomicBool::new(false));
        #[cfg(unix)]
        let inner = {
            let (read, write) = UnixStream::pair()?;
            write.set_nonblocking(true)?;
            Inner { flag, read, write }
        };
        #[cfg(not(unix))]
        let inner = Inner { flag };
        Ok(Shutdown {
            inner: Arc::new(inner),
        })
    }

    /// A shutdown request set by SIGINT (Ctrl-C) and SIGTERM (and, on Windows, by
    /// SIGBREAK: Ctrl-Break).
    pub fn install() -> io::Result<Shutdown> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let s = Shutdown::new()?;
        #[cfg(unix)]
        for signal in [SIGINT, SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&s.inner.flag))?;
            signal_hook::low_level::pipe::register(signal, s.inner.write.try_clone()?)?;
        }
        #[cfg(not(unix))]
        for signal in [SIGINT, SIGTERM, signal_hook::consts::SIGBREAK] {
            signal_hook::flag::register(signal, Arc::clone(&s.inner.flag))?;
        }
        Ok(s)
    }

    /// Whether shutdown was requested.
    pub fn requested(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// Requests shutdown (as a signal would).
    pub fn trigger(&self) {
        self.inner.flag.store(true, Ordering::SeqCst);
        #[cfg(unix)]
        let _ = (&self.inner.write).write(&[1]);
    }

    /// A descriptor that is readable once shutdown was requested (never read it).
    #[cfg(unix)]
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.read.as_fd()
    }

    /// Blocks until shutdown is requested.
    pub fn wait(&self) {
        while !self.wait_timeout(Duration::from_secs(3600)) {}
    }

    /// Blocks until shutdown is requested or `timeout` passes; true if requested.
    #[cfg(unix)]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        use rustix::event::{PollFd, PollFlags, Timespec};
        if self.requested() {
            return true;
        }
        let ts = Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let mut fds = [PollFd::from_borrowed_fd(self.as_fd(), PollFlags::IN)];
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        // A signal sets the flag before it writes the byte.
        self.requested() || !fds[0].revents().is_empty()
    }

    /// Blocks until shutdown is requested or `timeout` passes; true if requested.
    /// (Without a descriptor: the flag is checked every [`POLL_INTERVAL`].)
    #[cfg(not(unix))]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.poll_flag(timeout)
    }

    /// The waiting of platforms without the descriptor: checks the flag every
    /// [`POLL_INTERVAL`] until it is set or `timeout` passes. (Built everywhere, so that
    /// it is tested on Unix too.)
    #[cfg_attr(unix, allow(dead_code))]
    fn poll_flag(&self, timeout: Duration) -> bool {
        let until = std::time::Instant::now() + timeout;
        loop {
            if self.requested() {
                return true;
            }
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(POLL_INTERVAL));
        }
    }
}

/// Runs `f` on every SIGHUP from now on (Unix; a thread named `name` waits for the
/// signal; elsewhere nothing happens).
pub fn on_sighup(name: &str, f: impl Fn() + Send + 'static) {
    #[cfg(unix)]
    {
        let spawned = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]).and_then(
            |mut signals| {
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || {
                        for _ in signals.forever() {
                            f();
                        }
                    })
            },
        );
        if let Err(e) = spawned {
            log::warn!("nothing is reloaded on SIGHUP ({name}): {e}");
        }
    }
    #[cfg(not(unix))]
    let _ = (name, f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn trigger_wakes_waiters() {
        let s = Shutdown::new().expect("new");
        assert!(!s.requested());
        assert!(!s.wait_timeout(Duration::from_millis(20)));
        let s2 = s.clone();
        let t = std::thread::spawn(move || {
            let start = Instant::now();
            s2.wait();
            start.elapsed()
        });
        std::thread::sleep(Duration::from_millis(50));
        s.trigger();
        let waited = t.join().expect("waiter");
        assert!(waited >= Duration::from_millis(40), "{waited:?}");
        assert!(s.requested());
        // Stays readable: a second waiter returns at once.
        assert!(s.wait_timeout(Duration::from_secs(5)));
    }

    #[test]
    fn polling_the_flag_sees_a_trigger() {
        let s = Shutdown::new().expect("new");
        let start = Instant::now();
        assert!(!s.poll_flag(Duration::from_millis(120)));
        assert!(start.elapsed() >= Duration::from_millis(120));
        let s2 = s.clone();
        let t = std::thread::spawn(move || {
            let start = Instant::now();
            let seen = s2.poll_flag(Duration::from_secs(10));
            (seen, start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(60));
        s.trigger();
        let (seen, waited) = t.join().expect("waiter");
        assert!(seen);
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }
}
