//! The clocks the core needs, read in one place: a monotonic millisecond counter for
//! deadlines and the wall clock for `Date`; and random seeds for upload names.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use protocol::Now;

/// A monotonic clock started when the server starts. Cheap to copy and to read.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose monotonic counter starts at 0 now.
    pub fn new() -> Self {
        Clock {
            start: Instant::now(),
        }
    }

    /// The current time as the core wants it.
    pub fn now(&self) -> Now {
        self.at(Instant::now(), SystemTime::now())
    }

    /// A time read earlier (an event loop reads both clocks once per wait, as nginx
    /// does, instead of twice per input) as the core wants it.
    pub fn at(&self, mono: Instant, wall: SystemTime) -> Now {
        let unix_secs = wall
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Now::new(self.mono_ms(mono), unix_secs)
    }

    /// The monotonic millisecond value of an [`Instant`] (for converting deadlines).
    pub fn mono_ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
    }
}

/// 16 random bytes for [`protocol::Connection::new`] (upload names are derived from
/// them), without a system call per connection: std's `RandomState` draws its SipHash
/// keys from the operating system once per thread and moves them on for every new
/// state, so two calls never hash alike and nobody without the keys can predict the
/// output. (Names that collide anyway are retried by the core under new bytes.)
pub fn seed() -> [u8; 16] {
    use std::hash::{BuildHasher, RandomState};
    let keys = RandomState::new();
    let (a, b) = (keys.hash_one(0x5eed_u64), keys.hash_one(0xda7a_u64));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_monotonic_and_wall_clock_is_recent() {
        let c = Clock::new();
        let a = c.now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = c.now();
        assert!(b.mono_ms >= a.mono_ms + 4, "{a:?} {b:?}");
        assert!(a.unix_secs > 1_700_000_000);
    }

    #[test]
    fn seeds_differ() {
        assert_ne!(seed(), seed());
    }
}
