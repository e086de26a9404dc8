//! HTTP/2 (SPEC "HTTP/2"): every route of HTTP/1.1 answered per stream, over prior
//! knowledge in clear text and over TLS with ALPN `h2`, with curl and nghttp (what they
//! send and check is a real client's); many streams at once (h2load, nghttp); a 64 MiB
//! download byte for byte and a streamed upload; `--http2 off`; drain and the idle
//! timeout; the defences, each against its attack sent frame by frame
//! ([`defences`], with the hand-made client of [`frames`]); and a conformance pass with
//! the Python `h2` library ([`conformance`]).
//!
//! Where a test goes: here if it is about HTTP/2 itself or a route as HTTP/2 carries it;
//! the page in Chromium over h2 is in [`browser`](crate::browser).

pub mod bodies;
pub mod conformance;
pub mod defences;
pub mod frames;
pub mod ops;

pub use bodies::{a_64_mib_download_byte_for_byte, an_upload_streamed_in_bounded_memory};

pub use conformance::python_h2_conformance;
pub use defences::{
    a_client_gone_with_streams_waiting_closes_them, a_window_held_at_zero_is_dropped,
    continuation_flood_is_bounded, hpack_bomb_is_431, rapid_reset_is_enhance_your_calm,
    settings_and_ping_floods_end_the_connection, stream_id_misuse_is_a_protocol_error,
};
pub use ops::{
    a_full_server_sends_goaway_to_a_silent_h2_client, access_log_metrics_and_zip_per_stream,
};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bodies::generated;

use crate::util::{have, tail};
use crate::{Fixture, Server};

#[doc(hidden)]
#[macro_export]
macro_rules! __http2_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] http2;
            spec: [];
            more: [
                routes_and_refusals_per_stream,
                uploads_json_multipart_and_unsized,
                put_delete_auth_and_cors,
                a_hundred_streams_at_once,
                a_64_mib_download_byte_for_byte,
                an_upload_streamed_in_bounded_memory,
                tls_alpn_offers_h2_then_http1,
                http2_off_speaks_http1_only,
                drain_sends_goaway_and_finishes_streams,
                an_idle_connection_closes,
                max_requests_ends_with_goaway,
                a_full_server_sends_goaway_to_a_silent_h2_client,
                access_log_metrics_and_zip_per_stream,
                rapid_reset_is_enhance_your_calm,
                continuation_flood_is_bounded,
                hpack_bomb_is_431,
                settings_and_ping_floods_end_the_connection,
                a_window_held_at_zero_is_dropped,
                a_client_gone_with_streams_waiting_closes_them,
                stream_id_misuse_is_a_protocol_error,
                python_h2_conformance,
            ];
        }
    };
}
pub use crate::__http2_list as list;

/// bob's bcrypt hash (`htpasswd -nbB bob builder`), password `builder`.
const BOB_BCRYPT: &str = "$2y$05$v5CqD0Ka5Q7WcjyzTRK/T.gpqryQ3qtV0Bwn6LRxNxXdasSAGV/c6";

/// What curl got: the status, the HTTP version it spoke, the last head's fields
/// (names lowercase), the body.
#[derive(Debug)]
pub struct Got {
    pub code: u16,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        (self.headers.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Makes sure a tool the group needs is there: a failure that says what to install,
/// never a silent pass.
pub fn need(tool: &str) {
    assert!(
        have(tool),
        "{tool} is needed (Debian: curl, nghttp2-client); .ci/run installs it"
    );
}

/// `curl` over HTTP/2 (prior knowledge in clear text, ALPN under TLS) with `args` and
/// the URL of `path`; bounded to 120 s.
pub fn curl(s: &Server, path: &str, args: &[&str]) -> Got {
    need("curl");
    let dir = tempfile::tempdir().expect("tempdir");
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "120", "--path-as-is"]);
    if s.is_tls() {
        cmd.arg("--http2").args(s.curl_args());
    } else {
        cmd.arg("--http2-prior-knowledge");
    }
    cmd.arg("-D").arg(&head).arg("-o").arg(&body);
    cmd.args(["-w", "%{http_code} %{http_version}"]);
    cmd.args(args).arg(s.url(path));
    let out = cmd.stdin(Stdio::null()).output().expect("run curl");
    let w = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut it = w.split_whitespace();
    let code = it.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let version = it.next().unwrap_or("").to_string();
    let head = std::fs::read_to_string(&head).unwrap_or_default();
    // The last head (after any 100 Continue).
    let last = head
        .split("\r\n\r\n")
        .filter(|h| h.starts_with("HTTP/"))
        .last()
        .unwrap_or("");
    let headers = (last.lines().skip(1))
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = std::fs::read(&body).unwrap_or_default();
    assert!(
        code != 0,
        "curl {args:?} {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Got {
        code,
        version,
        headers,
        body,
    }
}

