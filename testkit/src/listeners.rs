//! Where the server listens and how it hands over (SPEC "Operations", and the drain of
//! SPEC "Capacity"): `--listen` on IPv6, on `[::]` (IPv4 too, where the system allows
//! it), on a Unix socket (any valid `Host`, the socket file's life), several listeners
//! at once each with its own `Host` rule; sockets passed the systemd way
//! (`systemd-socket-activate`, and descriptors placed by the harness); `READY=1` and
//! `STOPPING=1` on `NOTIFY_SOCKET`; and a drain that loses nothing: new connections
//! refused at once while a slow request finishes, a request that reaches an idle
//! keep-alive connection just after SIGTERM answered with `Connection: close`.
//!
//! Where a test goes: here if it is about a listening socket or the hand-over between
//! processes; what one connection does while the server drains is in
//! [`lifecycle`](crate::lifecycle) (SIGTERM, SIGINT) when it needs no listener option.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::{check_common, have, parse_start_line, Fixture, Response, Server, CLIENT_TIMEOUT};

#[doc(hidden)]
#[macro_export]
macro_rules! __listeners_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] listeners;
            spec: [];
            more: [
                listen_on_the_ipv6_loopback,
                listen_on_the_ipv6_wildcard_takes_ipv4_too,
                listen_on_a_unix_socket,
                a_unix_socket_path_live_or_stale,
                several_listeners_each_with_its_own_host_rule,
                sockets_from_systemd_socket_activate,
                sockets_passed_by_descriptor_replace_listen,
                ready_then_stopping_on_notify_socket,
                draining_refuses_new_connections_at_once_and_finishes_in_flight,
                a_request_on_an_idle_connection_just_after_sigterm_is_answered,
            ];
        }
    };
}
pub use crate::__listeners_list as list;

/// One request on a new connection made by `connect`, read to its answer (checked
/// like every answer of the harness).
fn ask<S: Read + Write>(mut stream: S, request: &str) -> Response {
    stream.write_all(request.as_bytes()).expect("send");
    let r = Response::read_from(&mut stream, &mut Vec::new(), false).expect("an answer");
    check_common(&r);
    r
}

fn get(host: &str, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("timeout");
    s
}

fn unix(path: &Path) -> UnixStream {
    let s = UnixStream::connect(path)
        .unwrap_or_else(|e| panic!("connect to unix:{}: {e}", path.display()));
    s.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("timeout");
    s
}

/// The port of a start line `listening on http://HOST:PORT`.
fn port_of(line: &str) -> u16 {
    parse_start_line(line)
        .unwrap_or_else(|| panic!("a TCP start line: {line:?}"))
        .1
}

