//! Start-up, written once for both runtimes: the command line, logging, the web root and
//! its upload store, HTTPS, the descriptor limit, the listening sockets (`--listen`,
//! PORT/HOST, or systemd's: [`crate::listen`]), the signals, and the start lines. A
//! runtime calls [`start`], then serves each of [`Started::listeners`] with sessions of
//! the service beside it, and calls [`Started::announce`] once it accepts connections
//! (which also tells systemd `READY=1`, [`crate::notify`]).
//!
//! Each listener has a service of its own, for its own `Host` rules (its host and port;
//! any valid `Host` on a Unix socket); the web root, its caches, HTTPS, the credentials
//! and the upload memory budget are shared by all.
//!
//! A start-up failure (a missing root, a busy port, an unusable certificate or store) is
//! one line on stderr and exit 1 ([`crate::cli::fail`]); a bad argument is clap's usage
//! error, exit 2.

use std::io::Write;
use std::sync::Arc;

use log::{info, warn};

use crate::cli::{self, Args, Runtime};
use crate::clock::Clock;
use crate::files::Root;
use crate::net::{Listener, Local};
use crate::notify::Notify;
use crate::session::{Schedule, Service};
use crate::shutdown::Shutdown;

/// A server ready to accept connections.
pub struct Started {
    pub args: Args,
    /// The first listener's service: the clock and the open-file cache's change
    /// notification are every listener's.
    pub service: Arc<Service>,
    /// Where the server listens, in the order given, each with the service of its
    /// sessions. A runtime drops them as soon as it drains (new connections are then
    /// refused, and a Unix socket file the server made is removed).
    pub listeners: Vec<(Listener, Arc<Service>)>,
    pub shutdown: Shutdown,
    /// Open connections allowed (`--max-connections`, capped to what fits the
    /// descriptor limit).
    pub max_connections: usize,
    https: bool,
    note: String,
    /// Where to say `READY=1` (systemd's `NOTIFY_SOCKET`).
    notify: Option<Notify>,
    /// What the start lines print, one per listener.
    locals: Vec<Local>,
}