/// A fixture with the files the cases read: text to compress, a page, a range.
fn fixture() -> Fixture {
    Fixture::new()
        .with_file("app.js", crate::compress::text(100 << 10, 7))
        .with_file("big.json", crate::compress::text(3 << 20, 8))
        .with_file("notes.qqq", b"unknown type")
        .with_file("digits.txt", b"0123456789abcdefghij")
}

pub fn routes_and_refusals_per_stream(bin: &str) {
    let s = Server::start_in(bin, fixture(), &[]);
    let index = std::fs::read(s.fx.root.join("index.html")).expect("index.html");
    let got = curl(&s, "/", &[]);
    assert_eq!((got.code, got.version.as_str()), (200, "2"));
    assert_eq!(got.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(got.body, index);
    for hop in ["connection", "keep-alive", "transfer-encoding"] {
        assert_eq!(got.header(hop), None, "{hop} over HTTP/2");
    }
    let head = curl(&s, "/digits.txt", &["-I"]);
    assert_eq!(
        (head.code, head.header("content-length")),
        (200, Some("20"))
    );
    assert_eq!(
        head.header("content-disposition"),
        Some("attachment; filename=\"digits.txt\"")
    );
    // (curl -I writes the head where the body would go: no body came.)
    assert!(!crate::util::contains(&head.body, b"0123456789"));
    assert_eq!(curl(&s, "/missing.html", &[]).code, 404);
    assert_eq!(curl(&s, "/notes.qqq", &[]).code, 415);
    assert_eq!(curl(&s, "/../Cargo.toml", &[]).code, 403);
    assert_eq!(curl(&s, "/", &["-H", "Host: example.com"]).code, 403);
    let patch = curl(&s, "/digits.txt", &["-X", "PATCH"]);
    assert_eq!(patch.code, 405);
    assert!(patch.header("allow").is_some());
    assert_eq!(curl(&s, "/", &["-X", "OPTIONS"]).code, 204);
    // Ranges and validators.
    let range = curl(&s, "/digits.txt", &["-r", "2-5"]);
    assert_eq!((range.code, &range.body[..]), (206, &b"2345"[..]));
    let etag = got.header("etag").expect("an ETag").to_string();
    let none_match = format!("If-None-Match: {etag}");
    assert_eq!(curl(&s, "/", &["-H", &none_match]).code, 304);
    assert_eq!(curl(&s, "/", &["-H", "If-Match: \"nope\""]).code, 412);
    // Compression: kept whole (100 KiB), and streamed (3 MiB, compressed as it goes).
    let js = std::fs::read(s.fx.root.join("app.js")).expect("app.js");
    let big = std::fs::read(s.fx.root.join("big.json")).expect("big.json");
    for (path, file) in [("/app.js", &js), ("/big.json", &big)] {
        for coding in ["gzip", "br", "zstd"] {
            let ae = format!("Accept-Encoding: {coding}");
            let got = curl(&s, path, &["-H", &ae]);
            assert_eq!(got.code, 200, "{path} {coding}");
            assert_eq!(got.header("content-encoding"), Some(coding), "{path}");
            let r = crate::Response {
                status: 200,
                version: "HTTP/2".into(),
                headers: vec![("content-encoding".into(), coding.into())],
                body: got.body.clone(),
            };
            assert!(
                crate::compress::decoded(&r) == **file,
                "{path} {coding} decodes to the file"
            );
        }
    }
    // One access-log line per stream, as over HTTP/1.1.
    let logs = s.logs();
    assert!(
        logs.contains("\"GET /digits.txt\" 206 4"),
        "{}",
        tail(&logs)
    );
    assert!(
        logs.contains("\"PATCH /digits.txt\" 405"),
        "{}",
        tail(&logs)
    );
}

pub fn uploads_json_multipart_and_unsized(bin: &str) {
    let s = Server::start_in(bin, Fixture::new(), &[]);
    let json = r#"{"over": "h2"}"#;
    let got = curl(
        &s,
        "/upload",
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            json,
        ],
    );
    assert_eq!((got.code, got.version.as_str()), (201, "2"));
    let location = got.header("location").expect("Location").to_string();
    let saved = std::fs::read(s.fx.root.join(location.trim_start_matches('/'))).expect("saved");
    assert_eq!(saved, json.as_bytes());
    // No content-length (the body read from a pipe): DATA frames until END_STREAM.
    let dir = tempfile::tempdir().expect("tempdir");
    let body = dir.path().join("body.json");
    std::fs::write(&body, r#"{"unsized": [1, 2, 3]}"#).expect("write");
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "60",
        "--http2-prior-knowledge",
        "-X",
        "POST",
    ]);
    cmd.args(["-H", "Content-Type: application/json", "-T", "-"]);
    cmd.args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(s.url("/upload"));
    cmd.stdin(std::fs::File::open(&body).expect("open"));
    let out = cmd.output().expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "201", "{out:?}");
    let bad = curl(
        &s,
        "/upload",
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "{nope",
        ],
    );
    assert_eq!(bad.code, 400);
    let plain = curl(
        &s,
        "/upload",
        &["-H", "Content-Type: text/plain", "-d", "x"],
    );
    assert_eq!(plain.code, 415);
    assert_eq!(curl(&s, "/elsewhere", &["-d", "x"]).code, 404);
    // A multipart form, as the page posts it.
    let file = dir.path().join("report.pdf");
    std::fs::write(&file, b"%PDF-1.4 not really").expect("write");
    let form = format!("file=@{}", file.display());
    let got = curl(&s, "/upload", &["-F", &form]);
    assert_eq!(got.code, 201, "{}", String::from_utf8_lossy(&got.body));
    let saved = std::fs::read(s.fx.root.join("uploads/report.pdf")).expect("report.pdf");
    assert_eq!(saved, b"%PDF-1.4 not really");
}

