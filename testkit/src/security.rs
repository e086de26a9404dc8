//! Requests built to get what they must not (SPEC "Security"): path traversal in every
//! spelling and symlinks out of the root; a missing, doubled, malformed or foreign `Host`
//! (and `--allow-host` on a wildcard bind); request smuggling and bad framing (and the
//! correct chunked body, which is accepted); heads, targets, methods and bodies over the
//! limits, huge and endless ones too, with the server's memory flat; malformed request
//! lines and versions. Each is refused with its status and a close where SPEC says so,
//! and nothing outside the root is ever read (every response read through the harness is
//! checked for [`SECRET`]).
//!
//! Where a test goes: here if the request itself is the attack and a refusal of it is
//! the answer. Attacks by time (dripping a head, reading slowly) are
//! [`slow_clients`](crate::slow_clients); by numbers (floods, descriptors, the memory
//! budget that bodies share) [`capacity`](crate::capacity); what the log says of a
//! refusal is [`logs`](crate::logs).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{closes_after, created_location, file, get, method, proc_kib, served_within};
use crate::{Response, Server, SECRET};

/// The cases of this group, for [`tests!`](crate::tests): `spec` run over HTTP and over
/// HTTPS, `more` over HTTP only (see [`crate::cases`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __security_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] security;
            spec: [
                traversal_is_refused_and_nothing_outside_is_read,
                symlinks_out_of_the_root_are_refused,
                host_header_rules,
                wildcard_bind_and_allow_host,
                framing_and_smuggling_are_refused,
                chunked_upload_is_accepted,
                limits_431_414_413_and_long_method,
                malformed_request_and_bad_version,
            ];
            more: [
                huge_and_endless_bodies_are_refused_and_memory_stays_flat,
            ];
        }
    };
}
pub use crate::__security_list as list;

// ----- Paths -----

pub fn traversal_is_refused_and_nothing_outside_is_read(bin: &str) {
    let s = Server::start(bin, &[]);
    let exactly_403 = [
        "/../secret.txt",
        "/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/sub/../../secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..%5csecret.txt",
        "/../server.py",
    ];
    for target in exactly_403 {
        let r = s.raw(&format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            s.host()
        ));
        assert_eq!(r.status, 403, "{target}: {r:?}");
    }
    // Refused one way or another (never 200, never the secret: check_common).
    let refused = [
        "/..\\secret.txt",
        "/%00/../secret.txt",
        "/secret.txt%00.html",
        "/%252e%252e/secret.txt",
        "//../secret.txt",
        "/./../secret.txt",
        "/..;/secret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/sub/..%00/secret.txt",
        "/....//secret.txt",
    ];
    for target in refused {
        let r = s.raw(&format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            s.host()
        ));
        assert!(
            matches!(r.status, 400 | 403 | 404),
            "{target}: status {}",
            r.status
        );
    }
    // The absolute form too.
    let r = s.raw(&format!(
        "GET http://{0}/../secret.txt HTTP/1.1\r\nHost: {0}\r\nConnection: close\r\n\r\n",
        s.host()
    ));
    assert!(matches!(r.status, 400 | 403), "{r:?}");
    // Hidden files (such as upload temporaries) are not served.
    std::fs::write(s.fx.root.join("uploads/.tmp-x.json"), "{}").expect("write");
    assert_eq!(s.get("/uploads/.tmp-x.json").status, 404);
}

pub fn symlinks_out_of_the_root_are_refused(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for path in [
        "/leak.txt",
        "/abs-leak.txt",
        "/leak.html",
        "/outdir/secret.txt",
    ] {
        let r = c.request(&get(&s, path));
        assert_eq!(r.status, 403, "{path}: {r:?}");
        let r = c.request(&method(&s, "HEAD", path));
        assert_eq!(r.status, 403, "HEAD {path}");
        assert!(r
            .header("content-length")
            .is_none_or(|l| l != SECRET.len().to_string()));
    }
    // Symlinks that stay inside the root are followed.
    let r = c.request(&get(&s, "/inlink.txt"));
    r.expect_status(200);
    assert_eq!(r.body, file(&s, "sample.txt"));
    let r = c.request(&get(&s, "/abs-inlink.html"));
    r.expect_status(200);
    assert_eq!(r.body, file(&s, "page.htm"));
    assert!(
        s.wait_log(&["WARN", "403"], Duration::from_secs(3))
            .is_some(),
        "refusal not logged at warn:\n{}",
        s.logs()
    );
}

// ----- Host -----

