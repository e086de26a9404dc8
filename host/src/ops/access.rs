//! The access log (`--access-log PATH|-`, `--log-format common|combined|json`; SPEC
//! "Operations"): one line per answered request, written by one thread, never in the
//! way of serving (the Logs rule).
//!
//! A session formats each request's line ([`protocol::RequestRecord`], with the peer's
//! address, TLS and the wall time) on its own thread, into that thread's batch: a buffer
//! behind a lock only the writer thread ever contends for, once per batch. No entry
//! crosses threads, and no queue's cache line is shared per request (as no metric is).
//! The writer thread takes every batch each [`BATCH_PAUSE`] while there are lines,
//! puts them in the order their requests ended (a sort of what it took: lines of one
//! connection, whose requests follow each other, keep their order whichever thread
//! served them), writes them and flushes. Idle, it sleeps until a thread's batch gets
//! its first line. A thread whose batch holds its share of [`TOTAL_CAP`] (the writer is behind:
//! a disk that is full or slow, a pipe nobody reads) drops its new lines and counts
//! them (`rfs_log_lines_dropped_total{log="access"}`), as are lines the sink refused:
//! a slow sink stops the writer thread, never a request.
//!
//! SIGUSR1 reopens the file (log rotation: `mv access.log access.log.1; kill -USR1`):
//! lines after the signal go to a new file at PATH; the old file is flushed first, so it
//! ends complete. With `-` (standard output) the first line waits for the server's start
//! line, which scripts read first.
//!
//! Formats (client text escaped as nginx does: `"`, `\`, control and non-ASCII bytes as
//! `\xHH`; an empty field is `-`):
//!
//! ```text
//! common:   127.0.0.1 - alice [03/Dec/2026:10:00:00 +0000] "GET /a.txt HTTP/1.1" 200 218
//! combined: … 200 218 "http://ref/" "curl/8.5.0"
//! json:     {"time":"2026-12-03T10:00:00.123Z","remote_addr":"127.0.0.1","user":"alice",
//!            "method":"GET","target":"/a.txt","protocol":"HTTP/1.1","status":200,
//!            "bytes":218,"duration_ms":0,"referer":null,"user_agent":"curl/8.5.0",
//!            "tls":false}
//! ```
//!
//! The time is when the request head was complete (as Apache's `%t`), in UTC. Bytes
//! that never became a request (their `400`, `408`, …) are logged with the request
//! `"-"` (JSON: `null` method, target and protocol).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use log::{error, info};
use protocol::RequestRecord;

mod format;
use format::format_line;
#[cfg(test)]
use format::{clf_time, escape, number, padded, remote, rfc3339};

/// The bytes of lines all threads' batches hold at most before they drop new ones,
/// shared out among the threads that log ([`CAP`]): each thread's own bound is checked
/// against its own batch alone (no count shared per request).
const TOTAL_CAP: usize = 16 << 20;
/// A thread's bound, whatever the thread count: at least 64 KiB (some 700 lines), at
/// most 1 MiB (some 10,000 lines: 100 ms of one thread's busiest; the writer takes the
/// batches every [`BATCH_PAUSE`], so only a sink that stalls fills one).
const THREAD_CAP: (usize, usize) = (64 << 10, 1 << 20);
/// This thread count's bound on one batch (set by the writer as threads come and go).
static CAP: AtomicUsize = AtomicUsize::new(THREAD_CAP.1);
/// After writing what it took, how long the writer lets the next batches gather. At
/// 100,000 requests a second, 10 ms is about 150 KiB of lines.
const BATCH_PAUSE: Duration = Duration::from_millis(10);

/// The line format of `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The Common Log Format.
    Common,
    /// The Combined Log Format (common, then Referer and User-Agent): what GoAccess,
    /// AWStats and most log tools read by default.
    Combined,
    /// One JSON object a line.
    Json,
}

/// One request, as its line is formatted.
#[derive(Debug)]
pub(crate) struct Entry {
    pub record: RequestRecord,
    /// The client's address; none on a Unix-domain socket (logged `unix:`, as nginx
    /// does).
    pub ip: Option<IpAddr>,
    pub tls: bool,
    /// When the request head was complete: milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// The body bytes (the record's, or what the session counted of a stream).
    pub bytes: u64,
}

/// What wakes the writer besides its pause.
enum Msg {
    /// A batch got its first line while the writer slept.
    Lines,
    /// SIGUSR1 came (the flag says so too: a full channel may not take this). Unix only.
    #[cfg_attr(not(unix), allow(dead_code))]
    Reopen,
    /// Write what the batches hold, then say so.
    Flush(SyncSender<()>),
}

/// The log, once `--access-log` is set up: its format and the writer's channel.
struct Log {
    format: Format,
    wake: SyncSender<Msg>,
}

