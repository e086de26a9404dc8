//! Operating the server (SPEC "Operations"): `--metrics` (the Prometheus text that
//! `promtool check metrics` accepts, counters that move exactly with known traffic,
//! `/healthz`, `/readyz` turning 503 during a drain) and `--access-log` (the combined
//! format GoAccess reads, JSON lines with the named fields, SIGUSR1 reopening the file
//! after a rename, standard output after the start line, and a reader that stops never
//! stopping the server: lines dropped and counted).
//!
//! Where a test goes: here if it is about what an operator watches (metrics, health,
//! the access log); the server's own log is [`logs`](crate::logs).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::access::{basic, BOB_BCRYPT};
use crate::util::{get, have, head_with, tail};
use crate::{Fixture, Response, Server};

#[doc(hidden)]
#[macro_export]
macro_rules! __operations_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] operations;
            spec: [
                metrics_count_known_traffic_exactly,
                json_lines_have_the_named_fields,
            ];
            more: [
                healthz_and_readyz_until_a_drain,
                goaccess_counts_the_combined_log,
                sigusr1_reopens_the_log_after_a_rename,
                access_log_on_stdout_follows_the_start_line,
                a_stalled_access_log_reader_never_stops_serving,
            ];
        }
    };
}
pub use crate::__operations_list as list;

// ----- The metrics listener -----

