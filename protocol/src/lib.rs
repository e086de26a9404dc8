//! # protocol — the sans-IO core of the server
//!
//! This crate decides everything an HTTP/1.1 file and upload server decides, and does
//! none of the I/O. A runtime (`runtime-std`, `runtime-smol`, or a test) owns the socket,
//! the files and the clock; it feeds one [`Connection`] per TCP connection with what
//! happened and executes the [`Action`]s the connection asks for:
//!
//! ```text
//!                 handle(now, Input)                    poll() -> Action
//!   Received(bytes) ─┐                           ┌─▶ Send(bytes) · Continue
//!   Eof              │                           ├─▶ OpenFile(SafePath)
//!   FileOpened(res)  │      ┌────────────┐       ├─▶ SendFile { offset, len }
//!   DirListed(res)   ├────▶ │ Connection │ ──────┼─▶ ListDir(SafePath)
//!   UploadWritten(r) │      └────────────┘       ├─▶ WriteUpload { name, body }
//!   Written          │            │              └─▶ Close
//!   WriteFailed      │            │
//!   Timeout, Drain  ─┘            └── wait() -> Read { until } · Runtime · Closed
//! ```
//!
//! Every input carries the time ([`Now`]); one answer is in flight at a time, and the
//! runtime says when it has been written ([`Input::Written`]), so deadlines and the
//! access log follow what really happened on the wire.
//!
//! Where to look:
//! - `conn/`: the [`Connection`] state machine (`mod.rs`), and beside it the jobs it
//!   delegates: reading bodies, routing and `Host`, answering a file, uploads, writing
//!   answers and the access log.
//! - `parse`: the request head (httparse plus the stricter rules of SPEC "Security").
//! - `framing`: `Content-Length` / `Transfer-Encoding`, the chunked decoder.
//! - `target`: the request target → a [`SafePath`] below the root (or a refusal).
//! - `authority`: the `Host` header rules (and `:authority` later). `mime`: content types and `Content-Disposition`.
//! - `response`: response heads, the one error-page writer, dates.
//! - `conditional`: validators (`ETag`, `Last-Modified`), 412, 304, ranges.
//! - `syntax`: RFC 9110 token and list helpers (a leaf module).
//! - `h2/`: HTTP/2 codecs (not yet used by the connection): frames (`h2::frame`,
//!   `h2::settings`) and HPACK header compression (`h2::hpack`).
//! - Pieces not wired into `conn/` yet, each self-contained and tested on its own:
//!   `access` (the `--auth` rules, the decision, `Basic`, the failure limiter), `cors`
//!   (the `--cors` policy and its headers), `encoding` (`Accept-Encoding`
//!   negotiation), `multipart` (a streaming `multipart/form-data` parser), `filename`
//!   (safe names for uploaded files).
//!
//! The public API is what a runtime drives: [`Connection`], [`Input`], [`Action`],
//! [`Wait`], [`Config`], [`Now`], [`SafePath`], the result types, [`overload_response`],
//! and the [`RequestRecord`] of each answered request (the access log and metrics:
//! [`Connection::take_record`]). The
//! modules themselves are public only with the `internals` feature, for the fuzz
//! targets. The `sim` feature adds the module `sim`: one connection driven in memory at a
//! simulated time against a fake file system and upload store, shared by this crate's
//! tests, its benchmark and the fuzz targets.
//!
//! Time comes in as [`Now`] values (a monotonic millisecond counter for deadlines and the
//! wall clock in seconds for `Date`); the randomness for upload names comes in as a seed.
//! Nothing here reads a clock, touches a file or a socket, or spawns a thread, so every
//! test is "bytes in, actions out" and runs the same natively and in WebAssembly.

/// Declares modules that are private, or public with the `internals` feature (the
/// fuzz targets call the parser and the chunked decoder directly).
macro_rules! internal {
    ($($name:ident),*) => {$(
        #[cfg(feature = "internals")]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        mod $name;
    )*};
}

internal!(
    access,
    authority,
    conditional,
    config,
    cors,
    encoding,
    filename,
    framing,
    h2,
    listing,
    mime,
    multipart,
    parse,
    response,
    syntax,
    target
);
mod conn;
#[cfg(feature = "sim")]
pub mod sim;

pub use access::{
    parse_basic, parse_rule, Access, AccessControl, Decision, FailureLimiter, Perm, Rule,
    RuleError, Rules,
};
pub use authority::HostPolicy;
pub use config::{BodyBudget, Config, PathRules, DEFAULT_BODY_BUDGET};
pub use conn::{
    Action, Compressed, Connection, Credentials, FileError, FileMeta, HttpVersion, Input,
    RequestRecord, UploadError, UploadTarget, Wait,
};
pub use cors::{AllowOrigin, Cors, CorsError};
pub use encoding::{negotiate, Coding};
pub use filename::{numbered as numbered_file_name, sanitize as sanitize_file_name};
pub use h2::refusal::H2Refusal;
pub use h2::server::{H2Action, H2Input, H2Server, PREFACE as H2_PREFACE};

/// Whether `b` may appear in a token (a header name, a method: RFC 9110 §5.6.2).
pub fn is_token_byte(b: u8) -> bool {
    syntax::is_tchar(b)
}

/// The interim answer of [`Action::Continue`] in HTTP/1.1.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
pub use listing::{DirEntry, Listing, MAX_READ as MAX_LISTED};
pub use multipart::{
    boundary_of, Event as MultipartEvent, MultipartError, Parser as MultipartParser,
};
pub use response::overload_response;
pub use target::SafePath;

/// The time as the runtime sees it when it hands an event to the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Now {
    /// A monotonic clock in milliseconds (any origin); deadlines are on this clock.
    pub mono_ms: u64,
    /// Wall-clock seconds since the Unix epoch, for the `Date` header.
    pub unix_secs: u64,
}

impl Now {
    /// A `Now` with both clocks given.
    pub const fn new(mono_ms: u64, unix_secs: u64) -> Self {
        Now { mono_ms, unix_secs }
    }
}

/// A refusal of a request: the status to answer, a short reason for the page and the
/// log, and whether the connection must close after the answer (framing errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
    pub close: bool,
}

impl Refusal {
    pub const fn close(status: u16, reason: &'static str) -> Self {
        Refusal {
            status,
            reason,
            close: true,
        }
    }
    pub const fn keep(status: u16, reason: &'static str) -> Self {
        Refusal {
            status,
            reason,
            close: false,
        }
    }
}