/// Parses the command line of `runtime`, sets everything up, binds the port; exits the
/// process on a failure (see the module documentation).
pub fn start(runtime: Runtime, schedule: Schedule) -> Started {
    // First, before any descriptor is opened or thread started: sockets passed by
    // systemd (descriptors 3 and up), and the variables that pass them removed.
    #[cfg(unix)]
    let inherited = crate::listen::inherited();
    #[cfg(not(unix))]
    let inherited: Result<Option<Vec<Listener>>, String> = Ok(None);
    let notify = Notify::from_env();
    let args = Args::parse_for(runtime);
    if args.hash_password {
        std::process::exit(match crate::rules::hash_password() {
            c if c == std::process::ExitCode::SUCCESS => 0,
            _ => 1,
        });
    }
    crate::logging::init();
    // Rules and origins that cannot be used are usage errors, before anything starts.
    let access = args.access().unwrap_or_else(|e| cli::usage(&e));
    let cors = args.cors().unwrap_or_else(|e| cli::usage(&e));
    let root = args.open_root().unwrap_or_else(|e| cli::fail(&e));
    // Before anything is sized from it (the cache's descriptors, the connections).
    crate::limits::raise_nofile();
    // A certificate that cannot be used is a start-up error, before the port is bound.
    let tls = args.tls().unwrap_or_else(|e| cli::fail(&e));
    // Likewise an upload store that cannot be used.
    let web = args.web_root(root).unwrap_or_else(|e| cli::fail(&e));
    let listeners = match inherited.unwrap_or_else(|e| cli::fail(&e)) {
        Some(inherited) => {
            if !args.listen.is_empty() || args.port_flag.or(args.port_arg).is_some() {
                info!(
                    "listening on the sockets systemd passed; --listen, PORT and HOST are ignored"
                );
            }
            inherited
        }
        None => args.listen().unwrap_or_else(|e| cli::fail(&e)),
    };
    // Only once the port is ours: a second copy started by mistake must not touch the
    // running server's uploads.
    web.clean_up();
    let shutdown = Shutdown::install()
        .unwrap_or_else(|e| cli::fail(&format!("cannot install the signal handlers: {e}")));
    let ops = crate::ops::Ops::start(
        args.metrics.as_deref(),
        args.access_log.as_deref(),
        args.log_format,
        &shutdown,
    )
    .unwrap_or_else(|e| cli::fail(&e));
    let first_port = listeners
        .iter()
        .find_map(Listener::tcp_addr)
        .map_or(0, |a| a.port());
    let mut config = args.config(first_port);
    config.access = access.clone();
    config.cors = cors;
    config.records = ops.records();
    // Every connection holds a descriptor: no more than fit beside the cache's.
    let fit = usize::try_from(crate::limits::connections_that_fit()).unwrap_or(usize::MAX);
    let max_connections = args.max_connections().min(fit);
    if max_connections < args.max_connections() {
        warn!(
            "--max-connections {} does not fit the open-file limit of {}: at most {max_connections}",
            args.max_connections(),
            crate::limits::nofile()
        );
    }
    // The open-file cache's change notification (Linux): read by runtime-smol's
    // reactors, and before each open by runtime-std's workers.
    #[cfg(target_os = "linux")]
    let _ = web.watch_changes();
    let (https, note) = tls_note(tls.as_deref());
    #[cfg(feature = "tls")]
    if let Some(tls) = &tls {
        tls.reload_on_sighup();
    }
    let credentials = Arc::new(crate::auth::CredentialCache::default());
    if let Some(access) = &access {
        for host in listeners.iter().filter_map(|l| l.local().tcp_host()) {
            crate::rules::warn_if_clear(host, https);
        }
        if let Some(file) = &args.auth_file {
            let (flags, file) = (args.auth.clone(), file.clone());
            crate::rules::reload_on_sighup(
                Arc::clone(access),
                flags,
                file,
                Arc::clone(&credentials),
            );
        }
    }
    let scheme = if https { "https" } else { "http" };
    let threads = args.threads();
    let what = match runtime {
        Runtime::Std => format!("{threads} workers, queue {}", args.queue()),
        Runtime::Smol => format!("{threads} executor threads"),
    };
    let locals: Vec<Local> = listeners.iter().map(|l| l.local().clone()).collect();
    let shown: Vec<String> = locals.iter().map(|l| shown(l, scheme)).collect();
    info!(
        "{} listening on {}, root {}, {what}, at most {max_connections} connections",
        runtime.name(),
        shown.join(", "),
        web.root().path().display(),
    );
    let clock = Clock::new();
    let listeners: Vec<(Listener, Arc<Service>)> = listeners
        .into_iter()
        .map(|listener| {
            let service = Arc::new(Service {
                config: Arc::new(listener_config(&config, listener.local(), &args.allow_host)),
                web: Arc::clone(&web),
                clock,
                #[cfg(feature = "tls")]
                tls: tls.clone(),
                schedule,
                credentials: Arc::clone(&credentials),
                ops,
            });
            (listener, service)
        })
        .collect();
    #[cfg(not(feature = "tls"))]
    let _ = tls;
    let service = match listeners.first() {
        Some((_, service)) => Arc::clone(service),
        None => cli::fail("nothing to listen on"),
    };
    if let Some(notify) = &notify {
        notify.clone().stopping_on(shutdown.clone());
    }
    Started {
        args,
        service,
        listeners,
        shutdown,
        max_connections,
        https,
        note,
        notify,
        locals,
    }
}