/// The address of the `--metrics` listener, from its log line (`metrics on
/// http://ADDR/metrics`).
pub(crate) fn metrics_addr(s: &Server) -> SocketAddr {
    let line = s
        .wait_log(&["metrics on http://"], Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no metrics line:\n{}", s.logs()));
    let (_, rest) = line.split_once("metrics on http://").expect("the line");
    let addr = rest.split('/').next().unwrap_or_default();
    addr.parse()
        .unwrap_or_else(|e| panic!("{addr:?} in {line:?}: {e}"))
}

/// `GET path` on the metrics listener (plain HTTP, whatever the server speaks): status,
/// `Content-Type`, body.
fn ask(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut c = TcpStream::connect(addr).expect("connect to the metrics listener");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .expect("send");
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("read to the end");
    let r = Response::from_bytes(&got).unwrap_or_else(|e| panic!("{path}: {e}"));
    let ct = r.header("content-type").unwrap_or_default().to_string();
    (r.status, ct, r.text())
}

/// `/metrics`, checked: 200 and the text format's media type.
fn scrape(addr: SocketAddr) -> String {
    let (status, ct, body) = ask(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    body
}

/// The value of one series (`name{labels}` exactly as exposed), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The value of a series, if present, as an integer.
pub(crate) fn value_of(text: &str, series: &str) -> Option<u64> {
    value(text, series).map(|v| v as u64)
}

/// The value of a series that must be present.
#[track_caller]
pub(crate) fn must(text: &str, series: &str) -> u64 {
    value(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}")) as u64
}

/// Scrapes until `ready` says so (at most 10 s: records are counted once the answer is
/// written, a moment after the client has it); the last scrape.
pub(crate) fn scrape_until(addr: SocketAddr, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(addr);
        if ready(&text) {
            return text;
        }
        assert!(Instant::now() < until, "never {what}:\n{text}");
        thread::sleep(Duration::from_millis(25));
    }
}

/// `promtool check metrics` accepts the text (the Prometheus tools' own linter).
fn promtool_accepts(text: &str) {
    assert!(
        have("promtool"),
        "promtool is needed (Debian package prometheus; .ci/run installs it)"
    );
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}\n---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ----- The cases -----

/// Known traffic, and the counters that must move exactly with it: requests by method
/// and code (a bad request head is `NONE`), the histogram's count, body bytes, an upload
/// created (its bytes) and one refused, a failed password, a connection refused at
/// `--max-connections` (no request), connections open and served, the open-file cache
/// (an old file: one miss, then hits), TLS handshakes that failed (over HTTPS); and
/// `promtool check metrics` accepts all of it.
pub fn metrics_count_known_traffic_exactly(bin: &str) {
    let fx = Fixture::new();
    let old = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(fx.root.join("photo.jpg"))
        .and_then(|f| f.set_modified(old))
        .expect("an old photo.jpg");
    let bob = format!("bob:{BOB_BCRYPT}@/:rw");
    let s = Server::start_in(
        bin,
        fx,
        &[
            "--metrics",
            "127.0.0.1:0",
            "--max-connections",
            "2",
            "-a",
            "@/:ro",
            "-a",
            &bob,
        ],
    );
    let m = metrics_addr(&s);
    let before = scrape(m);
    promtool_accepts(&before);
    assert_eq!(must(&before, "rfs_connections_total"), 0);
    // One keep-alive connection for the requests (with --max-connections 2, connections
    // one after another could meet the last one still closing), another for bytes that
    // close theirs.
    let mut bytes = 0u64;
    let mut c = s.connect();
    let mut one = |request: &[u8], status: u16| {
        c.send(request);
        let head = request.starts_with(b"HEAD ");
        let r = c.read_response_for(head);
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(request));
        bytes += r.body.len() as u64;
        r
    };
    for _ in 0..3 {
        one(get(&s, "/sample.txt").as_bytes(), 200);
    }
    one(get(&s, "/index.html").as_bytes(), 200);
    let r = one(head_with(&s, "/index.html", "").as_bytes(), 200);
    assert!(r.body.is_empty());
    one(get(&s, "/nope.html").as_bytes(), 404);
    one(get(&s, "/notes.unknownext").as_bytes(), 415);
    let upload = |auth: &str| {
        format!(
            "POST /upload HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: 7\r\n\r\n{{\"k\":1}}",
            s.host()
        )
    };
    one(upload(&basic("bob", "builder")).as_bytes(), 201);
    one(upload(&basic("bob", "wrong")).as_bytes(), 401);
    // An old file: the first open is a miss, the next two are hits.
    let cache = scrape(m);
    for _ in 0..3 {
        one(get(&s, "/photo.jpg").as_bytes(), 200);
    }
    drop(c);
    // Bytes that are no request: HTTP/1.1's alone (HTTP/2 has frames, not such bytes).
    let h2 = s.is_h2();
    if !h2 {
        let mut c = s.connect();
        c.send(b"\x01\x02 not a request\r\n\r\n");
        let r = c.read_response();
        r.expect_status(400);
        bytes += r.body.len() as u64;
    }
    let requests: u32 = if h2 { 12 } else { 13 };
    let text = scrape_until(m, "all the requests counted", |t| {
        value(t, "rfs_http_request_duration_seconds_count") == Some(f64::from(requests))
    });
    let series = |method: &str, code: u16| {
        value(
            &text,
            &format!("rfs_http_requests_total{{method=\"{method}\",code=\"{code}\"}}"),
        )
        .map_or(0, |v| v as u64)
    };
    let expected = [
        ("GET", 200, 7),
        ("HEAD", 200, 1),
        ("GET", 404, 1),
        ("GET", 415, 1),
        ("POST", 201, 1),
        ("POST", 401, 1),
        ("NONE", 400, u64::from(!h2)),
    ];
    for (method, code, n) in expected {
        assert_eq!(series(method, code), n, "{method} {code}:\n{text}");
    }
    let all: u64 = text
        .lines()
        .filter(|l| l.starts_with("rfs_http_requests_total{"))
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(all, u64::from(requests), "no other series:\n{text}");
    assert_eq!(
        must(
            &text,
            "rfs_http_request_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        u64::from(requests)
    );
    assert_eq!(must(&text, "rfs_http_response_bytes_total"), bytes);
    assert_eq!(must(&text, "rfs_uploads_total{result=\"created\"}"), 1);
    assert_eq!(must(&text, "rfs_uploads_total{result=\"refused\"}"), 1);
    assert_eq!(must(&text, "rfs_uploads_total{result=\"failed\"}"), 0);
    assert_eq!(must(&text, "rfs_upload_bytes_total"), 7);
    assert_eq!(must(&text, "rfs_auth_failures_total"), 1);
    let delta = |name: &str| must(&text, name) - must(&cache, name);
    assert_eq!(
        (
            delta("rfs_file_cache_misses_total"),
            delta("rfs_file_cache_hits_total")
        ),
        (1, 2),
        "an old file: one miss, two hits"
    );
    // Over HTTPS: plain HTTP to the port, and a ClientHello rustls refuses. (Once the
    // connections above are gone: with --max-connections 2, one still closing would make
    // these two meet a 503 instead of the handshake.)
    scrape_until(m, "the connections above closed", |t| {
        value(t, "rfs_connections_open") == Some(0.0)
    });
    let mut failed_handshakes: u32 = 0;
    if s.is_tls() {
        for bytes in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",
        ] {
            let mut raw = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
            raw.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            raw.write_all(bytes).expect("send");
            let mut sink = Vec::new();
            let _ = raw.read_to_end(&mut sink);
            failed_handshakes += 1;
        }
    }
    scrape_until(m, "the failed handshakes counted", |t| {
        value(t, "rfs_tls_handshake_failures_total") == Some(f64::from(failed_handshakes))
    });
    // Once every connection is closed, two take the two places; a third is refused (no
    // request is counted).
    scrape_until(m, "every connection closed", |t| {
        value(t, "rfs_connections_open") == Some(0.0)
    });
    let a = s.connect();
    let b = s.connect();
    let served = 2 - u32::from(h2) + failed_handshakes + 2;
    scrape_until(m, "two connections open", |t| {
        value(t, "rfs_connections_open") == Some(2.0)
            && value(t, "rfs_connections_total") == Some(f64::from(served))
    });
    let mut c = s.connect();
    if c.is_h2() {
        // An HTTP/2 answer needs a stream: the refusal answers the first request.
        c.send(get(&s, "/"));
    }
    c.read_response().expect_status(503);
    let text = scrape_until(m, "the refusal counted", |t| {
        value(
            t,
            "rfs_connections_refused_total{reason=\"max_connections\"}",
        ) == Some(1.0)
    });
    assert_eq!(
        must(
            &text,
            "rfs_connections_refused_total{reason=\"queue_full\"}"
        ),
        0
    );
    assert_eq!(
        must(&text, "rfs_http_request_duration_seconds_count"),
        u64::from(requests),
        "a refusal is not a request"
    );
    assert_eq!(must(&text, "rfs_connections_total"), u64::from(served));
    drop((a, b, c));
    let text = scrape_until(m, "every connection closed", |t| {
        value(t, "rfs_connections_open") == Some(0.0)
    });
    assert_eq!(
        must(&text, "rfs_log_lines_dropped_total{log=\"server\"}"),
        0
    );
    assert_eq!(
        must(&text, "rfs_log_lines_dropped_total{log=\"access\"}"),
        0
    );
    assert!(
        must(&text, "process_resident_memory_bytes") > 1 << 20,
        "{text}"
    );
    assert!(must(&text, "process_open_fds") >= 3, "{text}");
    assert!(
        value(&text, "process_cpu_seconds_total").is_some(),
        "{text}"
    );
    promtool_accepts(&text);
}