pub fn put_delete_auth_and_cors(bin: &str) {
    let rule = format!("bob:{BOB_BCRYPT}@/:rw");
    let args = ["-a", "@/:ro", "-a", &rule, "--cors", "https://app.example"];
    let s = Server::start_in(bin, Fixture::new(), &args);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("note.txt");
    std::fs::write(&file, b"first").expect("write");
    let f = file.to_string_lossy().into_owned();
    let anon = curl(&s, "/note.txt", &["-T", &f]);
    assert_eq!(anon.code, 401);
    let challenge = anon.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    let wrong = curl(&s, "/note.txt", &["-T", &f, "-u", "bob:wrong"]);
    assert_eq!(wrong.code, 401);
    let put = curl(&s, "/note.txt", &["-T", &f, "-u", "bob:builder"]);
    assert_eq!(put.code, 201);
    let etag = put.header("etag").expect("ETag").to_string();
    assert_eq!(
        std::fs::read(s.fx.root.join("note.txt")).expect("put"),
        b"first"
    );
    // No silent overwrite; a replace under If-Match.
    std::fs::write(&file, b"second").expect("write");
    let again = curl(&s, "/note.txt", &["-T", &f, "-u", "bob:builder"]);
    assert_eq!(again.code, 428);
    let if_match = format!("If-Match: {etag}");
    let replaced = curl(
        &s,
        "/note.txt",
        &["-T", &f, "-u", "bob:builder", "-H", &if_match],
    );
    assert_eq!(replaced.code, 204);
    assert_eq!(
        std::fs::read(s.fx.root.join("note.txt")).expect("put"),
        b"second"
    );
    // Guests read; they may not delete.
    assert_eq!(curl(&s, "/note.txt", &[]).body, b"second");
    assert_eq!(curl(&s, "/note.txt", &["-X", "DELETE"]).code, 401);
    let deleted = curl(&s, "/note.txt", &["-X", "DELETE", "-u", "bob:builder"]);
    assert_eq!(deleted.code, 204);
    assert!(!s.fx.root.join("note.txt").exists());
    // CORS: a preflight without credentials, and the origin on an answer.
    let pre = curl(
        &s,
        "/upload",
        &[
            "-X",
            "OPTIONS",
            "-H",
            "Origin: https://app.example",
            "-H",
            "Access-Control-Request-Method: POST",
        ],
    );
    assert_eq!(pre.code, 204);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let get = curl(&s, "/", &["-H", "Origin: https://app.example"]);
    assert_eq!(
        get.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let foreign = curl(&s, "/", &["-H", "Origin: https://evil.example"]);
    assert_eq!(foreign.header("access-control-allow-origin"), None);
}

pub fn a_hundred_streams_at_once(bin: &str) {
    need("nghttp");
    need("h2load");
    let s = Server::builder(bin)
        .fixture(fixture())
        .rust_log("warn")
        .start();
    // One connection, 100 requests in flight: every one answered in full.
    let out = Command::new("timeout")
        .args(["60", "nghttp", "-nv", "-m", "100"])
        .arg(s.url("/digits.txt"))
        .output()
        .expect("nghttp");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "nghttp: {text}");
    assert!(
        text.contains("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100"),
        "the server's SETTINGS: {}",
        &text[..text.len().min(2000)]
    );
    let ended = text
        .lines()
        .filter(|l| l.contains("recv DATA frame") && l.contains("END_STREAM"))
        .count();
    let ends = text.matches("; END_STREAM\n").count();
    assert!(
        ended == 100 || ends >= 100,
        "100 bodies ended: {ended}/{ends}"
    );
    // h2load: 1,000 requests on 4 connections, 100 streams each at once.
    let s = Server::builder(bin)
        .fixture(fixture())
        .rust_log("warn")
        .args(&["--max-requests", "1000000"])
        .start();
    let out = Command::new("timeout")
        .args(["120", "h2load", "-n", "1000", "-c", "4", "-m", "100"])
        .arg(s.url("/index.html"))
        .output()
        .expect("h2load");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1000 succeeded, 0 failed, 0 errored"),
        "h2load: {text}"
    );
    assert!(text.contains("status codes: 1000 2xx"), "h2load: {text}");
}

