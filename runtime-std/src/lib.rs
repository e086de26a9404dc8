//! # runtime-std — the thread-pool runtime, and the code both runtimes share
//!
//! The binary (`src/main.rs`, `src/server.rs`) drives the sans-IO [`protocol`] core with
//! blocking `std::net` sockets: the main thread only accepts, a bounded queue hands each
//! socket to one of MAX_THREADS worker threads, and a worker owns its connection for its
//! whole life, executing the core's actions:
//!
//! ```text
//!  accept ─▶ queue (--queue) ─▶ worker: read ─▶ Connection::receive ─▶ poll() actions
//!    │ full                          Send      → buffered, one write before the next read
//!    ▼                               OpenFile  → files::Root::open_file (openat2, beneath root)
//!  503 + close                       SendFile  → small: pread into the buffer; large: sendfile
//!                                    WriteUpload → files::Root::write_upload (atomic)
//!                                    Close     → flush and close
//! ```
//!
//! This library is what runtime-smol uses too, so that both runtimes behave the same:
//! - [`cli`]: the command line of SPEC (one clap definition), binding, the start line;
//! - [`files`]: the web root — opening files so that nothing outside it is ever read,
//!   and writing uploads atomically without overwriting;
//! - [`sendfile`]: zero-copy file → socket (`sendfile(2)`), blocking or not;
//! - [`logging`]: `env_logger` setup (RUST_LOG, `info` by default, timestamps);
//! - [`clock`]: [`protocol::Now`] values and random seeds for upload names;
//! - [`shutdown`]: Ctrl-C / SIGTERM as a flag and a pollable file descriptor.

pub mod cache;
pub mod cli;
pub mod clock;
pub mod files;
pub mod logging;
pub mod sendfile;
pub mod shutdown;