/// `/healthz` is 200 `ok` while the process runs; `/readyz` 200, then 503 from the
/// moment a drain begins (SIGTERM) while a request is still in flight (an upload whose
/// body is half sent); the upload is then answered and the server exits 0.
pub fn healthz_and_readyz_until_a_drain(bin: &str) {
    let mut s = Server::start(bin, &["--metrics", "127.0.0.1:0"]);
    let m = metrics_addr(&s);
    assert_eq!(
        ask(m, "/healthz"),
        (200, "text/plain; charset=utf-8".into(), "ok\n".into())
    );
    assert_eq!(ask(m, "/readyz").0, 200);
    assert_eq!(ask(m, "/other").0, 404);
    let mut c = s.connect();
    let body = "{\"slow\": \"upload\"}";
    c.send(format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{}",
        s.host(),
        body.len(),
        &body[..5]
    ));
    thread::sleep(Duration::from_millis(200));
    s.signal("TERM");
    let until = Instant::now() + Duration::from_secs(3);
    while ask(m, "/readyz").0 != 503 {
        assert!(
            Instant::now() < until,
            "/readyz never said 503 during the drain"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ask(m, "/readyz").2, "draining\n");
    assert_eq!(ask(m, "/healthz").0, 200, "still alive while draining");
    c.send(&body[5..]);
    let r = c.read_response();
    r.expect_status(201);
    assert!(r.closes(), "an answer during a drain closes");
    let status = s
        .wait_exit(Duration::from_secs(10))
        .expect("the server exits after the drain");
    assert!(status.success(), "{status}");
}

