//! Ctrl-C and SIGTERM: stop accepting, let in-flight requests finish (at most
//! [`DRAIN_LIMIT`]), exit 0.
//!
//! [`Shutdown::install`] registers both signals with `signal-hook`: a signal sets a flag
//! and writes a byte into a socket pair. The byte is never read, so the read end stays
//! readable for good: an accept loop can `poll` it beside the listener, a thread can block
//! in [`Shutdown::wait`], and an async runtime can wait for it to become readable.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};

/// How long in-flight requests get after the signal before the process exits anyway.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// A shutdown request: a flag plus a descriptor that turns readable when it is set.
/// Cloning shares it.
#[derive(Clone, Debug)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    flag: Arc<AtomicBool>,
    read: UnixStream,
    write: UnixStream,
}

impl Shutdown {
    /// A shutdown request that only [`Shutdown::trigger`] sets (no signal handlers).
    pub fn new() -> io::Result<Shutdown> {
        let (read, write) = UnixStream::pair()?;
        write.set_nonblocking(true)?;
        Ok(Shutdown {
            inner: Arc::new(Inner {
                flag: Arc::new(AtomicBool::new(false)),
                read,
                write,
            }),
        })
    }

    /// A shutdown request set by SIGINT (Ctrl-C) and SIGTERM.
    pub fn install() -> io::Result<Shutdown> {
        let s = Shutdown::new()?;
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&s.inner.flag))?;
            signal_hook::low_level::pipe::register(signal, s.inner.write.try_clone()?)?;
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
        let _ = (&self.inner.write).write(&[1]);
    }

    /// A descriptor that is readable once shutdown was requested (never read it).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.read.as_fd()
    }

    /// Blocks until shutdown is requested.
    pub fn wait(&self) {
        while !self.wait_timeout(Duration::from_secs(3600)) {}
    }

    /// Blocks until shutdown is requested or `timeout` passes; true if requested.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
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
}
