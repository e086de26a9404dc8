//! SPEC "Security": paths, Host, framing (request smuggling), limits. Each case names
//! the RFC section it follows where there is one.
mod common;
use common::*;
use protocol::Config;

fn status_of(bytes: &[u8]) -> (u16, bool) {
    let d = one(bytes);
    (d.status(), d.closed)
}

// ----- path traversal -----

t!(traversal_is_403_and_opens_nothing {
    for p in [
        "/../etc/passwd",
        "/..",
        "/a/../index.html",
        "/%2e%2e/etc/passwd",
        "/%2E%2E/%2e%2e/x",
        "/.%2e/x",
        "/..%2fetc%2fpasswd",
        "/%2fetc/passwd",
        "/a%2F..%2Fb",
        "/..%5c..%5cwindows",
        "/a\\..\\b",
        "/%00",
        "/index.html%00.png",
        "/uploads/..",
    ] {
        let d = one(&get(p));
        assert_eq!(d.status(), 403, "{p}");
        assert!(!d.out.iter().any(|o| matches!(o, Out::Open(_))), "{p} opened a file");
        assert!(!d.closed, "a 403 path keeps the connection: {p}");
    }
});

t!(decoded_once_only {
    // `%252e%252e` decodes once to the literal segment `%2e%2e`, which is a name, not `..`.
    let d = one(&get("/%252e%252e/x.html"));
    assert_eq!(d.out[0], Out::Open("%2e%2e/x.html".into()));
    assert_eq!(d.status(), 404);
});

t!(dot_segments_and_empty_segments_are_folded {
    let d = one(&get("/./docs//./index.html?x=1#frag"));
    assert_eq!(d.out[0], Out::Open("docs/index.html".into()));
});

t!(hidden_files_are_not_served {
    for p in ["/.git/config", "/uploads/.tmp-x.json", "/.env"] {
        let d = one(&get(p));
        assert_eq!(d.status(), 404, "{p}");
        // Nothing but the root's 404.html (the body of every 404) is opened.
        assert!(!d.out.iter().any(|o| matches!(o, Out::Open(p) if p != "404.html")));
    }
});

t!(bad_percent_encoding_is_400 {
    assert_eq!(one(&get("/a%zz")).status(), 400);
    assert_eq!(one(&get("/a%2")).status(), 400);
    assert_eq!(one(&get("/%ff.html")).status(), 400, "not UTF-8");
});

t!(opened_paths_are_always_relative_and_clean {
    let nasty = ["/", "//", "/a/b/c.html", "/%2e/x.html", "/x/./y.png", "/~user/a.txt"];
    for p in nasty {
        let d = one(&get(p));
        for o in &d.out {
            if let Out::Open(path) = o {
                assert!(!path.starts_with('/') && !path.contains("..") && !path.contains('\\'), "{path}");
                assert!(!path.split('/').any(|s| s.is_empty() || s == "."), "{path}");
            }
        }
    }
});

// ----- Host (RFC 9112 §3.2, RFC 9110 §7.2) -----

t!(host_missing_on_11_is_400 {
    assert_eq!(status_of(b"GET / HTTP/1.1\r\n\r\n"), (400, true));
    // HTTP/1.0 may omit it.
    assert_eq!(one(b"GET / HTTP/1.0\r\n\r\n").status(), 200);
});

t!(host_invalid_is_400 {
    for h in [
        "Host: 127.0.0.1:8080\r\nHost: 127.0.0.1:8080\r\n",
        "Host: user@127.0.0.1:8080\r\n",
        "Host: 127.0.0.1:8080/path\r\n",
        "Host: 127.0.0.1:8080, evil.com\r\n",
        "Host: \r\n",
        "Host: 127.0.0.1:\r\n",
        "Host: 127.0.0.1:99999\r\n",
        "Host: 127.0.0.1:80a\r\n",
        "Host: [::1\r\n",
        "Host: a b\r\n",
    ] {
        let r = format!("GET / HTTP/1.1\r\n{h}\r\n");
        assert_eq!(status_of(r.as_bytes()), (400, true), "{h:?}");
    }
});