static LOG: OnceLock<Log> = OnceLock::new();
/// Lines dropped (a full batch, a sink that refused them).
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// SIGUSR1 came and the file is not yet reopened.
static REOPEN: AtomicBool = AtomicBool::new(false);
/// The writer sleeps until told (a batch's first line wakes it).
static IDLE: AtomicBool = AtomicBool::new(false);

/// Lines formatted on one thread, not yet taken by the writer: the bytes, and where
/// each line ends with the key it is ordered by.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    ends: Vec<(u64, usize)>,
}

type Shard = Arc<Mutex<Batch>>;

/// Every thread's batch (and [`ENDED`]'s); a thread's stays until the writer has taken
/// its last lines.
static SHARDS: Mutex<Vec<Shard>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    static LOCAL: Shard = {
        let shard = Shard::default();
        lock(&SHARDS).push(Arc::clone(&shard));
        shard
    };
}

/// The batch of lines from threads that are ending (their own is gone).
static ENDED: OnceLock<Shard> = OnceLock::new();

fn ended() -> Shard {
    let shard = ENDED.get_or_init(|| {
        let shard = Shard::default();
        lock(&SHARDS).push(Arc::clone(&shard));
        shard
    });
    Arc::clone(shard)
}

/// Lines dropped so far.
pub(crate) fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Formats the line of `entry` into this thread's batch, or drops and counts it (never
/// waits but for the writer taking the batch). `key`: when the request ended
/// (nanoseconds of the wall clock), the order lines are written in.
pub(crate) fn send(entry: &Entry, key: u64) {
    send_within(entry, key, CAP.load(Ordering::Relaxed));
}

/// [`send`], with a batch's bound.
fn send_within(entry: &Entry, key: u64, cap: usize) {
    let Some(log) = LOG.get() else { return };
    let add = |shard: &Shard| {
        let mut batch = lock(shard);
        if batch.bytes.len() >= cap {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let first = batch.ends.is_empty();
        format_line(&mut batch.bytes, entry, log.format);
        let end = batch.bytes.len();
        batch.ends.push((key, end));
        drop(batch);
        // The writer was idle: this batch's first line wakes it (read first: no write
        // to the shared flag while it is busy).
        if first && IDLE.load(Ordering::Acquire) && IDLE.swap(false, Ordering::AcqRel) {
            let _ = log.wake.try_send(Msg::Lines);
        }
    };
    if LOCAL.try_with(add).is_err() {
        add(&ended());
    }
}

/// Waits (at most `limit`) until what the batches hold is written: before the process
/// exits.
pub(crate) fn flush(limit: Duration) {
    let Some(log) = LOG.get() else { return };
    let until = Instant::now() + limit;
    let (done_tx, done) = mpsc::sync_channel(1);
    let mut msg = Msg::Flush(done_tx);
    loop {
        match log.wake.try_send(msg) {
            Ok(()) => break,
            Err(mpsc::TrySendError::Full(back)) if Instant::now() < until => {
                msg = back;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => return,
        }
    }
    let _ = done.recv_timeout(until.saturating_duration_since(Instant::now()));
}

/// Where lines go.
enum Sink {
    File(PathBuf, BufWriter<File>),
    Stdout(BufWriter<io::Stdout>),
}

impl Sink {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::File(_, w) => w,
            Sink::Stdout(w) => w,
        }
    }
}

fn open(path: &Path) -> io::Result<BufWriter<File>> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    Ok(BufWriter::with_capacity(64 * 1024, file))
}

/// Opens the log (`-`: standard output) and starts its writer thread and, on Unix, the
/// SIGUSR1 handler; or says in one line why not.
pub(crate) fn start(target: &Path, format: Format) -> Result<(), String> {
    let sink = if target == Path::new("-") {
        Sink::Stdout(BufWriter::with_capacity(64 * 1024, io::stdout()))
    } else {
        let path = target.to_path_buf();
        let w =
            open(&path).map_err(|e| format!("cannot open --access-log {}: {e}", path.display()))?;
        Sink::File(path, w)
    };
    let (wake, rx) = mpsc::sync_channel(64);
    if LOG.set(Log { format, wake }).is_err() {
        return Err("the access log is already set up".into());
    }
    std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || write_out(&rx, sink))
        .map_err(|e| format!("cannot start the access log's writer: {e}"))?;
    #[cfg(unix)]
    {
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGUSR1])
            .map_err(|e| format!("cannot handle SIGUSR1 for the access log: {e}"))?;
        std::thread::Builder::new()
            .name("access-log-reopen".into())
            .spawn(move || {
                for _ in signals.forever() {
                    REOPEN.store(true, Ordering::Release);
                    if let Some(log) = LOG.get() {
                        let _ = log.wake.try_send(Msg::Reopen);
                    }
                }
            })
            .map_err(|e| format!("cannot start the SIGUSR1 handler: {e}"))?;
    }
    Ok(())
}

