//! The cases of the shared suite, one function per SPEC row or group of rows. Each takes
//! the path of the runtime binary and starts its own server.

use std::collections::HashSet;
use std::io::Write;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::{
    binary_bytes, contains, have, run_to_exit, Client, Fixture, Response, Server, INDEX_HTML,
    SECRET,
};

/// `GET path HTTP/1.1` with the right Host, keep-alive.
fn get(s: &Server, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", s.host())
}

fn method(s: &Server, m: &str, path: &str) -> String {
    format!("{m} {path} HTTP/1.1\r\nHost: {}\r\n\r\n", s.host())
}

fn post(s: &Server, path: &str, content_type: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        s.host(),
        body.len()
    )
}

fn file(s: &Server, name: &str) -> Vec<u8> {
    std::fs::read(s.fx.root.join(name)).expect("fixture file")
}

#[track_caller]
fn expect_error_page(r: &Response, status: u16) {
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

// ----- Requests -----

pub fn get_root_is_index_html(bin: &str) {
    let s = Server::start(bin, &[]);
    let r = s.get("/");
    r.expect_status(200)
        .expect_header("content-type", "text/html; charset=utf-8");
    assert_eq!(r.body, INDEX_HTML.as_bytes());
    assert!(r.header("content-disposition").is_none(), "inline: {r:?}");
    assert!(r.closes(), "Connection: close was asked: {r:?}");
    let r = s.get("/index.html");
    r.expect_status(200);
    assert_eq!(r.body, INDEX_HTML.as_bytes());
}

pub fn html_and_htm_are_inline_html(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for (path, name) in [
        ("/page.htm", "page.htm"),
        ("/sub/inner.html", "sub/inner.html"),
        ("/PAGE.HTM", ""),
    ] {
        let r = c.request(&get(&s, path));
        if name.is_empty() {
            // File names are case-sensitive: no such file.
            r.expect_status(404);
            continue;
        }
        r.expect_status(200)
            .expect_header("content-type", "text/html; charset=utf-8");
        assert!(r.header("content-disposition").is_none());
        assert_eq!(r.body, file(&s, name));
    }
}

pub fn downloads_are_attachments_byte_identical(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for name in ["sample.txt", "logo.png", "photo.jpg", "photo.jpeg"] {
        let r = c.request(&get(&s, &format!("/{name}")));
        r.expect_status(200)
            .expect_header("content-type", "application/octet-stream")
            .expect_header(
                "content-disposition",
                &format!("attachment; filename=\"{name}\""),
            );
        assert_eq!(r.body, file(&s, name), "{name} differs");
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
    }
}

pub fn json_is_application_json(bin: &str) {
    let s = Server::start(bin, &[]);
    let r = s.get("/data.json");
    r.expect_status(200)
        .expect_header("content-type", "application/json");
    assert_eq!(r.body, file(&s, "data.json"));
    assert!(r.header("content-disposition").is_none());
}

pub fn common_web_types_are_inline_with_their_type(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for (name, ty) in [
        ("style.css", "text/css"),
        ("app.js", "javascript"),
        ("image.svg", "image/svg+xml"),
        ("mod.wasm", "application/wasm"),
        ("favicon.ico", "image/"),
        ("anim.gif", "image/gif"),
        ("pic.webp", "image/webp"),
    ] {
        let r = c.request(&get(&s, &format!("/{name}")));
        r.expect_status(200);
        let got = r.header("content-type").unwrap_or_default();
        assert!(got.contains(ty), "{name}: Content-Type {got:?}, want {ty}");
        assert!(r.header("content-disposition").is_none(), "{name} inline");
        assert_eq!(r.body, file(&s, name));
    }
}

pub fn unknown_extension_is_415(bin: &str) {
    let s = Server::start(bin, &[]);
    let r = s.get("/notes.unknownext");
    expect_error_page(&r, 415);
    assert!(!contains(&r.body, b"what is this"));
}

pub fn missing_file_or_directory_is_404(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for path in [
        "/nope.html",
        "/sub",
        "/sub/",
        "/nope/deeper.txt",
        "/uploads/",
        "/sample.txt/x",
    ] {
        let r = c.request(&get(&s, path));
        expect_error_page(&r, 404);
        assert!(!r.closes(), "a 404 keeps the connection: {path}");
    }
}

pub fn head_has_the_get_headers_and_no_body(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for path in [
        "/",
        "/logo.png",
        "/sample.txt",
        "/nope.html",
        "/notes.unknownext",
    ] {
        let head = c.request(&method(&s, "HEAD", path));
        // If HEAD had sent a body, this GET's response would not parse.
        let full = c.request(&get(&s, path));
        assert_eq!(head.status, full.status, "{path}");
        assert!(head.body.is_empty());
        let names = |r: &Response| -> Vec<String> {
            r.headers
                .iter()
                .map(|(n, _)| n.to_ascii_lowercase())
                .filter(|n| n != "date" && n != "keep-alive")
                .collect()
        };
        assert_eq!(names(&head), names(&full), "{path}: header names");
        for h in [
            "content-length",
            "content-type",
            "content-disposition",
            "etag",
        ] {
            assert_eq!(head.header(h), full.header(h), "{path}: {h}");
        }
    }
}

fn created_location(r: &Response) -> String {
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

pub fn upload_is_created_atomically_and_readable_back(bin: &str) {
    let s = Server::start(bin, &[]);
    let body = "{\"key\": \"value\", \"list\": [1, 2.5, null], \"nested\": {\"é\": true}}";
    let mut c = s.connect();
    let r = c.request(&post(&s, "/upload", "application/json", body));
    let location = created_location(&r);
    let name = location.trim_start_matches("/uploads/");
    assert_eq!(name.len(), 36 + 5, "a UUID name: {name}");
    // On disk: exactly this file, whole, and no temporary left.
    assert_eq!(s.fx.uploads(), [name.to_string()]);
    assert_eq!(
        std::fs::read(s.fx.root.join("uploads").join(name)).expect("upload"),
        body.as_bytes()
    );
    // Readable back on the same connection.
    let back = c.request(&get(&s, &location));
    back.expect_status(200)
        .expect_header("content-type", "application/json");
    assert_eq!(back.body, body.as_bytes());
    // A second upload gets another name.
    let other = created_location(&c.request(&post(&s, "/upload", "application/json", "[]")));
    assert_ne!(other, location);
    assert_eq!(s.fx.uploads().len(), 2);
}

pub fn upload_content_type_parameters_are_allowed(bin: &str) {
    let s = Server::start(bin, &[]);
    for ct in [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "Application/JSON",
    ] {
        let r = s.upload(ct, "{\"a\":1}");
        assert_eq!(r.status, 201, "{ct}: {r:?}");
    }
    assert_eq!(s.fx.uploads().len(), 3);
}

pub fn upload_other_content_type_is_415(bin: &str) {
    let s = Server::start(bin, &[]);
    for ct in [
        "text/plain",
        "application/jsonx",
        "application/x-www-form-urlencoded",
    ] {
        expect_error_page(&s.upload(ct, "{\"a\":1}"), 415);
    }
    let r = s.raw(&format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        s.host()
    ));
    expect_error_page(&r, 415);
    assert!(s.fx.uploads().is_empty(), "{:?}", s.fx.uploads());
}

pub fn upload_invalid_json_is_400(bin: &str) {
    let s = Server::start(bin, &[]);
    for body in [
        "{\"a\":",
        "not json",
        "",
        "{} trailing",
        "{'a': 1}",
        "\u{1}",
    ] {
        let r = s.upload("application/json", body);
        assert_eq!(r.status, 400, "{body:?}: {r:?}");
    }
    assert!(s.fx.uploads().is_empty(), "{:?}", s.fx.uploads());
}

pub fn post_elsewhere_is_404_and_writes_nothing(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for path in [
        "/index.html",
        "/uploads/x.json",
        "/upload/extra",
        "/uploads",
        "/",
    ] {
        let r = c.request(&post(&s, path, "application/json", "{\"a\":1}"));
        expect_error_page(&r, 404);
    }
    assert!(s.fx.uploads().is_empty(), "{:?}", s.fx.uploads());
    assert!(!s.fx.root.join("uploads/x.json").exists());
}

pub fn options_is_204_with_allow(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for target in ["*", "/index.html", "/upload", "/nope"] {
        let r = c.request(&method(&s, "OPTIONS", target));
        r.expect_status(204)
            .expect_header("allow", "GET, HEAD, POST, OPTIONS");
        assert!(r.body.is_empty());
    }
}

pub fn other_methods_are_405_with_allow(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for m in ["PUT", "DELETE", "PATCH", "TRACE", "FOO"] {
        let r = c.request(&method(&s, m, "/index.html"));
        expect_error_page(&r, 405);
        r.expect_header("allow", "GET, HEAD, POST, OPTIONS");
    }
    let r = c.request(&format!(
        "CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n\r\n",
        s.host()
    ));
    r.expect_status(405);
    // A PUT with a body writes nothing, and the connection goes on.
    let r = c.request(&format!(
        "PUT /uploads/p.json HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}",
        s.host()
    ));
    r.expect_status(405);
    assert!(s.fx.uploads().is_empty());
    c.request(&get(&s, "/")).expect_status(200);
}

// ----- Connections -----

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

pub fn slow_drip_head_gets_408_while_others_are_served(bin: &str) {
    let s = Server::start(bin, &["--head-timeout", "1", "--threads", "4"]);
    let mut drip = s.connect();
    // A writing end for the other thread (over TLS, each byte goes in its own record).
    let mut writer = drip.writer();
    let head = format!("GET / HTTP/1.1\r\nHost: {}\r\nX-Slow: ", s.host());
    let start = Instant::now();
    let dripper = thread::spawn(move || {
        for b in head.bytes().chain(std::iter::repeat(b'a')).take(200) {
            if writer.write_all(&[b]).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(30));
        }
    });
    // Meanwhile other clients are served promptly.
    for _ in 0..5 {
        let t = Instant::now();
        s.get("/sample.txt").expect_status(200);
        assert!(
            t.elapsed() < Duration::from_millis(900),
            "slow: {:?}",
            t.elapsed()
        );
        thread::sleep(Duration::from_millis(100));
    }
    let r = drip.read_response();
    let took = start.elapsed();
    expect_error_page(&r, 408);
    assert!(r.closes());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "408 after {took:?}"
    );
    assert!(drip.closed_within(Duration::from_secs(3)));
    let _ = dripper.join();
}

