//! The integration suite shared by both runtimes: every row of SPEC over real sockets.
//!
//! A runtime's test file includes this module and expands the macro with the path of its
//! binary, which gives one `#[test]` per case:
//!
//! ```ignore
//! mod suite;                                          // runtime-std/tests/suite.rs
//! suite_tests!(env!("CARGO_BIN_EXE_runtime-std"));
//!
//! #[path = "../../runtime-std/tests/suite/mod.rs"]    // runtime-smol/tests/suite.rs
//! mod suite;
//! suite_tests!(env!("CARGO_BIN_EXE_runtime-smol"));
//! ```
//!
//! Each case starts its own server ([`Server`]) with `--port 0 --root <temporary root>`,
//! reads the port from the `listening on http://HOST:PORT` line on stdout, collects
//! stderr (the logs) for the case to inspect, and kills the server by PID when dropped.
//! Clients are raw [`TcpStream`]s on 127.0.0.1 (and `curl` for the seed's examples, where
//! installed). Every response read through [`Client`] is checked for what SPEC says every
//! response has, and that it does not contain [`SECRET`], the content of a file beside
//! (outside) the web root that symlinks inside the root point to.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub mod cases;

/// Expands to one `#[test]` per case of the suite, run against the binary at `$bin`.
#[macro_export]
macro_rules! suite_tests {
    ($bin:expr) => {
        $crate::suite_tests!(@cases $bin;
            get_root_is_index_html,
            html_and_htm_are_inline_html,
            downloads_are_attachments_byte_identical,
            json_is_application_json,
            common_web_types_are_inline_with_their_type,
            unknown_extension_is_415,
            missing_file_or_directory_is_404,
            head_has_the_get_headers_and_no_body,
            upload_is_created_atomically_and_readable_back,
            upload_content_type_parameters_are_allowed,
            upload_other_content_type_is_415,
            upload_invalid_json_is_400,
            post_elsewhere_is_404_and_writes_nothing,
            options_is_204_with_allow,
            other_methods_are_405_with_allow,
            keep_alive_and_connection_close,
            http10_closes_unless_keep_alive,
            idle_timeout_closes_quiet_connections,
            hundred_requests_per_connection,
            pipelined_requests_are_answered_in_order,
            slow_drip_head_gets_408_while_others_are_served,
            traversal_is_refused_and_nothing_outside_is_read,
            symlinks_out_of_the_root_are_refused,
            host_header_rules,
            wildcard_bind_and_allow_host,
            framing_and_smuggling_are_refused,
            chunked_upload_is_accepted,
            expect_continue_upload,
            limits_431_414_413_and_long_method,
            malformed_request_and_bad_version,
            refusals_are_logged_at_warn_with_the_peer,
            request_log_lines_and_start_line,
            concurrent_uploads_lose_and_duplicate_nothing,
            busy_workers_and_full_queue_give_503,
            unwritable_uploads_give_500_and_serving_goes_on,
            large_file_download_is_byte_identical,
            ranges_and_conditional_requests,
            precompressed_sibling_is_served,
            curl_examples_of_the_seed,
            sigterm_drains_in_flight_and_exits_0,
            command_line_errors_and_positionals,
        );
    };
    (@cases $bin:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::suite::cases::$name($bin);
            }
        )*
    };
}

/// The content of the file outside the web root; no response may ever contain it.
pub const SECRET: &str = "TOP-SECRET-outside-the-web-root-7f3a9c";
/// How long a client waits for any answer before the case fails.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// A web root in a temporary directory, with a secret file beside it.
pub struct Fixture {
    pub base: tempfile::TempDir,
    /// The web root (`base/www`).
    pub root: PathBuf,
    /// `base/secret.txt`, outside the root.
    pub secret: PathBuf,
}

/// Bytes that are not text: every byte value, CR LF pairs, and NULs.
pub fn binary_bytes(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}

pub const INDEX_HTML: &str = "<!doctype html>\n<title>suite index</title>\n<h1>index</h1>\n";

