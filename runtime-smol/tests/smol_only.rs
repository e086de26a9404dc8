//! Behaviour only runtime-smol has: `--max-connections`, exactly MAX_THREADS executor
//! threads, idle and slow connections that cost no thread, and shutdown with idle
//! keep-alive connections open. Everything else is shared with runtime-std: the groups
//! of cases in `testkit` (one file here per group, e.g. `tests/capacity.rs`).
//!
//! Each test starts the real binary on 127.0.0.1 port 0 (the testkit harness) and talks
//! to it over sockets; every wait is bounded.
#![cfg(unix)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use testkit::{raise_fd_limit, Fixture, Response, Server};

const BIN: &str = env!("CARGO_BIN_EXE_runtime-smol");

/// Starts runtime-smol on 127.0.0.1 with `args`, on a root with `index.html` and
/// `a.txt`.
fn start(args: &[&str]) -> Server {
    let fx = Fixture::empty()
        .with_file("index.html", "<h1>hi</h1>")
        .with_file("a.txt", "hello");
    Server::builder(BIN)
        .fixture(fx)
        .args(&["--host", "127.0.0.1"])
        .args(args)
        .rust_log("warn")
        .start()
}

/// SIGTERM, then the exit status (at most `limit` later).
fn terminate(server: &mut Server, limit: Duration) -> (ExitStatus, Duration) {
    let start = Instant::now();
    server.signal("TERM");
    let status = server
        .wait_exit(limit)
        .unwrap_or_else(|| panic!("still running after {limit:?}"));
    (status, start.elapsed())
}

fn get(port: u16, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")
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
    let server = start(&["--max-connections", "2", "1"]);
    let mut a = server.connect();
    let mut b = server.connect();
    // Both are served (so both are accepted and counted) and stay open.
    for s in [&mut a, &mut b] {
        s.stream
            .write_all(get(server.port, "/a.txt").as_bytes())
            .expect("send");
        let r = s.read_response();
        r.expect_status(200);
        assert_eq!(r.body, b"hello");
    }
    let mut c = server.connect();
    c.stream
        .write_all(get(server.port, "/a.txt").as_bytes())
        .expect("send");
    let mut all = Vec::new();
    c.stream
        .read_to_end(&mut all)
        .expect("the 503 and a clean close");
    let r = Response::from_bytes(&all)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&all)));
    assert_eq!((r.version.as_str(), r.status), ("HTTP/1.1", 503), "{r:?}");
    r.expect_header("retry-after", "1");
    assert!(r.closes(), "{r:?}");
    // The two open connections still work; once one closes, a new one is served.
    a.stream
        .write_all(get(server.port, "/a.txt").as_bytes())
        .expect("send");
    a.read_response().expect_status(200);
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut d = server.connect();
        d.stream
            .write_all(get(server.port, "/a.txt").as_bytes())
            .expect("send");
        let r = d.read_response();
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never served after a slot freed: {r:?}"
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
    let server = start(&["--threads", "3"]);
    // The main thread runs the executor too: 2 more, named smol-1 and smol-2.
    assert_eq!(executor_threads(server.pid(), 2), 2);
    let mut s = server.connect();
    s.stream
        .write_all(get(server.port, "/").as_bytes())
        .expect("send");
    assert_eq!(s.read_response().body, b"<h1>hi</h1>");
    assert_eq!(threads_named(server.pid(), "smol-"), 2);
    let server = start(&["--threads", "1"]);
    assert_eq!(executor_threads(server.pid(), 0), 0);
    let mut s = server.connect();
    s.stream
        .write_all(get(server.port, "/").as_bytes())
        .expect("send");
    assert_eq!(s.read_response().body, b"<h1>hi</h1>");
}

#[test]
fn a_thousand_slowloris_connections_do_not_stall_a_normal_client() {
    raise_fd_limit(4096);
    // One executor thread: the drip-feeders cannot be each holding a thread.
    let server = start(&["--threads", "1", "--head-timeout", "30"]);
    let mut slow = Vec::new();
    for i in 0..1000 {
        let mut s = server.connect();
        // A request head started and never finished.
        s.stream
            .write_all(format!("GET /a.txt?{i} HTTP/1.1\r\nHo").as_bytes())
            .expect("send a partial head");
        slow.push(s);
    }
    let mut normal = server.connect();
    let mut worst = Duration::ZERO;
    for _ in 0..50 {
        let start = Instant::now();
        normal
            .stream
            .write_all(get(server.port, "/a.txt").as_bytes())
            .expect("send");
        let r = normal.read_response();
        worst = worst.max(start.elapsed());
        r.expect_status(200);
        assert_eq!(r.body, b"hello");
        if r.closes() {
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
    one.stream
        .write_all(format!("st: 127.0.0.1:{}\r\n\r\n", server.port).as_bytes())
        .expect("finish the head");
    let r = one.read_response();
    r.expect_status(200);
    assert_eq!(r.body, b"hello");
}

#[test]
fn sigterm_with_idle_keep_alive_connections_exits_0_at_once() {
    let mut server = start(&["2"]);
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut s = server.connect();
        s.stream
            .write_all(get(server.port, "/a.txt").as_bytes())
            .expect("send");
        s.read_response().expect_status(200);
        idle.push(s);
    }
    let (status, took) = terminate(&mut server, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    // Idle connections are not in-flight requests: no 5 s drain for them.
    assert!(took < Duration::from_secs(2), "took {took:?}");
    for mut s in idle {
        let mut rest = Vec::new();
        let _ = s.stream.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    }
}

#[test]
fn sigterm_lets_an_in_flight_upload_finish() {
    let mut server = start(&["2"]);
    let body = br#"{"in":"flight"}"#;
    let mut s = server.connect();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        server.port,
        body.len()
    );
    s.stream.write_all(head.as_bytes()).expect("send head");
    s.stream
        .write_all(&body[..5])
        .expect("send part of the body");
    std::thread::sleep(Duration::from_millis(100));
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    // Still running: the request is in flight.
    assert!(server.try_wait().is_none());
    s.stream.write_all(&body[5..]).expect("send the rest");
    let r = s.read_response();
    r.expect_status(201);
    assert!(r.text().contains("/uploads/"));
    let (status, _) = terminate(&mut server, Duration::from_secs(6));
    assert!(status.success(), "{status:?}");
}
