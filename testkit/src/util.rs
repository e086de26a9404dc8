//! Helpers shared by the groups of cases: each is defined here once. A helper that only
//! one group needs stays in that group's module.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::{Client, Response, Server};

// ----- Bytes, programs, flags, limits -----

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// Whether a program is installed: it can be started (`--version` is asked, but not
/// every tool knows it: `unzip`, `redbot`).
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `args` without the flag that only the other runtime takes (`--queue` is
/// runtime-std's; runtime-smol refuses it), so one test can say both.
pub fn own_flags<'a>(bin: &str, args: &[&'a str]) -> Vec<&'a str> {
    // Only runtime-std has a queue; both take --max-connections.
    let foreign = if bin.ends_with("runtime-smol") {
        "--queue"
    } else {
        "\0none"
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

/// Runs the binary to completion (for command-line errors): status, stdout and stderr.
pub fn run_to_exit(bin: &str, args: &[&str], cwd: &Path) -> (ExitStatus, String, String) {
    run_to_exit_with_env(bin, args, cwd, &[])
}

/// [`run_to_exit`] with these environment variables set (and no other `RFS_*`).
pub fn run_to_exit_with_env(
    bin: &str,
    args: &[&str],
    cwd: &Path,
    env: &[(&str, &str)],
) -> (ExitStatus, String, String) {
    let mut cmd = Command::new(bin);
    without_rfs_env(&mut cmd);
    let mut child = cmd
        .args(args)
        .envs(env.iter().copied())
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

/// Keeps the `RFS_*` variables of the test's own environment from the server (they would
/// configure it: SPEC "Command line"); a test sets the ones it means.
pub fn without_rfs_env(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("RFS_") {
            cmd.env_remove(name);
        }
    }
}

/// Raises this process's soft limit of open files to `want` (at most the hard limit),
/// for tests that hold many connections.
pub fn raise_fd_limit(want: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    let hard = lim.maximum.unwrap_or(u64::MAX);
    if lim.current.is_some_and(|c| c < want) {
        lim.current = Some(want.min(hard));
        setrlimit(Resource::Nofile, lim).expect("setrlimit");
    }
}

// ----- Which runtime -----

/// Whether `bin` is runtime-smol (by its file name).
pub fn is_smol(bin: &str) -> bool {
    Path::new(bin)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("runtime-smol"))
}

/// The runtime's name, for the figures a test prints.
pub fn runtime(bin: &str) -> &'static str {
    if is_smol(bin) {
        "runtime-smol"
    } else {
        "runtime-std"
    }
}

// ----- Request texts (the Host header of `s`) -----

/// A keep-alive `GET`.
pub fn get(s: &Server, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", s.host())
}

/// A `GET` with `Connection: close`.
pub fn get_close(s: &Server, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        s.host()
    )
}

/// A keep-alive `GET` with extra header lines (each ending in CRLF).
pub fn get_with(s: &Server, path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{extra}\r\n", s.host())
}

/// A keep-alive `HEAD` with extra header lines (each ending in CRLF).
pub fn head_with(s: &Server, path: &str, extra: &str) -> String {
    format!("HEAD {path} HTTP/1.1\r\nHost: {}\r\n{extra}\r\n", s.host())
}

/// A keep-alive request with any method.
pub fn method(s: &Server, m: &str, path: &str) -> String {
    format!("{m} {path} HTTP/1.1\r\nHost: {}\r\n\r\n", s.host())
}

/// A keep-alive `POST` with a body.
pub fn post(s: &Server, path: &str, content_type: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        s.host(),
        body.len()
    )
}

// ----- Answers -----

/// The bytes of a file of the server's web root.
pub fn file(s: &Server, name: &str) -> Vec<u8> {
    std::fs::read(s.fx.root.join(name)).expect("fixture file")
}

/// A short, human-readable error page with this status.
#[track_caller]
pub fn expect_error_page(r: &Response, status: u16) {
    r.expect_status(status);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/html") || t.starts_with("text/plain")),
        "error page type: {r:?}"
    );
    assert!(
        !r.body.is_empty() && r.body.len() < 2048,
        "short error page: {r:?}"
    );
}

/// After an answer that ends its request early (a limit, a refusal before the body):
/// over HTTP/1.1 it says `Connection: close` and the connection closes; over HTTP/2 the
/// stream alone ends, and the connection serves the next request.
#[track_caller]
pub fn closes_after(c: &mut Client, r: &Response, s: &Server) {
    if c.is_h2() {
        // A body the answer refused is not sent (HTTP/1.1 would close instead).
        c.abandon_body();
        c.request(&get(s, "/")).expect_status(200);
        return;
    }
    assert!(r.closes(), "{r:?}");
    assert!(c.closed_within(Duration::from_secs(3)));
}

/// Checks a `201 Created` of an upload; its `Location`.
pub fn created_location(r: &Response) -> String {
    r.expect_status(201)
        .expect_header("content-type", "application/json");
    let location = r.header("location").expect("Location").to_string();
    assert!(
        location.starts_with("/uploads/") && location.ends_with(".json"),
        "{location}"
    );
    assert_eq!(
        r.text(),
        format!("{{\"status\":\"created\",\"path\":\"{location}\"}}")
    );
    location
}

/// Sends a `Connection: close` request on `c` and reads the answer to the end of the
/// stream (at most 10 s): the response, its body all that follows the head.
pub fn exchange(c: &mut Client, request: &[u8]) -> Result<Response, String> {
    c.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    c.stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    c.stream
        .write_all(request)
        .map_err(|e| format!("send: {e}"))?;
    let got = c.read_until_closed()?;
    let (mut r, at) = Response::parse_head(&got)?
        .ok_or_else(|| format!("no response head in {} bytes", got.len()))?;
    r.body = got[at..].to_vec();
    Ok(r)
}

/// GET on a new connection, retried until it is answered 200 or `limit` passes;
/// returns how long it took.
pub fn served_within(s: &Server, path: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let answered = Client::try_connect(s.port)
            .map_err(|e| e.to_string())
            .and_then(|mut c| exchange(&mut c, get_close(s, path).as_bytes()));
        if answered.as_ref().is_ok_and(|r| r.status == 200) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{path} not served within {limit:?} (last answer {answered:?}); logs:\n{}",
            tail(&s.logs())
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Reads from a non-blocking socket: `Some(true)` at end of stream (or reset).
pub fn poll_read(s: &mut TcpStream, into: &mut Vec<u8>) -> Option<bool> {
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(0) => Some(true),
        Ok(n) => {
            into.extend_from_slice(&buf[..n]);
            Some(false)
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
        Err(_) => Some(true),
    }
}

// ----- Logs -----

/// The end of a long log, for failure messages.
pub fn tail(logs: &str) -> String {
    let lines: Vec<&str> = logs.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The lines of a log that hold every needle (to count what was logged about a peer).
pub fn lines_with<'a>(logs: &'a str, needles: &[&str]) -> Vec<&'a str> {
    logs.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .collect()
}

// ----- Figures, bodies, files, processes -----

/// The nearest-rank percentile (`p` in 0..=100) of sorted values.
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// A JSON document of exactly `len` bytes (at least 12).
pub fn json_of_len(len: usize) -> String {
    let body = format!("{{\"pad\":\"{}\"}}", "p".repeat(len - 10));
    assert_eq!(body.len(), len);
    body
}

/// A file's modification time, in seconds since the Unix epoch.
pub fn mtime_secs(path: &Path) -> u64 {
    std::fs::metadata(path)
        .expect("metadata")
        .modified()
        .expect("mtime")
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}
