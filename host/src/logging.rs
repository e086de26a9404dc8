//! Logging setup shared by both runtimes: `env_logger`, `RUST_LOG` honoured, `info` by
//! default, millisecond timestamps, to stderr — and never in the way of serving.
//!
//! A log sink that stops reading (a paused terminal, a stuck collector) would block
//! every thread that logs if lines were written to stderr directly. So a formatted line
//! goes into a bounded queue ([`QUEUE_LINES`]) without waiting, and one writer thread
//! copies the queue to stderr. When the queue is full the line is dropped and counted;
//! once the sink takes lines again, the writer says how many were dropped.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

/// Lines waiting for the sink before new ones are dropped.
pub const QUEUE_LINES: usize = 8192;

/// Lines queued and not yet written (for [`flush`]).
static PENDING: AtomicU64 = AtomicU64::new(0);
/// Lines dropped since start (`rfs_log_lines_dropped_total{log="server"}`); the writer's
/// own count goes back to zero each time it says how many were lost.
static DROPPED_TOTAL: AtomicU64 = AtomicU64::new(0);

/// Log lines dropped since start, because the sink did not keep up or refused them.
pub fn dropped_total() -> u64 {
    DROPPED_TOTAL.load(Ordering::Relaxed)
}

/// Waits (at most `limit`) until the queued lines are written: call before exiting, so
/// that the last lines (the shutdown) are not lost with the writer thread. The access
/// log's queue (`--access-log`) is written out first.
pub fn flush(limit: std::time::Duration) {
    crate::ops::flush(limit);
    let until = std::time::Instant::now() + limit;
    while PENDING.load(Ordering::Acquire) > 0 && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Installs the logger. Calling it twice is harmless (the second call does nothing).
pub fn init() {
    let env = env_logger::Env::default().default_filter_or("info");
    let (writer, rx, dropped) = NonBlocking::new(QUEUE_LINES);
    let installed = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .target(env_logger::Target::Pipe(Box::new(writer)))
        .try_init();
    if installed.is_ok() {
        let spawned = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || copy_out(&rx, &dropped, &mut io::stderr()));
        if let Err(e) = spawned {
            eprintln!("no log writer thread ({e}): log lines will be dropped");
        }
    }
}

/// A `Write` that never blocks: each write is one formatted line, queued or dropped.
pub struct NonBlocking {
    tx: SyncSender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
}

impl NonBlocking {
    /// A writer with a queue of `lines`, the receiving end, and the drop counter.
    pub fn new(lines: usize) -> (NonBlocking, Receiver<Vec<u8>>, Arc<AtomicU64>) {
        let (tx, rx) = mpsc::sync_channel(lines);
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = NonBlocking {
            tx,
            dropped: Arc::clone(&dropped),
        };
        (writer, rx, dropped)
    }
}

impl Write for NonBlocking {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.tx.try_send(buf.to_vec()) {
            Ok(()) => {
                PENDING.fetch_add(1, Ordering::AcqRel);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                DROPPED_TOTAL.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writer thread: copies queued lines to `sink` (blocking only itself), and after
/// lines were dropped says how many, once the sink takes lines again.
pub fn copy_out(rx: &Receiver<Vec<u8>>, dropped: &AtomicU64, sink: &mut impl Write) {
    while let Ok(line) = rx.recv() {
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let _ = writeln!(
                sink,
                "[log] {lost} line(s) dropped: the log sink did not keep up"
            );
        }
        if sink.write_all(&line).is_err() {
            dropped.fetch_add(1, Ordering::Relaxed);
            DROPPED_TOTAL.fetch_add(1, Ordering::Relaxed);
        }
        let _ = sink.flush();
        let _ = PENDING.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_then_says_so() {
        let (mut w, rx, dropped) = NonBlocking::new(2);
        for i in 0..5 {
            w.write_all(format!("line {i}\n").as_bytes())
                .expect("never fails");
        }
        assert_eq!(dropped.load(Ordering::Relaxed), 3);
        drop(w);
        let mut out = Vec::new();
        copy_out(&rx, &dropped, &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "[log] 3 line(s) dropped: the log sink did not keep up\nline 0\nline 1\n"
        );
    }
}
