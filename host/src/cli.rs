//! The command line of SPEC "Command line", defined once for both runtimes:
//!
//! ```text
//! runtime-std [PORT] [HOST] [MAX_THREADS] [OPTIONS]
//! ```
//!
//! The positionals keep the seed's order and defaults (8080, 127.0.0.1, 10); `--port`,
//! `--host` and `--threads` say the same by name and win over the positionals. Bad
//! arguments are clap's usage error (exit 2); [`Args::open_root`] and [`Args::listen`]
//! turn a missing root or a busy port into one clear line for [`fail`] (exit 1).

use std::io::Write;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;

use crate::files::Root;

/// Default port, host and worker count: the seed's.
pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_THREADS: usize = 10;

/// The listen backlog asked for on Unix (see [`Args::listen`]).
#[cfg(unix)]
pub const BACKLOG: i32 = 4096;

/// The server's command line.
#[derive(clap::Parser, Debug, Clone, PartialEq, Eq)]
#[command(
    version,
    about = "A hardened HTTP/1.1 file and upload server.",
    long_about = "A hardened HTTP/1.1 file and upload server: serves the files below --root, \
                  accepts JSON uploads at POST /upload into ROOT/uploads/."
)]
pub struct Args {
    /// Port to listen on (0: any free port) [default: 8080]
    #[arg(value_name = "PORT")]
    pub port_arg: Option<u16>,
    /// Address to bind, e.g. 0.0.0.0 for the local network [default: 127.0.0.1]
    #[arg(value_name = "HOST")]
    pub host_arg: Option<String>,
    /// Worker threads (runtime-std: the pool; runtime-smol: executor threads) [default: 10]
    #[arg(value_name = "MAX_THREADS", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads_arg: Option<u32>,

    /// Port to listen on; wins over the positional PORT
    #[arg(long = "port", value_name = "PORT")]
    pub port_flag: Option<u16>,
    /// Address to bind; wins over the positional HOST
    #[arg(long = "host", value_name = "HOST")]
    pub host_flag: Option<String>,
    /// Worker threads; wins over the positional MAX_THREADS
    #[arg(long = "threads", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads_flag: Option<u32>,

    /// The web root directory
    #[arg(long, value_name = "DIR", default_value = "resources")]
    pub root: PathBuf,
    /// Close a connection after this many seconds without a byte from the client
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout: u64,
    /// A started request head must be complete within this many seconds (else 408)
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub head_timeout: u64,
    /// A request body must be complete within this many seconds of its head (else 408)
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub body_timeout: u64,
    /// Requests answered on one connection before it closes
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_requests: u32,
    /// runtime-std only: accepted connections waiting for a worker before new ones get
    /// 503 [default: 64]
    #[arg(long = "queue", value_name = "N", value_parser = clap::value_parser!(u32).range(0..=65_536))]
    pub queue_flag: Option<u32>,
    /// runtime-smol only: open connections before new ones get 503 [default: 10000]
    #[arg(long = "max-connections", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections_flag: Option<u32>,
    /// The largest request body accepted, in bytes (larger: 413); at most 1 GiB
    #[arg(long, value_name = "BYTES", default_value_t = 10 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(0..=1 << 30))]
    pub max_body: u64,
    /// Memory all upload bodies in flight may hold together, in bytes (past it: 503)
    #[arg(long, value_name = "BYTES", default_value_t = protocol::DEFAULT_BODY_BUDGET, value_parser = clap::value_parser!(u64).range(1024..=1 << 40))]
    pub max_body_memory: u64,
    /// List a directory that has no index.html (HTML, or JSON with `Accept:
    /// application/json`); `/DIR` redirects to `/DIR/`. Off: directories are 404
    #[arg(long)]
    pub dir_listing: bool,
    /// Serve HTTPS on the port with this certificate chain (PEM; with --tls-key).
    /// SIGHUP reloads both files
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate made at start for HOST and localhost, and print its
    /// SHA-256 fingerprint. For a quick share on a LAN: browsers warn until you compare
    /// the fingerprint and accept it; it proves nothing to anyone who cannot check the
    /// fingerprint, and is no substitute for a real certificate on the internet
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls_self_signed: bool,
    /// Where uploads are kept: dir:PATH (the root's uploads/, the default) or
    /// s3://BUCKET[/PREFIX] (endpoint, region and keys from AWS_ENDPOINT_URL, AWS_REGION,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
    #[arg(long, value_name = "URL")]
    pub upload_store: Option<String>,
    /// Share the port with other server processes started with this flag (SO_REUSEPORT;
    /// the kernel spreads connections over them). Unix only
    #[arg(long)]
    pub reuse_port: bool,
    /// Another name this server answers to in `Host` (repeatable)
    #[arg(long, value_name = "NAME")]
    pub allow_host: Vec<String>,
    /// `Cache-Control` sent with file responses; an empty value sends none
    #[arg(long, value_name = "VALUE", default_value = "no-cache", value_parser = header_value)]
    pub cache_control: String,
}

