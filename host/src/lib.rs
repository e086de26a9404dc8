//! # host — the platform layer both runtimes share
//!
//! The sans-IO core ([`protocol`]) decides; a runtime drives it; this crate is what a
//! runtime needs from the operating system, written once so that `runtime-std` and
//! `runtime-smol` stay thin drivers that decide no policy of their own:
//!
//! - [`cli`]: the command line of SPEC (one clap definition for both binaries, with the
//!   flags only one runtime uses named as such), binding, the start line;
//! - [`files`]: the web root — one door ([`files::Files`]) for opening a file below it
//!   (the open-file cache decides hit or miss inside) and for writing an upload
//!   atomically without overwriting (invalidating the cache);
//! - [`cache`]: the open-file cache behind that door;
//! - [`sendfile`]: zero-copy file → socket, and corking;
//! - [`logging`]: `env_logger` setup (RUST_LOG, `info` by default, timestamps);
//! - [`clock`]: [`protocol::Now`] values and random seeds for upload names;
//! - [`shutdown`]: Ctrl-C / SIGTERM as a flag (and a pollable descriptor on Unix), and
//!   the shared shutdown and linger limits.
//!
//! Linux takes its fast paths (`openat2(RESOLVE_BENEATH)`, `sendfile`, `TCP_CORK`,
//! `renameat2(RENAME_NOREPLACE)`); other platforms, and Linux with `PORTABLE_IO=1`,
//! take the portable ones (see [`files`] and [`sendfile`]).

pub mod cache;
pub mod cli;
pub mod clock;
pub mod files;
pub mod linger;
pub mod logging;
pub mod sendfile;
pub mod shutdown;
pub mod webroot;

/// Whether this process takes the portable paths: always off Linux; on Linux when
/// `PORTABLE_IO=1` is in the environment (so that CI runs, here, the code macOS, the BSDs
/// and Windows run). Read once.
pub fn portable_io() -> bool {
    static PORTABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PORTABLE.get_or_init(|| {
        !cfg!(target_os = "linux") || std::env::var_os("PORTABLE_IO").is_some_and(|v| v == "1")
    })
}
