//! The slowest reader the server waits for. A send timeout per system call is not
//! enough: a client that takes 100 bytes a second makes progress on every call and holds
//! its connection (in runtime-std, a worker thread) for hours. So both runtimes watch
//! each answer's write: over every window of the idle timeout, the client must take at
//! least [`MIN_RATE`] bytes per second on average, or the connection is dropped.
//! The window restarts when the client keeps up, so a fast start (the kernel's send
//! buffer fills at once) buys no more than one window.
//! The first window starts when the socket first would not take more: an answer that
//! never waits needs no time at all. The session ([`crate::session`]) keeps the watch
//! and gives the runtime the end of the window as the deadline of its wait.

use std::fmt;

/// The least a client must read, averaged over a window: 1 KiB/s.
pub const MIN_RATE: u64 = 1024;

/// Watches the bytes one answer's write makes the socket take. Times are the session's
/// monotonic milliseconds ([`protocol::Now::mono_ms`]).
#[derive(Debug)]
pub struct WriteWatch {
    window_ms: u64,
    /// When the window started: the first time the socket would not take more (a write
    /// that never blocks needs no time at all).
    started: Option<u64>,
    bytes: u64,
}

/// A client that read too slowly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSlow {
    pub bytes: u64,
    pub elapsed_ms: u64,
}

impl fmt::Display for TooSlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the client read {} bytes in {:.1} s, under {MIN_RATE} bytes/s",
            self.bytes,
            self.elapsed_ms as f64 / 1000.0
        )
    }
}

impl std::error::Error for TooSlow {}

impl WriteWatch {
    /// A watch with a window of `window_ms` (the idle timeout; at least 1 s).
    pub fn new(window_ms: u64) -> Self {
        WriteWatch {
            window_ms: window_ms.max(1000),
            started: None,
            bytes: 0,
        }
    }

    /// The socket took `n` bytes.
    pub fn sent(&mut self, n: usize) {
        self.bytes = self.bytes.saturating_add(n as u64);
    }

    /// The socket would not take more (or a wait for it ended) at `now`: an error once a
    /// whole window has passed in which the client took less than [`MIN_RATE`] bytes a
    /// second; else when the pace must be looked at again (the end of the window, which
    /// starts now if it had not).
    pub fn check(&mut self, now: u64) -> Result<u64, TooSlow> {
        let started = *self.started.get_or_insert(now);
        let elapsed = now.saturating_sub(started);
        if elapsed < self.window_ms {
            return Ok(started + self.window_ms);
        }
        let needed = MIN_RATE.saturating_mul((elapsed / 1000).max(1));
        if self.bytes < needed {
            return Err(TooSlow {
                bytes: self.bytes,
                elapsed_ms: elapsed,
            });
        }
        self.started = Some(now);
        self.bytes = 0;
        Ok(now + self.window_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_window_fails_and_a_fast_one_restarts() {
        let mut w = WriteWatch::new(1000);
        w.sent(10);
        assert!(
            w.started.is_none(),
            "no time taken before the socket blocks"
        );
        assert_eq!(w.check(5_000), Ok(6_000), "the window starts");
        assert!(w.check(6_100).is_err(), "10 bytes in 1.1 s");
        let mut w = WriteWatch::new(1000);
        w.sent(5000);
        assert_eq!(w.check(0), Ok(1000));
        assert_eq!(w.check(1100), Ok(2100), "5000 bytes in 1.1 s: a new window");
        assert_eq!(w.bytes, 0);
        assert!(w.check(2200).is_err(), "nothing in the next window");
    }
}
