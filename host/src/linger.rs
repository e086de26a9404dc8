//! Closing without losing the last answer. Closing a socket whose receive buffer holds
//! unread bytes — or that receives more a moment later — makes the kernel send a reset,
//! which can destroy the answer before the client reads it. So both runtimes close the
//! same way: half-close (our side is done), then read and drop what the client still
//! sends, for at most [`LINGER`] and [`LINGER_BYTES`], or until its end of stream.
//! runtime-smol does this as a task; runtime-std with [`linger`] on a worker, and with
//! [`Refusals`] for the 503s its accept thread sends (on short-lived threads, at most
//! [`MAX_REFUSING`] at once, so the accept thread never waits).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::debug;

/// How long a closing connection keeps reading what the client still sends.
pub const LINGER: Duration = Duration::from_secs(2);
/// How much it reads (and drops) at most.
pub const LINGER_BYTES: usize = 1 << 20;
/// Refused connections lingering at once; past this a refused connection is closed at
/// once (its 503 may then be lost to a reset: the server is flooded).
pub const MAX_REFUSING: usize = 256;

/// Half-closes `stream`, then drains it (blocking, bounded as the module says).
pub fn linger(stream: &TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let until = Instant::now() + LINGER;
    let mut buf = [0u8; 4096];
    let mut dropped = 0;
    while dropped < LINGER_BYTES {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&*stream).read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => dropped += n,
        }
    }
}

/// Sends refusals (the accept thread's 503) so that each client receives its answer.
#[derive(Clone, Default)]
pub struct Refusals {
    active: Arc<AtomicUsize>,
}

impl Refusals {
    /// Writes `answer` to a freshly accepted `stream` (its send buffer is empty, so the
    /// write does not wait), then lingers on a short-lived thread. With a `transport`
    /// (TLS), the handshake and the answer happen on that thread, within [`LINGER`].
    pub fn refuse(
        &self,
        stream: TcpStream,
        answer: &[u8],
        transport: Option<crate::transport::Transport>,
    ) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        if transport.is_none() {
            let _ = (&stream).write(answer);
        }
        let answer = answer.to_vec();
        if self.active.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return; // dropped: closed at once
        }
        let active = Arc::clone(&self.active);
        let spawned = std::thread::Builder::new()
            .name("refuse".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                if stream.set_nonblocking(false).is_ok() {
                    match transport {
                        Some(mut t) => {
                            let _ = stream.set_read_timeout(Some(LINGER));
                            let _ = stream.set_write_timeout(Some(LINGER));
                            if t.refuse_blocking(&stream, &answer) {
                                linger(&stream);
                            }
                        }
                        None => linger(&stream),
                    }
                }
                active.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            debug!("no thread to linger on a refused connection: {e}");
            self.active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
