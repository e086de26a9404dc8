//! The counters of `--metrics`, and their Prometheus text (SPEC "Operations").
//!
//! Counting costs no lock and no shared cache line on the request path: every thread
//! that counts has its own [`Shard`] (a thread-local, 128-byte aligned so that no two
//! threads' counters share a cache line), which only that thread writes, with a plain
//! load and store (no read-modify-write). The shards are registered in a global list;
//! a scrape locks the list and sums them. A thread that ends folds its shard into
//! [`RETIRED`] under the same lock, so no count is lost and the list does not grow with
//! short-lived threads (smol's blocking pool). The list's lock is taken only when a
//! thread counts for the first time, when it ends, and by a scrape.
//!
//! `rfs_connections_open` is a gauge made at the scrape: connections opened minus
//! connections closed (both counters; the two may be counted on different threads, so
//! a scrape racing both may be off by the connections opened or closed meanwhile).
//! Durations are on the core's millisecond clock, as nginx's `$request_time`: the
//! first bucket, 1 ms, holds every request answered within the millisecond.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

/// Whether anything is counted (`--metrics`); off, counting is one load of this flag.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns counting on (once `--metrics` is set up).
pub(crate) fn enable() {
    ENABLED.store(true, Relaxed);
}

/// Whether counting is on.
pub(crate) fn enabled() -> bool {
    ENABLED.load(Relaxed)
}

/// The counters that are a single number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Count {
    ResponseBytes,
    ConnectionsOpened,
    ConnectionsClosed,
    RefusedConnections,
    RefusedQueue,
    UploadsCreated,
    UploadsRefused,
    UploadsFailed,
    UploadBytes,
    AuthFailures,
    TlsHandshakeFailures,
    CacheHits,
    CacheMisses,
}

const COUNTS: usize = Count::CacheMisses as usize + 1;

/// The `method` label: the methods the server routes, `OTHER` (any other token) and
/// `NONE` (bytes that never became a request head: their 400, 408, 414, 431).
pub(crate) const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "OTHER", "NONE",
];

/// The index of a method token in [`METHODS`] (empty: `NONE`).
pub(crate) fn method_index(method: &str) -> usize {
    match method {
        "GET" => 0,
        "HEAD" => 1,
        "POST" => 2,
        "PUT" => 3,
        "DELETE" => 4,
        "OPTIONS" => 5,
        "" => 7,
        _ => 6,
    }
}

/// The status codes registered with IANA; any other (never answered) is counted as
/// `code="other"`.
const CODES: [u16; 63] = [
    100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304,
    305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
    416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505,
    506, 507, 508, 510, 511, 306,
];
const SLOTS: usize = CODES.len() + 1;

/// Status code → its slot in a shard (the last slot: any other code).
static SLOT_OF: [u8; 600] = {
    let mut t = [CODES.len() as u8; 600];
    let mut i = 0;
    while i < CODES.len() {
        t[CODES[i] as usize] = i as u8;
        i += 1;
    }
    t
};

fn slot(status: u16) -> usize {
    SLOT_OF
        .get(usize::from(status))
        .map_or(CODES.len(), |&s| usize::from(s))
}

/// The upper bounds of the duration histogram, in milliseconds.
pub(crate) const BUCKETS_MS: [u64; 14] = [
    1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000,
];

/// One thread's counters (see the module documentation).
#[repr(align(128))]
pub(crate) struct Shard {
    counts: [AtomicU64; COUNTS],
    requests: [[AtomicU64; SLOTS]; METHODS.len()],
    /// Requests per duration bucket (not cumulative; the last is +Inf), and the sum.
    buckets: [AtomicU64; BUCKETS_MS.len() + 1],
    duration_ms: AtomicU64,
}

impl Shard {
    const fn new() -> Shard {
        Shard {
            counts: [const { AtomicU64::new(0) }; COUNTS],
            requests: [const { [const { AtomicU64::new(0) }; SLOTS] }; METHODS.len()],
            buckets: [const { AtomicU64::new(0) }; BUCKETS_MS.len() + 1],
            duration_ms: AtomicU64::new(0),
        }
    }

    /// Every cell, in one order (for folding and summing).
    fn cells(&self) -> impl Iterator<Item = &AtomicU64> {
        self.counts
            .iter()
            .chain(self.requests.iter().flatten())
            .chain(self.buckets.iter())
            .chain(std::iter::once(&self.duration_ms))
    }
}

/// Adds `n` to a cell: a plain load and store on the thread's own shard, an atomic add
/// on a shared one ([`RETIRED`]).
fn add(cell: &AtomicU64, n: u64, own: bool) {
    if own {
        cell.store(cell.load(Relaxed).wrapping_add(n), Relaxed);
    } else {
        cell.fetch_add(n, Relaxed);
    }
}

