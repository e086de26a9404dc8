//! The pieces of state the connection keeps: one [`Stream`] per stream the caller knows
//! (open or half-closed), a bounded memory of closed streams ([`ClosedStreams`]), and the
//! token buckets of the flood defences ([`Rate`]).

use std::collections::VecDeque;

/// What we have sent on a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sending {
    /// Nothing yet.
    Idle,
    /// One or more 1xx heads, no final one yet.
    Informational,
    /// The final head; DATA may follow.
    Final,
    /// END_STREAM sent: our half is closed.
    Ended,
}

/// A stream the caller knows about (its `Request` or `HeadersTooLarge` event was queued):
/// "open", "half-closed (remote)" or "half-closed (local)" of RFC 9113 §5.1. A stream
/// whose both halves are closed is removed at once (and remembered in [`ClosedStreams`]).
#[derive(Debug)]
pub(super) struct Stream {
    /// The client may still send on it (no END_STREAM from it yet).
    pub recv_open: bool,
    pub sending: Sending,
    /// How much more the client may send on this stream (it can go negative when our
    /// SETTINGS_INITIAL_WINDOW_SIZE shrinks).
    pub recv_window: i64,
    /// Body bytes handed to the caller and not yet released by it.
    pub unreleased: u64,
    /// Bytes released (or dropped for the caller) and not yet announced by WINDOW_UPDATE.
    pub unannounced: u64,
    /// How much more we may send on it.
    pub send_window: i64,
    /// The request's `content-length`, to check against the DATA received (§8.1.1).
    pub content_length: Option<u64>,
    pub received: u64,
    /// Body bytes are counted and dropped, never handed out (a 431 stream).
    pub discard: bool,
    /// The caller has polled the event that introduced the stream.
    pub seen: bool,
    /// The caller's last `send_data` left bytes behind: it waits for `WindowOpen`.
    pub blocked: bool,
    /// Since when the stream's send window has kept the caller's bytes back.
    pub stalled_since: Option<u64>,
}

impl Stream {
    pub fn new(recv_window: i64, send_window: i64, recv_open: bool) -> Self {
        Stream {
            recv_open,
            sending: Sending::Idle,
            recv_window,
            unreleased: 0,
            unannounced: 0,
            send_window,
            content_length: None,
            received: 0,
            discard: false,
            seen: false,
            blocked: false,
            stalled_since: None,
        }
    }
}

/// How a stream closed, which decides what a late frame on it means (§5.1 "closed").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Closed {
    /// We reset (or refused, or ignored) it: frames on it are ignored.
    Ignored,
    /// The client reset it: frames other than PRIORITY are a stream error STREAM_CLOSED.
    PeerReset,
    /// Both sides sent END_STREAM: DATA is a stream error, HEADERS a connection error
    /// (STREAM_CLOSED); WINDOW_UPDATE and RST_STREAM are ignored.
    Ended,
}

/// The last few closed streams and how each closed; older ones are forgotten (a frame
/// on a forgotten stream is judged as if it had ended normally, HEADERS on it as a
/// stream id that went backwards).
#[derive(Debug)]
pub(super) struct ClosedStreams {
    entries: VecDeque<(u32, Closed)>,
}

/// How many closed streams are remembered.
pub(super) const CLOSED_MEMORY: usize = 256;

impl ClosedStreams {
    pub fn new() -> Self {
        ClosedStreams {
            entries: VecDeque::new(),
        }
    }

    pub fn record(&mut self, id: u32, how: Closed) {
        if let Some(entry) = self.entries.iter_mut().find(|(i, _)| *i == id) {
            entry.1 = how;
            return;
        }
        if self.entries.len() == CLOSED_MEMORY {
            self.entries.pop_front();
        }
        self.entries.push_back((id, how));
    }

    pub fn get(&self, id: u32) -> Option<Closed> {
        self.entries.iter().find(|(i, _)| *i == id).map(|e| e.1)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A token bucket: `per_sec` tokens a second, at most `per_sec` saved up (plus what
/// [`Rate::credit`] adds), counted in thousandths so that every millisecond refills.
#[derive(Debug)]
pub(super) struct Rate {
    per_sec: u64,
    milli: u64,
    last_ms: u64,
}

/// The most a bucket can hold beyond its second's worth, in tokens (for credits).
const CREDIT_CAP: u64 = 8192;

impl Rate {
    pub fn new(per_sec: u32, now_ms: u64) -> Self {
        Rate {
            per_sec: u64::from(per_sec),
            milli: u64::from(per_sec) * 1000,
            last_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        let cap = self.per_sec * 1000;
        if self.milli < cap {
            let add = elapsed.saturating_mul(self.per_sec);
            self.milli = self.milli.saturating_add(add).min(cap);
        }
    }

    /// Takes one token; false when the bucket is empty (the limit is passed).
    pub fn take(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }

    /// Adds `n` tokens (earned by something we did), up to a cap.
    pub fn credit(&mut self, n: u64) {
        let cap = (self.per_sec + CREDIT_CAP) * 1000;
        self.milli = self.milli.saturating_add(n * 1000).min(cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn rate_refills_per_millisecond_and_caps() {
        let mut r = Rate::new(10, 1000);
        assert!((0..10).all(|_| r.take(1000)));
        assert!(!r.take(1000));
        // 100 ms is one token.
        assert!(!r.take(1099));
        assert!(r.take(1100));
        // A long pause saves up one second's worth, no more.
        assert_eq!((0..20).filter(|_| r.take(100_000)).count(), 10);
        // A clock going backwards refills nothing and does not panic.
        assert!(!r.take(5));
        r.credit(3);
        assert_eq!((0..20).filter(|_| r.take(100_000)).count(), 3);
        let mut zero = Rate::new(0, 0);
        assert!(!zero.take(u64::MAX));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn closed_streams_are_bounded() {
        let mut c = ClosedStreams::new();
        for id in (1..2000).step_by(2) {
            c.record(id, Closed::Ended);
        }
        assert_eq!(c.len(), CLOSED_MEMORY);
        assert_eq!(c.get(1), None);
        assert_eq!(c.get(1999), Some(Closed::Ended));
        c.record(1999, Closed::PeerReset);
        assert_eq!(c.get(1999), Some(Closed::PeerReset));
        assert_eq!(c.len(), CLOSED_MEMORY);
    }
}