/// The lines of a file, waiting (at most 10 s) until there are `n`.
pub(crate) fn lines_of(path: &Path, n: usize) -> Vec<String> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(String::from).collect();
        if lines.len() >= n && text.ends_with('\n') {
            return lines;
        }
        assert!(
            Instant::now() < until,
            "{}: {} of {n} lines:\n{text}",
            path.display(),
            lines.len()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// The default format, combined, is what GoAccess reads: it counts every request as
/// valid, and the same bandwidth (client text with quotes and backslashes escaped).
pub fn goaccess_counts_the_combined_log(bin: &str) {
    assert!(have("goaccess"), "goaccess is needed (.ci/run installs it)");
    let fx = Fixture::new();
    let log = fx.base.path().join("access.log");
    let out = fx.base.path().join("report.json");
    let log_arg = log.to_string_lossy().into_owned();
    let s = Server::start_in(bin, fx, &["--access-log", &log_arg]);
    let mut bytes = 0u64;
    let mut n = 0;
    let uas = [
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
        "curl/8.5.0",
        "odd \"quoted\" agent \\ with a backslash",
    ];
    for (i, path) in ["/", "/sample.txt", "/nope.html", "/style.css", "/logo.png"]
        .iter()
        .enumerate()
    {
        let mut c = s.connect();
        let r = c.request(&format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nReferer: http://example.test/p{i}\r\n\
             Connection: close\r\n\r\n",
            s.host(),
            uas[i % uas.len()]
        ));
        bytes += r.body.len() as u64;
        n += 1;
    }
    let lines = lines_of(&log, n);
    assert_eq!(lines.len(), n, "{lines:#?}");
    for line in &lines {
        assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
        assert!(line.contains(" +0000] \"GET /"), "{line}");
    }
    // Lines follow the answers, which a pool's workers may log in another order than
    // the client saw them: look the line up.
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("\"odd \\x22quoted\\x22 agent \\x5C with a backslash\"")),
        "{lines:#?}"
    );
    let run = Command::new("goaccess")
        .arg(&log)
        .args(["--log-format=COMBINED", "--no-global-config", "-o"])
        .arg(&out)
        .output()
        .expect("goaccess");
    assert!(run.status.success(), "goaccess: {run:?}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("report")).expect("JSON report");
    let general = &report["general"];
    assert_eq!(general["total_requests"], n, "{general}");
    assert_eq!(general["valid_requests"], n, "{general}");
    assert_eq!(general["failed_requests"], 0, "{general}");
    assert_eq!(general["bandwidth"], bytes, "{general}");
}