t!(host_foreign_is_403 {
    for h in ["example.com", "example.com:8080", "127.0.0.1:8081", "127.0.0.1", "127.0.0.2:8080", "10.0.0.1:8080"] {
        let r = format!("GET / HTTP/1.1\r\nHost: {h}\r\n\r\n");
        assert_eq!(one(r.as_bytes()).status(), 403, "{h}");
    }
});

t!(loopback_names_are_the_same_server {
    for h in ["127.0.0.1:8080", "localhost:8080", "LOCALHOST:8080", "[::1]:8080"] {
        let r = format!("GET / HTTP/1.1\r\nHost: {h}\r\n\r\n");
        assert_eq!(one(r.as_bytes()).status(), 200, "{h}");
    }
});

fn with_bind(host: &str, port: u16, allow: &[&str], header: &str) -> u16 {
    let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
    let mut d = driver_with(Config::new(host, port, &allow));
    d.send(format!("GET / HTTP/1.1\r\nHost: {header}\r\n\r\n").as_bytes());
    d.status()
}

t!(wildcard_bind_accepts_any_name_with_the_port {
    assert_eq!(with_bind("0.0.0.0", 8000, &[], "myhost.lan:8000"), 200);
    assert_eq!(with_bind("0.0.0.0", 8000, &[], "192.168.1.5:8000"), 200);
    assert_eq!(with_bind("0.0.0.0", 8000, &[], "myhost.lan:8001"), 403);
    assert_eq!(with_bind("::", 8000, &[], "[fe80::1]:8000"), 200);
    // --allow-host narrows it.
    assert_eq!(with_bind("0.0.0.0", 8000, &["files.lan"], "files.lan:8000"), 200);
    assert_eq!(with_bind("0.0.0.0", 8000, &["files.lan"], "other.lan:8000"), 403);
});

t!(port_may_be_omitted_for_80 {
    assert_eq!(with_bind("127.0.0.1", 80, &[], "localhost"), 200);
    assert_eq!(with_bind("127.0.0.1", 80, &[], "localhost:80"), 200);
    assert_eq!(with_bind("127.0.0.1", 8080, &[], "localhost"), 403);
});

t!(named_bind_and_allow_host {
    assert_eq!(with_bind("192.0.2.7", 8080, &[], "192.0.2.7:8080"), 200);
    assert_eq!(with_bind("192.0.2.7", 8080, &[], "localhost:8080"), 403);
    assert_eq!(with_bind("192.0.2.7", 8080, &["files.example"], "files.example:8080"), 200);
});

t!(a_unix_socket_listener_accepts_any_valid_host {
    // `--listen unix:PATH`: no host or port of its own to name (SPEC "Operations").
    let any = |header: &str| {
        let mut config = Config::new("127.0.0.1", 8080, &[]);
        config.hosts = protocol::HostPolicy::any();
        let mut d = driver_with(config);
        d.send(format!("GET / HTTP/1.1\r\nHost: {header}\r\n\r\n").as_bytes());
        (d.status(), d.closed)
    };
    for h in ["localhost", "example.com:8081", "[::1]:9", "files.lan", "10.0.0.1:80"] {
        assert_eq!(any(h).0, 200, "{h}");
    }
    // Still a valid `host[:port]`, exactly one.
    for h in ["user@localhost", "a b", "localhost:", "localhost:99999", "x/y"] {
        assert_eq!(any(h), (400, true), "{h}");
    }
});