pub fn host_header_rules(bin: &str) {
    let s = Server::start(bin, &[]);
    let port = s.port;
    let cases: Vec<(String, u16)> = vec![
        ("GET / HTTP/1.1\r\n\r\n".into(), 400),
        (
            format!("GET / HTTP/1.1\r\nHost: {0}\r\nHost: {0}\r\n\r\n", s.host()),
            400,
        ),
        ("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n".into(), 403),
        (
            format!("GET / HTTP/1.1\r\nHost: example.com:{port}\r\n\r\n"),
            403,
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
                port.wrapping_add(1).max(1)
            ),
            403,
        ),
        ("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".into(), 403),
        (
            format!("GET / HTTP/1.1\r\nHost: user@127.0.0.1:{port}\r\n\r\n"),
            400,
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}/x\r\n\r\n"),
            400,
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: a, 127.0.0.1:{port}\r\n\r\n"),
            400,
        ),
        ("GET / HTTP/1.1\r\nHost: \r\n\r\n".into(), 400),
        (
            format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
            200,
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n"),
            200,
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: LOCALHOST:{port}\r\n\r\n"),
            200,
        ),
        (format!("GET / HTTP/1.1\r\nHost: [::1]:{port}\r\n\r\n"), 200),
        ("GET / HTTP/1.0\r\n\r\n".into(), 200),
        (
            format!(
                "GET http://127.0.0.1:{port}/page.htm HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
            ),
            200,
        ),
        (
            format!("GET http://example.com/page.htm HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
            403,
        ),
    ];
    for (req, want) in cases {
        if s.is_h2() && req.contains(" HTTP/1.0\r\n") {
            // HTTP/1.0 needs no Host; HTTP/2 has no such version.
            continue;
        }
        let r = s.raw(&req);
        assert_eq!(r.status, want, "{req:?}: {r:?}");
    }
}