// ----- Security -----

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
    assert!(r.closes());
    assert_eq!(s.fx.uploads().len(), 1);
}

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
        assert!(r.closes());
        assert!(c.closed_within(Duration::from_secs(3)));
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
    assert!(r.closes());
    assert!(c.closed_within(Duration::from_secs(3)));
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

// ----- Logs -----

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

// ----- Capacity -----

pub fn concurrent_uploads_lose_and_duplicate_nothing(bin: &str) {
    const N: usize = 200;
    let s = Server::start(bin, &["--threads", "8", "--queue", "256"]);
    let port = s.port;
    let host = s.host();
    let locations: Vec<(usize, String)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let host = host.clone();
                scope.spawn(move || {
                    let body = format!("{{\"n\": {i}, \"pad\": \"{}\"}}", "x".repeat(i * 7));
                    let mut c = Client::connect(port);
                    let r = c.request(&format!(
                        "POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    ));
                    assert_eq!(r.status, 201, "upload {i}: {r:?}");
                    (i, r.header("location").expect("Location").to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("uploader"))
            .collect()
    });
    let unique: HashSet<&str> = locations.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(unique.len(), N, "duplicated locations");
    let on_disk = s.fx.uploads();
    assert_eq!(on_disk.len(), N, "files on disk: {}", on_disk.len());
    for (i, location) in &locations {
        let name = location.trim_start_matches("/uploads/");
        assert!(on_disk.iter().any(|n| n == name), "{name} missing");
        let text = std::fs::read_to_string(s.fx.root.join("uploads").join(name)).expect("read");
        let want = format!("{{\"n\": {i}, \"pad\": \"{}\"}}", "x".repeat(i * 7));
        assert_eq!(text, want, "upload {i} content");
    }
}

pub fn busy_workers_and_full_queue_give_503(bin: &str) {
    // runtime-std: one worker, one queue slot; runtime-smol: two connections at most.
    let s = Server::start(
        bin,
        &["--threads", "1", "--queue", "1", "--max-connections", "2"],
    );
    // `a` holds the worker without a request yet (a keep-alive connection between
    // requests is parked and frees it: see hostile::idle_keep_alive_clients_do_not_hold_the_workers).
    let mut a = s.connect();
    thread::sleep(Duration::from_millis(100));
    let mut b = s.connect();
    thread::sleep(Duration::from_millis(300));
    let mut c = s.connect();
    let t = Instant::now();
    let r = c.read_response();
    r.expect_status(503);
    assert!(r.header("retry-after").is_some(), "{r:?}");
    assert!(r.closes());
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(c.closed_within(Duration::from_secs(3)));
    assert!(
        s.wait_log(&["WARN", "503"], Duration::from_secs(3))
            .is_some(),
        "503 not logged:\n{}",
        s.logs()
    );
    // Once the first client is served and leaves, the waiting one is served.
    a.send(get(&s, "/").as_bytes());
    a.read_response().expect_status(200);
    drop(a);
    let r = b.request(&get(&s, "/sample.txt"));
    r.expect_status(200);
    // And the server takes new connections again.
    drop(b);
    thread::sleep(Duration::from_millis(200));
    s.get("/").expect_status(200);
}

pub fn unwritable_uploads_give_500_and_serving_goes_on(bin: &str) {
    let fx = Fixture::new();
    std::fs::remove_dir(fx.root.join("uploads")).expect("rmdir");
    // A file where the directory should be: no user, not even root, can write below it.
    std::fs::write(fx.root.join("uploads"), "not a directory").expect("write");
    let s = Server::start_in(bin, fx, &[]);
    let mut c = s.connect();
    let r = c.request(&post(&s, "/upload", "application/json", "{\"a\":1}"));
    expect_error_page(&r, 500);
    c.request(&get(&s, "/sample.txt")).expect_status(200);
    s.get("/").expect_status(200);
    assert!(
        s.wait_log(&["ERROR"], Duration::from_secs(3)).is_some(),
        "a 500 is logged at error:\n{}",
        s.logs()
    );
    assert_eq!(
        std::fs::read_to_string(s.fx.root.join("uploads")).expect("read"),
        "not a directory"
    );
}

pub fn large_file_download_is_byte_identical(bin: &str) {
    let fx = Fixture::new();
    let big = binary_bytes(10 << 20);
    std::fs::write(fx.root.join("big.bin"), &big).expect("big");
    let s = Server::start_in(bin, fx, &[]);
    let mut c = s.connect();
    let r = c.request(&get(&s, "/big.bin"));
    r.expect_status(200);
    assert!(r.body == big, "10 MiB body differs");
    let r = c.request(&method(&s, "HEAD", "/big.bin"));
    r.expect_header("content-length", &(10u64 << 20).to_string());
    // A range in the middle of a large file.
    let r = c.request(&format!(
        "GET /big.bin HTTP/1.1\r\nHost: {}\r\nRange: bytes=1000000-2999999\r\n\r\n",
        s.host()
    ));
    r.expect_status(206);
    assert!(r.body == big[1_000_000..3_000_000]);
    // Two at once.
    thread::scope(|scope| {
        let hs: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| s.get("/big.bin").body == big))
            .collect();
        for h in hs {
            assert!(h.join().expect("downloader"));
        }
    });
}