/// The counts of threads that ended (and of counting during a thread's end).
static RETIRED: Shard = Shard::new();
/// The live threads' shards.
static SHARDS: Mutex<Vec<Arc<Shard>>> = Mutex::new(Vec::new());

fn shards() -> MutexGuard<'static, Vec<Arc<Shard>>> {
    SHARDS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A thread's registration: its shard, folded into [`RETIRED`] when the thread ends.
struct Local(Arc<Shard>);

impl Local {
    fn register() -> Local {
        let shard = Arc::new(Shard::new());
        shards().push(Arc::clone(&shard));
        Local(shard)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let mut list = shards();
        list.retain(|s| !Arc::ptr_eq(s, &self.0));
        for (into, from) in RETIRED.cells().zip(self.0.cells()) {
            into.fetch_add(from.load(Relaxed), Relaxed);
        }
    }
}

thread_local! {
    static LOCAL: Local = Local::register();
}

/// Runs `f` on this thread's shard (`true`: its own), or on [`RETIRED`] while the
/// thread ends.
fn with(f: impl Fn(&Shard, bool)) {
    if LOCAL.try_with(|l| f(&l.0, true)).is_err() {
        f(&RETIRED, false);
    }
}

/// Counts `n` of `what` (nothing unless `--metrics` is on).
pub(crate) fn count(what: Count, n: u64) {
    if enabled() {
        with(|s, own| add(&s.counts[what as usize], n, own));
    }
}

/// Counts one answered request: its method (index in [`METHODS`]), status and duration.
pub(crate) fn request(method: usize, status: u16, duration_ms: u64) {
    if !enabled() {
        return;
    }
    let bucket = BUCKETS_MS
        .iter()
        .position(|&le| duration_ms <= le)
        .unwrap_or(BUCKETS_MS.len());
    with(|s, own| {
        add(
            &s.requests[method.min(METHODS.len() - 1)][slot(status)],
            1,
            own,
        );
        add(&s.buckets[bucket], 1, own);
        add(&s.duration_ms, duration_ms, own);
    });
}

/// The sum of every shard, live and retired.
pub(crate) struct Totals {
    counts: [u64; COUNTS],
    requests: [[u64; SLOTS]; METHODS.len()],
    buckets: [u64; BUCKETS_MS.len() + 1],
    duration_ms: u64,
}

impl Totals {
    pub(crate) fn get(&self, what: Count) -> u64 {
        self.counts[what as usize]
    }

    /// Requests answered with `method` (a token, or `""` for `NONE`) and `status`.
    #[cfg(test)]
    pub(crate) fn requests(&self, method: &str, status: u16) -> u64 {
        self.requests[method_index(method)][slot(status)]
    }
}

/// Sums every shard (under the list's lock, so that a thread ending meanwhile is
/// counted once).
pub(crate) fn totals() -> Totals {
    let mut sum = vec![0u64; Shard::new().cells().count()];
    let list = shards();
    for shard in list.iter().map(|s| &**s).chain(std::iter::once(&RETIRED)) {
        for (total, cell) in sum.iter_mut().zip(shard.cells()) {
            *total = total.wrapping_add(cell.load(Relaxed));
        }
    }
    drop(list);
    let mut cells = sum.into_iter();
    let mut next = || cells.next().unwrap_or(0);
    let mut t = Totals {
        counts: [0; COUNTS],
        requests: [[0; SLOTS]; METHODS.len()],
        buckets: [0; BUCKETS_MS.len() + 1],
        duration_ms: 0,
    };
    t.counts.iter_mut().for_each(|c| *c = next());
    t.requests.iter_mut().flatten().for_each(|c| *c = next());
    t.buckets.iter_mut().for_each(|c| *c = next());
    t.duration_ms = next();
    t
}