/// Which binary is parsing its command line: each names itself in `--help` and
/// `--version`, and refuses the flag that only the other one uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Std,
    Smol,
}

impl Runtime {
    /// The binary's name.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Std => "runtime-std",
            Runtime::Smol => "runtime-smol",
        }
    }
}

/// The pending-connection queue of runtime-std when `--queue` is not given.
pub const DEFAULT_QUEUE: u32 = 64;
/// The open-connection limit of runtime-smol when `--max-connections` is not given.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10_000;

impl Args {
    /// Parses the process's arguments for `runtime`; a bad argument, or a flag only the
    /// other runtime uses, is clap's usage error (exit 2).
    pub fn parse_for(runtime: Runtime) -> Args {
        match Args::try_parse_for(runtime, std::env::args_os()) {
            Ok(args) => args,
            Err(e) => e.exit(),
        }
    }

    /// [`Args::parse_for`] on the given arguments (the first is the program name).
    pub fn try_parse_for<I, T>(runtime: Runtime, argv: I) -> Result<Args, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let mut command = Args::command()
            .name(runtime.name())
            .bin_name(runtime.name());
        let matches = command.try_get_matches_from_mut(argv)?;
        let args = Args::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
        let other = match runtime {
            Runtime::Std if args.max_connections_flag.is_some() => {
                Some(("--max-connections", "runtime-smol"))
            }
            Runtime::Smol if args.queue_flag.is_some() => Some(("--queue", "runtime-std")),
            _ => None,
        };
        if let Some((flag, owner)) = other {
            let message = format!(
                "{flag} applies to {owner} only; {} does not use it",
                runtime.name()
            );
            return Err(command.error(clap::error::ErrorKind::ArgumentConflict, message));
        }
        Ok(args)
    }

    /// runtime-std's pending-connection queue.
    pub fn queue(&self) -> usize {
        self.queue_flag.unwrap_or(DEFAULT_QUEUE) as usize
    }

    /// runtime-smol's open-connection limit.
    pub fn max_connections(&self) -> usize {
        self.max_connections_flag.unwrap_or(DEFAULT_MAX_CONNECTIONS) as usize
    }

    /// The port: `--port`, else the positional, else 8080.
    pub fn port(&self) -> u16 {
        self.port_flag.or(self.port_arg).unwrap_or(DEFAULT_PORT)
    }

    /// The bind address: `--host`, else the positional, else 127.0.0.1.
    pub fn host(&self) -> &str {
        self.host_flag
            .as_deref()
            .or(self.host_arg.as_deref())
            .unwrap_or(DEFAULT_HOST)
    }

    /// The worker count: `--threads`, else the positional, else 10 (at least 1).
    pub fn threads(&self) -> usize {
        self.threads_flag
            .or(self.threads_arg)
            .map_or(DEFAULT_THREADS, |n| n.max(1) as usize)
    }

    /// The core's settings for a server that ended up on `actual_port`.
    pub fn config(&self, actual_port: u16) -> protocol::Config {
        let mut config = protocol::Config::new(self.host(), actual_port, &self.allow_host);
        config.idle_timeout_ms = self.idle_timeout.saturating_mul(1000);
        config.head_timeout_ms = self.head_timeout.saturating_mul(1000);
        config.body_timeout_ms = self.body_timeout.saturating_mul(1000);
        config.max_requests = self.max_requests.max(1);
        config.max_body = self.max_body;
        config.cache_control = self.cache_control.clone();
        config.dir_listing = self.dir_listing;
        config.body_budget = std::sync::Arc::new(protocol::BodyBudget::new(self.max_body_memory));
        config.path_rules = if cfg!(windows) {
            protocol::PathRules::Windows
        } else {
            protocol::PathRules::Posix
        };
        config
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
                let bare = self.host().trim_start_matches('[').trim_end_matches(']');
                if !matches!(bare, "0.0.0.0" | "::") && bare != "localhost" {
                    names.push(bare.to_string());
                }
                names.extend(self.allow_host.iter().cloned());
                crate::tls::Source::SelfSigned { names }
            }
            _ => return Ok(None),
        };
        crate::tls::Tls::new(source).map(|t| Some(std::sync::Arc::new(t)))
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

    /// Binds the listening socket (address reuse on, as usual for servers), or says in
    /// one line why not. On Unix its backlog is raised to [`BACKLOG`] (std's 128 is
    /// smaller than a burst of connects: the rest would wait a SYN retransmit, 1 s and
    /// more).
    pub fn listen(&self) -> Result<TcpListener, String> {
        let host = self.host();
        let port = self.port();
        // `[::1]` and `::1` both mean the IPv6 loopback.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = (bare, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve host {host}: {e}"))?
            .collect();
        let mut last = None;
        for addr in &addrs {
            let bound = if self.reuse_port {
                bind_reuse_port(*addr)
            } else {
                TcpListener::bind(addr)
            };
            match bound {
                Ok(l) => {
                    // Listening again on a listening socket only changes its backlog
                    // (capped by the kernel's somaxconn); failing leaves std's.
                    #[cfg(unix)]
                    if let Err(e) = rustix::net::listen(&l, BACKLOG) {
                        log::warn!("could not raise the listen backlog: {e}");
                    }
                    return Ok(l);
                }
                Err(e) => last = Some((addr, e)),
            }
        }
        Err(match last {
            Some((addr, e)) if e.kind() == std::io::ErrorKind::AddrInUse => {
                format!("cannot listen on {addr}: the port is already in use")
            }
            Some((addr, e)) => format!("cannot listen on {addr}: {e}"),
            None => format!("cannot resolve host {host}: no address"),
        })
    }
}