/// Takes what every batch holds: the lines, in the order their requests ended.
/// `spares`: emptied batches, swapped in for the taken ones (no allocation per turn).
fn take(spares: &mut Vec<Batch>) -> Vec<Batch> {
    let shards: Vec<Shard> = {
        let mut list = lock(&SHARDS);
        let all = list.clone();
        // Held by the list and `all` alone: its thread has ended (a live thread's
        // shard is held by the thread too, [`ENDED`]'s by its static). Its last lines
        // are taken now, and it leaves the list.
        list.retain(|s| Arc::strong_count(s) > 2);
        let share = TOTAL_CAP / list.len().max(1);
        CAP.store(share.clamp(THREAD_CAP.0, THREAD_CAP.1), Ordering::Relaxed);
        all
    };
    let mut taken = Vec::new();
    for shard in &shards {
        let mut batch = lock(shard);
        if !batch.ends.is_empty() {
            let spare = spares.pop().unwrap_or_default();
            taken.push(std::mem::replace(&mut *batch, spare));
        }
    }
    taken
}

/// The writer thread: writes the batches' lines in order, reopens on SIGUSR1.
fn write_out(rx: &Receiver<Msg>, mut sink: Sink) {
    yield_to_serving();
    if matches!(sink, Sink::Stdout(_)) {
        super::wait_announced();
    }
    let mut spares: Vec<Batch> = Vec::new();
    let mut order: Vec<(u64, usize, usize, usize)> = Vec::new();
    let mut idle = false;
    loop {
        let msg = if idle {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(BATCH_PAUSE)
        };
        let ack = match msg {
            Ok(Msg::Flush(ack)) => Some(ack),
            Ok(Msg::Lines | Msg::Reopen) | Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut taken = take(&mut spares);
        if taken.is_empty() && !idle {
            // Nothing came: sleep until a batch's first line says so (and take once
            // more, for a line added just before the flag was up).
            IDLE.store(true, Ordering::SeqCst);
            taken = take(&mut spares);
            idle = taken.is_empty();
            if !idle {
                IDLE.store(false, Ordering::SeqCst);
            }
        } else if !taken.is_empty() {
            idle = false;
        }
        // Each line: its key, batch, start and end; sorted by key (stable: one thread's
        // lines keep their order).
        order.clear();
        for (b, batch) in taken.iter().enumerate() {
            let mut at = 0;
            for &(key, end) in &batch.ends {
                order.push((key, b, at, end));
                at = end;
            }
        }
        order.sort_by_key(|&(key, ..)| key);
        let mut refused = 0;
        for &(_, b, from, to) in &order {
            if sink.writer().write_all(&taken[b].bytes[from..to]).is_err() {
                refused += 1;
            }
        }
        if !order.is_empty() && sink.writer().flush().is_err() {
            refused = order.len() as u64;
        }
        DROPPED.fetch_add(refused, Ordering::Relaxed);
        for mut batch in taken {
            batch.bytes.clear();
            batch.ends.clear();
            spares.push(batch);
        }
        spares.truncate(64);
        if REOPEN.swap(false, Ordering::AcqRel) {
            reopen(&mut sink);
        }
        if let Some(ack) = ack {
            let _ = ack.try_send(());
        }
    }
}

/// The writer thread's niceness (Linux): it wakes each [`BATCH_PAUSE`] under load, and
/// at the default priority its wake-up preempts a serving thread on a busy core. At 10
/// it still gets its share (a few percent of a core, several times what writing the
/// lines takes) whenever it competes, and any idle time; a writer that fell behind
/// drops lines, never a request (the Logs rule).
const WRITER_NICE: i32 = 10;

/// Lowers this thread's priority to [`WRITER_NICE`] (Linux: niceness is per thread);
/// elsewhere, nothing.
fn yield_to_serving() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on this thread's own id; no memory is shared.
        let done = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, WRITER_NICE)
        };
        if done != 0 {
            log::debug!(
                "access log: cannot lower the writer's priority: {}",
                io::Error::last_os_error()
            );
        }
    }
}

/// SIGUSR1: the old file is flushed (it ends complete), the path is opened anew.
fn reopen(sink: &mut Sink) {
    let Sink::File(path, w) = sink else {
        info!("SIGUSR1: the access log is standard output, nothing to reopen");
        return;
    };
    let _ = w.flush();
    match open(path) {
        Ok(new) => {
            *w = new;
            info!("SIGUSR1: access log {} reopened", path.display());
        }
        Err(e) => error!(
            "SIGUSR1: cannot reopen the access log {}: {e}; writing on to the old file",
            path.display()
        ),
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
