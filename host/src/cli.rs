//! The command line of SPEC "Command line", one clap definition for both runtimes:
//!
//! ```text
//! runtime-std [PORT] [HOST] [MAX_THREADS] [OPTIONS]
//! ```
//!
//! The positionals keep the seed's order and defaults (8080, 127.0.0.1, 10); `--port`
//! (`-p`), `--host` (`--bind`, `-b`) and `--threads` (`-t`) say the same by name and win
//! over the positionals. Every option can also come from the environment (`RFS_PORT`)
//! and from the TOML file of `--config FILE`, under the command line: see [`layers`].
//! Bad arguments, a bad variable or a bad key are clap's usage error (exit 2). What the
//! arguments build (the core's settings, the root, HTTPS, the store, the listening
//! socket) is [`crate::start`]'s.

pub mod layers;

use std::path::PathBuf;

/// Default port, host and worker count: the seed's.
pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_THREADS: usize = 10;

/// The server's command line.
#[derive(clap::Parser, Debug, Clone, PartialEq, Eq)]
#[command(
    version,
    about = "A hardened HTTP/1.1 file and upload server.",
    long_about = "A hardened HTTP/1.1 file and upload server: serves the files below --root, \
                  accepts JSON uploads at POST /upload into ROOT/uploads/.",
    after_help = "Every option can also be set in the environment as RFS_ + its long name in \
                  upper snake case (RFS_PORT, RFS_DIR_LISTING=true; a repeatable one takes one \
                  value a line), or as a key of the TOML file of --config (dir-listing = true, \
                  header = [\"X-A: 1\"]). The command line wins, then the environment, then \
                  the file."
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
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub port_flag: Option<u16>,
    /// Address to bind; wins over the positional HOST
    #[arg(
        short = 'b',
        long = "host",
        visible_alias = "bind",
        value_name = "HOST"
    )]
    pub host_flag: Option<String>,
    /// Worker threads; wins over the positional MAX_THREADS
    #[arg(short = 't', long = "threads", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads_flag: Option<u32>,

    /// The web root directory
    #[arg(short = 'd', long, value_name = "DIR", default_value = "resources")]
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
    /// Open connections before new ones get 503 [default: 10000; capped to what the
    /// open-file limit allows]
    #[arg(long = "max-connections", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections_flag: Option<u32>,
    /// The largest request body accepted, in bytes (larger: 413); at most 1 GiB
    #[arg(long, value_name = "BYTES", default_value_t = 10 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(0..=1 << 30))]
    pub max_body: u64,
    /// The largest streamed upload (PUT, a file of a form), in bytes (larger: 413)
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30, value_parser = clap::value_parser!(u64).range(1..=1 << 42))]
    pub max_upload: u64,
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

    /// An access rule: USER:HASH@PATH[:ro|:rw], or @PATH[:ro|:rw] for anyone without
    /// credentials (repeatable). HASH is an argon2id or bcrypt PHC string
    /// (--hash-password makes one); PATH defaults to /, the permission to ro. With any
    /// rule, only the rules grant access
    #[arg(short = 'a', long = "auth", value_name = "RULE", value_parser = auth_rule)]
    pub auth: Vec<protocol::Rule>,
    /// A file of access rules, one a line (# comments); read again on SIGHUP (a bad file
    /// keeps the old rules)
    #[arg(long, value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// Read a password from standard input, print its argon2id hash for --auth, and exit
    #[arg(long)]
    pub hash_password: bool,
    /// An origin whose pages may read the answers (CORS; repeatable; * for any)
    #[arg(long, value_name = "ORIGIN")]
    pub cors: Vec<String>,
    /// A header added to every answer, as 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header", value_name = "HEADER", value_parser = extra_header)]
    pub header: Vec<(String, String)>,
    /// Answer a GET of a missing path without an extension with /index.html (for
    /// single-page applications that route on the client)
    #[arg(long)]
    pub spa: bool,
    /// Compress text answers of 1 KiB or more on the fly (zstd, br, gzip, as the client
    /// prefers)
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = on_off, action = clap::ArgAction::Set)]
    pub compress: bool,
    /// Speak HTTP/2: ALPN h2 (then http/1.1) over TLS, and a connection that opens with
    /// the HTTP/2 preface in clear text (prior knowledge)
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = on_off, action = clap::ArgAction::Set)]
    pub http2: bool,

    /// Listen on ADDR instead of PORT and HOST (repeatable): HOST:PORT, [IPV6]:PORT
    /// ([::] takes IPv4 too where the system allows), or unix:PATH. Sockets passed by
    /// systemd (LISTEN_FDS) replace them
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["port_arg", "host_arg", "port_flag", "host_flag"])]
    pub listen: Vec<crate::listen::ListenAddr>,
    /// Read options from this TOML file: keys are the long names (`root = "www"`,
    /// `dir-listing = true`, `header = ["X-A: 1"]`); the command line and the RFS_
    /// variables win over it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Serve Prometheus metrics at /metrics, and /healthz and /readyz, in plain HTTP on
    /// this address (HOST:PORT; a bare PORT is 127.0.0.1:PORT)
    #[arg(long, value_name = "ADDR", value_parser = crate::ops::serve::parse_addr)]
    pub metrics: Option<String>,
    /// Write one line per request to this file (- for standard output); SIGUSR1 reopens
    /// it (log rotation)
    #[arg(long, value_name = "PATH|-")]
    pub access_log: Option<PathBuf>,
    /// The access log's format: combined (what GoAccess and most tools read), common, or
    /// json (one object a line)
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = crate::ops::Format::Combined)]
    pub log_format: crate::ops::Format,
}

