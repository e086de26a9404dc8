//! The one server spawner.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::{own_flags, Client, Fixture, Response};

/// How long a server may take to print its start line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running server; killed (by PID) when dropped.
pub struct Server {
    child: Child,
    /// The port of the first start line (0 when it is a Unix socket's).
    pub port: u16,
    /// The URL of the start line, `http://HOST:PORT` (`https://` over TLS;
    /// `unix:PATH` for a Unix socket).
    pub listening: String,
    pub fx: Fixture,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<thread::JoinHandle<()>>,
    /// With [`ServerBuilder::stderr_unread`]: the child's stderr, open and never read.
    held_stderr: Option<std::process::ChildStderr>,
    /// The lines of stdout, the start line first (past it, only with
    /// [`ServerBuilder::stdout_unread`] off): one start line per listener, then what
    /// else the server prints there (`--access-log -`).
    stdout: Arc<Mutex<Vec<String>>>,
    /// With [`ServerBuilder::stdout_unread`]: dropped to let the reader of stdout go.
    stdout_hold: Option<mpsc::Sender<()>>,
    #[cfg(feature = "tls")]
    tls: Option<ServerTls>,
}

/// How a server starts: plain HTTP, or HTTPS with which certificate.
#[cfg(feature = "tls")]
#[derive(Clone)]
enum TlsChoice {
    /// Plain HTTP, unless inside [`crate::https::over_tls`] (then [`TlsChoice::TestCert`]).
    Default,
    Plain,
    /// `--tls-cert/--tls-key` with the process's test certificate (signed by the test
    /// CA, which the client trusts).
    TestCert,
    /// `--tls-cert/--tls-key` with these files; the client trusts as configured.
    Files {
        cert: PathBuf,
        key: PathBuf,
        trust: Arc<rustls::ClientConfig>,
        ca_file: Option<PathBuf>,
    },
    /// `--tls-self-signed`; the client trusts the fingerprint of the start line.
    SelfSigned,
}

/// A TLS server's side of the harness: how clients trust it.
#[cfg(feature = "tls")]
struct ServerTls {
    config: Arc<rustls::ClientConfig>,
    /// A PEM file curl can trust (`--cacert`).
    ca_file: Option<PathBuf>,
    /// The fingerprint of a self-signed certificate (from the start line).
    fingerprint: Option<String>,
    /// Where the harness's certificate files live (removed with the server).
    dir: tempfile::TempDir,
    /// Clients speak HTTP/2 to it (started inside [`crate::https::over_h2`]).
    h2: bool,
}

/// How to start a server: [`Server::builder`], then [`ServerBuilder::start`].
///
/// By default the binary runs as `BIN --port 0 --root ROOT ARGS…` on a fresh
/// [`Fixture::new`], in the fixture's base directory, with `RUST_LOG=debug`; the rest of
/// the environment (`PORTABLE_IO` among it) passes through. stdout must start with
/// `listening on http://HOST:PORT`; stderr (the logs) is collected for
/// [`Server::logs`].
pub struct ServerBuilder {
    bin: String,
    fixture: Option<Fixture>,
    args: Vec<String>,
    port_and_root: bool,
    current_dir: Option<PathBuf>,
    rust_log: Option<String>,
    nofile: Option<u32>,
    log_file: Option<PathBuf>,
    stderr_unread: bool,
    stdout_unread: bool,
    env: Vec<(String, String)>,
    /// `--listen` was given: no `--port 0`.
    listens: bool,
    /// A program (and its arguments) that runs the server: `PROGRAM ARGS… BIN …`.
    wrapper: Vec<String>,
    /// Listening sockets the server inherits as systemd passes them (descriptors 3…).
    listen_fds: Vec<std::os::fd::OwnedFd>,
    #[cfg(feature = "tls")]
    tls: TlsChoice,
}