#[cfg(feature = "tls")]
fn alpn(s: &Server, offer: &[&[u8]]) -> Option<Vec<u8>> {
    use std::io::Write;
    use std::sync::Arc;
    let base = s.tls_config().expect("TLS");
    let mut config = (*base).clone();
    config.alpn_protocols = offer.iter().map(|p| p.to_vec()).collect();
    let name = crate::https::loopback_name();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let until = Instant::now() + Duration::from_secs(10);
    while conn.is_handshaking() && Instant::now() < until {
        conn.complete_io(&mut sock).expect("handshake");
    }
    let _ = sock.flush();
    conn.alpn_protocol().map(<[u8]>::to_vec)
}

pub fn tls_alpn_offers_h2_then_http1(bin: &str) {
    #[cfg(feature = "tls")]
    {
        let s = Server::builder(bin).fixture(fixture()).tls().start();
        assert_eq!(alpn(&s, &[b"http/1.1", b"h2"]).as_deref(), Some(&b"h2"[..]));
        assert_eq!(alpn(&s, &[b"http/1.1"]).as_deref(), Some(&b"http/1.1"[..]));
        let h2 = curl(&s, "/digits.txt", &[]);
        assert_eq!((h2.code, h2.version.as_str()), (200, "2"));
        assert_eq!(h2.body, b"0123456789abcdefghij");
        let h1 = curl(&s, "/digits.txt", &["--http1.1"]);
        assert_eq!((h1.code, h1.version.as_str()), (200, "1.1"));
        // The page's routes over h2 with TLS: an upload and a listing of the 404.
        let up = curl(
            &s,
            "/upload",
            &[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "{}",
            ],
        );
        assert_eq!((up.code, up.version.as_str()), (201, "2"));
    }
    #[cfg(not(feature = "tls"))]
    {
        // Without TLS in the build, ALPN does not exist: h2c is all there is.
        let s = Server::start_in(bin, fixture(), &[]);
        assert_eq!(curl(&s, "/digits.txt", &[]).version, "2");
    }
}

pub fn http2_off_speaks_http1_only(bin: &str) {
    let s = Server::start_in(bin, fixture(), &["--http2", "off"]);
    // The preface is an HTTP/1.1 request line the core refuses: 505 (HTTP/2.0), closed.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    use std::io::{Read, Write};
    let mut hello = frames::PREFACE.to_vec();
    hello.extend(frames::settings(&[]));
    c.write_all(&hello).expect("preface");
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 505 ") || text.starts_with("HTTP/1.1 400 "),
        "{text}"
    );
    assert!(text.contains("Connection: close"), "{text}");
    // curl with prior knowledge gets no HTTP/2; HTTP/1.1 still works.
    need("curl");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--http2-prior-knowledge"])
        .arg(s.url("/digits.txt"))
        .output()
        .expect("curl");
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(s.get("/digits.txt").body, b"0123456789abcdefghij");
    #[cfg(feature = "tls")]
    {
        let s = Server::builder(bin)
            .fixture(fixture())
            .tls()
            .args(&["--http2", "off"])
            .start();
        assert_eq!(
            alpn(&s, &[b"h2", b"http/1.1"]).as_deref(),
            Some(&b"http/1.1"[..])
        );
        let got = curl(&s, "/digits.txt", &[]);
        assert_eq!((got.code, got.version.as_str()), (200, "1.1"));
    }
}

