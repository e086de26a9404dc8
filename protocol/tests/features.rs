//! Beyond the seed: validators and 304 (RFC 9110 §13), byte ranges (§14), precompressed
//! variants. HEAD always gets exactly the GET's headers.
mod common;
use common::*;

fn tag() -> String {
    one(&get("/sample.txt"))
        .only()
        .header("ETag")
        .expect("ETag")
        .to_string()
}

t!(file_responses_carry_validators {
    let d = one(&get("/sample.txt"));
    let r = d.only();
    assert!(r.header("ETag").is_some_and(|t| t.starts_with('"') && t.ends_with('"')));
    assert_eq!(r.header("Last-Modified"), Some("Tue, 14 Nov 2023 22:13:20 GMT"));
    assert_eq!(r.header("Cache-Control"), Some("no-cache"));
    assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
});

t!(etag_changes_with_size_or_mtime {
    let mut d = driver();
    d.send(&get("/sample.txt"));
    d.world.files.insert("sample.txt".into(), Ok(protocol::FileMeta { len: 219, mtime_secs: MTIME, mtime_nanos: 0, is_dir: false }));
    d.send(&get("/sample.txt"));
    d.world.files.insert("sample.txt".into(), Ok(protocol::FileMeta { len: 219, mtime_secs: MTIME, mtime_nanos: 1, is_dir: false }));
    d.send(&get("/sample.txt"));
    d.send(&get("/sample.txt"));
    d.world.files.insert("sample.txt".into(), Ok(protocol::FileMeta { len: 220, mtime_secs: MTIME, mtime_nanos: 1, is_dir: false }));
    d.send(&get("/sample.txt"));
    let tags: Vec<&str> = d.responses().iter().map(|r| r.header("ETag").unwrap_or("")).collect();
    // The connection keeps the last tag: the same version gets the same tag, a new one a new tag.
    assert!(tags[0] != tags[1] && tags[1] != tags[2], "{tags:?}");
    assert_eq!(tags[2], tags[3]);
    assert!(tags[3] != tags[4] && tags[4] != tags[0], "{tags:?}");
});

t!(if_none_match_gives_304 {
    let t = tag();
    for v in [t.clone(), format!("W/{t}"), format!("\"x\", {t}"), "*".to_string()] {
        let d = one(&req("GET", "/sample.txt", &format!("If-None-Match: {v}\r\n")));
        let r = d.only();
        assert_eq!(r.status, 304, "{v}");
        assert!(r.body.is_empty() && !r.has("Content-Length"));
        assert_eq!(r.header("ETag"), Some(t.as_str()));
        assert!(!d.out.iter().any(|o| matches!(o, Out::SendFile { .. })));
    }
    let d = one(&req("GET", "/sample.txt", "If-None-Match: \"other\"\r\n"));
    assert_eq!(d.status(), 200);
});

