//! Operating the server (SPEC "Operations"): `--metrics ADDR` (Prometheus metrics,
//! `/healthz`, `/readyz` on a listener of their own) and `--access-log PATH|-` with
//! `--log-format`.
//!
//! Both feed on the core's request records ([`protocol::RequestRecord`]): with either
//! switch on, the core keeps one per answered request ([`protocol::Config::records`]),
//! and the session takes each after the answer is written and hands it to
//! [`Ops::request`] on the thread that served it. From there:
//!
//! - [`metrics`]: counters in per-thread shards (no lock, no shared cache line on the
//!   request path), summed when scraped; the session, the TLS layer, the open-file cache
//!   and the runtimes' refusals count there too;
//! - [`access`]: a bounded queue to one writer thread (drop and count when full),
//!   reopened on SIGUSR1;
//! - [`serve`]: the `--metrics` listener's thread (blocking std, not the serving path);
//! - `process`: `process_*` from `/proc/self` (Linux).
//!
//! Both off, nothing is recorded or counted: the core keeps no records, and a count is
//! one load of a flag.

pub mod access;
pub(crate) mod metrics;
mod process;
pub mod serve;

use std::net::IpAddr;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::RequestRecord;

pub use access::Format;
pub(crate) use metrics::Count;

use crate::shutdown::Shutdown;

/// What `--metrics` and `--access-log` turned on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ops {
    metrics: bool,
    access: bool,
}

impl Ops {
    /// Starts what the flags ask for: the metrics listener on `metrics` (`/readyz` reads
    /// `shutdown`), the access log to `access` in `format`. One line saying why not, for
    /// a start-up failure.
    pub fn start(
        metrics: Option<&str>,
        access: Option<&std::path::Path>,
        format: Format,
        shutdown: &Shutdown,
    ) -> Result<Ops, String> {
        let mut ops = Ops::default();
        if let Some(target) = access {
            access::start(target, format)?;
            ops.access = true;
        }
        if let Some(addr) = metrics {
            metrics::enable();
            serve::start(addr, shutdown.clone())?;
            ops.metrics = true;
        }
        Ok(ops)
    }

    /// Whether the core is to keep request records (either switch on).
    pub fn records(&self) -> bool {
        self.metrics || self.access
    }

    /// One answered request, on the thread that served it: counted, and queued for the
    /// access log. `streamed`: the body bytes the session sent of a stream the core could
    /// not count.
    pub(crate) fn request(
        &self,
        record: RequestRecord,
        ip: Option<IpAddr>,
        tls: bool,
        streamed: u64,
    ) {
        let bytes = record.body_bytes.unwrap_or(streamed);
        if self.metrics {
            let method = metrics::method_index(&record.method);
            metrics::request(method, record.status, record.duration_ms());
            metrics::count(Count::ResponseBytes, bytes);
            if record.auth_failed {
                metrics::count(Count::AuthFailures, 1);
            }
            if let Some(stored) = record.upload {
                match record.status / 100 {
                    2 => {
                        metrics::count(Count::UploadsCreated, 1);
                        metrics::count(Count::UploadBytes, stored);
                    }
                    5 => metrics::count(Count::UploadsFailed, 1),
                    _ => metrics::count(Count::UploadsRefused, 1),
                }
            }
        }
        if self.access {
            let now_ns = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            let unix_ms = (now_ns / 1_000_000).saturating_sub(record.duration_ms());
            let entry = access::Entry {
                record,
                ip,
                tls,
                unix_ms,
                bytes,
            };
            access::send(&entry, now_ns);
        }
    }
}

/// Counts `n` of `what` for `--metrics` (nothing when it is off).
pub(crate) fn count(what: Count, n: u64) {
    metrics::count(what, n);
}

/// The start line is out (see [`crate::start::announce`]): an access log on standard
/// output may begin.
static ANNOUNCED: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// Says that the start line is out.
pub(crate) fn announced() {
    let (flag, cv) = &ANNOUNCED;
    *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
    cv.notify_all();
}

/// Waits until the start line is out.
fn wait_announced() {
    let (flag, cv) = &ANNOUNCED;
    let mut out = flag.lock().unwrap_or_else(|e| e.into_inner());
    while !*out {
        out = cv.wait(out).unwrap_or_else(|e| e.into_inner());
    }
}

/// Waits (at most `limit`) for the access log's queue to be written: before exiting.
pub fn flush(limit: Duration) {
    access::flush(limit);
}