/// Writes one family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The Prometheus text format (version 0.0.4) of everything counted, with the log
/// lines dropped (`server`: the server's log, `access`: the access log) and the
/// process's own figures.
pub(crate) fn render(dropped_server: u64, dropped_access: u64) -> String {
    let t = totals();
    let mut out = String::with_capacity(4096);
    family(
        &mut out,
        "rfs_http_requests_total",
        "counter",
        "HTTP requests answered, by method and status code.",
    );
    for (m, name) in METHODS.iter().enumerate() {
        for (s, &n) in t.requests[m].iter().enumerate() {
            if n > 0 {
                let code = CODES.get(s).map_or("other".to_string(), u16::to_string);
                let _ = writeln!(
                    out,
                    "rfs_http_requests_total{{method=\"{name}\",code=\"{code}\"}} {n}"
                );
            }
        }
    }
    family(
        &mut out,
        "rfs_http_request_duration_seconds",
        "histogram",
        "Time from a complete request head to its answer written (millisecond clock).",
    );
    let mut cumulative = 0;
    for (i, n) in t.buckets.iter().enumerate() {
        cumulative += n;
        let le = match BUCKETS_MS.get(i) {
            Some(ms) => seconds(*ms),
            None => "+Inf".to_string(),
        };
        let _ = writeln!(
            out,
            "rfs_http_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "rfs_http_request_duration_seconds_sum {}\nrfs_http_request_duration_seconds_count {cumulative}",
        seconds(t.duration_ms)
    );
    let simple: [(&str, &str, &str, u64); 5] = [
        (
            "rfs_http_response_bytes_total",
            "counter",
            "Body bytes of the answers (none for HEAD, 204, 304).",
            t.get(Count::ResponseBytes),
        ),
        (
            "rfs_connections_open",
            "gauge",
            "Connections being served now.",
            t.get(Count::ConnectionsOpened)
                .saturating_sub(t.get(Count::ConnectionsClosed)),
        ),
        (
            "rfs_connections_total",
            "counter",
            "Connections accepted and served (not those refused).",
            t.get(Count::ConnectionsOpened),
        ),
        (
            "rfs_upload_bytes_total",
            "counter",
            "Bytes of the uploads created.",
            t.get(Count::UploadBytes),
        ),
        (
            "rfs_auth_failures_total",
            "counter",
            "Credentials that failed (wrong password, unknown user, unreadable).",
            t.get(Count::AuthFailures),
        ),
    ];
    for (name, kind, help, n) in simple {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {n}");
    }
    family(
        &mut out,
        "rfs_connections_refused_total",
        "counter",
        "Connections refused with 503 (or closed unanswered in a flood), by reason.",
    );
    for (reason, what) in [
        ("max_connections", Count::RefusedConnections),
        ("queue_full", Count::RefusedQueue),
    ] {
        let _ = writeln!(
            out,
            "rfs_connections_refused_total{{reason=\"{reason}\"}} {}",
            t.get(what)
        );
    }
    family(
        &mut out,
        "rfs_uploads_total",
        "counter",
        "Uploads (PUT, POST /upload) by result: created (2xx), refused (4xx), failed (5xx).",
    );
    for (result, what) in [
        ("created", Count::UploadsCreated),
        ("refused", Count::UploadsRefused),
        ("failed", Count::UploadsFailed),
    ] {
        let _ = writeln!(
            out,
            "rfs_uploads_total{{result=\"{result}\"}} {}",
            t.get(what)
        );
    }
    let more: [(&str, &str, u64); 3] = [
        (
            "rfs_tls_handshake_failures_total",
            "TLS handshakes that failed: refused, plain HTTP, closed or not done in time.",
            t.get(Count::TlsHandshakeFailures),
        ),
        (
            "rfs_file_cache_hits_total",
            "Opens answered by the open-file cache.",
            t.get(Count::CacheHits),
        ),
        (
            "rfs_file_cache_misses_total",
            "Opens the open-file cache could not answer (the file was opened).",
            t.get(Count::CacheMisses),
        ),
    ];
    for (name, help, n) in more {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {n}");
    }
    family(
        &mut out,
        "rfs_log_lines_dropped_total",
        "counter",
        "Log lines dropped because their sink did not keep up, by log (server, access).",
    );
    let _ = writeln!(
        out,
        "rfs_log_lines_dropped_total{{log=\"server\"}} {dropped_server}\n\
         rfs_log_lines_dropped_total{{log=\"access\"}} {dropped_access}"
    );
    super::process::render(&mut out);
    out
}

/// Milliseconds as seconds, exactly (`1500` → `1.5`).
fn seconds(ms: u64) -> String {
    let (s, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        return s.to_string();
    }
    let text = format!("{s}.{frac:03}");
    text.trim_end_matches('0').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_exact() {
        assert_eq!(seconds(1), "0.001");
        assert_eq!(seconds(250), "0.25");
        assert_eq!(seconds(1000), "1");
        assert_eq!(seconds(61_500), "61.5");
    }

    #[test]
    fn every_code_has_its_slot() {
        for (i, &c) in CODES.iter().enumerate() {
            assert_eq!(slot(c), i);
        }
        assert_eq!(slot(299), CODES.len());
        assert_eq!(slot(999), CODES.len());
    }

    #[test]
    fn threads_that_end_keep_their_counts() {
        enable();
        let before = totals();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..1000 {
                        count(Count::CacheHits, 1);
                        request(method_index("PATCH"), 299, 7);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let after = totals();
        assert_eq!(
            after.get(Count::CacheHits) - before.get(Count::CacheHits),
            8000
        );
        assert_eq!(
            after.requests("PATCH", 299) - before.requests("PATCH", 299),
            8000
        );
        // Their shards were folded, not kept.
        assert!(shards().len() < 8, "{}", shards().len());
        let text = render(0, 0);
        assert!(text.contains("rfs_http_requests_total{method=\"OTHER\",code=\"other\"}"));
    }
}