pub fn ranges_and_conditional_requests(bin: &str) {
    let s = Server::start(bin, &[]);
    let logo = file(&s, "logo.png");
    let mut c = s.connect();
    let ranged = |c: &mut Client, range: &str| {
        c.request(&format!(
            "GET /logo.png HTTP/1.1\r\nHost: {}\r\nRange: {range}\r\n\r\n",
            s.host()
        ))
    };
    let r = ranged(&mut c, "bytes=0-99");
    r.expect_status(206)
        .expect_header("content-range", "bytes 0-99/7028");
    assert_eq!(r.body, &logo[..100]);
    let r = ranged(&mut c, "bytes=7000-");
    r.expect_status(206);
    assert_eq!(r.body, &logo[7000..]);
    ranged(&mut c, "bytes=9000-9100").expect_status(416);
    let full = c.request(&get(&s, "/logo.png"));
    let etag = full.header("etag").expect("ETag").to_string();
    let modified = full
        .header("last-modified")
        .expect("Last-Modified")
        .to_string();
    let r = c.request(&format!(
        "GET /logo.png HTTP/1.1\r\nHost: {}\r\nIf-None-Match: {etag}\r\n\r\n",
        s.host()
    ));
    r.expect_status(304);
    assert!(r.body.is_empty());
    let r = c.request(&format!(
        "GET /logo.png HTTP/1.1\r\nHost: {}\r\nIf-Modified-Since: {modified}\r\n\r\n",
        s.host()
    ));
    r.expect_status(304);
    c.request(&get(&s, "/sample.txt")).expect_status(200);
}

