//! Behaviour only runtime-smol has: `--max-connections`, exactly MAX_THREADS executor
//! threads, idle and slow connections that cost no thread, and shutdown with idle
//! keep-alive connections open. Everything else is the shared suite (`tests/suite.rs`).
//!
//! Each test starts the real binary on 127.0.0.1 port 0 and talks to it over sockets;
//! every wait is bounded.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_runtime-smol");

/// A running server, killed (by its PID) when dropped.
struct Server {
    child: Child,
    port: u16,
    _root: tempfile::TempDir,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::write(root.path().join("index.html"), "<h1>hi</h1>").expect("write");
        std::fs::write(root.path().join("a.txt"), "hello").expect("write");
        std::fs::create_dir(root.path().join("uploads")).expect("mkdir");
        let mut child = Command::new(BIN)
            .args(["--port", "0", "--host", "127.0.0.1", "--root"])
            .arg(root.path())
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn runtime-smol");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Server {
            child,
            port,
            _root: root,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then the exit status (at most `limit` later).
    fn terminate(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, start.elapsed());
            }
            assert!(start.elapsed() < limit, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(port: u16, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")
}

/// Reads one response with a Content-Length body; returns (head, body).
fn read_response(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("read head");
        assert!(
            n == 1,
            "closed inside a head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).expect("ascii head");
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    s.read_exact(&mut body).expect("read body");
    (head, body)
}

fn raise_fd_limit(want: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    let hard = lim.maximum.unwrap_or(u64::MAX);
    if lim.current.is_some_and(|c| c < want) {
        lim.current = Some(want.min(hard));
        setrlimit(Resource::Nofile, lim).expect("setrlimit");
    }
}

/// Threads of a process whose name starts with `prefix`.
fn threads_named(pid: u32, prefix: &str) -> usize {
    let dir = PathBuf::from(format!("/proc/{pid}/task"));
    std::fs::read_dir(dir)
        .expect("task dir")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

#[test]
fn over_max_connections_new_ones_get_503_and_close() {
    let server = Server::start(&["--max-connections", "2", "1"]);
    let mut a = server.connect();
    let mut b = server.connect();
    // Both are served (so both are accepted and counted) and stay open.
    for s in [&mut a, &mut b] {
        s.write_all(get(server.port, "/a.txt").as_bytes())
            .expect("send");
        let (head, body) = read_response(s);
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert_eq!(body, b"hello");
    }
    let mut c = server.connect();
    c.write_all(get(server.port, "/a.txt").as_bytes())
        .expect("send");
    let mut all = Vec::new();
    c.read_to_end(&mut all).expect("the 503 and a clean close");
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
    assert!(text.contains("Retry-After: 1\r\n"), "{text}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
    // The two open connections still work; once one closes, a new one is served.
    a.write_all(get(server.port, "/a.txt").as_bytes())
        .expect("send");
    assert!(read_response(&mut a).0.starts_with("HTTP/1.1 200 "));
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut d = server.connect();
        d.write_all(get(server.port, "/a.txt").as_bytes())
            .expect("send");
        let (head, _) = read_response(&mut d);
        if head.starts_with("HTTP/1.1 200 ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never served after a slot freed: {head}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The count of `smol-*` threads once it has settled (a new thread names itself).
fn executor_threads(pid: u32, expected: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let n = threads_named(pid, "smol-");
        if n == expected || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn exactly_max_threads_run_the_executor() {
    let server = Server::start(&["--threads", "3"]);
    // The main thread runs the executor too: 2 more, named smol-1 and smol-2.
    assert_eq!(executor_threads(server.pid(), 2), 2);
    let mut s = server.connect();
    s.write_all(get(server.port, "/").as_bytes()).expect("send");
    assert_eq!(read_response(&mut s).1, b"<h1>hi</h1>");
    assert_eq!(threads_named(server.pid(), "smol-"), 2);
    let server = Server::start(&["--threads", "1"]);
    assert_eq!(executor_threads(server.pid(), 0), 0);
    let mut s = server.connect();
    s.write_all(get(server.port, "/").as_bytes()).expect("send");
    assert_eq!(read_response(&mut s).1, b"<h1>hi</h1>");
}

#[test]
fn a_thousand_slowloris_connections_do_not_stall_a_normal_client() {
    raise_fd_limit(4096);
    // One executor thread: the drip-feeders cannot be each holding a thread.
    let server = Server::start(&["--threads", "1", "--head-timeout", "30"]);
    let mut slow = Vec::new();
    for i in 0..1000 {
        let mut s = server.connect();
        // A request head started and never finished.
        s.write_all(format!("GET /a.txt?{i} HTTP/1.1\r\nHo").as_bytes())
            .expect("send a partial head");
        slow.push(s);
    }
    let mut normal = server.connect();
    let mut worst = Duration::ZERO;
    for _ in 0..50 {
        let start = Instant::now();
        normal
            .write_all(get(server.port, "/a.txt").as_bytes())
            .expect("send");
        let (head, body) = read_response(&mut normal);
        worst = worst.max(start.elapsed());
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert_eq!(body, b"hello");
        if head.contains("Connection: close") {
            normal = server.connect();
        }
    }
    // Generous for a shared 2-core machine; a blocked executor would mean seconds.
    assert!(
        worst < Duration::from_millis(500),
        "slowest answer {worst:?}"
    );
    // The slow ones are still open and waiting, not refused.
    let mut one = slow.pop().expect("a slow connection");
    one.write_all(format!("st: 127.0.0.1:{}\r\n\r\n", server.port).as_bytes())
        .expect("finish the head");
    let (head, body) = read_response(&mut one);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(body, b"hello");
}

#[test]
fn sigterm_with_idle_keep_alive_connections_exits_0_at_once() {
    let mut server = Server::start(&["2"]);
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut s = server.connect();
        s.write_all(get(server.port, "/a.txt").as_bytes())
            .expect("send");
        assert!(read_response(&mut s).0.starts_with("HTTP/1.1 200 "));
        idle.push(s);
    }
    let (status, took) = server.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    // Idle connections are not in-flight requests: no 5 s drain for them.
    assert!(took < Duration::from_secs(2), "took {took:?}");
    for mut s in idle {
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    }
}

#[test]
fn sigterm_lets_an_in_flight_upload_finish() {
    let mut server = Server::start(&["2"]);
    let body = br#"{"in":"flight"}"#;
    let mut s = server.connect();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        server.port,
        body.len()
    );
    s.write_all(head.as_bytes()).expect("send head");
    s.write_all(&body[..5]).expect("send part of the body");
    std::thread::sleep(Duration::from_millis(100));
    let pid = rustix::process::Pid::from_raw(server.pid() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    std::thread::sleep(Duration::from_millis(300));
    // Still running: the request is in flight.
    assert!(server.child.try_wait().expect("wait").is_none());
    s.write_all(&body[5..]).expect("send the rest");
    let (head, answer) = read_response(&mut s);
    assert!(head.starts_with("HTTP/1.1 201 "), "{head}");
    assert!(String::from_utf8_lossy(&answer).contains("/uploads/"));
    let (status, _) = server.terminate(Duration::from_secs(6));
    assert!(status.success(), "{status:?}");
}