impl ServerBuilder {
    /// The web root and working directory (default: a fresh [`Fixture::new`]).
    pub fn fixture(mut self, fx: Fixture) -> Self {
        self.fixture = Some(fx);
        self
    }

    /// More arguments, without the flag only the other runtime takes ([`own_flags`]).
    pub fn args(mut self, args: &[&str]) -> Self {
        let bin = self.bin.clone();
        self.args
            .extend(own_flags(&bin, args).into_iter().map(String::from));
        self
    }

    /// The arguments are the whole command line: no `--port 0 --root ROOT` before them
    /// (for the positional form; its port must then be 0).
    pub fn without_port_and_root(mut self) -> Self {
        self.port_and_root = false;
        self
    }

    /// Runs the server in `dir` instead of the fixture's base directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// `RUST_LOG` for the server (default `debug`).
    pub fn rust_log(mut self, filter: &str) -> Self {
        self.rust_log = Some(filter.to_string());
        self
    }

    /// Leaves `RUST_LOG` as the test's environment has it (or unset).
    pub fn inherit_rust_log(mut self) -> Self {
        self.rust_log = None;
        self
    }

    /// Starts the server through `bash -c 'ulimit -n N && exec …'` (same PID).
    pub fn ulimit_nofile(mut self, n: u32) -> Self {
        self.nofile = Some(n);
        self
    }