/// `--log-format json`: one object a line with exactly the named fields (RFC 3339 time,
/// the verified user, TLS as the server speaks it); bytes that never became a request
/// have `null` for method, target and protocol.
pub fn json_lines_have_the_named_fields(bin: &str) {
    let fx = Fixture::new();
    let log = fx.base.path().join("access.jsonl");
    let log_arg = log.to_string_lossy().into_owned();
    let bob = format!("bob:{BOB_BCRYPT}@/:rw");
    let s = Server::start_in(
        bin,
        fx,
        &[
            "--access-log",
            &log_arg,
            "--log-format",
            "json",
            "-a",
            "@/:ro",
            "-a",
            &bob,
        ],
    );
    let ua = "agent \"quoted\" \\ caf\u{e9}";
    let mut c = s.connect();
    let r1 = c.request(&format!(
        "GET /sample.txt?x=1 HTTP/1.1\r\nHost: {}\r\nUser-Agent: {ua}\r\nReferer: http://r.test/\r\n\r\n",
        s.host()
    ));
    r1.expect_status(200);
    let r2 = c.request(&format!(
        "HEAD /index.html HTTP/1.0\r\nHost: {}\r\n{}Connection: keep-alive\r\n\r\n",
        s.host(),
        basic("bob", "builder")
    ));
    r2.expect_status(200);
    drop(c);
    // A line is written once its answer is sent, so a client may read the answer first:
    // the next connection waits for both lines, for the order below to be the order sent.
    lines_of(&log, 2);
    // Bytes that are no request: HTTP/1.1's alone (HTTP/2 has frames, not such bytes).
    let h2 = s.is_h2();
    if !h2 {
        let mut c = s.connect();
        c.send(b"\x01 nonsense\r\n\r\n");
        c.read_response().expect_status(400);
    }
    let want = if h2 { 2 } else { 3 };
    let lines = lines_of(&log, want);
    assert_eq!(lines.len(), want, "{lines:#?}");
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut fields = Vec::new();
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let obj = v.as_object().expect("an object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "bytes",
                "duration_ms",
                "method",
                "protocol",
                "referer",
                "remote_addr",
                "status",
                "target",
                "time",
                "tls",
                "user",
                "user_agent"
            ],
            "{line}"
        );
        let time = v["time"].as_str().expect("time");
        assert!(is_rfc3339_utc(time), "{time}");
        let secs = unix_secs_of(time);
        assert!(secs.abs_diff(now) < 120, "{time} is not now");
        assert_eq!(v["remote_addr"], "127.0.0.1", "{line}");
        assert_eq!(v["tls"], s.is_tls(), "{line}");
        assert!(v["duration_ms"].is_u64(), "{line}");
        fields.push(v);
    }
    let (a, b) = (&fields[0], &fields[1]);
    // Over HTTP/2 both requests are HTTP/2 streams.
    let version = |v: &str| {
        if h2 {
            "HTTP/2.0".to_string()
        } else {
            v.to_string()
        }
    };
    assert_eq!(
        (&a["method"], &a["target"], &a["protocol"], &a["status"]),
        (
            &"GET".into(),
            &"/sample.txt?x=1".into(),
            &version("HTTP/1.1").into(),
            &200.into()
        )
    );
    assert_eq!(a["bytes"], r1.body.len());
    assert_eq!(a["user"], serde_json::Value::Null);
    assert_eq!(a["user_agent"], ua);
    assert_eq!(a["referer"], "http://r.test/");
    assert_eq!(
        (&b["method"], &b["protocol"], &b["user"], &b["bytes"]),
        (
            &"HEAD".into(),
            &version("HTTP/1.0").into(),
            &"bob".into(),
            &0.into()
        )
    );
    assert!(b["user_agent"].is_null() && b["referer"].is_null());
    if let Some(c) = fields.get(2) {
        assert_eq!(c["status"], 400);
        assert!(c["method"].is_null() && c["target"].is_null() && c["protocol"].is_null());
    }
}

/// `2026-12-03T10:00:00.123Z`.
fn is_rfc3339_utc(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// The seconds since the epoch of an RFC 3339 UTC time (days from the civil date).
fn unix_secs_of(t: &str) -> u64 {
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().expect("digits");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)) as u64
}