impl Started {
    /// Prints the start lines (`listening on http://ADDR`, one per listener, in the
    /// order given; `listening on unix:PATH` for a Unix socket) and tells systemd
    /// `READY=1` if it asked (`NOTIFY_SOCKET`); call once connections are accepted (they
    /// may wait in the backlog until then).
    pub fn announce(&self) {
        let lines: Vec<String> = self
            .locals
            .iter()
            .map(|l| start_line(l, self.https, &self.note))
            .collect();
        let mut out = std::io::stdout().lock();
        for line in &lines {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
        // An access log on standard output (`--access-log -`) starts after these lines.
        crate::ops::announced();
        if let Some(notify) = &self.notify {
            let status = lines.join("; ");
            notify.send(&format!("READY=1\nSTATUS={status}"));
        }
    }
}

/// The core's settings of one listener: `base` with the `Host` rules of what it is
/// bound to (its host and port, widened by `--allow-host`; any valid `Host` on a Unix
/// socket).
pub fn listener_config(
    base: &protocol::Config,
    local: &Local,
    allow: &[String],
) -> protocol::Config {
    let mut config = base.clone();
    config.hosts = match local {
        Local::Tcp { addr, host } => protocol::HostPolicy::new(host, addr.port(), allow),
        #[cfg(unix)]
        Local::Unix { .. } => protocol::HostPolicy::any(),
    };
    config
}

/// A listener as the logs show it: `http://ADDR`, `https://ADDR` or `unix:PATH`.
fn shown(local: &Local, scheme: &str) -> String {
    match local {
        Local::Tcp { addr, .. } => format!("{scheme}://{addr}"),
        #[cfg(unix)]
        Local::Unix { name, .. } => name.to_string(),
    }
}

/// One start line: `listening on http://ADDR` (or `https://`, then with `note`, such as
/// a self-signed certificate's fingerprint); `listening on unix:PATH` (with `(https)`
/// under TLS).
fn start_line(local: &Local, https: bool, note: &str) -> String {
    match local {
        Local::Tcp { addr, .. } => {
            let scheme = if https { "https" } else { "http" };
            if note.is_empty() {
                format!("listening on {scheme}://{addr}")
            } else {
                format!("listening on {scheme}://{addr} ({note})")
            }
        }
        #[cfg(unix)]
        Local::Unix { name, .. } => match (https, note.is_empty()) {
            (false, _) => format!("listening on {name}"),
            (true, true) => format!("listening on {name} (https)"),
            (true, false) => format!("listening on {name} (https, {note})"),
        },
    }
}

/// The listen backlog asked for (see [`crate::listen`]).
pub use crate::listen::BACKLOG;

/// What [`start`] builds from the command line.
impl Args {
    /// The core's settings for a server that ended up on `actual_port`.
    pub fn config(&self, actual_port: u16) -> protocol::Config {
        let mut config = protocol::Config::new(self.host(), actual_port, &self.allow_host);
        config.idle_timeout_ms = self.idle_timeout.saturating_mul(1000);
        config.head_timeout_ms = self.head_timeout.saturating_mul(1000);
        config.body_timeout_ms = self.body_timeout.saturating_mul(1000);
        config.max_requests = self.max_requests.max(1);
        config.max_body = self.max_body;
        config.max_upload = self.max_upload;
        config.cache_control = self.cache_control.clone();
        config.dir_listing = self.dir_listing;
        config.body_budget = std::sync::Arc::new(protocol::BodyBudget::new(self.max_body_memory));
        config.path_rules = if cfg!(windows) {
            protocol::PathRules::Windows
        } else {
            protocol::PathRules::Posix
        };
        config.headers = self.header.clone();
        config.spa = self.spa;
        config.compress = self.compress;
        config.http2 = self.http2;
        config
    }

    /// The access rules of `--auth` and `--auth-file` (`None`: none, open to all), or
    /// why they cannot be used.
    pub fn access(&self) -> Result<Option<Arc<protocol::AccessControl>>, String> {
        if self.auth.is_empty() && self.auth_file.is_none() {
            return Ok(None);
        }
        let rules = crate::rules::load(&self.auth, self.auth_file.as_deref())?;
        Ok(Some(Arc::new(protocol::AccessControl::new(
            rules,
            crate::rules::REALM,
        ))))
    }