t!(absolute_form_target_uses_its_authority {
    // RFC 9112 §3.2.2: the authority in the target wins over Host.
    let d = one(b"GET http://127.0.0.1:8080/sample.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
    assert_eq!(d.out[0], Out::Open("sample.txt".into()));
    assert_eq!(d.status(), 200);
    let d = one(b"GET http://evil.example/index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
    assert_eq!(d.status(), 403);
    let d = one(b"GET ftp://127.0.0.1:8080/x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
    assert_eq!(d.status(), 400);
});

// ----- framing and smuggling (RFC 9112 §6) -----

t!(cl_te_is_400_and_closes {
    // CL.TE / TE.CL: RFC 9112 §6.1 — a server MAY reject; SPEC says 400 and close.
    let r = req("POST", "/upload", "Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_eq!(status_of(&r), (400, true));
    let r = req("POST", "/upload", "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n");
    assert_eq!(status_of(&r), (400, true));
});

t!(bad_content_length_is_400 {
    for cl in ["Content-Length: 5\r\nContent-Length: 6\r\n", "Content-Length: 5\r\nContent-Length: 5\r\n",
               "Content-Length: +5\r\n", "Content-Length: -5\r\n", "Content-Length: 5, 5\r\n",
               "Content-Length: 99999999999999999999\r\n", "Content-Length: 18446744073709551616\r\n",
               "Content-Length: 0x10\r\n", "Content-Length: \r\n", "Content-Length: 1 2\r\n"] {
        // RFC 9112 §6.3 (5): an invalid Content-Length is an unrecoverable error.
        let r = req("POST", "/upload", &format!("Content-Type: application/json\r\n{cl}"));
        assert_eq!(status_of(&r), (400, true), "{cl:?}");
    }
});

t!(transfer_encoding_rules {
    let te = |v: &str| req("POST", "/upload", &format!("Content-Type: application/json\r\nTransfer-Encoding: {v}\r\n"));
    // RFC 9112 §6.3 (4): the final coding must be chunked.
    assert_eq!(status_of(&te("gzip")), (400, true));
    assert_eq!(status_of(&te("chunked, gzip")), (400, true));
    // chunked applied twice (RFC 9112 §6.1 MUST NOT).
    assert_eq!(status_of(&te("chunked, chunked")), (400, true));
    // TE.TE obfuscations.
    for v in ["chunked\x0b", "chu nked", "\"chunked\"", "chunked;q=1", ",chunked", "chunked,", "xchunked"] {
        let (s, closed) = status_of(&te(v));
        assert!(s == 400 && closed, "{v:?} gave {s}");
    }
    // A well-formed list ending in chunked with a coding we lack: 501 (RFC 9112 §6.1).
    assert_eq!(status_of(&te("gzip, chunked")), (501, true));
    // Two fields form one list.
    let r = req("POST", "/upload", "Content-Type: application/json\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n");
    assert_eq!(status_of(&r), (501, true));
    // Transfer-Encoding on HTTP/1.0 (RFC 9112 §6.1).
    let r = b"POST /upload HTTP/1.0\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(status_of(r), (400, true));
});

fn chunked(body: &str) -> Vec<u8> {
    req(
        "POST",
        "/upload",
        &format!("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{body}"),
    )
}

t!(correct_chunked_body_is_accepted {
    let d = one(&chunked("2\r\n{\"\r\n5;ext=1;q=\"a b\"\r\nk\":12\r\nA\r\n3456789}  \r\n0\r\nTrailer: x\r\n\r\n"));
    assert_eq!(d.status(), 201);
    assert_eq!(d.world.uploads[0].1, b"{\"k\":123456789}  ");
    let d = one(&chunked("2\r\n{}\r\n0\r\n\r\n"));
    assert_eq!(d.status(), 201);
    // Case of hex digits, and an extension without value.
    let d = one(&chunked("a;x\r\n[1,2,3,45]\r\n0\r\n\r\n"));
    assert_eq!(d.status(), 201);
});

t!(bad_chunks_are_400 {
    for body in [
        "zz\r\n",
        "\r\n",
        "-1\r\n",
        "2\r\n{}XX0\r\n\r\n",
        "2\n{}\r\n0\r\n\r\n",
        "2;=x\r\n{}\r\n0\r\n\r\n",
        "2;a=\"x\r\n",
        "2;a=b c\r\n",
        "2;a\x01\r\n",
        "2 \r\n{}\r\n0\r\n\r\n",
        "0\r\nBad\x00: x\r\n\r\n",
        "0\r\n Folded: x\r\n\r\n",
    ] {
        let (s, closed) = status_of(&chunked(body));
        assert!(s == 400 && closed, "{body:?} gave {s}");
    }
    // Chunk-size overflow (more than 64 bits).
    let (s, closed) = status_of(&chunked("10000000000000000\r\n"));
    assert!(s == 400 && closed);
});

t!(chunked_body_over_max_is_413 {
    let mut c = config();
    c.max_body = 10;
    let mut d = driver_with(c);
    d.send(&chunked("7\r\n[1,2,3]\r\n7\r\n[1,2,3]\r\n0\r\n\r\n"));
    assert_eq!(d.status(), 413);
    assert!(d.closed && d.world.uploads.is_empty());
});

t!(content_length_over_max_is_413_at_once {
    let mut c = config();
    c.max_body = 100;
    let mut d = driver_with(c);
    d.send(&req("POST", "/upload", "Content-Type: application/json\r\nContent-Length: 101\r\n"));
    assert_eq!(d.status(), 413);
    assert!(d.closed);
    let d = one(&req("POST", "/upload", "Content-Type: application/json\r\nContent-Length: 10485761\r\n"));
    assert_eq!(d.status(), 413, "default 10 MiB");
});

t!(bad_header_lines_are_400 {
    for h in [
        "X-A : b\r\n",             // whitespace before colon (RFC 9112 §5.1)
        "X-A\t: b\r\n",
        "X-A: b\r\n folded\r\n",  // obsolete line folding (RFC 9112 §5.2)
        "X-A: b\r\n\tfolded\r\n",
        "X-A: a\x00b\r\n",         // NUL in a value (RFC 9110 §5.5)
        "X-A: a\x7fb\r\n",
        "X-A: a\rb\r\n",           // bare CR (RFC 9112 §2.2)
        "X(A): b\r\n",             // not a token
        ": b\r\n",
        "X-A b\r\n",
    ] {
        let r = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n{h}\r\n");
        assert_eq!(status_of(r.as_bytes()), (400, true), "{h:?}");
    }
});

t!(bare_lf_is_400 {
    // RFC 9112 §2.2 lets a recipient accept a bare LF; we refuse it (smuggling risk).
    assert_eq!(status_of(b"GET / HTTP/1.1\nHost: 127.0.0.1:8080\n\n"), (400, true));
    assert_eq!(status_of(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\n\r\n"), (400, true));
});

t!(leading_empty_line_is_ignored {
    // RFC 9112 §2.2: SHOULD ignore at least one empty line before the request line.
    assert_eq!(one(&[b"\r\n".as_slice(), &get("/")].concat()).status(), 200);
});

t!(control_bytes_in_target_are_400 {
    for t in ["/a\x01b", "/a\x7fb", "/\x00", "/caf\u{e9}"] {
        let r = format!("GET {t} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
        assert_eq!(status_of(r.as_bytes()), (400, true), "{t:?}");
    }
});

t!(limits {
    // Head over 8 KiB → 431.
    let big = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Big: {}\r\n\r\n", "a".repeat(8200));
    assert_eq!(status_of(big.as_bytes()), (431, true));
    // Too long even before the head ends (no need to wait for it).
    let partial = format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(8300));
    assert_eq!(status_of(partial.as_bytes()), (431, true));
    // Request target alone over 8 KiB → 414.
    let long = format!("GET /{} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", "a".repeat(8300));
    assert_eq!(status_of(long.as_bytes()), (414, true));
    // Method token over 32 bytes → 400.
    let m = format!("{} / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", "A".repeat(33));
    assert_eq!(status_of(m.as_bytes()), (400, true));
    let m32 = format!("{} / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", "A".repeat(32));
    assert_eq!(one(m32.as_bytes()).status(), 405);
    // More than 100 header fields → 431.
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let r = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n{many}\r\n");
    assert_eq!(status_of(r.as_bytes()), (431, true));
    let ok: String = (0..99).map(|i| format!("X-{i}: v\r\n")).collect();
    let r = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n{ok}\r\n");
    assert_eq!(one(r.as_bytes()).status(), 200);
});

t!(versions {
    for v in ["HTTP/2.0", "HTTP/1.2", "HTTP/3.0", "HTTP/0.9"] {
        let r = format!("GET / {v}\r\nHost: 127.0.0.1:8080\r\n\r\n");
        assert_eq!(status_of(r.as_bytes()), (505, true), "{v}");
    }
    // The HTTP/2 connection preface on the HTTP/1.1 port.
    assert_eq!(status_of(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), (505, true));
    // HTTP/0.9-style and other malformed request lines → 400.
    for l in ["GET /\r\n\r\n", "GET / FOO/1.1\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 x\r\n\r\n", "/ HTTP/1.1\r\n\r\n"] {
        assert_eq!(status_of(l.as_bytes()), (400, true), "{l:?}");
    }
    // A TLS ClientHello on the plain port.
    assert_eq!(status_of(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"), (400, true));
});

t!(asterisk_only_for_options {
    assert_eq!(one(&req("OPTIONS", "*", "")).status(), 204);
    assert_eq!(one(&req("GET", "*", "")).status(), 400);
});

t!(framing_errors_close_but_routing_errors_do_not {
    let mut d = driver();
    d.send(&[get("/nope.html"), get("/../x"), req("PUT", "/", ""), get("/notes.qqq"), get("/")].concat());
    let s: Vec<u16> = d.responses().iter().map(|r| r.status).collect();
    assert_eq!(s, vec![404, 403, 405, 415, 200]);
    assert!(!d.closed);
    let mut d = driver();
    d.send(&[b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: x\r\n\r\n".to_vec(), get("/")].concat());
    assert_eq!(d.status(), 400);
    assert!(d.closed, "nothing after a framing error is answered");
});

t!(get_with_body_is_read_and_discarded {
    let mut d = driver();
    d.send(&[req("GET", "/", "Content-Length: 5\r\n\r\nhello"), get("/sample.txt")].concat());
    let s: Vec<u16> = d.responses().iter().map(|r| r.status).collect();
    assert_eq!(s, vec![200, 200]);
});

// Issue 12: names Windows would resolve somewhere unexpected are refused when the
// runtime says it serves from Windows; on Unix they are ordinary names.
t!(windows_path_rules_apply_only_when_the_runtime_asks {
    let names = [
        "/CON", "/con.txt", "/NUL.html", "/aux.json", "/COM1.png", "/lpt9.txt", "/docs/PRN",
        "/a:b.txt", "/file.txt::$DATA", "/C:/x.txt", "/trailing.txt.", "/trailing.txt%20",
        "/PROGRA~1/x.html", "/q%3F.txt", "/star%2A.txt", "/pipe%7C.txt", "/lt%3C.txt",
        "/CON%20.txt", "/conin$.txt",
    ];
    let mut windows = config();
    windows.path_rules = protocol::PathRules::Windows;
    for name in names {
        let mut d = driver_with(windows.clone());
        d.send(&get(name));
        assert_eq!(d.status(), 403, "{name} on Windows");
        assert!(!d.out.iter().any(|o| matches!(o, Out::Open(_))), "{name} was opened");
        // On Unix the same names reach the file system (404 here: no such file).
        let mut d = driver();
        d.send(&get(name));
        assert!(d.out.iter().any(|o| matches!(o, Out::Open(_))), "{name} on Unix");
    }
    // Ordinary names stay served with the Windows rules.
    for ok in ["/index.html", "/console.txt", "/nul-ish.txt", "/COM10.txt", "/a~b.txt", "/docs/index.html"] {
        let mut d = driver_with(windows.clone());
        d.send(&get(ok));
        assert!(d.out.iter().any(|o| matches!(o, Out::Open(_))), "{ok} refused");
    }
});