pub fn precompressed_sibling_is_served(bin: &str) {
    let fx = Fixture::new();
    std::fs::write(fx.root.join("style.css.gz"), b"\x1f\x8bGZIPPED-CSS").expect("gz");
    let s = Server::start_in(bin, fx, &[]);
    let mut c = s.connect();
    let r = c.request(&format!(
        "GET /style.css HTTP/1.1\r\nHost: {}\r\nAccept-Encoding: gzip, deflate\r\n\r\n",
        s.host()
    ));
    r.expect_status(200)
        .expect_header("content-encoding", "gzip");
    assert!(r
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/css")));
    assert_eq!(r.body, b"\x1f\x8bGZIPPED-CSS");
    assert!(r
        .header("vary")
        .is_some_and(|v| v.contains("Accept-Encoding")));
    let r = c.request(&get(&s, "/style.css"));
    assert!(r.header("content-encoding").is_none());
    assert_eq!(r.body, file(&s, "style.css"));
}

/// The seed README's curl examples, with the real curl.
pub fn curl_examples_of_the_seed(bin: &str) {
    if !have("curl") {
        eprintln!("curl is not installed: the curl examples are skipped");
        return;
    }
    let s = Server::start(bin, &[]);
    // Over TLS: `https://` URLs (s.url), and curl trusts the test CA (s.curl_args).
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(s.curl_args())
            .args(args)
            .output()
            .expect("run curl");
        assert!(out.status.success(), "curl {args:?}: {out:?}");
        out
    };
    let out = curl(&["-v", &s.url("/")]);
    assert_eq!(out.stdout, INDEX_HTML.as_bytes());
    assert!(String::from_utf8_lossy(&out.stderr).contains("< HTTP/1.1 200"));

    let dest = s.fx.base.path().join("downloaded_logo.png");
    curl(&["-v", &s.url("/logo.png"), "-o", &dest.to_string_lossy()]);
    assert_eq!(
        std::fs::read(&dest).expect("downloaded"),
        file(&s, "logo.png")
    );

    let out = curl(&[
        "-X",
        "POST",
        &s.url("/upload"),
        "-H",
        "Content-Type: application/json",
        "-d",
        "{\"key\": \"value\"}",
        "-w",
        "\n%{http_code}",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.ends_with("\n201"), "{text}");
    assert!(text.contains("\"status\":\"created\""), "{text}");
    let names = s.fx.uploads();
    assert_eq!(names.len(), 1);
    assert_eq!(
        std::fs::read_to_string(s.fx.root.join("uploads").join(&names[0])).expect("upload"),
        "{\"key\": \"value\"}"
    );

    let code = |args: &[&str]| -> String {
        let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&curl(&all).stdout).into_owned()
    };
    // curl itself squashes `/../`; with --path-as-is the server sees it and refuses.
    assert_eq!(code(&["--path-as-is", &s.url("/../server.py")]), "403");
    assert_ne!(code(&[&s.url("/../server.py")]), "200");
    assert_eq!(code(&["-H", "Host: example.com", &s.url("/")]), "403");
    assert_eq!(code(&["--http1.0", &s.url("/sample.txt")]), "200");
}