    /// Also writes the server's stderr to this file as it comes.
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_file = Some(path.into());
        self
    }

    /// `--listen ADDR` (repeatable); `--port 0` is then not passed.
    pub fn listen(mut self, addr: &str) -> Self {
        self.args.extend(["--listen".to_string(), addr.to_string()]);
        self.listens = true;
        self
    }

    /// Runs the server through `PROGRAM ARGS… BIN …` (a program that execs it, keeping
    /// its PID, such as `systemd-socket-activate`).
    pub fn wrapper(mut self, program_and_args: &[&str]) -> Self {
        self.wrapper = program_and_args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Passes these listening sockets to the server as systemd does: descriptors 3, 4,
    /// … in the server, `LISTEN_FDS` their count and `LISTEN_PID` the server's PID (set
    /// by `sh`, which then execs the server under the same PID). Descriptors are dup'ed
    /// into place between fork and exec, so no other child of the test inherits them.
    pub fn listen_fds(mut self, fds: Vec<std::os::fd::OwnedFd>) -> Self {
        self.listen_fds = fds;
        self
    }

    /// Sets an environment variable of the server process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Leaves the server's stderr a pipe that is held open and never read (a stalled
    /// log sink: once the pipe is full, every write to it blocks); [`Server::logs`]
    /// stays empty.
    pub fn stderr_unread(mut self) -> Self {
        self.stderr_unread = true;
        self
    }

    /// Reads the server's stdout up to its start line, then holds the pipe open and
    /// reads nothing more (a stalled reader of `--access-log -`: once the pipe is full,
    /// every write to it blocks).
    pub fn stdout_unread(mut self) -> Self {
        self.stdout_unread = true;
        self
    }

    /// HTTPS with the test certificate (`--tls-cert/--tls-key`, files the harness
    /// writes; issued by [`crate::https::test_ca`], which the clients and curl trust).
    #[cfg(feature = "tls")]
    pub fn tls(mut self) -> Self {
        self.tls = TlsChoice::TestCert;
        self
    }

    /// HTTPS with these certificate and key files; clients trust as `trust` says, and
    /// curl trusts `ca_file` (a PEM file), if given.
    #[cfg(feature = "tls")]
    pub fn tls_files(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        trust: Arc<rustls::ClientConfig>,
        ca_file: Option<PathBuf>,
    ) -> Self {
        self.tls = TlsChoice::Files {
            cert: cert.into(),
            key: key.into(),
            trust,
            ca_file,
        };
        self
    }

    /// HTTPS with `--tls-self-signed`; clients trust the certificate whose fingerprint
    /// the start line prints.
    #[cfg(feature = "tls")]
    pub fn tls_self_signed(mut self) -> Self {
        self.tls = TlsChoice::SelfSigned;
        self
    }

    /// Plain HTTP, even inside [`crate::https::over_tls`].
    #[cfg(feature = "tls")]
    pub fn plain(mut self) -> Self {
        self.tls = TlsChoice::Plain;
        self
    }

    /// Starts the server and waits (at most 20 s) for its start line.
    pub fn start(mut self) -> Server {
        // Inside over_h2, a server whose case left TLS to the suite is spoken to over h2.
        #[cfg(feature = "tls")]
        let h2 = matches!(self.tls, TlsChoice::Default) && crate::https::h2_by_default();
        #[cfg(feature = "tls")]
        let tls_dir = self.tls_args();
        let fx = self.fixture.unwrap_or_default();
        let mut cmd = match (self.nofile, self.listen_fds.len(), self.wrapper.first()) {
            (Some(n), _, _) => {
                let mut cmd = Command::new("bash");
                cmd.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(&self.bin);
                cmd
            }
            (None, n, _) if n > 0 => {
                let mut cmd = Command::new("sh");
                cmd.arg("-c")
                    .arg(format!(
                        "export LISTEN_PID=$$ LISTEN_FDS={n}; exec \"$0\" \"$@\""
                    ))
                    .arg(&self.bin);
                let fds: Vec<i32> = self
                    .listen_fds
                    .iter()
                    .map(std::os::fd::AsRawFd::as_raw_fd)
                    .collect();
                use std::os::unix::process::CommandExt;
                // SAFETY: between fork and exec only async-signal-safe calls (fcntl,
                // dup2) on descriptors this process owns (`self.listen_fds`, kept open
                // until the child is spawned).
                unsafe {
                    cmd.pre_exec(move || {
                        // Out of the way first (a source may sit at 3, 4, …), then into place.
                        let mut high = Vec::with_capacity(fds.len());
                        for &fd in &fds {
                            let h = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 1000);
                            if h < 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                            high.push(h);
                        }
                        for (i, &h) in high.iter().enumerate() {
                            if libc::dup2(h, 3 + i as i32) < 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                        }
                        Ok(())
                    });
                }
                cmd
            }
            (None, _, Some(program)) => {
                let mut cmd = Command::new(program);
                cmd.args(&self.wrapper[1..]).arg(&self.bin);
                cmd
            }
            (None, _, None) => Command::new(&self.bin),
        };
        crate::util::without_rfs_env(&mut cmd);
        if self.port_and_root {
            if !self.listens {
                cmd.arg("--port").arg("0");
            }
            cmd.arg("--root").arg(&fx.root);
        }
        cmd.args(&self.args)
            .current_dir(self.current_dir.as_deref().unwrap_or(fx.base.path()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(filter) = &self.rust_log {
            cmd.env("RUST_LOG", filter);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let log_file = self.log_file.as_ref().map(|path| {
            std::fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()))
        });
        let bin = self.bin;
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start the server binary {bin}: {e}"));
        // `stderr_unread`: the child's stderr is kept, unread; the collector below reads
        // an empty stream instead.
        let held_stderr = if self.stderr_unread {
            let (empty, writer) = std::io::pipe().expect("pipe");
            drop(writer);
            let empty = std::process::ChildStderr::from(std::os::fd::OwnedFd::from(empty));
            child.stderr.replace(empty)
        } else {
            None
        };
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        let stderr_thread = thread::spawn(move || {
            let mut log_file = log_file;
            let mut buf = [0u8; 8192];
            loop {
                match err_pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Some(f) = log_file.as_mut() {
                            let _ = f.write_all(&buf[..n]);
                        }
                        sink.lock()
                            .expect("stderr buffer")
                            .extend_from_slice(&buf[..n]);
                    }
                }
            }
        });
        // The child has its copies now.
        drop(std::mem::take(&mut self.listen_fds));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let out_lines = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&out_lines);
        let (stdout_hold, held) = if self.stdout_unread {
            let (hold, held) = mpsc::channel::<()>();
            (Some(hold), Some(held))
        } else {
            (None, None)
        };
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                kept.lock().expect("stdout lines").push(line.clone());
                let _ = tx.send(line);
            }
            if let Some(held) = held {
                // Until the server is dropped: the pipe open, unread.
                let _ = held.recv();
                return;
            }
            // Keep draining so the server never blocks on a full pipe.
            for line in lines.map_while(Result::ok) {
                kept.lock().expect("stdout lines").push(line);
            }
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                // Closed stdout: the server exited (give it a moment to be reaped).
                let until = Instant::now() + Duration::from_secs(2);
                let mut exited = None;
                while e == mpsc::RecvTimeoutError::Disconnected && Instant::now() < until {
                    exited = child.try_wait().ok().flatten();
                    if exited.is_some() {
                        break;
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
                let _ = stderr_thread.join();
                let what = match exited {
                    Some(status) => format!("it exited ({status})"),
                    None => format!("it printed none within {START_TIMEOUT:?}"),
                };
                let log = String::from_utf8_lossy(&stderr.lock().expect("stderr")).into_owned();
                panic!(
                    "the server {bin} should print `listening on http://HOST:PORT` on stdout; \
                     {what}; stderr:\n{log}"
                );
            }
        };
        let unix = line
            .trim()
            .strip_prefix("listening on ")
            .filter(|l| l.starts_with("unix:"))
            .and_then(|l| l.split(' ').next());
        let (listening, port) = match unix {
            Some(name) => (name.to_string(), 0),
            None => parse_start_line(&line)
                .unwrap_or_else(|| panic!("unexpected start line on stdout: {line:?}")),
        };
        #[cfg(feature = "tls")]
        let tls = tls_dir.map(|dir| {
            assert!(
                listening.starts_with("https://"),
                "a TLS server should say `listening on https://…`: {line:?}"
            );
            let fingerprint = parse_fingerprint(&line);
            let (config, ca_file) = match self.tls {
                TlsChoice::Files { trust, ca_file, .. } => (trust, ca_file),
                TlsChoice::SelfSigned => {
                    let fp = fingerprint.clone().unwrap_or_else(|| {
                        panic!("--tls-self-signed should print a fingerprint: {line:?}")
                    });
                    (crate::https::trust_fingerprint(&fp), None)
                }
                _ => {
                    let ca = dir.path().join("ca.pem");
                    std::fs::write(&ca, crate::https::test_ca().pem()).expect("write ca.pem");
                    (crate::https::test_ca().client_config(), Some(ca))
                }
            };
            crate::https::register_port(port, Arc::clone(&config), h2);
            ServerTls {
                config,
                ca_file,
                fingerprint,
                dir,
                h2,
            }
        });
        Server {
            child,
            port,
            listening,
            fx,
            stderr,
            stderr_thread: Some(stderr_thread),
            held_stderr,
            stdout: out_lines,
            stdout_hold,
            #[cfg(feature = "tls")]
            tls,
        }
    }

    /// Resolves the TLS choice into arguments; the directory for the harness's files
    /// when the server is to speak TLS.
    #[cfg(feature = "tls")]
    fn tls_args(&mut self) -> Option<tempfile::TempDir> {
        if matches!(self.tls, TlsChoice::Default) {
            self.tls = if crate::https::tls_by_default() {
                TlsChoice::TestCert
            } else {
                TlsChoice::Plain
            };
        }
        let dir = || tempfile::tempdir().expect("tempdir for the certificate");
        let (dir, args): (tempfile::TempDir, Vec<String>) = match &self.tls {
            TlsChoice::Default | TlsChoice::Plain => return None,
            TlsChoice::TestCert => {
                let dir = dir();
                let (cert, key) = crate::https::test_cert().write_to(dir.path());
                let args = vec![
                    "--tls-cert".to_string(),
                    cert.to_string_lossy().into_owned(),
                    "--tls-key".to_string(),
                    key.to_string_lossy().into_owned(),
                ];
                (dir, args)
            }
            TlsChoice::Files { cert, key, .. } => {
                let args = vec![
                    "--tls-cert".to_string(),
                    cert.to_string_lossy().into_owned(),
                    "--tls-key".to_string(),
                    key.to_string_lossy().into_owned(),
                ];
                (dir(), args)
            }
            TlsChoice::SelfSigned => (dir(), vec!["--tls-self-signed".to_string()]),
        };
        self.args.extend(args);
        crate::https::count_tls_start();
        Some(dir)
    }
}