t!(if_modified_since {
    let lm = "Tue, 14 Nov 2023 22:13:20 GMT";
    assert_eq!(one(&req("GET", "/sample.txt", &format!("If-Modified-Since: {lm}\r\n"))).status(), 304);
    assert_eq!(one(&req("GET", "/sample.txt", "If-Modified-Since: Wed, 15 Nov 2023 00:00:00 GMT\r\n")).status(), 304);
    assert_eq!(one(&req("GET", "/sample.txt", "If-Modified-Since: Mon, 13 Nov 2023 00:00:00 GMT\r\n")).status(), 200);
    // An invalid date is ignored.
    assert_eq!(one(&req("GET", "/sample.txt", "If-Modified-Since: yesterday\r\n")).status(), 200);
    // RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since.
    let d = one(&req("GET", "/sample.txt", &format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {lm}\r\n")));
    assert_eq!(d.status(), 200);
});

fn range(spec: &str) -> Driver {
    one(&req("GET", "/sample.txt", &format!("Range: {spec}\r\n")))
}

t!(single_ranges_give_206 {
    for (spec, start, len) in [("bytes=0-9", 0, 10), ("bytes=200-", 200, 18), ("bytes=-18", 200, 18), ("bytes=210-500", 210, 8), ("bytes=-1000", 0, 218), ("BYTES = 5-5", 5, 1)] {
        let d = range(spec);
        let r = d.only();
        assert_eq!(r.status, 206, "{spec}");
        let cr = format!("bytes {}-{}/218", start, start + len - 1);
        assert_eq!(r.header("Content-Range"), Some(cr.as_str()), "{spec}");
        assert_eq!(r.header("Content-Length"), Some(len.to_string().as_str()));
        assert_eq!(d.out.last(), Some(&Out::SendFile { offset: start, len }), "{spec}");
    }
});

t!(unsatisfiable_range_is_416 {
    for spec in ["bytes=218-", "bytes=500-600", "bytes=-0"] {
        let r = range(spec);
        assert_eq!(r.status(), 416, "{spec}");
        assert_eq!(r.only().header("Content-Range"), Some("bytes */218"));
    }
});

t!(ignored_ranges_give_200 {
    // Malformed, another unit, or several ranges: the whole file (documented choice).
    for spec in ["bytes=5-2", "bytes=a-b", "items=0-1", "bytes=0-1,5-6", "bytes=", "bytes=--1"] {
        let d = range(spec);
        assert_eq!(d.status(), 200, "{spec}");
        assert_eq!(d.out.last(), Some(&Out::SendFile { offset: 0, len: 218 }));
    }
});

t!(if_range {
    let t = tag();
    let lm = "Tue, 14 Nov 2023 22:13:20 GMT";
    let r = |cond: &str| one(&req("GET", "/sample.txt", &format!("Range: bytes=0-9\r\nIf-Range: {cond}\r\n"))).status();
    assert_eq!(r(&t), 206);
    assert_eq!(r(lm), 206);
    assert_eq!(r("\"stale\""), 200);
    assert_eq!(r(&format!("W/{t}")), 200, "weak tags never match If-Range");
    assert_eq!(r("Mon, 13 Nov 2023 00:00:00 GMT"), 200);
});

t!(precompressed_variants {
    // The file itself must exist; then br is preferred, then gzip, then the file.
    let d = one(&req("GET", "/app.js", "Accept-Encoding: gzip, deflate, br\r\n"));
    assert_eq!(d.out[..2], [Out::Open("app.js".into()), Out::Open("app.js.br".into())]);
    let r = d.only();
    assert_eq!(r.header("Content-Encoding"), Some("br"));
    assert_eq!(r.header("Content-Type"), Some("text/javascript; charset=utf-8"));
    assert_eq!(r.header("Vary"), Some("Accept-Encoding"));
    assert_eq!(r.header("Content-Length"), Some("20"));
    let d = one(&req("GET", "/app.js", "Accept-Encoding: gzip\r\n"));
    assert_eq!(d.only().header("Content-Encoding"), Some("gzip"));
    assert_eq!(d.only().header("Content-Length"), Some("30"));
    // br refused with q=0; only .gz exists for style.css.
    let d = one(&req("GET", "/style.css", "Accept-Encoding: br;q=0, gzip;q=0.5\r\n"));
    assert_eq!(d.out[..2], [Out::Open("style.css".into()), Out::Open("style.css.gz".into())]);
    assert_eq!(d.only().header("Content-Encoding"), Some("gzip"));
    let d = one(&req("GET", "/style.css", "Accept-Encoding: br\r\n"));
    assert_eq!(
        d.out[..3],
        [
            Out::Open("style.css".into()),
            Out::Open("style.css.br".into()),
            Out::Open("style.css".into())
        ]
    );
    assert_eq!(d.only().header("Content-Encoding"), None);
    assert_eq!(d.only().header("Vary"), Some("Accept-Encoding"));
    // A sibling is only served beside an existing file.
    let d = one(&req("GET", "/only.js", "Accept-Encoding: br, gzip\r\n"));
    assert_eq!(d.out[0], Out::Open("only.js".into()));
    assert_eq!(d.status(), 404);
    // A sibling that is a directory or refused falls back to the file itself.
    let mut d = driver();
    d.world.files.insert("app.js.br".into(), Ok(protocol::FileMeta { is_dir: true, ..Default::default() }));
    d.world.files.insert("app.js.gz".into(), Err(protocol::FileError::Forbidden));
    d.send(&req("GET", "/app.js", "Accept-Encoding: br, gzip\r\n"));
    assert_eq!(d.only().header("Content-Encoding"), None);
    assert_eq!(d.only().header("Content-Length"), Some("50"));
    // No Accept-Encoding: identity, no extra open.
    let d = one(&get("/app.js"));
    assert_eq!(d.out[0], Out::Open("app.js".into()));
    // Not for binary types.
    let d = one(&req("GET", "/logo.png", "Accept-Encoding: br, gzip\r\n"));
    assert_eq!(d.out[0], Out::Open("logo.png".into()));
    assert_eq!(d.only().header("Vary"), None);
    // A Range request gets the identity file.
    let d = one(&req("GET", "/app.js", "Accept-Encoding: br\r\nRange: bytes=0-1\r\n"));
    assert_eq!(d.out[0], Out::Open("app.js".into()));
    assert_eq!(d.status(), 206);
});

t!(head_matches_get_for_features {
    let t = tag();
    for extra in [
        format!("If-None-Match: {t}\r\n"),
        "Range: bytes=0-9\r\n".to_string(),
        "Range: bytes=999-\r\n".to_string(),
        "Accept-Encoding: br\r\n".to_string(),
    ] {
        for p in ["/sample.txt", "/app.js"] {
            let g = one(&req("GET", p, &extra));
            let h = one(&req("HEAD", p, &extra));
            assert_eq!(g.only().status, h.only().status, "{p} {extra}");
            assert_eq!(g.only().headers, h.only().headers, "{p} {extra}");
            assert!(!h.out.iter().any(|o| matches!(o, Out::SendFile { .. })));
        }
    }
});

t!(cache_control_is_configurable {
    let mut c = config();
    c.cache_control = "public, max-age=60".into();
    let mut d = driver_with(c);
    d.send(&get("/"));
    assert_eq!(d.only().header("Cache-Control"), Some("public, max-age=60"));
    let mut c = config();
    c.cache_control = String::new();
    let mut d = driver_with(c);
    d.send(&get("/"));
    assert_eq!(d.only().header("Cache-Control"), None);
});

t!(empty_file_has_no_sendfile {
    let d = one(&get("/empty.html"));
    assert_eq!(d.only().header("Content-Length"), Some("0"));
    assert!(!d.out.iter().any(|o| matches!(o, Out::SendFile { .. })));
});
