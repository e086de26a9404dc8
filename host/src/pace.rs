//! The slowest reader the server waits for. A send timeout per system call is not
//! enough: a client that takes 100 bytes a second makes progress on every call and holds
//! its connection (in runtime-std, a worker thread) for hours. So both runtimes watch
//! each answer's write: over every window of the idle timeout, the client must take at
//! least [`MIN_RATE`] bytes per second on average, or the connection is dropped.
//! The window restarts when the client keeps up, so a fast start (the kernel's send
//! buffer fills at once) buys no more than one window.
//! The first window starts when the socket first would not take more (runtime-smol:
//! when it starts waiting for writability; runtime-std learns it after one [`POLL`] of
//! its send timeout, so its first window is up to 0.5 s longer): an answer that never
//! waits reads no clock.

use std::io;
use std::time::{Duration, Instant};

/// The least a client must read, averaged over a window: 1 KiB/s.
pub const MIN_RATE: u64 = 1024;

/// How long a blocked write waits before the pace is checked (runtime-std's send
/// timeout; runtime-smol waits for writability at most this long).
pub const POLL: Duration = Duration::from_millis(500);

/// Watches the bytes one answer's write makes the socket take.
#[derive(Debug)]
pub struct WriteWatch {
    window: Duration,
    /// When the window started: the first time the socket would not take more (a write
    /// that never blocks never reads the clock).
    started: Option<Instant>,
    bytes: u64,
}

impl WriteWatch {
    /// A watch with a window of `window` (the idle timeout); the window starts when the
    /// socket first would not take more.
    pub fn new(window: Duration) -> Self {
        WriteWatch {
            window: window.max(Duration::from_secs(1)),
            started: None,
            bytes: 0,
        }
    }

    /// The socket took `n` bytes.
    pub fn sent(&mut self, n: usize) {
        self.bytes = self.bytes.saturating_add(n as u64);
    }

    /// Whether the socket ever refused more during this write (it had to wait), and the
    /// bytes it took (since the last window): a write that did neither was immediate.
    pub fn waited(&self) -> (bool, u64) {
        (self.started.is_some(), self.bytes)
    }

    /// When the window started; it starts now if it had not.
    fn start(&mut self) -> Instant {
        *self.started.get_or_insert_with(Instant::now)
    }

    /// Called whenever the socket would not take more: an error once a whole window has
    /// passed in which the client took less than [`MIN_RATE`] bytes a second.
    pub fn check(&mut self) -> io::Result<()> {
        let elapsed = self.start().elapsed();
        if elapsed < self.window {
            return Ok(());
        }
        let needed = MIN_RATE.saturating_mul(elapsed.as_secs().max(1));
        if self.bytes < needed {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client read {} bytes in {:.1} s, under {MIN_RATE} bytes/s",
                    self.bytes,
                    elapsed.as_secs_f64()
                ),
            ));
        }
        self.started = Some(Instant::now());
        self.bytes = 0;
        Ok(())
    }

    /// The socket would not take more: how long to wait for writability before
    /// [`WriteWatch::check`] is due again (the window starts now if it had not).
    pub fn wait(&mut self) -> Duration {
        POLL.min(self.window.saturating_sub(self.start().elapsed()))
            .max(Duration::from_millis(10))
    }
}

/// Whether an I/O error is "the socket would not take more now" (a send timeout on a
/// blocking socket, `EAGAIN` on a non-blocking one).
pub fn is_blocked(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_window_fails_and_a_fast_one_restarts() {
        let back = |w: &mut WriteWatch| {
            w.started = w.started.map(|s| s - Duration::from_millis(1100));
        };
        let mut w = WriteWatch::new(Duration::from_secs(1));
        w.sent(10);
        assert!(
            w.started.is_none(),
            "no clock read before the socket blocks"
        );
        assert!(w.check().is_ok(), "within the window");
        back(&mut w);
        assert!(w.check().is_err(), "10 bytes in 1.1 s");
        let mut w = WriteWatch::new(Duration::from_secs(1));
        w.sent(5000);
        assert!(w.check().is_ok(), "the window starts");
        back(&mut w);
        assert!(w.check().is_ok(), "5000 bytes in 1.1 s");
        assert_eq!(w.bytes, 0, "a new window");
        back(&mut w);
        assert!(w.check().is_err(), "nothing in the next window");
        // Waiting for writability starts the window too (runtime-smol).
        let mut w = WriteWatch::new(Duration::from_secs(1));
        assert!(w.wait() <= POLL && w.started.is_some());
    }
}
