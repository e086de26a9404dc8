//! # protocol — the sans-IO core of the server
//!
//! This crate decides everything an HTTP/1.1 file and upload server decides, and does
//! none of the I/O. A runtime (`runtime-std`, `runtime-smol`, or a test) owns the socket,
//! the files and the clock; it feeds one [`Connection`] per TCP connection with what
//! happened and executes the [`Action`]s the connection asks for:
//!
//! ```text
//!   socket bytes ──receive(bytes, now)──▶ ┌────────────┐ ──poll()──▶ Send(bytes)
//!   peer closed  ──receive_eof(now)─────▶ │ Connection │            OpenFile(SafePath)
//!   file opened  ──file_opened(meta)────▶ │  (state    │            SendFile{offset,len}
//!   open failed  ──file_failed(err)─────▶ │  machine)  │            WriteUpload{name,body}
//!   upload done  ──upload_written(res)──▶ │            │            Close
//!   deadline hit ──timeout(now)─────────▶ └────────────┘ ──deadline()──▶ when to call timeout
//! ```
//!
//! Where to look:
//! - [`parse`]: the request head (httparse plus the stricter rules of SPEC "Security").
//! - [`framing`]: `Content-Length` / `Transfer-Encoding`, the chunked decoder.
//! - [`target`]: the request target → a [`SafePath`] below the root (or a refusal).
//! - [`host`]: the `Host` header rules.
//! - [`mime`]: content types and `Content-Disposition`.
//! - [`response`]: response heads, error pages, the `Date` cache.
//! - [`conditional`]: validators (`ETag`, `Last-Modified`), 304, ranges.
//! - [`conn`]: the [`Connection`] state machine that ties them together.
//!
//! Time comes in as [`Now`] values (a monotonic millisecond counter for deadlines and the
//! wall clock in seconds for `Date`); the randomness for upload names comes in as a seed.
//! Nothing here reads a clock, touches a file or a socket, or spawns a thread, so every
//! test is "bytes in, actions out" and runs the same natively and in WebAssembly.

pub mod conditional;
pub mod config;
pub mod conn;
pub mod framing;
pub mod host;
pub mod mime;
pub mod parse;
pub mod response;
pub mod target;

pub use config::Config;
pub use conn::{Action, Connection, FileError, FileMeta, UploadError};
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