/// A listener with `SO_REUSEPORT`, so that several server processes share one port (the
/// kernel spreads new connections across them).
#[cfg(unix)]
fn bind_reuse_port(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use rustix::net::{sockopt, AddressFamily, SocketType};
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = rustix::net::socket(family, SocketType::STREAM, None)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    sockopt::set_socket_reuseport(&fd, true)?;
    rustix::net::bind(&fd, &addr)?;
    rustix::net::listen(&fd, 1024)?;
    Ok(TcpListener::from(fd))
}

/// `SO_REUSEPORT` is a Unix option.
#[cfg(not(unix))]
fn bind_reuse_port(_addr: SocketAddr) -> std::io::Result<TcpListener> {
    Err(std::io::Error::other("--reuse-port needs a Unix platform"))
}

/// A header value given on the command line: visible ASCII, spaces and tabs only (no
/// CR/LF that would split the response head).
fn header_value(s: &str) -> Result<String, String> {
    if s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        Ok(s.trim().to_string())
    } else {
        Err("only visible ASCII, spaces and tabs are allowed in a header value".to_string())
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

/// Prints the one stdout line that says where the server listens, `listening on
/// http://ADDR` (or `https://`, then with `note`, such as a self-signed certificate's
/// fingerprint), and flushes it; tests and scripts read it.
pub fn announce(addr: SocketAddr, https: bool, note: &str) {
    let mut out = std::io::stdout().lock();
    let scheme = if https { "https" } else { "http" };
    if note.is_empty() {
        let _ = writeln!(out, "listening on {scheme}://{addr}");
    } else {
        let _ = writeln!(out, "listening on {scheme}://{addr} ({note})");
    }
    let _ = out.flush();
}

/// Prints one line to stderr and exits with status 1 (a start-up failure).
pub fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
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

    #[test]
    fn each_runtime_names_itself_and_refuses_the_others_flag() {
        let smol = |args: &[&str]| {
            Args::try_parse_for(
                Runtime::Smol,
                std::iter::once("runtime-smol").chain(args.iter().copied()),
            )
        };
        let e = smol(&["--queue", "5"]).expect_err("--queue is runtime-std's");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("runtime-std only"), "{e}");
        let e = parse(&["--max-connections", "5"]).expect_err("runtime-smol's");
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            smol(&["--max-connections", "5"])
                .expect("ok")
                .max_connections(),
            5
        );
        let e = smol(&["--version"]).expect_err("version is an early exit");
        assert!(e.to_string().starts_with("runtime-smol "), "{e}");
        let e = parse(&["--version"]).expect_err("version is an early exit");
        assert!(e.to_string().starts_with("runtime-std "), "{e}");
    }

    #[test]
    fn defaults_are_the_seeds() {
        let a = parse(&[]).expect("no args");
        assert_eq!((a.port(), a.host(), a.threads()), (8080, "127.0.0.1", 10));
        assert_eq!(a.root, PathBuf::from("resources"));
        let c = a.config(8080);
        assert_eq!(c.idle_timeout_ms, 30_000);
        assert_eq!(c.head_timeout_ms, 10_000);
        assert_eq!(c.body_timeout_ms, 60_000);
        assert_eq!(c.max_requests, 100);
        assert_eq!(c.max_body, 10 * 1024 * 1024);
        assert_eq!(a.queue(), 64);
        assert_eq!(a.max_connections(), 10_000);
        assert_eq!(c.cache_control, "no-cache");
    }

    #[test]
    fn cache_control_flag_and_empty_disables() {
        let c = parse(&["--cache-control", "public, max-age=60"])
            .expect("flag")
            .config(1);
        assert_eq!(c.cache_control, "public, max-age=60");
        let c = parse(&["--cache-control", ""]).expect("empty").config(1);
        assert_eq!(c.cache_control, "");
    }

    #[test]
    fn positionals_in_the_seeds_order() {
        let a = parse(&["8000", "0.0.0.0", "20"]).expect("positionals");
        assert_eq!((a.port(), a.host(), a.threads()), (8000, "0.0.0.0", 20));
    }

    #[test]
    fn flags_win_over_positionals() {
        let a = parse(&[
            "8000",
            "0.0.0.0",
            "20",
            "--port",
            "0",
            "--host",
            "::1",
            "--threads",
            "3",
        ])
        .expect("flags");
        assert_eq!((a.port(), a.host(), a.threads()), (0, "::1", 3));
    }

    #[test]
    fn options_reach_the_config() {
        let a = parse(&[
            "--idle-timeout",
            "2",
            "--head-timeout",
            "1",
            "--max-requests",
            "5",
            "--max-body",
            "100",
            "--allow-host",
            "a.test",
            "--allow-host",
            "b.test",
            "--root",
            "/srv/www",
            "--queue",
            "0",
        ])
        .expect("options");
        let c = a.config(1234);
        assert_eq!(c.idle_timeout_ms, 2000);
        assert_eq!(c.head_timeout_ms, 1000);
        assert_eq!(c.max_requests, 5);
        assert_eq!(c.max_body, 100);
        assert_eq!(a.allow_host, ["a.test", "b.test"]);
        assert_eq!(a.queue(), 0);
        assert!(c.hosts.check(b"a.test:1234").is_ok());
        assert!(c.hosts.check(b"127.0.0.1:1234").is_ok());
        assert!(c.hosts.check(b"c.test:1234").is_err());
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for bad in [
            &["notaport"][..],
            &["70000"],
            &["80", "h", "0"],
            &["--threads", "0"],
            &["--idle-timeout", "0"],
            &["--max-requests", "0"],
            &["--bogus"],
            &["1", "h", "2", "extra"],
            &["--cache-control", "a\r\nSet-Cookie: x"],
            // Every number is bounded to what works (issue 11 case 14, issue 13 case 10).
            &["--queue", "18446744073709551615"],
            &["--queue", "70000"],
            &["--idle-timeout", "18446744073709551"],
            &["--body-timeout", "0"],
            &["--body-timeout", "100000"],
            &["--max-body", "4294967296"],
            &["--max-connections", "0"],
            &["--max-requests", "4294967295"],
            &["--max-body-memory", "10"],
        ] {
            let e = parse(bad).expect_err("must fail");
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn reuse_port_lets_two_listeners_share_a_port() {
        let first = parse(&["--port", "0", "--reuse-port"]).expect("args");
        let a = first.listen().expect("first");
        let port = a.local_addr().expect("addr").port().to_string();
        let b = parse(&["--port", &port, "--reuse-port"]).expect("args");
        let b = b.listen().expect("a second process on the same port");
        assert_eq!(b.local_addr().expect("addr").port().to_string(), port);
        // Without the flag the port is taken.
        let c = parse(&["--port", &port]).expect("args");
        assert!(c.listen().expect_err("busy").contains("already in use"));
    }

    #[test]
    fn a_busy_port_is_one_clear_line() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
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
}