/// SIGTERM, then the exit status (it must exit 0 within 7 s: the 5 s drain limit).
fn terminate(s: &mut Server) {
    s.signal("TERM");
    let status = s
        .wait_exit(Duration::from_secs(7))
        .expect("exited after SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
}

fn start_listening(bin: &str, fx: Fixture, listen: &[&str]) -> Server {
    let mut b = Server::builder(bin).fixture(fx);
    for addr in listen {
        b = b.listen(addr);
    }
    b.start()
}

/// `--listen [::1]:0`: served over IPv6, with the loopback names as `Host`; not on
/// 127.0.0.1.
pub fn listen_on_the_ipv6_loopback(bin: &str) {
    let mut s = start_listening(bin, Fixture::new(), &["[::1]:0"]);
    assert!(
        s.listening.starts_with("http://[::1]:"),
        "start line: {}",
        s.listening
    );
    let port = s.port;
    let addr: SocketAddr = format!("[::1]:{port}").parse().expect("addr");
    for host in [
        format!("[::1]:{port}"),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        ask(tcp(addr), &get(&host, "/sample.txt")).expect_status(200);
    }
    ask(tcp(addr), &get(&format!("example.com:{port}"), "/")).expect_status(403);
    ask(tcp(addr), &get(&format!("[::1]:{}", port ^ 1), "/")).expect_status(403);
    let v4 = TcpStream::connect(("127.0.0.1", port));
    assert!(v4.is_err(), "[::1] only: 127.0.0.1:{port} answered");
    terminate(&mut s);
}

/// `--listen [::]:0`: served over ::1, and over 127.0.0.1 exactly when the server
/// reports that the system let it take IPv4 too (its log says which); any name with the
/// port is accepted (a wildcard address).
pub fn listen_on_the_ipv6_wildcard_takes_ipv4_too(bin: &str) {
    let mut s = start_listening(bin, Fixture::new(), &["[::]:0"]);
    let port = s.port;
    assert!(s.listening.starts_with("http://[::]:"), "{}", s.listening);
    let v6: SocketAddr = format!("[::1]:{port}").parse().expect("v6");
    ask(tcp(v6), &get(&format!("files.lan:{port}"), "/sample.txt")).expect_status(200);
    // Logged before the start line; the log's writer may lag a little.
    let said = s.wait_log(&[&format!("[::]:{port} takes IPv")], Duration::from_secs(5));
    let dual = said
        .as_deref()
        .is_some_and(|l| l.contains("takes IPv4 too"));
    let v6_only = said
        .as_deref()
        .is_some_and(|l| l.contains("takes IPv6 only here"));
    assert!(
        dual != v6_only,
        "the server says whether [::] takes IPv4:\n{}",
        s.logs()
    );
    let v4: SocketAddr = format!("127.0.0.1:{port}").parse().expect("v4");
    match TcpStream::connect(v4) {
        Ok(c) => {
            assert!(dual, "127.0.0.1 answered, but the server said IPv6 only");
            c.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("timeout");
            ask(c, &get(&format!("127.0.0.1:{port}"), "/sample.txt")).expect_status(200);
            // The IPv4 client is logged by its IPv4 address, not as ::ffff:127.0.0.1.
            let line = s.wait_log(
                &["127.0.0.1:", "\"GET /sample.txt\" 200"],
                Duration::from_secs(5),
            );
            assert!(line.is_some(), "{}", s.logs());
            assert!(!s.logs().contains("::ffff:"), "{}", s.logs());
        }
        Err(e) => assert!(
            v6_only,
            "127.0.0.1 refused ({e}) though the server said dual-stack"
        ),
    }
    terminate(&mut s);
}

/// `--listen unix:PATH`: the start line, the file's mode (0660), any valid `Host`
/// served (an invalid one still 400), the peer logged as the socket (`unix:` in the
/// access log, as nginx writes it), and the file removed when the server exits.
pub fn listen_on_a_unix_socket(bin: &str) {
    let fx = Fixture::new();
    let path = fx.base.path().join("rfs.sock");
    let access_log = fx.base.path().join("access.log");
    let addr = format!("unix:{}", path.display());
    let mut s = Server::builder(bin)
        .fixture(fx)
        .listen(&addr)
        .args(&["--access-log", &access_log.display().to_string()])
        .start();
    assert_eq!(s.listening, addr);
    assert_eq!(s.start_lines(1), [format!("listening on {addr}")]);
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(&path).expect("the socket file");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    for host in ["localhost", "example.com:8081", "files.lan", "[::1]:9"] {
        let r = ask(unix(&path), &get(host, "/sample.txt"));
        r.expect_status(200);
        assert_eq!(
            r.body,
            std::fs::read(s.fx.root.join("sample.txt")).expect("file")
        );
    }
    ask(unix(&path), &get("user@host", "/")).expect_status(400);
    // A keep-alive connection over the socket, and an upload.
    let mut c = unix(&path);
    for _ in 0..2 {
        c.write_all(b"GET /sample.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        let r = Response::read_from(&mut c, &mut Vec::new(), false).expect("answer");
        r.expect_status(200);
        assert!(!r.closes());
    }
    let body = r#"{"over":"unix"}"#;
    let r = ask(
        unix(&path),
        &format!(
            "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    r.expect_status(201);
    assert!(
        s.wait_log(&[&addr, "\"GET /sample.txt\" 200"], Duration::from_secs(5))
            .is_some(),
        "the peer is logged as the socket:\n{}",
        s.logs()
    );
    // The access log is written by a thread of its own: wait for it.
    let until = Instant::now() + Duration::from_secs(5);
    let logged = loop {
        let text = std::fs::read_to_string(&access_log).unwrap_or_default();
        if text.lines().any(|l| l.contains("POST /upload")) || Instant::now() >= until {
            break text;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let lines: Vec<&str> = logged.lines().collect();
    assert!(lines.len() >= 7, "{logged}");
    assert!(
        lines.iter().all(|l| l.starts_with("unix: - - [")),
        "a Unix socket's client is `unix:`:\n{logged}"
    );
    drop(c);
    terminate(&mut s);
    assert!(!path.exists(), "the socket file is removed at exit");
}

/// A path where a server listens is refused to a second one (exit 1, one line); a
/// socket file left by a server that was killed is replaced; a file that is not a
/// socket is refused and left alone.
pub fn a_unix_socket_path_live_or_stale(bin: &str) {
    // The socket's directory outlives each server (and its fixture).
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().to_path_buf();
    let path = base.join("rfs.sock");
    let addr = format!("unix:{}", path.display());
    // A web root for the servers run to their exit.
    let other = Fixture::new();
    let root = other.root.display().to_string();
    let s = start_listening(bin, Fixture::new(), &[&addr]);
    let (status, _, err) = crate::run_to_exit(bin, &["--root", &root, "--listen", &addr], &base);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("another server is listening there"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Still served.
    ask(unix(&path), &get("x", "/sample.txt")).expect_status(200);
    s.signal("KILL");
    drop(s);
    assert!(path.exists(), "SIGKILL leaves the socket file");
    let mut again = Server::builder(bin)
        .fixture(Fixture::new())
        .listen(&addr)
        .start();
    ask(unix(&path), &get("x", "/sample.txt")).expect_status(200);
    assert!(
        again
            .wait_log(&["removed the stale socket file"], Duration::from_secs(5))
            .is_some(),
        "{}",
        again.logs()
    );
    terminate(&mut again);
    let file = base.join("not-a-socket");
    std::fs::write(&file, b"keep me").expect("write");
    let taken = format!("unix:{}", file.display());
    let (status, _, err) = crate::run_to_exit(bin, &["--root", &root, "--listen", &taken], &base);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&file).expect("still there"), b"keep me");
}

/// `--listen 127.0.0.1:0 --listen [::1]:0 --listen unix:PATH`: one start line each, in
/// that order (the first one the harness's); each TCP listener accepts only a `Host`
/// with its own port, the Unix one any.
pub fn several_listeners_each_with_its_own_host_rule(bin: &str) {
    let fx = Fixture::new();
    let path = fx.base.path().join("third.sock");
    let sock = format!("unix:{}", path.display());
    let mut s = start_listening(bin, fx, &["127.0.0.1:0", "[::1]:0", &sock]);
    let lines = s.start_lines(3);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with("listening on http://127.0.0.1:"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("listening on http://[::1]:"),
        "{lines:?}"
    );
    assert_eq!(lines[2], format!("listening on {sock}"));
    let (p4, p6) = (port_of(&lines[0]), port_of(&lines[1]));
    assert_eq!(s.port, p4);
    assert_ne!(p4, p6);
    let a4: SocketAddr = format!("127.0.0.1:{p4}").parse().expect("v4");
    let a6: SocketAddr = format!("[::1]:{p6}").parse().expect("v6");
    ask(tcp(a4), &get(&format!("127.0.0.1:{p4}"), "/sample.txt")).expect_status(200);
    ask(tcp(a4), &get(&format!("127.0.0.1:{p6}"), "/sample.txt")).expect_status(403);
    ask(tcp(a6), &get(&format!("[::1]:{p6}"), "/sample.txt")).expect_status(200);
    ask(tcp(a6), &get(&format!("localhost:{p6}"), "/sample.txt")).expect_status(200);
    ask(tcp(a6), &get(&format!("[::1]:{p4}"), "/sample.txt")).expect_status(403);
    ask(unix(&path), &get(&format!("127.0.0.1:{p4}"), "/sample.txt")).expect_status(200);
    ask(unix(&path), &get("anything.example", "/sample.txt")).expect_status(200);
    // An upload through one is read back through another (one web root).
    let body = r#"{"through":"v6"}"#;
    let r = ask(
        tcp(a6),
        &format!(
            "POST /upload HTTP/1.1\r\nHost: [::1]:{p6}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    r.expect_status(201);
    let location = r.header("location").expect("Location").to_string();
    let back = ask(unix(&path), &get("x", &location));
    back.expect_status(200);
    assert_eq!(back.body, body.as_bytes());
    terminate(&mut s);
    assert!(!path.exists(), "the socket file is removed at exit");
}

/// `systemd-socket-activate -l PATH` (systemd's own tool: it binds, waits for the first
/// connection, then execs the server with `LISTEN_FDS=1`, `LISTEN_PID` its PID): the
/// server serves that socket, and only it (its `--listen` is ignored, and said so);
/// the first connection, made before the server ran, is answered; systemd's socket file
/// is left in place at exit.
pub fn sockets_from_systemd_socket_activate(bin: &str) {
    assert!(
        have("systemd-socket-activate"),
        "systemd-socket-activate is not installed: bash .ci/run installs it (apt-get install systemd)"
    );
    let fx = Fixture::new();
    let path = fx.base.path().join("activated.sock");
    let root = fx.root.display().to_string();
    // The tool passes on only the variables named with -E.
    let mut wrapper = vec![
        "systemd-socket-activate".to_string(),
        "-l".to_string(),
        path.display().to_string(),
        "-E".to_string(),
        "RUST_LOG=debug".to_string(),
    ];
    if let Ok(v) = std::env::var("PORTABLE_IO") {
        wrapper.extend(["-E".to_string(), format!("PORTABLE_IO={v}")]);
    }
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    // The first connection wakes the tool, which then starts the server.
    let first = {
        let path = path.clone();
        thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(20);
            while !path.exists() {
                assert!(Instant::now() < until, "no socket at {}", path.display());
                thread::sleep(Duration::from_millis(10));
            }
            ask(unix(&path), &get("localhost", "/sample.txt"))
        })
    };
    let mut s = Server::builder(bin)
        .fixture(fx)
        .without_port_and_root()
        .wrapper(&wrapper)
        .args(&["--root", &root, "--listen", "127.0.0.1:0"])
        .start();
    first
        .join()
        .expect("the first connection")
        .expect_status(200);
    assert_eq!(
        s.start_lines(1),
        [format!("listening on unix:{}", path.display())]
    );
    assert!(
        s.wait_log(
            &["--listen, PORT and HOST are ignored"],
            Duration::from_secs(5)
        )
        .is_some(),
        "{}",
        s.logs()
    );
    ask(unix(&path), &get("anything", "/sample.txt")).expect_status(200);
    terminate(&mut s);
    assert!(
        path.exists(),
        "systemd's socket file is not the server's to remove"
    );
}

/// A TCP and a Unix listening socket placed at descriptors 3 and 4 with `LISTEN_FDS=2`
/// and `LISTEN_PID` the server's own: both served (each with its `Host` rule), `--listen`
/// ignored; the Unix socket file is left at exit. With a `LISTEN_PID` of another
/// process, the variables are not the server's: it listens where `--port` says.
pub fn sockets_passed_by_descriptor_replace_listen(bin: &str) {
    let fx = Fixture::new();
    let path = fx.base.path().join("passed.sock");
    let tcp_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = tcp_listener.local_addr().expect("addr").port();
    let unix_listener = std::os::unix::net::UnixListener::bind(&path).expect("bind unix");
    let mut s = Server::builder(bin)
        .fixture(fx)
        .listen("127.0.0.1:0")
        .listen_fds(vec![tcp_listener.into(), unix_listener.into()])
        .start();
    let lines = s.start_lines(2);
    assert_eq!(
        lines,
        [
            format!("listening on http://127.0.0.1:{port}"),
            format!("listening on unix:{}", path.display())
        ]
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    ask(tcp(addr), &get(&format!("localhost:{port}"), "/sample.txt")).expect_status(200);
    ask(tcp(addr), &get(&format!("localhost:{}", port ^ 1), "/")).expect_status(403);
    ask(unix(&path), &get("any.name", "/sample.txt")).expect_status(200);
    assert!(
        s.wait_log(
            &["--listen, PORT and HOST are ignored"],
            Duration::from_secs(5)
        )
        .is_some(),
        "{}",
        s.logs()
    );
    terminate(&mut s);
    assert!(path.exists(), "an inherited socket file is not removed");

    // Meant for another process: ignored.
    let mut other = Server::builder(bin)
        .env("LISTEN_PID", "1")
        .env("LISTEN_FDS", "1")
        .start();
    other.get("/sample.txt").expect_status(200);
    terminate(&mut other);
}

/// `NOTIFY_SOCKET`: `READY=1` once the server accepts connections (a connection made
/// right after it is served), `STOPPING=1` as soon as SIGTERM starts the drain, nothing
/// else; the abstract form `@NAME` too.
pub fn ready_then_stopping_on_notify_socket(bin: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify");
    #[allow(unused_mut)]
    let mut targets = vec![(
        path.display().to_string(),
        UnixDatagram::bind(&path).expect("bind"),
    )];
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::SocketAddrExt;
        let name = format!(
            "rfs-test-notify-{}-{}",
            std::process::id(),
            crate::util::runtime(bin)
        );
        let a =
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract");
        let socket = UnixDatagram::bind_addr(&a).expect("bind abstract");
        targets.push((format!("@{name}"), socket));
    }
    for (target, socket) in &targets {
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut s = Server::builder(bin).env("NOTIFY_SOCKET", target).start();
        let recv = || {
            let mut buf = [0u8; 4096];
            let n = socket.recv(&mut buf).expect("a notification");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        let ready = recv();
        assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
        assert!(ready.contains(&s.listening), "{ready:?}");
        s.get("/sample.txt").expect_status(200);
        s.signal("TERM");
        let stopping = recv();
        assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
        let status = s.wait_exit(Duration::from_secs(7)).expect("exited");
        assert_eq!(status.code(), Some(0));
        socket.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 64];
        assert!(
            socket.recv(&mut buf).is_err(),
            "one READY=1, one STOPPING=1"
        );
        socket.set_nonblocking(false).expect("blocking");
    }
}

/// During the drain a new connection is refused at once (a balancer moves on), while a
/// slow upload in flight still completes (`201`, `Connection: close`) and the server
/// then exits 0.
pub fn draining_refuses_new_connections_at_once_and_finishes_in_flight(bin: &str) {
    let mut s = Server::start(bin, &[]);
    let addr: SocketAddr = format!("127.0.0.1:{}", s.port).parse().expect("addr");
    let body = format!(r#"{{"slow":"{}"}}"#, "x".repeat(200));
    let mut c = tcp(addr);
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        s.host(),
        body.len()
    );
    c.write_all(head.as_bytes()).expect("head");
    c.write_all(&body.as_bytes()[..20])
        .expect("part of the body");
    thread::sleep(Duration::from_millis(100));
    let signalled = Instant::now();
    s.signal("TERM");
    // Refused soon (the listeners close first thing in the drain; bound generously for
    // a loaded machine), and from then on.
    let refused_at = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                break signalled.elapsed()
            }
            _ => {
                assert!(
                    signalled.elapsed() < Duration::from_secs(3),
                    "new connections still accepted {:?} after SIGTERM",
                    signalled.elapsed()
                );
                thread::sleep(Duration::from_millis(10));
            }
        }
    };
    for _ in 0..5 {
        let e = TcpStream::connect(addr).expect_err("refused");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    }
    // The upload in flight goes on, trickled.
    for chunk in body.as_bytes()[20..].chunks(60) {
        thread::sleep(Duration::from_millis(150));
        assert!(s.try_wait().is_none(), "exited with a request in flight");
        c.write_all(chunk).expect("more of the body");
    }
    let r = Response::read_from(&mut c, &mut Vec::new(), false).expect("the answer");
    r.expect_status(201);
    assert!(r.closes(), "answered during the drain: Connection: close");
    let status = s.wait_exit(Duration::from_secs(7)).expect("exited");
    assert_eq!(status.code(), Some(0));
    eprintln!("refused {refused_at:?} after SIGTERM");
}

/// A keep-alive connection that waits between requests when SIGTERM comes, and whose
/// next request (an upload: what a balancer will not retry) arrives a moment later, gets
/// it answered with `Connection: close` — not a reset; the upload is on disk. One that
/// sends nothing is closed soon (the drain's grace), and the server exits 0 at once
/// after.
pub fn a_request_on_an_idle_connection_just_after_sigterm_is_answered(bin: &str) {
    let mut s = Server::start(bin, &[]);
    let addr: SocketAddr = format!("127.0.0.1:{}", s.port).parse().expect("addr");
    let mut busy = tcp(addr);
    let mut quiet = tcp(addr);
    for c in [&mut busy, &mut quiet] {
        c.write_all(format!("GET /sample.txt HTTP/1.1\r\nHost: {}\r\n\r\n", s.host()).as_bytes())
            .expect("send");
        let r = Response::read_from(c, &mut Vec::new(), false).expect("answer");
        r.expect_status(200);
        assert!(!r.closes());
    }
    thread::sleep(Duration::from_millis(100));
    let signalled = Instant::now();
    s.signal("TERM");
    // The drain has begun once new connections are refused (with portable sockets the
    // signal is noticed within 100 ms).
    while TcpStream::connect(addr).is_ok() {
        assert!(
            signalled.elapsed() < Duration::from_secs(3),
            "still accepting 3 s after SIGTERM"
        );
        thread::sleep(Duration::from_millis(2));
    }
    let body = r#"{"sent":"just after SIGTERM"}"#;
    busy.write_all(
        format!(
            "POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            s.host(),
            body.len()
        )
        .as_bytes(),
    )
    .expect("the upload is sent");
    let r = Response::read_from(&mut busy, &mut Vec::new(), false).expect("an answer, not a reset");
    check_common(&r);
    r.expect_status(201);
    assert!(r.closes(), "answered during the drain: Connection: close");
    let location = r.header("location").expect("Location");
    let saved: PathBuf = s.fx.root.join(location.trim_start_matches('/'));
    assert_eq!(std::fs::read(&saved).expect("the upload"), body.as_bytes());
    // The quiet one is closed once the grace is over (EOF, no bytes).
    quiet
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let mut rest = Vec::new();
    let closed = quiet.read_to_end(&mut rest);
    assert!(
        matches!(closed, Ok(0)) && rest.is_empty(),
        "the quiet connection is closed, unanswered: {closed:?} {:?}",
        String::from_utf8_lossy(&rest)
    );
    let status = s.wait_exit(Duration::from_secs(7)).expect("exited");
    assert_eq!(status.code(), Some(0));
    // Well before the 5 s drain limit, which an idle connection held open would reach.
    assert!(
        signalled.elapsed() < Duration::from_millis(4500),
        "an idle connection held the drain: {:?}",
        signalled.elapsed()
    );
}