pub fn wildcard_bind_and_allow_host(bin: &str) {
    let s = Server::start(bin, &["--host", "0.0.0.0"]);
    let p = s.port;
    let ask = |host: &str| {
        s.raw(&format!(
            "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ))
        .status
    };
    assert_eq!(ask(&format!("anything.example:{p}")), 200);
    assert_eq!(ask(&format!("192.0.2.7:{p}")), 200);
    assert_eq!(
        ask(&format!("anything.example:{}", p.wrapping_add(1).max(1))),
        403
    );
    drop(s);
    let s = Server::start(bin, &["--host", "0.0.0.0", "--allow-host", "files.example"]);
    let p = s.port;
    let ask = |host: &str| {
        s.raw(&format!(
            "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ))
        .status
    };
    assert_eq!(ask(&format!("files.example:{p}")), 200);
    assert_eq!(ask(&format!("other.example:{p}")), 403);
    drop(s);
    let s = Server::start(bin, &["--allow-host", "alias.test"]);
    let p = s.port;
    let r = s.raw(&format!(
        "GET / HTTP/1.1\r\nHost: alias.test:{p}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(r.status, 200);
    let r = s.raw(&format!(
        "GET / HTTP/1.1\r\nHost: localhost:{p}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(r.status, 200);
}

// ----- Framing -----

pub fn framing_and_smuggling_are_refused(bin: &str) {
    let s = Server::start(bin, &[]);
    let h = s.host();
    let up = |extra: &str, body: &str| {
        format!("POST /upload HTTP/1.1\r\nHost: {h}\r\nContent-Type: application/json\r\n{extra}\r\n{body}")
    };
    let cases: Vec<(String, u16)> = vec![
        (up("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n\r\n"), 400),
        (up("Content-Length: 2\r\nContent-Length: 3\r\n", "{}"), 400),
        (up("Content-Length: +2\r\n", "{}"), 400),
        (up("Content-Length: -2\r\n", "{}"), 400),
        (up("Content-Length: 2, 2\r\n", "{}"), 400),
        (up("Content-Length: 99999999999999999999999\r\n", "{}"), 400),
        (up("Transfer-Encoding: gzip\r\n", "{}"), 400),
        (up("Transfer-Encoding: chunked, gzip\r\n", "{}"), 400),
        (up("Transfer-Encoding: gzip, chunked\r\n", "2\r\n{}\r\n0\r\n\r\n"), 501),
        (up("Transfer-Encoding: chunked\r\n", "zz\r\n{}\r\n0\r\n\r\n"), 400),
        (up("Transfer-Encoding: chunked\r\n", "2;\u{1}\r\n{}\r\n0\r\n\r\n"), 400),
        (up("Transfer-Encoding: chunked\r\n", "-2\r\n{}\r\n0\r\n\r\n"), 400),
        (
            format!("POST /upload HTTP/1.0\r\nHost: {h}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"),
            400,
        ),
        (format!("GET / HTTP/1.1\r\nHost : {h}\r\n\r\n"), 400),
        (format!("GET / HTTP/1.1\r\nHost: {h}\r\nX-A: a\r\n b\r\n\r\n"), 400),
        (format!("GET / HTTP/1.1\r\nHost: {h}\r\nX-A: a\u{1}b\r\n\r\n"), 400),
        (format!("GET / HTTP/1.1\r\nHost: {h}\r\nX A: b\r\n\r\n"), 400),
    ];
    for (req, want) in cases {
        let mut c = s.connect();
        let r = c.request(&req);
        assert_eq!(r.status, want, "{req:?}: {r:?}");
        if want == 400 {
            assert!(r.closes(), "a framing 400 closes: {req:?}");
            assert!(c.closed_within(Duration::from_secs(3)), "{req:?}");
        }
    }
    assert!(s.fx.uploads().is_empty(), "{:?}", s.fx.uploads());
}

pub fn chunked_upload_is_accepted(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    let r = c.request(&format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{{\"a\"\r\n3;ext=1\r\n:1}}\r\n0\r\n\r\n",
        s.host()
    ));
    let location = created_location(&r);
    let back = c.request(&get(&s, &location));
    assert_eq!(back.body, b"{\"a\":1}");
}

// ----- Limits and malformed requests -----

pub fn limits_431_414_413_and_long_method(bin: &str) {
    let s = Server::start(bin, &["--max-body", "1000"]);
    let h = s.host();
    let pad = "a".repeat(100);
    let many_big: String = (0..90).map(|i| format!("X-Pad-{i}: {pad}\r\n")).collect();
    let many_small: String = (0..101).map(|i| format!("X-{i}: 1\r\n")).collect();
    let cases: Vec<(String, u16)> = vec![
        (
            format!("GET / HTTP/1.1\r\nHost: {h}\r\n{many_big}\r\n"),
            431,
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: {h}\r\n{many_small}\r\n"),
            431,
        ),
        (
            format!("GET /{} HTTP/1.1\r\nHost: {h}\r\n\r\n", "a".repeat(9000)),
            414,
        ),
        (
            format!("{} / HTTP/1.1\r\nHost: {h}\r\n\r\n", "M".repeat(33)),
            400,
        ),
    ];
    for (req, want) in cases {
        let mut c = s.connect();
        let r = c.request(&req);
        assert_eq!(r.status, want, "{}: {r:?}", &req[..40]);
        closes_after(&mut c, &r, &s);
    }
    // Just under the limits is fine.
    let ok_headers: String = (0..60).map(|i| format!("X-Pad-{i}: {pad}\r\n")).collect();
    s.raw(&format!("GET / HTTP/1.1\r\nHost: {h}\r\n{ok_headers}\r\n"))
        .expect_status(200);
    // 413 at once, before the body is sent, then close.
    let mut c = s.connect();
    c.send(format!(
        "POST /upload HTTP/1.1\r\nHost: {h}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
    ));
    let r = c.read_response();
    r.expect_status(413);
    closes_after(&mut c, &r, &s);
    // A chunked body over the limit too.
    let chunk = format!("[{}]", "1,".repeat(600) + "1");
    let mut c = s.connect();
    let r = c.request(&format!(
        "POST /upload HTTP/1.1\r\nHost: {h}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    ));
    r.expect_status(413);
    // The limit itself is accepted.
    let body = format!("\"{}\"", "b".repeat(998));
    assert_eq!(body.len(), 1000);
    assert_eq!(s.upload("application/json", &body).status, 201);
    assert_eq!(s.fx.uploads().len(), 1);
}

pub fn malformed_request_and_bad_version(bin: &str) {
    let s = Server::start(bin, &[]);
    let h = s.host();
    let cases: Vec<(String, u16)> = vec![
        ("GARBAGE\r\n\r\n".into(), 400),
        (format!("GET / FOO/1.1\r\nHost: {h}\r\n\r\n"), 400),
        (format!("GET  / HTTP/1.1\r\nHost: {h}\r\n\r\n"), 400),
        (format!("GET /\tx HTTP/1.1\r\nHost: {h}\r\n\r\n"), 400),
        ("\u{16}\u{3}\u{1}\u{0}\u{a5}\u{1}\u{0}\r\n\r\n".into(), 400),
        (format!("GET / HTTP/2.0\r\nHost: {h}\r\n\r\n"), 505),
        (format!("GET / HTTP/1.2\r\nHost: {h}\r\n\r\n"), 505),
        (format!("GET / HTTP/3.0\r\nHost: {h}\r\n\r\n"), 505),
    ];
    for (req, want) in cases {
        let mut c = s.connect();
        let r = c.request(&req);
        assert_eq!(r.status, want, "{req:?}: {r:?}");
        assert!(r.closes(), "{req:?}");
    }
}

/// Sends `head` then `chunk` repeatedly (at most `cap` bytes) while a reader collects
/// the answer. Returns (bytes of body sent, the answer, whether the server closed).
fn stream_body(port: u16, head: &[u8], chunk: &[u8], cap: usize) -> (usize, Vec<u8>, bool) {
    let mut w = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    w.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut r = w.try_clone().expect("clone");
    r.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let answered = Arc::new(AtomicBool::new(false));
    let reader = {
        let answered = Arc::clone(&answered);
        thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let closed = loop {
                match r.read(&mut buf) {
                    Ok(0) => break true,
                    Ok(n) => {
                        got.extend_from_slice(&buf[..n]);
                        if Response::status_in(&got).is_some() {
                            answered.store(true, Ordering::Relaxed);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
                    Err(_) => break false,
                }
            };
            (got, closed)
        })
    };
    let mut sent = 0;
    if w.write_all(head).is_ok() {
        while sent < cap && !answered.load(Ordering::Relaxed) {
            if w.write_all(chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
    }
    // Stop sending; the server's answer and close are what counts.
    let _ = w.shutdown(Shutdown::Write);
    let (got, closed) = reader.join().expect("reader");
    (sent, got, closed)
}

/// Bodies over `--max-body 1 MiB`: a huge Content-Length gets 413 at once, before any
/// body; endless chunked bodies (eight at once) and an endless header get 413/431 or a
/// close long before their end; the server's resident memory stays flat throughout.
pub fn huge_and_endless_bodies_are_refused_and_memory_stays_flat(bin: &str) {
    let s = Server::start(bin, &["--max-body", "1048576", "--threads", "4"]);
    s.get("/logo.png").expect_status(200);
    let rss0 = proc_kib(s.pid(), "VmRSS");
    let host = s.host();
    // Content-Length over the limit: 413 without sending a byte of body.
    for (path, len) in [
        ("/upload", 10u64 << 30),
        ("/upload", 2 << 20),
        ("/x", u64::MAX / 4),
    ] {
        let mut c = s.connect();
        let t = Instant::now();
        let r = c.request(&format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
        ));
        // POST elsewhere may be refused as 404 first; either way the body is not read.
        assert!(
            r.status == 413 || (path != "/upload" && r.status == 404),
            "{r:?}"
        );
        assert!(r.closes(), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(c.closed_within(Duration::from_secs(3)), "open after 413");
    }
    // Endless chunked bodies, eight at once, to the upload and elsewhere.
    let chunk: Vec<u8> = {
        let mut c = b"10000\r\n".to_vec();
        c.extend(std::iter::repeat_n(b'7', 0x10000));
        c.extend_from_slice(b"\r\n");
        c
    };
    const CAP: usize = 256 << 20;
    let results: Vec<(usize, Vec<u8>, bool)> = thread::scope(|scope| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let head = format!(
                    "POST {} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                    if i % 2 == 0 { "/upload" } else { "/elsewhere" }
                );
                let chunk = &chunk;
                let port = s.port;
                scope.spawn(move || stream_body(port, head.as_bytes(), chunk, CAP))
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("sender")).collect()
    });
    let mut total = 0;
    for (sent, got, closed) in &results {
        total += sent;
        let status = Response::status_in(got);
        assert!(
            status == Some(413) || (status.is_none() && *closed),
            "endless chunked body: status {status:?}, closed {closed}, sent {sent}"
        );
        assert!(
            *sent < CAP,
            "the server read {sent} bytes of an endless body"
        );
    }
    // An endless header line.
    let endless_header = format!("GET / HTTP/1.1\r\nHost: {host}\r\nX-Endless: ");
    let (sent, got, closed) = stream_body(s.port, endless_header.as_bytes(), &[b'h'; 65536], CAP);
    assert!(
        Response::status_in(&got) == Some(431) || (got.is_empty() && closed),
        "endless header: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(sent < CAP);
    total += sent;
    let rss1 = proc_kib(s.pid(), "VmRSS");
    let hwm = proc_kib(s.pid(), "VmHWM");
    assert!(
        rss1 < rss0 + 24 * 1024 && hwm < rss0 + 48 * 1024,
        "memory grew: RSS {rss0} → {rss1} KiB, peak {hwm} KiB, after {total} bytes sent"
    );
    served_within(&s, "/sample.txt", Duration::from_secs(2));
    eprintln!(
        "{} MiB of refused bodies sent: RSS {rss0} → {rss1} KiB, peak {hwm} KiB",
        total >> 20
    );
}