    /// The CORS policy of `--cors` (`None`: no CORS headers), or why it cannot be used.
    pub fn cors(&self) -> Result<Option<Arc<protocol::Cors>>, String> {
        if self.cors.is_empty() {
            return Ok(None);
        }
        let cors = protocol::Cors::new(&self.cors).map_err(|e| format!("--cors: {e}"))?;
        Ok(Some(Arc::new(cors)))
    }
    /// The HTTPS side, if asked for: the certificate loaded (or made) and checked, or
    /// one line saying why not — before the port is bound.
    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Result<Option<std::sync::Arc<crate::tls::Tls>>, String> {
        let source = match (&self.tls_cert, &self.tls_key, self.tls_self_signed) {
            (Some(cert), Some(key), _) => crate::tls::Source::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            (_, _, true) => {
                let mut names = vec!["localhost".to_string()];
                for host in self.bind_hosts() {
                    let bare = host.trim_start_matches('[').trim_end_matches(']');
                    if !matches!(bare, "0.0.0.0" | "::" | "localhost")
                        && !names.iter().any(|n| n == bare)
                    {
                        names.push(bare.to_string());
                    }
                }
                names.extend(self.allow_host.iter().cloned());
                crate::tls::Source::SelfSigned { names }
            }
            _ => return Ok(None),
        };
        crate::tls::Tls::new(source, self.http2).map(|t| Some(std::sync::Arc::new(t)))
    }
    /// Without the `tls` feature, asking for HTTPS is a start-up error.
    #[cfg(not(feature = "tls"))]
    pub fn tls(&self) -> Result<Option<std::sync::Arc<NoTls>>, String> {
        if self.tls_cert.is_some() || self.tls_self_signed {
            return Err("this build has no HTTPS (built without the tls feature)".into());
        }
        Ok(None)
    }
    /// The web root with its upload store, or one line saying why not (before binding).
    pub fn web_root(
        &self,
        root: crate::files::Root,
    ) -> Result<std::sync::Arc<crate::webroot::WebRoot>, String> {
        #[cfg(feature = "s3")]
        {
            let store =
                crate::store::UploadStore::from_flag(self.upload_store.as_deref(), root.path())?;
            Ok(crate::webroot::WebRoot::with_store(root, store))
        }
        #[cfg(not(feature = "s3"))]
        {
            if self
                .upload_store
                .as_deref()
                .is_some_and(|s| !s.starts_with("dir:"))
            {
                return Err("this build has no object store (built without the s3 feature)".into());
            }
            Ok(crate::webroot::WebRoot::new(root))
        }
    }
    /// Opens the web root, or says in one line why not.
    pub fn open_root(&self) -> Result<Root, String> {
        Root::new(&self.root)
            .map_err(|e| format!("cannot use web root {}: {e}", self.root.display()))
    }
    /// Binds where the command line says to listen — each `--listen` address, else
    /// PORT and HOST — or says in one line why not (see [`crate::listen`]).
    pub fn listen(&self) -> Result<Vec<Listener>, String> {
        if self.listen.is_empty() {
            return crate::listen::bind_tcp(self.host(), self.port(), self.reuse_port)
                .map(|l| vec![l]);
        }
        self.listen
            .iter()
            .map(|a| crate::listen::bind(a, self.reuse_port))
            .collect()
    }

