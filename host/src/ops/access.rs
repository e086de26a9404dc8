//! The access log (`--access-log PATH|-`, `--log-format common|combined|json`; SPEC
//! "Operations"): one line per answered request, written by one thread, never in the
//! way of serving (the Logs rule).
//!
//! A session hands each request's record ([`protocol::RequestRecord`], with the peer's
//! address, TLS and the wall time) to a bounded queue ([`QUEUE`] entries) without
//! waiting; the writer thread formats the entries and writes them in batches (a
//! buffered writer flushed whenever the queue is empty). When the queue is full the
//! entry is dropped and counted (`rfs_log_lines_dropped_total{log="access"}`), as is a
//! line the sink refused: a disk that is full or a pipe nobody reads stops the writer
//! thread, never a request.
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use log::{error, info};
use protocol::RequestRecord;

/// Entries waiting for the writer before new ones are dropped.
pub const QUEUE: usize = 8192;
/// After writing a batch, how long the writer lets the next one gather. At 100,000
/// requests a second, 10 ms is 1,000 entries: well within [`QUEUE`].
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

/// One request, as the writer formats it.
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

enum Msg {
    Entry(Entry),
    /// SIGUSR1 came (the flag says so too: a full queue may not take this). Unix only.
    #[cfg_attr(not(unix), allow(dead_code))]
    Reopen,
    /// Write what is queued, then say so.
    Flush(SyncSender<()>),
}

/// The writer's end, once `--access-log` is set up.
static QUEUED: OnceLock<SyncSender<Msg>> = OnceLock::new();
/// Entries dropped (a full queue, a sink that refused them).
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// SIGUSR1 came and the file is not yet reopened.
static REOPEN: AtomicBool = AtomicBool::new(false);

/// Entries dropped so far.
pub(crate) fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Hands an entry to the writer, or drops and counts it (never waits).
pub(crate) fn send(entry: Entry) {
    let Some(tx) = QUEUED.get() else { return };
    match tx.try_send(Msg::Entry(entry)) {
        Ok(()) => {}
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Waits (at most `limit`) until what is queued is written: before the process exits.
pub(crate) fn flush(limit: Duration) {
    let Some(tx) = QUEUED.get() else { return };
    let until = Instant::now() + limit;
    let (done_tx, done) = mpsc::sync_channel(1);
    let mut msg = Msg::Flush(done_tx);
    loop {
        match tx.try_send(msg) {
            Ok(()) => break,
            Err(TrySendError::Full(back)) if Instant::now() < until => {
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
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    if QUEUED.set(tx).is_err() {
        return Err("the access log is already set up".into());
    }
    std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || write_out(&rx, sink, format))
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
                    if let Some(tx) = QUEUED.get() {
                        let _ = tx.try_send(Msg::Reopen);
                    }
                }
            })
            .map_err(|e| format!("cannot start the SIGUSR1 handler: {e}"))?;
    }
    Ok(())
}

/// The writer thread: formats and writes entries in batches, reopens on SIGUSR1.
fn write_out(rx: &Receiver<Msg>, mut sink: Sink, format: Format) {
    if matches!(sink, Sink::Stdout(_)) {
        super::wait_announced();
    }
    let mut line = Vec::with_capacity(512);
    let mut unflushed = 0u64;
    let mut acks: Vec<SyncSender<()>> = Vec::new();
    loop {
        // Block for the next message only when everything is written.
        let msg = if unflushed == 0 && acks.is_empty() {
            match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            }
        } else {
            match rx.recv_timeout(Duration::ZERO) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        match msg {
            Some(Msg::Entry(e)) => {
                line.clear();
                format_line(&mut line, &e, format);
                if sink.writer().write_all(&line).is_err() {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                } else {
                    unflushed += 1;
                }
            }
            Some(Msg::Reopen) => {}
            Some(Msg::Flush(ack)) => acks.push(ack),
            None => {
                // The queue is empty: the batch goes out.
                let wrote = unflushed > 0;
                if sink.writer().flush().is_err() {
                    DROPPED.fetch_add(unflushed, Ordering::Relaxed);
                }
                unflushed = 0;
                for ack in acks.drain(..) {
                    let _ = ack.try_send(());
                }
                // Under load, let the next batch gather: a writer blocked in `recv` is
                // woken by every entry (a futex wake-up and a context switch per
                // request, measured at 10-25 % of the requests a second on 2 cores); one
                // that sleeps is woken by none.
                if wrote {
                    std::thread::sleep(BATCH_PAUSE);
                }
            }
        }
        if REOPEN.swap(false, Ordering::AcqRel) {
            reopen(&mut sink);
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

/// One line of `format`, with its line end.
pub(crate) fn format_line(out: &mut Vec<u8>, e: &Entry, format: Format) {
    match format {
        Format::Common => clf(out, e, false),
        Format::Combined => clf(out, e, true),
        Format::Json => json(out, e),
    }
    out.push(b'\n');
}

/// A client's address as the log shows it: the IP address, or `unix:` for a client of
/// a Unix-domain socket (nginx's `$remote_addr` there).
fn remote(out: &mut Vec<u8>, ip: Option<IpAddr>) {
    match ip {
        Some(IpAddr::V4(v4)) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                number(out, u64::from(octet));
            }
        }
        Some(ip) => {
            let _ = write!(out, "{ip}");
        }
        None => out.extend_from_slice(b"unix:"),
    }
}

/// `n` in decimal. The writer formats a line per request: numbers, dates and addresses
/// are written by hand rather than through `core::fmt` (a profile put that at about
/// half of the writer thread's time).
fn number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// `n` in decimal, at least `width` digits (zeros in front).
fn padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut len = 1;
    let mut rest = n;
    while rest >= 10 {
        rest /= 10;
        len += 1;
    }
    out.extend(std::iter::repeat_n(b'0', width.saturating_sub(len)));
    number(out, n);
}

