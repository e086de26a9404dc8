//! The life of one HTTP/1.1 connection (SPEC "Connections") with a client that keeps the
//! rules: keep-alive and `Connection: close`, HTTP/1.0, the idle timeout, the limit of
//! requests per connection (`--max-requests`), pipelining, `Expect: 100-continue`.
//!
//! Where a test goes: here if it is about how one connection carries its requests and
//! when it closes. Clients that hold connections long (dripping, reading slowly, sitting
//! idle) and what that costs the others are [`slow_clients`](crate::slow_clients);
//! connection places running out is [`capacity`](crate::capacity); a connection closed
//! after a refused request is [`security`](crate::security).

use std::thread;
use std::time::{Duration, Instant};

use crate::util::{closes_after, created_location, file, get, method, post};
use crate::Server;

/// The cases of this group, for [`tests!`](crate::tests): `spec` run over HTTP and over
/// HTTPS, `more` over HTTP only (see [`crate::cases`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __connections_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] connections;
            spec: [
                keep_alive_and_connection_close,
                http10_closes_unless_keep_alive,
                idle_timeout_closes_quiet_connections,
                hundred_requests_per_connection,
                pipelined_requests_are_answered_in_order,
                expect_continue_upload,
            ];
            more: [];
        }
    };
}
pub use crate::__connections_list as list;

pub fn keep_alive_and_connection_close(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for i in 1..=3u32 {
        let r = c.request(&get(&s, "/sample.txt"));
        r.expect_status(200)
            .expect_header("keep-alive", &format!("timeout=30, max={}", 100 - i));
        assert!(!r.closes());
    }
    let r = c.request(&format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        s.host()
    ));
    r.expect_status(200);
    assert!(r.closes(), "{r:?}");
    assert!(c.closed_within(Duration::from_secs(3)));
}

pub fn http10_closes_unless_keep_alive(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    let r = c.request("GET /sample.txt HTTP/1.0\r\n\r\n");
    r.expect_status(200);
    assert!(r.closes(), "{r:?}");
    assert!(c.closed_within(Duration::from_secs(3)));

    let mut c = s.connect();
    for _ in 0..2 {
        let r = c.request(&format!(
            "GET / HTTP/1.0\r\nHost: {}\r\nConnection: keep-alive\r\n\r\n",
            s.host()
        ));
        r.expect_status(200);
        assert!(
            r.header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")),
            "{r:?}"
        );
        assert!(r.header("keep-alive").is_some());
    }
}

pub fn idle_timeout_closes_quiet_connections(bin: &str) {
    let s = Server::start(bin, &["--idle-timeout", "1"]);
    // A connection that never sends a byte.
    let mut quiet = s.connect();
    let start = Instant::now();
    assert!(
        quiet.closed_within(Duration::from_secs(5)),
        "idle connection not closed"
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(800),
        "closed too early: {waited:?}"
    );
    // After a response, the same timeout; it is announced in Keep-Alive.
    let mut c = s.connect();
    let r = c.request(&get(&s, "/"));
    r.expect_header("keep-alive", "timeout=1, max=99");
    let start = Instant::now();
    assert!(c.closed_within(Duration::from_secs(5)));
    assert!(start.elapsed() >= Duration::from_millis(800));
    // Activity keeps a connection alive past the timeout.
    let mut busy = s.connect();
    for _ in 0..5 {
        thread::sleep(Duration::from_millis(400));
        busy.request(&get(&s, "/sample.txt")).expect_status(200);
    }
}

pub fn hundred_requests_per_connection(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for i in 1..=100u32 {
        let r = c.request(&get(&s, "/sample.txt"));
        r.expect_status(200);
        if i < 100 {
            assert!(!r.closes(), "request {i}");
            r.expect_header("keep-alive", &format!("timeout=30, max={}", 100 - i));
        } else {
            assert!(r.closes(), "the 100th response must say close: {r:?}");
        }
    }
    assert!(c.closed_within(Duration::from_secs(3)));
    // --max-requests changes the limit.
    let s = Server::start(bin, &["--max-requests", "2"]);
    let mut c = s.connect();
    assert!(!c.request(&get(&s, "/")).closes());
    assert!(c.request(&get(&s, "/")).closes());
    assert!(c.closed_within(Duration::from_secs(3)));
}

pub fn pipelined_requests_are_answered_in_order(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    let batch = [
        get(&s, "/sample.txt"),
        method(&s, "HEAD", "/logo.png"),
        get(&s, "/nope.html"),
        post(&s, "/upload", "application/json", "{\"p\":1}"),
        get(&s, "/data.json"),
        format!(
            "GET /page.htm HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            s.host()
        ),
    ]
    .concat();
    c.send(batch.as_bytes());
    let r = c.read_response();
    r.expect_status(200);
    assert_eq!(r.body, file(&s, "sample.txt"));
    let r = c.read_response_for(true);
    r.expect_status(200).expect_header("content-length", "7028");
    c.read_response().expect_status(404);
    created_location(&c.read_response());
    let r = c.read_response();
    assert_eq!(r.body, file(&s, "data.json"));
    let r = c.read_response();
    assert_eq!(r.body, file(&s, "page.htm"));
    assert!(r.closes());
    assert!(c.closed_within(Duration::from_secs(3)));

    // Fifty requests in one write, and requests split across many small writes.
    let mut c = s.connect();
    c.send(get(&s, "/sample.txt").repeat(50).as_bytes());
    for _ in 0..50 {
        assert_eq!(c.read_response().body, file(&s, "sample.txt"));
    }
    let two = [get(&s, "/page.htm"), get(&s, "/sample.txt")].concat();
    for chunk in two.as_bytes().chunks(7) {
        c.send(chunk);
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(c.read_response().body, file(&s, "page.htm"));
    assert_eq!(c.read_response().body, file(&s, "sample.txt"));
}

pub fn expect_continue_upload(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    let body = "{\"big\": \"enough\"}";
    c.send(format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        s.host(),
        body.len()
    ));
    let interim = c.read_response();
    assert_eq!(interim.status, 100, "{interim:?}");
    c.send(body);
    created_location(&c.read_response());
    // A refused upload is refused before the body is sent, and the connection closes.
    let mut c = s.connect();
    c.send(format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
        s.host()
    ));
    let r = c.read_response();
    r.expect_status(415);
    closes_after(&mut c, &r, &s);
    assert_eq!(s.fx.uploads().len(), 1);
}