impl Fixture {
    pub fn new() -> Fixture {
        let base = tempfile::tempdir().expect("tempdir");
        let root = base.path().join("www");
        let secret = base.path().join("secret.txt");
        std::fs::write(&secret, SECRET).expect("secret");
        std::fs::write(base.path().join("server.py"), SECRET).expect("server.py");
        let files: &[(&str, &[u8])] = &[
            ("index.html", INDEX_HTML.as_bytes()),
            ("page.htm", b"<p>an htm page</p>"),
            ("sample.txt", b"sample text\r\nsecond line\n"),
            ("data.json", b"{\"k\": [1, 2, 3]}"),
            ("style.css", b"body { color: red }"),
            ("app.js", b"console.log(1);"),
            ("image.svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            ("mod.wasm", b"\0asm\x01\0\0\0"),
            ("favicon.ico", b"\0\0\x01\0"),
            ("anim.gif", b"GIF89a"),
            ("pic.webp", b"RIFF\0\0\0\0WEBP"),
            ("notes.unknownext", b"what is this"),
            ("sub/inner.html", b"<p>inner</p>"),
        ];
        for (name, bytes) in files {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, bytes).expect("write");
        }
        std::fs::write(root.join("logo.png"), binary_bytes(7028)).expect("png");
        std::fs::write(root.join("photo.jpg"), binary_bytes(3000)).expect("jpg");
        std::fs::write(root.join("photo.jpeg"), binary_bytes(1234)).expect("jpeg");
        std::fs::create_dir_all(root.join("uploads")).expect("uploads");
        std::os::unix::fs::symlink("../secret.txt", root.join("leak.txt")).expect("symlink");
        std::os::unix::fs::symlink(&secret, root.join("abs-leak.txt")).expect("symlink");
        std::os::unix::fs::symlink(base.path(), root.join("outdir")).expect("symlink");
        std::os::unix::fs::symlink("../secret.txt", root.join("leak.html")).expect("symlink");
        std::os::unix::fs::symlink("sample.txt", root.join("inlink.txt")).expect("symlink");
        std::os::unix::fs::symlink(root.join("page.htm"), root.join("abs-inlink.html"))
            .expect("symlink");
        Fixture { base, root, secret }
    }

    /// The names of the finished uploads (`uploads/*.json`), sorted.
    pub fn uploads(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.join("uploads"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// A running server; killed (by PID) when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    pub fx: Fixture,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// Starts `bin` on a fresh fixture with `--port 0 --root ROOT` and `args`.
    pub fn start(bin: &str, args: &[&str]) -> Server {
        Server::start_in(bin, Fixture::new(), args)
    }

    /// Starts `bin` on a prepared fixture.
    pub fn start_in(bin: &str, fx: Fixture, args: &[&str]) -> Server {
        let mut cmd = Command::new(bin);
        cmd.arg("--port")
            .arg("0")
            .arg("--root")
            .arg(&fx.root)
            .args(own_flags(bin, args))
            .current_dir(fx.base.path())
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Server::spawn(cmd, fx)
    }

    /// Starts a prepared command (its stdout and stderr must be piped).
    /// Pass its arguments through [`own_flags`].
    pub fn spawn(mut cmd: Command, fx: Fixture) -> Server {
        let mut child = cmd.spawn().expect("start the server binary");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        let stderr_thread = thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match err_pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink
                        .lock()
                        .expect("stderr buffer")
                        .extend_from_slice(&buf[..n]),
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
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = String::from_utf8_lossy(&stderr.lock().expect("stderr")).into_owned();
                panic!("the server printed no start line within 20 s; stderr:\n{log}");
            }
        };
        let port = parse_start_line(&line)
            .unwrap_or_else(|| panic!("unexpected start line on stdout: {line:?}"));
        Server {
            child,
            port,
            fx,
            stderr,
            stderr_thread: Some(stderr_thread),
        }
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

    /// Sends a signal (`TERM`, `INT`) to the server process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
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

/// The port of `listening on http://HOST:PORT`.
pub fn parse_start_line(line: &str) -> Option<u16> {
    let rest = line.trim().strip_prefix("listening on http://")?;
    rest.rsplit_once(':')?.1.parse().ok()
}

/// Runs the binary to completion (for command-line errors): status and stderr.
pub fn run_to_exit(bin: &str, args: &[&str], cwd: &Path) -> (ExitStatus, String, String) {
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{bin} {args:?} did not exit within 10 s");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status, out, err)
}

/// A parsed response.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the response says the connection closes.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// Asserts the status, with the response in the message.
    #[track_caller]
    pub fn expect_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "status; headers {:?}, body {:?}",
            self.headers,
            self.text()
        );
        self
    }

    /// Asserts a header value.
    #[track_caller]
    pub fn expect_header(&self, name: &str, value: &str) -> &Self {
        assert_eq!(
            self.header(name),
            Some(value),
            "header {name}; status {}, headers {:?}",
            self.status,
            self.headers
        );
        self
    }
}