/// `on` or `off` (or another spelling of a boolean, as in the environment: `true`,
/// `false`, `yes`, `no`, `1`, `0`).
fn on_off(s: &str) -> Result<bool, String> {
    layers::parse_bool(s).ok_or_else(|| "expected on or off".to_string())
}

/// An access rule of `--auth` (a plain password is refused with a hint).
fn auth_rule(s: &str) -> Result<protocol::Rule, String> {
    protocol::parse_rule(s).map_err(|e| e.to_string())
}

/// A `--header 'Name: value'`: a token name, a value without CR or LF; the fields that
/// frame the message or belong to the connection are the server's own.
fn extra_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| "expected 'Name: value'".to_string())?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(protocol::is_token_byte) {
        return Err(format!("{name:?} is not a header name"));
    }
    const OWN: &[&str] = &[
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "date",
        "te",
        "trailer",
        "proxy-connection",
    ];
    if OWN.iter().any(|o| o.eq_ignore_ascii_case(name)) {
        return Err(format!(
            "{name} frames the answer or belongs to the connection: the server sets it"
        ));
    }
    Ok((name.to_string(), header_value(value)?))
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
    /// Parses the process's arguments for `runtime`, with the `RFS_*` variables of its
    /// environment and the file of `--config` under them; a bad argument, variable or key,
    /// or a flag only the other runtime uses, is clap's usage error (exit 2).
    pub fn parse_for(runtime: Runtime) -> Args {
        match Args::try_parse_with(runtime, std::env::args_os(), |name| std::env::var_os(name)) {
            Ok(args) => args,
            Err(e) => e.exit(),
        }
    }

    /// [`Args::parse_for`] on the given arguments (the first is the program name) and an
    /// empty environment: the command line and the file of `--config` only.
    pub fn try_parse_for<I, T>(runtime: Runtime, argv: I) -> Result<Args, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Args::try_parse_with(runtime, argv, |_| None)
    }

    /// [`Args::parse_for`] on the given arguments and the environment `env` looks
    /// variables up in.
    pub fn try_parse_with<I, T>(
        runtime: Runtime,
        argv: I,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Args, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::FromArgMatches;
        let mut command = Args::command_for(runtime);
        let argv = argv.into_iter().map(Into::into).collect();
        let resolved = layers::resolve(&mut command, argv, &env)?;
        let args = Args::from_arg_matches(&resolved.matches).map_err(|e| e.format(&mut command))?;
        let other = match runtime {
            Runtime::Smol if args.queue_flag.is_some() => {
                Some(("--queue", "runtime-std", resolved.origin("queue_flag")))
            }
            _ => None,
        };
        if let Some((flag, owner, origin)) = other {
            let from = origin.map(|o| format!(" (from {o})")).unwrap_or_default();
            let message = format!(
                "{flag}{from} applies to {owner} only; {} does not use it",
                runtime.name()
            );
            return Err(command.error(clap::error::ErrorKind::ArgumentConflict, message));
        }
        Ok(args)
    }

    /// The clap definition as `runtime` shows it: its name, and each option's variable
    /// in its help.
    pub fn command_for(runtime: Runtime) -> clap::Command {
        use clap::CommandFactory;
        Args::command()
            .name(runtime.name())
            .bin_name(runtime.name())
            .mut_args(layers::annotate)
    }

    /// runtime-std's pending-connection queue.
    pub fn queue(&self) -> usize {
        self.queue_flag.unwrap_or(DEFAULT_QUEUE) as usize
    }

    /// The open-connection limit (both runtimes).
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

/// Prints one line to stderr and exits with status 2 (a usage error: a value that
/// cannot be used, found after clap's own checks).
pub fn usage(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2)
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
        assert_eq!(
            parse(&["--max-connections", "5"])
                .expect("both take it")
                .max_connections(),
            5
        );
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
    fn short_flags_and_the_bind_alias() {
        let a = parse(&["-p", "1", "-b", "::1", "-t", "3", "-d", "/srv/www"]).expect("short");
        assert_eq!((a.port(), a.host(), a.threads()), (1, "::1", 3));
        assert_eq!(a.root, PathBuf::from("/srv/www"));
        let a = parse(&["--bind", "0.0.0.0"]).expect("--bind");
        assert_eq!(a.host(), "0.0.0.0");
        // The flag wins over the positional, whichever comes first.
        let a = parse(&["-p", "2", "8000", "-b", "::1", "0.0.0.0"]).expect("both");
        assert_eq!((a.port(), a.host()), (2, "::1"));
        assert!(parse(&["-t", "0"]).is_err());
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
}