    /// The hosts the command line binds (`--listen`'s TCP hosts, else HOST): the names a
    /// self-signed certificate is made for.
    pub fn bind_hosts(&self) -> Vec<String> {
        if self.listen.is_empty() {
            return vec![self.host().to_string()];
        }
        self.listen
            .iter()
            .filter_map(|a| match a {
                crate::listen::ListenAddr::Tcp { host, .. } => Some(host.clone()),
                crate::listen::ListenAddr::Unix(_) => None,
            })
            .collect()
    }
}

/// Whether the server speaks HTTPS, and what the start line adds (a self-signed
/// certificate's fingerprint, for a person to compare in the browser).
#[cfg(feature = "tls")]
pub fn tls_note(tls: Option<&crate::tls::Tls>) -> (bool, String) {
    match tls {
        Some(t) if t.self_signed() => (
            true,
            format!(
                "self-signed certificate, SHA-256 fingerprint {}",
                t.fingerprint()
            ),
        ),
        Some(_) => (true, String::new()),
        None => (false, String::new()),
    }
}

/// What stands for the TLS side in a build without the `tls` feature (never made).
#[cfg(not(feature = "tls"))]
pub enum NoTls {}

/// Without the `tls` feature: plain HTTP.
#[cfg(not(feature = "tls"))]
pub fn tls_note(_tls: Option<&NoTls>) -> (bool, String) {
    (false, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_for(
            Runtime::Std,
            std::iter::once("runtime-std").chain(args.iter().copied()),
        )
    }

    #[cfg(unix)]
    #[test]
    fn reuse_port_lets_two_listeners_share_a_port() {
        let first = parse(&["--port", "0", "--reuse-port"]).expect("args");
        let a = first.listen().expect("first");
        let port = port_of(&a).to_string();
        let b = parse(&["--port", &port, "--reuse-port"]).expect("args");
        let b = b.listen().expect("a second process on the same port");
        assert_eq!(port_of(&b).to_string(), port);
        // Without the flag the port is taken.
        let c = parse(&["--port", &port]).expect("args");
        assert!(c.listen().expect_err("busy").contains("already in use"));
    }

    #[cfg(unix)]
    fn port_of(listeners: &[Listener]) -> u16 {
        listeners[0].tcp_addr().expect("a TCP listener").port()
    }

    #[test]
    fn a_busy_port_is_one_clear_line() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = taken.local_addr().expect("addr").port().to_string();
        let a = parse(&["--port", &port]).expect("args");
        let e = a.listen().expect_err("port in use");
        assert!(e.contains("already in use"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn a_missing_root_is_one_clear_line() {
        let a = parse(&["--root", "/nonexistent/www"]).expect("args");
        let e = a.open_root().expect_err("missing root");
        assert!(e.contains("/nonexistent/www"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn listen_replaces_port_and_host_and_each_listener_has_its_host_rules() {
        // --listen with PORT or HOST is a usage error (exit 2): one or the other.
        for both in [
            &["--listen", "127.0.0.1:0", "--port", "1"][..],
            &["--listen", "127.0.0.1:0", "--host", "::1"],
            &["8080", "--listen", "127.0.0.1:0"],
        ] {
            let e = parse(both).expect_err("conflict");
            assert_eq!(e.exit_code(), 2, "{both:?}: {e}");
        }
        let e = parse(&["--listen", "::1:80"]).expect_err("brackets");
        assert_eq!(e.exit_code(), 2);
        let a = parse(&["--listen", "127.0.0.1:0", "--listen", "[::1]:0"]).expect("args");
        let listeners = a.listen().expect("bind both");
        assert_eq!(listeners.len(), 2);
        let base = a.config(0);
        let configs: Vec<protocol::Config> = listeners
            .iter()
            .map(|l| listener_config(&base, l.local(), &a.allow_host))
            .collect();
        let (p4, p6) = (
            listeners[0].tcp_addr().expect("v4").port(),
            listeners[1].tcp_addr().expect("v6").port(),
        );
        assert!(p4 != 0 && p6 != 0);
        assert!(configs[0]
            .hosts
            .check(format!("127.0.0.1:{p4}").as_bytes())
            .is_ok());
        let other = format!("127.0.0.1:{}", p4.wrapping_add(1));
        assert!(configs[0].hosts.check(other.as_bytes()).is_err());
        assert!(configs[1]
            .hosts
            .check(format!("[::1]:{p6}").as_bytes())
            .is_ok());
        assert!(configs[1]
            .hosts
            .check(format!("localhost:{p6}").as_bytes())
            .is_ok());
        assert!(configs[1].hosts.check(b"example.com").is_err());
        assert_eq!(a.bind_hosts(), ["127.0.0.1", "::1"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_unix_listener_accepts_any_valid_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let addr = format!("unix:{}", dir.path().join("s.sock").display());
        let a = parse(&["--listen", &addr]).expect("args");
        let listeners = a.listen().expect("bind");
        let config = listener_config(&a.config(0), listeners[0].local(), &a.allow_host);
        for ok in ["localhost", "example.com:8081", "[::1]:9"] {
            assert!(config.hosts.check(ok.as_bytes()).is_ok(), "{ok}");
        }
        assert!(config.hosts.check(b"user@x").is_err());
        assert_eq!(
            start_line(listeners[0].local(), false, ""),
            format!("listening on {addr}")
        );
    }
}
