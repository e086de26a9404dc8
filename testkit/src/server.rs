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
    pub port: u16,
    /// The URL of the start line, `http://HOST:PORT`.
    pub listening: String,
    pub fx: Fixture,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<thread::JoinHandle<()>>,
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

    /// Starts the server and waits (at most 20 s) for its start line.
    pub fn start(self) -> Server {
        let fx = self.fixture.unwrap_or_default();
        let mut cmd = match self.nofile {
            Some(n) => {
                let mut cmd = Command::new("bash");
                cmd.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(&self.bin);
                cmd
            }
            None => Command::new(&self.bin),
        };
        if self.port_and_root {
            cmd.arg("--port").arg("0").arg("--root").arg(&fx.root);
        }
        cmd.args(&self.args)
            .current_dir(self.current_dir.as_deref().unwrap_or(fx.base.path()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(filter) = &self.rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let log_file = self.log_file.as_ref().map(|path| {
            std::fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()))
        });
        let bin = self.bin;
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start the server binary {bin}: {e}"));
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
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
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
        let (listening, port) = parse_start_line(&line)
            .unwrap_or_else(|| panic!("unexpected start line on stdout: {line:?}"));
        Server {
            child,
            port,
            listening,
            fx,
            stderr,
            stderr_thread: Some(stderr_thread),
        }
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

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new connection.
    pub fn connect(&self) -> Client {
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
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        if thread::panicking() {
            eprintln!("---- server stderr ----\n{}", self.logs());
        }
    }
}

/// The URL (`http://HOST:PORT`) and port of the start line `listening on
/// http://HOST:PORT`.
pub fn parse_start_line(line: &str) -> Option<(String, u16)> {
    let url = line.trim().strip_prefix("listening on ")?;
    let rest = url.strip_prefix("http://")?;
    let port = rest.rsplit_once(':')?.1.parse().ok()?;
    Some((url.trim_end_matches('/').to_string(), port))
}