/// A raw HTTP/1.1 client over one TCP connection.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
        stream
            .set_read_timeout(Some(CLIENT_TIMEOUT))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(CLIENT_TIMEOUT))
            .expect("write timeout");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream
            .write_all(bytes.as_ref())
            .expect("send to the server");
    }

    /// Sends, then sends nothing more and closes the writing side.
    pub fn send_and_finish(&mut self, bytes: impl AsRef<[u8]>) {
        self.send(bytes);
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Sends a request and reads its response (a HEAD request reads no body).
    pub fn request(&mut self, raw: &str) -> Response {
        self.send(raw.as_bytes());
        self.read_response_for(raw.starts_with("HEAD "))
    }

    pub fn read_response(&mut self) -> Response {
        self.read_response_for(false)
    }

    /// Reads one response; `head` when it answers a HEAD request (no body follows).
    pub fn read_response_for(&mut self, head: bool) -> Response {
        self.try_read_response(head)
            .unwrap_or_else(|e| panic!("no complete response: {e}"))
    }

    /// Reads one response, or says why there is none (closed, timeout, garbage).
    pub fn try_read_response(&mut self, head: bool) -> Result<Response, String> {
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if self.fill()? == 0 {
                return Err(format!(
                    "connection closed after {} bytes of head",
                    self.buf.len()
                ));
            }
        };
        let head_text = String::from_utf8(self.buf[..end].to_vec())
            .map_err(|_| "response head is not UTF-8".to_string())?;
        self.buf.drain(..end + 4);
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_string();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut headers = Vec::new();
        for line in lines {
            let (n, v) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?}"))?;
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut resp = Response {
            status,
            version,
            headers,
            body: Vec::new(),
        };
        let no_body = head || status / 100 == 1 || status == 204 || status == 304;
        if !no_body {
            if let Some(len) = resp.header("content-length") {
                let len: usize = len
                    .parse()
                    .map_err(|_| format!("bad Content-Length {len:?}"))?;
                while self.buf.len() < len {
                    if self.fill()? == 0 {
                        return Err(format!("body cut at {} of {len} bytes", self.buf.len()));
                    }
                }
                resp.body = self.buf.drain(..len).collect();
            } else {
                while self.fill()? > 0 {}
                resp.body = std::mem::take(&mut self.buf);
            }
        }
        check_common(&resp);
        Ok(resp)
    }

    /// Reads more bytes into the buffer; 0 at end of stream.
    fn fill(&mut self) -> Result<usize, String> {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(0),
            Err(e) => Err(format!("read failed: {e}")),
        }
    }

    /// Whether the server closes the connection within `timeout` (no more bytes, then
    /// end of stream or a reset). Bytes that arrive instead make it false.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("read timeout");
        let mut byte = [0u8; 1];
        let closed = match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        let _ = self.stream.set_read_timeout(Some(CLIENT_TIMEOUT));
        closed
    }

    /// Whether the connection is still open and quiet for `wait` (no bytes, no close).
    pub fn open_after(&mut self, wait: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        self.stream
            .set_read_timeout(Some(wait))
            .expect("read timeout");
        let mut byte = [0u8; 1];
        let open = match self.stream.read(&mut byte) {
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        let _ = self.stream.set_read_timeout(Some(CLIENT_TIMEOUT));
        open
    }
}

/// What SPEC says every response has, and the one thing no response may have.
#[track_caller]
pub fn check_common(r: &Response) {
    assert_eq!(r.version, "HTTP/1.1", "status line version");
    assert!(
        !contains(&r.body, SECRET.as_bytes()),
        "a response carried the file outside the root: {r:?}"
    );
    if r.status / 100 == 1 {
        return;
    }
    assert!(r.header("date").is_some(), "no Date: {r:?}");
    assert!(r.header("server").is_some(), "no Server: {r:?}");
    let chunked = r
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"));
    if r.status != 204 && r.status != 304 {
        assert!(
            r.header("content-length").is_some() || chunked,
            "no Content-Length: {r:?}"
        );
    }
    assert!(r.header_count("content-length") <= 1, "{r:?}");
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// Whether a program is installed (for the curl examples).
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `args` without the flag that only the other runtime takes (`--queue` is
/// runtime-std's, `--max-connections` runtime-smol's; each refuses the other's), so one
/// test can say both.
pub fn own_flags<'a>(bin: &str, args: &[&'a str]) -> Vec<&'a str> {
    let foreign = if bin.ends_with("runtime-smol") {
        "--queue"
    } else {
        "--max-connections"
    };
    let mut out = Vec::with_capacity(args.len());
    let mut skip = false;
    for &a in args {
        if std::mem::take(&mut skip) {
            continue;
        }
        if a == foreign {
            skip = true;
            continue;
        }
        out.push(a);
    }
    out
}
