//! What the log says (SPEC "Logs"; for refusals also SPEC "Security", last rule): the
//! start line with the address, root and workers; one line per request with the peer;
//! connection open and close at `debug`; one `warn` line per refusal naming the peer, the
//! status and a reason; and client bytes escaped, so that no request can forge, split or
//! colour a log line.
//!
//! Where a test goes: here if the log itself is what it checks. A test of some behaviour
//! that also checks that the behaviour is logged (a 503, an accept error) stays with
//! that behaviour; a log sink that stops reading is [`slow_clients`](crate::slow_clients).

use std::net::Shutdown;
use std::time::Duration;

use crate::util::{get, get_close, lines_with, tail};
use crate::{Response, Server, SECRET};

/// The cases of this group, for [`tests!`](crate::tests): `spec` run over HTTP and over
/// HTTPS, `more` over HTTP only (see [`crate::cases`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __logs_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] logs;
            spec: [
                refusals_are_logged_at_warn_with_the_peer,
                request_log_lines_and_start_line,
            ];
            more: [
                every_refusal_is_one_warn_line_with_peer_and_reason,
                log_lines_never_carry_raw_control_bytes,
            ];
        }
    };
}
pub use crate::__logs_list as list;

pub fn refusals_are_logged_at_warn_with_the_peer(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    let peer = c.stream.local_addr().expect("local addr").to_string();
    c.request(&get(&s, "/../secret.txt")).expect_status(403);
    let line = s.wait_log(&["WARN", &peer], Duration::from_secs(3));
    assert!(line.is_some(), "no warn line with {peer}:\n{}", s.logs());
    let mut c = s.connect();
    let peer = c.stream.local_addr().expect("local addr").to_string();
    c.request("GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        .expect_status(403);
    assert!(
        s.wait_log(&["WARN", &peer], Duration::from_secs(3))
            .is_some(),
        "Host refusal not logged:\n{}",
        s.logs()
    );
}

pub fn request_log_lines_and_start_line(bin: &str) {
    let s = Server::start(bin, &["--threads", "3"]);
    let start = s
        .wait_log(&["INFO", &s.port.to_string()], Duration::from_secs(3))
        .unwrap_or_else(|| panic!("no start line:\n{}", s.logs()));
    let root = s.fx.root.canonicalize().expect("root");
    assert!(
        start.contains(&*root.to_string_lossy()) || start.contains(&*s.fx.root.to_string_lossy()),
        "the start line names the root: {start}"
    );
    assert!(
        start.contains('3'),
        "the start line names the workers: {start}"
    );
    assert!(
        start.starts_with('[') && start.contains("20"),
        "timestamped: {start}"
    );
    let mut c = s.connect();
    let peer = c.stream.local_addr().expect("local addr").to_string();
    c.request(&get(&s, "/sample.txt")).expect_status(200);
    c.request(&get(&s, "/nope.html")).expect_status(404);
    drop(c);
    let ok = s.wait_log(
        &["INFO", &peer, "GET /sample.txt", "200"],
        Duration::from_secs(3),
    );
    assert!(ok.is_some(), "no request line:\n{}", s.logs());
    let missing = s.wait_log(&[&peer, "GET /nope.html", "404"], Duration::from_secs(3));
    assert!(
        missing.is_some(),
        "no request line for the 404:\n{}",
        s.logs()
    );
    // Connection open and close at debug (the suite runs with RUST_LOG=debug).
    for event in ["connection open", "connection closed"] {
        assert!(
            s.wait_log(&["DEBUG", &peer, event], Duration::from_secs(3))
                .is_some(),
            "no debug line \"{event}\" for {peer}:\n{}",
            s.logs()
        );
    }
}

/// Each kind of refusal — traversal, symlink out, Host, framing, limits, version, head
/// timeout — on its own connection gives exactly one `WARN` line naming that peer, the
/// status and a reason; an ordinary 404 gives none.
pub fn every_refusal_is_one_warn_line_with_peer_and_reason(bin: &str) {
    let s = Server::start(
        bin,
        &[
            "--max-body",
            "1000",
            "--head-timeout",
            "1",
            "--threads",
            "4",
        ],
    );
    let h = s.host();
    let many_headers: String = (0..120).map(|i| format!("X-{i}: v\r\n")).collect();
    let cases: Vec<(&str, String, u16)> = vec![
        ("traversal", "GET /../secret.txt HTTP/1.1\r\nHost: H\r\n\r\n".into(), 403),
        ("encoded traversal", "GET /%2e%2e/%2e%2e/secret.txt HTTP/1.1\r\nHost: H\r\n\r\n".into(), 403),
        ("symlink out", "GET /leak.txt HTTP/1.1\r\nHost: H\r\n\r\n".into(), 403),
        ("no Host", "GET / HTTP/1.1\r\n\r\n".into(), 400),
        ("foreign Host", "GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n".into(), 403),
        ("two Hosts", "GET / HTTP/1.1\r\nHost: H\r\nHost: H\r\n\r\n".into(), 400),
        ("CL and TE", "POST /upload HTTP/1.1\r\nHost: H\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".into(), 400),
        ("TE not chunked", "POST /upload HTTP/1.1\r\nHost: H\r\nTransfer-Encoding: chunked, identity\r\n\r\n".into(), 400),
        ("bad chunk size", "POST /upload HTTP/1.1\r\nHost: H\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".into(), 400),
        ("obs-fold", "GET / HTTP/1.1\r\nHost: H\r\nX-A: a\r\n b\r\n\r\n".into(), 400),
        ("space before colon", "GET / HTTP/1.1\r\nHost : H\r\n\r\n".into(), 400),
        ("too many headers", format!("GET / HTTP/1.1\r\nHost: H\r\n{many_headers}\r\n"), 431),
        ("long target", format!("GET /{} HTTP/1.1\r\nHost: H\r\n\r\n", "a".repeat(9000)), 414),
        ("body over the limit", "POST /upload HTTP/1.1\r\nHost: H\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n".into(), 413),
        ("long method", format!("{} / HTTP/1.1\r\nHost: H\r\n\r\n", "M".repeat(40)), 400),
        ("bad version", "GET / HTTP/2.0\r\nHost: H\r\n\r\n".into(), 505),
        ("NUL in target", "GET /a\0b HTTP/1.1\r\nHost: H\r\n\r\n".into(), 400),
        ("head timeout", "GET / HTTP/1.1\r\nHost: H\r\n".into(), 408),
    ];
    let mut peers = Vec::new();
    for (what, raw, status) in &cases {
        let raw = raw.replace("Host: H\r\n", &format!("Host: {h}\r\n"));
        let mut c = s.connect();
        let peer = c.stream.local_addr().expect("addr").to_string();
        c.send(raw.as_bytes());
        let r = c.read_response();
        assert_eq!(r.status, *status, "{what}: {r:?}");
        peers.push((*what, peer, *status));
    }
    // A 404 is not a refusal.
    let mut c = s.connect();
    let ok_peer = c.stream.local_addr().expect("addr").to_string();
    c.request(&get_close(&s, "/missing.html"))
        .expect_status(404);
    for (what, peer, status) in &peers {
        let needle = format!("refused ({status})");
        let line = s
            .wait_log(
                &["WARN", &format!("{peer} "), &needle],
                Duration::from_secs(3),
            )
            .unwrap_or_else(|| panic!("{what}: no warn line for {peer}:\n{}", tail(&s.logs())));
        let reason = line
            .split_once(&needle)
            .map(|(_, r)| r.trim_start_matches(':').trim());
        assert!(
            reason.is_some_and(|r| r.len() >= 5),
            "{what}: no reason in {line}"
        );
        let logs = s.logs();
        let warns = lines_with(&logs, &["WARN", &format!("{peer} ")]);
        assert_eq!(warns.len(), 1, "{what}: {warns:#?}");
    }
    let logs = s.logs();
    assert!(
        lines_with(&logs, &["WARN", &format!("{ok_peer} ")]).is_empty(),
        "a 404 was logged as a refusal"
    );
}

/// Requests full of escape sequences and control bytes — in the method, the target
/// (raw and as UTF-8 C1 controls), header names and values, an upload body — never put
/// a raw control byte into the log: every log line is one timestamped line of printable
/// text.
pub fn log_lines_never_carry_raw_control_bytes(bin: &str) {
    let s = Server::start(bin, &["--threads", "4"]);
    let h = s.host();
    let hostile: Vec<Vec<u8>> = vec![
        format!("GET /\x1b[31mred\x1b[0m HTTP/1.1\r\nHost: {h}\r\n\r\n").into_bytes(),
        format!("G\x1bET / HTTP/1.1\r\nHost: {h}\r\n\r\n").into_bytes(),
        format!("GET /a\u{85}b\u{9b}2J\u{2028}c HTTP/1.1\r\nHost: {h}\r\n\r\n").into_bytes(),
        format!("GET /\x7f HTTP/1.1\r\nHost: {h}\r\n\r\n").into_bytes(),
        format!("GET /a\rb HTTP/1.1\r\nHost: {h}\r\n\r\n").into_bytes(),
        format!("GET / HTTP/1.1\r\nHost: {h}\r\nX-Evil: \x1b]0;pwned\x07\r\n\r\n").into_bytes(),
        format!("GET / HTTP/1.1\r\nHost: {h}\r\nX-\x1b: v\r\n\r\n").into_bytes(),
        b"GET / HTTP/1.1\r\nHost: \x1b[2J\r\n\r\n".to_vec(),
        b"\x1b[2J\x1b[H\r\n\r\n".to_vec(),
        b"\x00\x01\x02 / HTTP/1.1\r\n\r\n".to_vec(),
        format!("GET /{} HTTP/1.1\r\nHost: {h}\r\n\r\n", "\x1b".repeat(300)).into_bytes(),
        format!("GET /%1b%5b2J%0d%0aFAKE HTTP/1.1\r\nHost: {h}\r\n\r\n").into_bytes(),
        format!("GET /\u{1b}%5b2J.html HTTP/1.1\r\nHost: {h}\r\n\r\n").into_bytes(),
        format!("GET /ok\u{e9}\u{202e}.txt HTTP/1.1\r\nHost: {h}\r\n\r\n").into_bytes(),
        format!("PUT /\x08\x08\x08 HTTP/1.1\r\nHost: {h}\r\n\r\n").into_bytes(),
        // Accepted by the parser, but would break the quoting of the request line.
        format!("GET /a\"b\\c\" 200 0 0ms HTTP/1.1\r\nHost: {h}\r\n\r\n").into_bytes(),
        format!("GET /q\"\"\"?x=\\\" HTTP/1.1\r\nHost: {h}\r\n\r\n").into_bytes(),
        {
            let body = "{\"a\":\"\\u001b[31m\"}";
            format!(
                "POST /upload HTTP/1.1\r\nHost: {h}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        },
    ];
    let mut peers = Vec::new();
    for raw in &hostile {
        let mut c = s.connect();
        peers.push(c.stream.local_addr().expect("addr").to_string());
        c.send(raw);
        let _ = c.stream.shutdown(Shutdown::Write);
        // Any answer (or a close) will do; the log is what is checked.
        let r: Result<Response, String> = c.try_read_response(false);
        if let Ok(r) = r {
            assert!(r.status >= 200, "{r:?}");
        }
    }
    // Every request reached the log (one line per peer at least), then check it whole.
    for peer in &peers {
        assert!(
            s.wait_log(&[&format!("{peer} ")], Duration::from_secs(3))
                .is_some(),
            "nothing logged for {peer}:\n{}",
            tail(&s.logs())
        );
    }
    let logs = s.logs();
    for (i, line) in logs.lines().enumerate() {
        let bad: Vec<char> = line
            .chars()
            .filter(|&c| {
                (c.is_control() && c != '\t')
                    || c == '\u{fffd}'
                    || c == '\u{2028}'
                    || c == '\u{202e}'
            })
            .collect();
        assert!(
            bad.is_empty(),
            "log line {i} carries raw bytes {bad:?}: {line:?}"
        );
        assert!(
            line.starts_with('['),
            "log line {i} does not start a log record: {line:?}"
        );
        if line.contains("INFO  protocol") && line.contains(" \"") {
            assert_eq!(line.matches('"').count(), 2, "quoting broken in {line:?}");
        }
    }
    // The quotes and backslashes that reached a request line are escaped, not dropped.
    assert!(
        logs.contains("\\x22") && logs.contains("\\x5c"),
        "no escaped quote or backslash in:\n{}",
        tail(&logs)
    );
    assert!(!logs.contains(SECRET));
}