pub fn drain_sends_goaway_and_finishes_streams(bin: &str) {
    let bytes = generated(16 << 20);
    let fx = Fixture::new().with_file("big.bin", &bytes);
    let mut s = Server::builder(bin).fixture(fx).rust_log("info").start();
    // A client that reads slowly: a 16 MiB download in 1 MiB window updates.
    let mut c = frames::Conn::open(s.port, &[(frames::INITIAL_WINDOW_SIZE, 1 << 20)]);
    c.send(&frames::window_update(0, 64 << 20));
    let block = frames::get_block(&s.host(), "/big.bin");
    c.headers(1, &block, frames::END_HEADERS | frames::END_STREAM);
    let first = c.wait_for(Duration::from_secs(10), |f| f.kind == frames::DATA);
    assert!(first.is_some(), "the download began");
    s.signal("TERM");
    let goaway = c
        .wait_for(Duration::from_secs(10), |f| f.kind == frames::GOAWAY)
        .expect("GOAWAY on drain");
    assert_eq!(goaway.error_code(), Some(frames::NO_ERROR));
    assert_eq!(goaway.last_stream(), Some(1));
    // The open stream goes on to its end (window by window), then the server exits.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (got, end) = c.data(1);
        if end || Instant::now() > until || c.closed {
            break;
        }
        c.send(&frames::window_update(1, 1 << 20));
        let _ = c.wait_for(Duration::from_millis(500), |f| f.kind == frames::DATA);
        assert!(got <= bytes.len());
    }
    let (got, end) = c.data(1);
    assert!(
        end && got == bytes.len(),
        "{got} of {} bytes, ended: {end}",
        bytes.len()
    );
    assert!(
        c.wait_closed(Duration::from_secs(10)),
        "closed after the stream"
    );
    let status = s.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(status.success(), "{status:?}");
}

pub fn an_idle_connection_closes(bin: &str) {
    let s = Server::start_in(bin, fixture(), &["--idle-timeout", "2"]);
    let mut c = frames::Conn::open(s.port, &[]);
    let block = frames::get_block(&s.host(), "/digits.txt");
    c.headers(1, &block, frames::END_HEADERS | frames::END_STREAM);
    assert!(c
        .wait_for(Duration::from_secs(10), |f| f.kind == frames::DATA
            && f.flags & frames::END_STREAM != 0)
        .is_some());
    let goaway = c
        .wait_for(Duration::from_secs(10), |f| f.kind == frames::GOAWAY)
        .expect("GOAWAY when idle");
    assert_eq!(goaway.error_code(), Some(frames::NO_ERROR));
    assert!(c.wait_closed(Duration::from_secs(10)), "closed");
}

/// `--max-requests N` holds per HTTP/2 connection: after its Nth stream the server
/// sends GOAWAY naming that stream the last, answers every stream to its end, then
/// closes.
pub fn max_requests_ends_with_goaway(bin: &str) {
    let s = Server::start_in(bin, fixture(), &["--max-requests", "2"]);
    let mut c = frames::Conn::open(s.port, &[]);
    let block = frames::get_block(&s.host(), "/digits.txt");
    for id in [1, 3] {
        c.headers(id, &block, frames::END_HEADERS | frames::END_STREAM);
    }
    let goaway = c
        .wait_for(Duration::from_secs(10), |f| f.kind == frames::GOAWAY)
        .expect("GOAWAY after the second stream");
    assert_eq!(goaway.error_code(), Some(frames::NO_ERROR));
    assert_eq!(goaway.last_stream(), Some(3));
    let until = Instant::now() + Duration::from_secs(10);
    while !(c.data(1).1 && c.data(3).1) && Instant::now() < until && !c.closed {
        let _ = c.wait_for(Duration::from_millis(200), |f| f.kind == frames::DATA);
    }
    assert!(
        c.data(1).1 && c.data(3).1,
        "both streams answered to the end"
    );
    assert!(c.wait_closed(Duration::from_secs(10)), "closed after them");
}
