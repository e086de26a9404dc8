//! Server settings the core needs: who we are (for `Host`), limits and deadlines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::access::AccessControl;
use crate::authority::HostPolicy;
use crate::cors::Cors;

/// Settings shared by every connection of one server. Build it once with
/// [`Config::new`] and share it (`Arc<Config>`).
#[derive(Clone, Debug)]
pub struct Config {
    /// The `Host` rules derived from the bind address, the port and `--allow-host`.
    pub hosts: HostPolicy,
    /// No bytes from the client for this long closes an idle connection (ms).
    pub idle_timeout_ms: u64,
    /// A request head must be complete this long after its first byte (ms); else 408.
    pub head_timeout_ms: u64,
    /// A request body must be complete this long after its head (ms); else 408.
    pub body_timeout_ms: u64,
    /// Requests answered on one connection before it closes.
    pub max_requests: u32,
    /// The largest request body accepted in memory (a JSON upload; bytes); a larger one
    /// gets 413.
    pub max_body: u64,
    /// The largest streamed upload (`PUT`, a multipart form; bytes): 413 past it.
    pub max_upload: u64,
    /// `Cache-Control` value sent with file responses (empty: none).
    pub cache_control: String,
    /// The `Server` header value.
    pub server_name: String,
    /// Which file-name rules the platform needs beyond the portable ones.
    pub path_rules: PathRules,
    /// `--dir-listing`: a directory without `index.html` is listed (else 404).
    pub dir_listing: bool,
    /// The memory all upload bodies in flight may hold together (every connection of a
    /// server shares it); past it, `503` with `Retry-After`.
    pub body_budget: Arc<BodyBudget>,
    /// `--auth` / `--auth-file`: who may read and write (`None`: open to all).
    pub access: Option<Arc<AccessControl>>,
    /// `--cors`: which origins' pages may read the answers (`None`: no CORS headers).
    pub cors: Option<Arc<Cors>>,
    /// `--header 'Name: value'`: fields added to every answer.
    pub headers: Vec<(String, String)>,
    /// `--compress`: compressible answers are compressed on the fly (zstd, br, gzip).
    pub compress: bool,
    /// `--spa`: a GET or HEAD of a missing path without an extension, from a client
    /// that accepts `text/html`, is answered with `/index.html`.
    pub spa: bool,
    /// `--http2`: HTTP/2 is spoken (ALPN `h2` under TLS, the preface in clear text).
    /// The core does not read it; the session decides which protocol a connection
    /// speaks.
    pub http2: bool,
    /// Keep a record of every answered request for the runtime
    /// ([`crate::Connection::take_record`]: `--access-log`, `--metrics`).
    pub records: bool,
}

/// A byte budget shared by the connections of one server: upload bodies are held in
/// memory until written, and together they may not exceed the limit. An atomic counter,
/// not I/O: the core stays deterministic for one connection.
#[derive(Debug)]
pub struct BodyBudget {
    limit: u64,
    used: AtomicU64,
}

impl BodyBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        BodyBudget {
            limit,
            used: AtomicU64::new(0),
        }
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Takes `n` bytes if they fit.
    pub(crate) fn take(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    /// Gives `n` bytes back.
    pub(crate) fn give(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// The default of `--max-body-memory`: 256 MiB of upload bodies in flight.
pub const DEFAULT_BODY_BUDGET: u64 = 256 << 20;

/// File-name rules that depend on the platform the runtime serves from. The core is
/// platform-free: the runtime says which apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PathRules {
    /// Unix: only the portable rules of SPEC "Security".
    #[default]
    Posix,
    /// Windows also refuses (403) names it would resolve somewhere unexpected: reserved
    /// device names (`CON`, `NUL`, `COM1`, … with any extension), `:` (alternate data
    /// streams, drive letters), trailing dots and spaces, the characters `<>"|?*`, and
    /// 8.3 short names (`PROGRA~1`).
    Windows,
}

/// The request-head limit (bytes): a longer head gets 431 (414 for a long target).
pub const MAX_HEAD: usize = 8 * 1024;
/// The most header fields in one request; more gets 431.
pub const MAX_HEADERS: usize = 100;
/// The longest method token; longer gets 400.
pub const MAX_METHOD: usize = 32;

impl Config {
    /// Settings for a server bound to `bind_host:port` with the SPEC's defaults.
    pub fn new(bind_host: &str, port: u16, allow_hosts: &[String]) -> Self {
        Config {
            hosts: HostPolicy::new(bind_host, port, allow_hosts),
            idle_timeout_ms: 30_000,
            head_timeout_ms: 10_000,
            body_timeout_ms: 60_000,
            max_requests: 100,
            max_body: 10 * 1024 * 1024,
            max_upload: 1 << 30,
            cache_control: "no-cache".to_string(),
            server_name: concat!("rust-file-server/", env!("CARGO_PKG_VERSION")).to_string(),
            path_rules: PathRules::default(),
            dir_listing: false,
            body_budget: Arc::new(BodyBudget::new(DEFAULT_BODY_BUDGET)),
            access: None,
            cors: None,
            headers: Vec::new(),
            compress: true,
            spa: false,
            http2: true,
            records: false,
        }
    }

    /// The idle timeout in whole seconds, as advertised in `Keep-Alive: timeout=`.
    pub fn idle_timeout_secs(&self) -> u64 {
        self.idle_timeout_ms / 1000
    }
}