/// Log rotation: after `mv access.log access.log.1` and SIGUSR1, new lines go to a new
/// `access.log`, and the old file keeps exactly the lines before the signal.
pub fn sigusr1_reopens_the_log_after_a_rename(bin: &str) {
    let fx = Fixture::new();
    let log = fx.base.path().join("access.log");
    let rotated = fx.base.path().join("access.log.1");
    let log_arg = log.to_string_lossy().into_owned();
    let s = Server::start_in(
        bin,
        fx,
        &["--access-log", &log_arg, "--log-format", "common"],
    );
    for _ in 0..3 {
        s.get("/sample.txt").expect_status(200);
    }
    assert_eq!(lines_of(&log, 3).len(), 3);
    std::fs::rename(&log, &rotated).expect("rename");
    s.signal("USR1");
    assert!(
        s.wait_log(&["SIGUSR1", "reopened"], Duration::from_secs(5))
            .is_some(),
        "no reopen logged:\n{}",
        tail(&s.logs())
    );
    for _ in 0..2 {
        s.get("/index.html").expect_status(200);
    }
    let new = lines_of(&log, 2);
    assert_eq!(new.len(), 2, "{new:#?}");
    assert!(
        new.iter()
            .all(|l| l.contains("\"GET /index.html HTTP/1.1\" 200")),
        "{new:#?}"
    );
    let old = std::fs::read_to_string(&rotated).expect("the rotated file");
    let old: Vec<&str> = old.lines().collect();
    assert_eq!(old.len(), 3, "{old:#?}");
    assert!(
        old.iter()
            .all(|l| l.contains("\"GET /sample.txt HTTP/1.1\" 200")),
        "{old:#?}"
    );
    // Common format: no Referer and User-Agent fields.
    assert!(old.iter().all(|l| l.ends_with(" 200 25")), "{old:#?}");
    // The server lives on after the signal.
    s.get("/").expect_status(200);
}

/// `--access-log -`: the start line first (scripts read it), then one line per request.
pub fn access_log_on_stdout_follows_the_start_line(bin: &str) {
    let s = Server::start(bin, &["--access-log", "-"]);
    s.get("/sample.txt").expect_status(200);
    s.get("/nope.html").expect_status(404);
    let until = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines = s.stdout_lines();
        if lines.len() >= 2 {
            break lines;
        }
        assert!(
            Instant::now() < until,
            "stdout after the start line: {lines:?}"
        );
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(lines.len(), 2, "{lines:#?}");
    // In either order: two workers may log two answers in another order than they went.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"GET /sample.txt HTTP/1.1\" 200 25 \"-\" \"-\"")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"GET /nope.html HTTP/1.1\" 404")),
        "{lines:#?}"
    );
}

/// `--access-log -` to a pipe nobody reads after the start line: the pipe fills, the
/// writer thread blocks on it, the queue fills — and every request is still answered at
/// once; the lines that did not fit are dropped and counted.
pub fn a_stalled_access_log_reader_never_stops_serving(bin: &str) {
    let fx = Fixture::new().with_file("ok.txt", "ok");
    let s = Server::builder(bin)
        .fixture(fx)
        .args(&[
            "--access-log",
            "-",
            "--metrics",
            "127.0.0.1:0",
            "--max-requests",
            "1000000",
            // One thread logs: its batch's bound is the most one thread may hold
            // (1 MiB of lines).
            "--threads",
            "1",
        ])
        .rust_log("warn,host::ops=info")
        .stdout_unread()
        .start();
    let m = metrics_addr(&s);
    // More than a thread's batch (1 MiB: 11,000 of these lines of some 95 bytes), the
    // writer's buffer and the pipe hold together.
    let (batches, batch) = (100, 250);
    let total = batches * batch;
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = get(&s, "/ok.txt");
    let mut buf = Vec::new();
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..batches {
        let t = Instant::now();
        c.write_all(request.repeat(batch).as_bytes())
            .expect("send a batch");
        for _ in 0..batch {
            let r = Response::read_from(&mut c, &mut buf, false).expect("an answer");
            assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        }
        slowest = slowest.max(t.elapsed());
    }
    let took = start.elapsed();
    assert!(slowest < Duration::from_secs(5), "a batch took {slowest:?}");
    let text = scrape_until(m, "every request counted", |t| {
        value(t, "rfs_http_requests_total{method=\"GET\",code=\"200\"}") == Some(total as f64)
    });
    let dropped = must(&text, "rfs_log_lines_dropped_total{log=\"access\"}");
    assert!(
        dropped > 0 && dropped < total as u64,
        "{dropped} of {total} lines dropped"
    );
    eprintln!("{total} requests in {took:?} beside a stalled access log; {dropped} lines dropped");
    // Still serving, on a new connection too.
    s.get("/ok.txt").expect_status(200);
}
