//! # host — the platform layer both runtimes share
//!
//! The sans-IO core ([`protocol`]) decides; a runtime drives it; this crate is what a
//! runtime needs from the operating system, written once so that `runtime-std` and
//! `runtime-smol` stay thin drivers that decide no policy of their own:
//!
//! - [`auth`]: passwords for `--auth` — argon2id hashing (`--hash-password`), argon2id
//!   and bcrypt verification, the equal-cost dummy check, the cache of recent checks;
//! - [`cli`]: the command line of SPEC (one clap definition for both binaries, with the
//!   flags only one runtime uses named as such), with the `RFS_*` variables and the
//!   `--config` file under it ([`cli::layers`]), binding, the start line;
//! - [`webroot`]: the web root — one door ([`webroot::WebRoot`]) for opening a file below
//!   it (the open-file cache decides hit or miss inside) and for writing an upload
//!   atomically without overwriting (invalidating the cache);
//! - [`files`]: opening and writing below the root, behind that door;
//! - [`cache`]: the open-file cache behind that door;
//! - [`sendfile`]: file → socket (each platform's `sendfile`, or a buffered copy), and
//!   corking;
//! - [`logging`]: `env_logger` setup (RUST_LOG, `info` by default, timestamps);
//! - [`clock`]: [`protocol::Now`] values and random seeds for upload names;
//! - [`shutdown`]: Ctrl-C / SIGTERM as a flag (and a pollable descriptor on Unix; a
//!   flag checked every 50 ms on Windows), and the shared drain limit;
//! - [`linger`]: closing without losing the last answer;
//! - [`listen`], [`net`]: where the server listens (`--listen`, PORT/HOST, sockets
//!   passed by systemd) and the sockets both runtimes accept on and serve (TCP, Unix);
//! - [`accept`]: the blocking accept loop of a runtime on threads (runtime-std's):
//!   `poll` on the listeners and the shutdown descriptor on Unix, a blocking `accept`
//!   woken by a self-connect elsewhere;
//! - [`notify`]: systemd's `READY=1` / `STOPPING=1` (`NOTIFY_SOCKET`);
//! - [`ops`]: `--metrics` (Prometheus, `/healthz`, `/readyz`) and `--access-log`, fed by
//!   the core's request records.
//!
//! Linux takes its fast paths (`openat2(RESOLVE_BENEATH)`, `sendfile`, `TCP_CORK`,
//! `renameat2(RENAME_NOREPLACE)`); other platforms, and Linux with `PORTABLE_IO=1`,
//! take the portable file-system paths (see [`files`]). Sending a file body:
//!
//! - Linux: `sendfile(2)` + `TCP_CORK`; with `PORTABLE_IO=1`, the buffered copy
//!   (positioned read into a 64 KiB buffer, then `write`), uncorked, and no `sendfile`;
//! - macOS and FreeBSD: their own `sendfile(2)` (libc) + `TCP_NOPUSH`;
//! - Windows (and anything else): the buffered copy, uncorked.
//!
//! See [`sendfile`], and [`portable_sockets`] for what else `PORTABLE_IO=1` switches on
//! Linux.

// What the runtimes use: start-up, the session and its needs, the event loop, the
// socket calls, signals, clocks, logging, the command line's errors.
pub mod accept;
pub mod cli;
pub mod clock;
pub mod event;
pub mod linger;
pub mod listen;
pub mod logging;
pub mod net;
pub mod notify;
pub mod ops;
pub mod sendfile;
pub mod session;
pub mod shutdown;
pub mod start;

// Behind the session: the web root's one door and what is behind it.
pub(crate) mod archive;
pub(crate) mod auth;
pub(crate) mod cache;
pub(crate) mod compress;
pub(crate) mod files;
pub(crate) mod limits;
pub(crate) mod pace;
pub(crate) mod rules;
#[cfg(feature = "s3")]
pub(crate) mod store;
#[cfg(feature = "tls")]
pub(crate) mod tls;
pub(crate) mod webroot;

/// Whether this process takes the portable paths: always off Linux; on Linux when
/// `PORTABLE_IO=1` is in the environment (so that CI runs, here, the code macOS, the BSDs
/// and Windows run). Read once.
pub fn portable_io() -> bool {
    static PORTABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PORTABLE.get_or_init(|| {
        !cfg!(target_os = "linux") || std::env::var_os("PORTABLE_IO").is_some_and(|v| v == "1")
    })
}

/// Whether this process takes the portable *socket* paths — the ones Windows needs: a
/// buffered copy instead of `sendfile`, no corking, and in the runtimes a blocking accept
/// woken by a self-connect, reads that do not wait by toggling non-blocking mode, a flag
/// polled for shutdown. Always off Unix; on Linux when [`portable_io`] is (so that
/// `PORTABLE_IO=1` runs them here); never on the other Unixes, whose Unix paths work.
pub fn portable_sockets() -> bool {
    !cfg!(unix) || (cfg!(target_os = "linux") && portable_io())
}
