//! Closing without losing the last answer. Closing a socket whose receive buffer holds
//! unread bytes — or that receives more a moment later — makes the kernel send a reset,
//! which can destroy the answer before the client reads it. So a session closes the
//! same way on both runtimes, without blocking: half-close (our side is done), then read
//! and drop what the client still sends, for at most [`LINGER`] and [`LINGER_BYTES`], or
//! until its end of stream (see `crate::session`).

use std::time::Duration;

/// How long a closing connection keeps reading what the client still sends.
pub const LINGER: Duration = Duration::from_secs(2);
/// How much it reads (and drops) at most.
pub const LINGER_BYTES: usize = 1 << 20;
/// Refused connections lingering at once; past this a refused connection is closed at
/// once (its 503 may then be lost to a reset: the server is flooded).
pub const MAX_REFUSING: usize = 256;