pub fn sigterm_drains_in_flight_and_exits_0(bin: &str) {
    let fx = Fixture::new();
    let big = binary_bytes(24 << 20);
    std::fs::write(fx.root.join("big.bin"), &big).expect("big");
    let mut s = Server::start_in(bin, fx, &["--threads", "4"]);
    // An idle keep-alive connection, and a download in flight that reads slowly.
    let mut idle = s.connect();
    idle.request(&get(&s, "/")).expect_status(200);
    let mut busy = s.connect();
    busy.send(get(&s, "/big.bin"));
    thread::sleep(Duration::from_millis(200));
    let sent = Instant::now();
    s.signal("TERM");
    thread::sleep(Duration::from_millis(300));
    // The download still completes.
    let r = busy.read_response();
    r.expect_status(200);
    assert!(r.body == big, "the in-flight download was cut");
    // The idle connection is closed, and new connections are not served.
    assert!(idle.closed_within(Duration::from_secs(4)));
    // (Through the harness's client, so that over TLS the request is one it would
    // serve, not plain HTTP the TLS port refuses anyway.)
    if let Ok(mut late) = Client::try_connect(s.port) {
        let _ = late.stream.set_read_timeout(Some(Duration::from_secs(2)));
        if late.try_send(get(&s, "/")).is_ok() {
            if let Ok(r) = late.read_unchecked(false) {
                assert_ne!(r.status, 200, "served after SIGTERM");
            }
        }
    }
    let status = s
        .wait_exit(Duration::from_secs(7))
        .expect("exited after SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    assert!(sent.elapsed() < Duration::from_secs(7));

    // Ctrl-C (SIGINT) with nothing in flight exits 0 at once.
    let mut s = Server::start(bin, &[]);
    s.get("/").expect_status(200);
    s.signal("INT");
    let status = s
        .wait_exit(Duration::from_secs(6))
        .expect("exited after SIGINT");
    assert_eq!(status.code(), Some(0));
}

pub fn command_line_errors_and_positionals(bin: &str) {
    let fx = Fixture::new();
    let cwd = fx.base.path();
    for bad in [
        &["--port", "notaport"][..],
        &["--bogus"],
        &["--threads", "0"],
        &["1", "h", "2", "x"],
    ] {
        let (status, _, err) = run_to_exit(bin, bad, cwd);
        assert_eq!(status.code(), Some(2), "{bad:?}: {err}");
        let err = err.to_lowercase();
        assert!(
            err.contains("error") && (err.contains("usage") || err.contains("--help")),
            "a usage error: {bad:?}: {err}"
        );
    }
    let (status, out, _) = run_to_exit(bin, &["--help"], cwd);
    assert_eq!(status.code(), Some(0));
    for word in [
        "PORT",
        "HOST",
        "MAX_THREADS",
        "--root",
        "--idle-timeout",
        "--max-requests",
        "--queue",
        "--max-connections",
        "--max-body",
        "--allow-host",
    ] {
        assert!(out.contains(word), "--help lacks {word}:\n{out}");
    }
    let (status, out, _) = run_to_exit(bin, &["--version"], cwd);
    assert_eq!(status.code(), Some(0));
    assert!(!out.trim().is_empty());

    let missing = cwd.join("no-such-root");
    let (status, _, err) = run_to_exit(
        bin,
        &["--port", "0", "--root", &missing.to_string_lossy()],
        cwd,
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("no-such-root"), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let root = fx.root.to_string_lossy().into_owned();
    let (status, _, err) = run_to_exit(bin, &["--port", &port, "--root", &root], cwd);
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("in use"), "{err}");
    drop(taken);

    // The seed's positional form, and the default root `resources` in the working dir.
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(work.path().join("resources")).expect("mkdir");
    std::fs::write(
        work.path().join("resources/index.html"),
        "<p>default root</p>",
    )
    .expect("write");
    let s = Server::builder(bin)
        .fixture(fx)
        .without_port_and_root()
        .args(&["0", "127.0.0.1", "2"])
        .current_dir(work.path())
        .inherit_rust_log()
        .start();
    let r = s.get("/");
    r.expect_status(200);
    assert_eq!(r.body, b"<p>default root</p>");
}