impl Server {
    /// A server to configure before it starts (see [`ServerBuilder`]).
    pub fn builder(bin: &str) -> ServerBuilder {
        ServerBuilder {
            bin: bin.to_string(),
            fixture: None,
            args: Vec::new(),
            port_and_root: true,
            current_dir: None,
            rust_log: Some("debug".to_string()),
            nofile: None,
            log_file: None,
            stderr_unread: false,
            stdout_unread: false,
            env: Vec::new(),
            listens: false,
            wrapper: Vec::new(),
            listen_fds: Vec::new(),
            #[cfg(feature = "tls")]
            tls: TlsChoice::Default,
        }
    }

    /// Starts `bin` on a fresh fixture with `--port 0 --root ROOT` and `args`.
    pub fn start(bin: &str, args: &[&str]) -> Server {
        Server::builder(bin).args(args).start()
    }

    /// Starts `bin` on a prepared fixture.
    pub fn start_in(bin: &str, fx: Fixture, args: &[&str]) -> Server {
        Server::builder(bin).fixture(fx).args(args).start()
    }

    /// `127.0.0.1:PORT`, the value of a correct `Host` header.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT{path}` (`https://` over TLS).
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme(), self.port)
    }

    /// `http`, or `https` when the server speaks TLS.
    pub fn scheme(&self) -> &'static str {
        if self.is_tls() {
            "https"
        } else {
            "http"
        }
    }

    /// Whether the harness's clients speak HTTP/2 to it (see [`crate::https::over_h2`]).
    pub fn is_h2(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.h2;
        }
        false
    }

    /// Whether the server speaks TLS.
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return true;
        }
        false
    }

    /// What curl needs to trust this server: `--cacert FILE` over TLS (the test CA, or
    /// for a self-signed certificate the certificate itself, once its fingerprint is the
    /// one printed), nothing over HTTP.
    pub fn curl_args(&self) -> Vec<String> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let file = match &tls.ca_file {
                Some(file) => file.clone(),
                None => {
                    // The client checks the fingerprint during the handshake.
                    let der = self
                        .connect()
                        .peer_certificate()
                        .expect("the server's certificate");
                    let file = tls.dir.path().join("presented.pem");
                    std::fs::write(&file, crate::https::cert_pem(&der)).expect("write");
                    file
                }
            };
            let mut args = vec!["--cacert".to_string(), file.to_string_lossy().into_owned()];
            if tls.h2 {
                crate::https::count_h2_use();
                args.push("--http2".to_string());
            }
            return args;
        }
        Vec::new()
    }

    /// The fingerprint the start line printed (`--tls-self-signed`).
    #[cfg(feature = "tls")]
    pub fn fingerprint(&self) -> Option<&str> {
        self.tls.as_ref().and_then(|t| t.fingerprint.as_deref())
    }

    /// The client configuration that trusts this TLS server.
    #[cfg(feature = "tls")]
    pub fn tls_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.tls.as_ref().map(|t| Arc::clone(&t.config))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new connection (TLS when the server speaks it).
    pub fn connect(&self) -> Client {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            if tls.h2 {
                // The registered configuration (ALPN h2), and the gateway.
                return Client::connect(self.port);
            }
            return Client::try_connect_tls(
                self.port,
                Arc::clone(&tls.config),
                crate::https::loopback_name(),
            )
            .expect("connect to the server");
        }
        Client::connect(self.port)
    }

    /// `GET path` on a new connection (`Connection: close`).
    pub fn get(&self, path: &str) -> Response {
        self.connect().request(&format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.host()
        ))
    }

    /// One raw request on a new connection.
    pub fn raw(&self, request: &str) -> Response {
        self.connect().request(request)
    }

    /// POST /upload with this content type and body, on a new connection.
    pub fn upload(&self, content_type: &str, body: &str) -> Response {
        self.connect().request(&format!(
            "POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.host(),
            body.len()
        ))
    }

    /// Waits (at most 5 s) until the server has printed `n` lines on stdout (one start
    /// line per listener); every line printed by then.
    pub fn start_lines(&self, n: usize) -> Vec<String> {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.stdout.lock().expect("stdout lines").clone();
            if lines.len() >= n || Instant::now() >= until {
                return lines;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The lines the server wrote to stdout after its start line, so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout
            .lock()
            .expect("stdout lines")
            .iter()
            .skip(1)
            .cloned()
            .collect()
    }

    /// What the server wrote to stderr so far.
    pub fn logs(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr")).into_owned()
    }

    /// Waits until stderr contains a line with every needle; returns that line.
    pub fn wait_log(&self, needles: &[&str], timeout: Duration) -> Option<String> {
        let until = Instant::now() + timeout;
        loop {
            let logs = self.logs();
            if let Some(line) = logs.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return Some(line.to_string());
            }
            if Instant::now() >= until {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`, `HUP`, `QUIT`, `USR1`, `USR2`) to the
    /// server process.
    pub fn signal(&self, name: &str) {
        use rustix::process::{kill_process, Pid, Signal};
        let signal = match name {
            "TERM" => Signal::TERM,
            "INT" => Signal::INT,
            "KILL" => Signal::KILL,
            "HUP" => Signal::HUP,
            "QUIT" => Signal::QUIT,
            "USR1" => Signal::USR1,
            "USR2" => Signal::USR2,
            other => panic!("no signal {other:?} here"),
        };
        let pid = i32::try_from(self.pid())
            .ok()
            .and_then(Pid::from_raw)
            .expect("the server's PID");
        kill_process(pid, signal).unwrap_or_else(|e| panic!("kill -{name} failed: {e}"));
    }

    /// The exit status if the server has exited, without waiting.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait")
    }

    /// Waits for the server to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Before the port is freed: no other server's clients may take it for TLS.
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            crate::https::forget_port(self.port);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.held_stderr.take());
        drop(self.stdout_hold.take());
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        if thread::panicking() {
            eprintln!("---- server stderr ----\n{}", self.logs());
        }
    }
}

/// The URL (`http://HOST:PORT`) and port of the start line `listening on
/// http://HOST:PORT` (or `https://HOST:PORT`, maybe followed by a note in parentheses).
pub fn parse_start_line(line: &str) -> Option<(String, u16)> {
    let after = line.trim().strip_prefix("listening on ")?;
    let url = after.split(' ').next()?;
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let port = rest
        .trim_end_matches('/')
        .rsplit_once(':')?
        .1
        .parse()
        .ok()?;
    Some((url.trim_end_matches('/').to_string(), port))
}

/// The SHA-256 fingerprint (`AB:CD:…`) a start line prints for a self-signed
/// certificate: `listening on https://ADDR (self-signed certificate, SHA-256
/// fingerprint AB:…)`.
pub fn parse_fingerprint(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("SHA-256 fingerprint ")?;
    let fp: String = rest
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == ':')
        .collect();
    (!fp.is_empty()).then_some(fp)
}