/// The Common (and, `combined`, the Combined) Log Format.
fn clf(out: &mut Vec<u8>, e: &Entry, combined: bool) {
    let r = &e.record;
    remote(out, e.ip);
    out.extend_from_slice(b" - ");
    match r.user.as_deref() {
        Some(user) if !user.is_empty() => escape(out, user, true),
        _ => out.push(b'-'),
    }
    out.extend_from_slice(b" [");
    clf_time(out, e.unix_ms / 1000);
    out.extend_from_slice(b"] \"");
    if r.parsed() {
        escape(out, &r.method, false);
        out.push(b' ');
        escape(out, &r.target, false);
        out.push(b' ');
        out.extend_from_slice(r.version.as_str().as_bytes());
    } else {
        out.push(b'-');
    }
    out.extend_from_slice(b"\" ");
    number(out, u64::from(r.status));
    out.push(b' ');
    number(out, e.bytes);
    if combined {
        for field in [&r.referer, &r.user_agent] {
            out.extend_from_slice(b" \"");
            match field.as_deref() {
                Some(v) if !v.is_empty() => escape(out, v, false),
                _ => out.push(b'-'),
            }
            out.push(b'"');
        }
    }
}

/// Client text in a log field: printable ASCII kept, `"`, `\` (and in an unquoted
/// field, a space), control and non-ASCII bytes as `\xHH` (as nginx writes them).
fn escape(out: &mut Vec<u8>, s: &str, unquoted: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let kept =
        |b: u8| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\' || b == b' ' && !unquoted;
    if s.bytes().all(kept) {
        return out.extend_from_slice(s.as_bytes());
    }
    for b in s.bytes() {
        if kept(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]);
        }
    }
}

/// One JSON object (a string with anything to escape goes through serde_json).
fn json(out: &mut Vec<u8>, e: &Entry) {
    let r = &e.record;
    let string = |out: &mut Vec<u8>, s: Option<&str>| match s {
        Some(s) if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') => {
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        }
        Some(s) => {
            let _ = serde_json::to_writer(&mut *out, s);
        }
        None => out.extend_from_slice(b"null"),
    };
    out.extend_from_slice(b"{\"time\":\"");
    rfc3339(out, e.unix_ms);
    out.extend_from_slice(b"\",\"remote_addr\":\"");
    remote(out, e.ip);
    out.extend_from_slice(b"\",\"user\":");
    string(out, r.user.as_deref());
    out.extend_from_slice(b",\"method\":");
    let parsed = r.parsed();
    string(out, parsed.then_some(&*r.method));
    out.extend_from_slice(b",\"target\":");
    string(out, parsed.then_some(r.target.as_str()));
    out.extend_from_slice(b",\"protocol\":");
    string(out, parsed.then_some(r.version.as_str()));
    out.extend_from_slice(b",\"status\":");
    number(out, u64::from(r.status));
    out.extend_from_slice(b",\"bytes\":");
    number(out, e.bytes);
    out.extend_from_slice(b",\"duration_ms\":");
    number(out, r.duration_ms());
    out.extend_from_slice(b",\"referer\":");
    string(out, r.referer.as_deref());
    out.extend_from_slice(b",\"user_agent\":");
    string(out, r.user_agent.as_deref());
    out.extend_from_slice(if e.tls {
        b",\"tls\":true}"
    } else {
        b",\"tls\":false}"
    });
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `03/Dec/2026:10:00:00 +0000`.
fn clf_time(out: &mut Vec<u8>, secs: u64) {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let secs = i64::try_from(secs).unwrap_or(0);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400) as u64;
    padded(out, u64::from(d), 2);
    out.push(b'/');
    out.extend_from_slice(MONTHS[(m as usize).saturating_sub(1) % 12]);
    out.push(b'/');
    padded(out, y.max(0) as u64, 4);
    for (sep, n) in [(b':', t / 3600), (b':', t / 60 % 60), (b':', t % 60)] {
        out.push(sep);
        padded(out, n, 2);
    }
    out.extend_from_slice(b" +0000");
}

/// `2026-12-03T10:00:00.123Z`.
fn rfc3339(out: &mut Vec<u8>, ms: u64) {
    let secs = i64::try_from(ms / 1000).unwrap_or(0);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400) as u64;
    padded(out, y.max(0) as u64, 4);
    out.push(b'-');
    padded(out, u64::from(m), 2);
    out.push(b'-');
    padded(out, u64::from(d), 2);
    out.push(b'T');
    padded(out, t / 3600, 2);
    out.push(b':');
    padded(out, t / 60 % 60, 2);
    out.push(b':');
    padded(out, t % 60, 2);
    out.push(b'.');
    padded(out, ms % 1000, 3);
    out.push(b'Z');
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
