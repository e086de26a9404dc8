//! Issue 11: the RFC 9110/9112 corners a careful client found, each a table test that
//! failed before the fix, and the answers that depend on time moving during a request
//! (the driver moves its clock while a file opens, an upload is written and an answer
//! is written out, and checks every `Date` against it).
mod common;
use common::*;
use protocol::{Config, FileMeta, Input};

const HOST: &str = "Host: 127.0.0.1:8080\r\n";

// ----- time on every input -----

t!(date_is_the_time_the_answer_was_made {
    // The upload takes 1.5 s to write: the 201's Date is after it (the driver checks
    // every Date against its clock), a second later than the request arrived.
    let mut d = driver();
    d.advance_ms(900);
    d.send(&upload("{}"));
    assert_eq!(d.status(), 201);
    assert_eq!(d.now.unix_secs, T0 + 2);
});

t!(a_download_longer_than_the_idle_timeout_keeps_its_connection {
    let mut d = driver();
    d.write_ms = 45_000; // a slow client reads the answer for 45 s
    d.send(&get("/big.html"));
    assert!(!d.closed);
    // The idle timeout runs from the end of the write.
    d.write_ms = 40;
    d.advance_ms(29_000).fire_timeout();
    assert!(!d.closed);
    d.send(&get("/"));
    assert_eq!(d.responses().len(), 2);
});

t!(a_pipelined_request_is_answered_after_a_long_write {
    let mut d = driver();
    d.write_ms = 40_000;
    // The second request's head arrives with the first, in part.
    d.send(&[get("/big.html"), b"GET /sample.txt HTTP/1.1\r\n".to_vec()].concat());
    assert_eq!(d.responses().len(), 1);
    // Its head deadline starts when the first answer is written, not when it arrived.
    let deadline = d.deadline().expect("a head deadline");
    assert_eq!(deadline, d.now.mono_ms + 10_000);
    d.write_ms = 40;
    d.advance_ms(5_000).send(HOST.as_bytes()).send(b"\r\n");
    let s: Vec<u16> = d.responses().iter().map(|r| r.status).collect();
    assert_eq!(s, [200, 200]);
});

t!(a_failed_write_closes {
    let mut d = driver();
    d.hold_writes = true;
    d.send(&get("/"));
    d.input(Input::WriteFailed);
    assert!(d.closed);
});

t!(one_answer_in_flight {
    let mut d = driver();
    d.hold_writes = true;
    d.send(&[get("/"), get("/sample.txt")].concat());
    assert_eq!(d.responses().len(), 1, "the second waits for Written");
    d.written();
    assert_eq!(d.responses().len(), 2);
});

// ----- the cases of issue 11 -----

t!(c01_query_with_scheme_is_origin_form {
    let d = one(&get("/index.html?next=http://x/"));
    assert_eq!(d.status(), 200);
});

t!(c02_expect_100_from_http10_is_ignored {
    let mut d = driver();
    d.send(b"POST /upload HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    assert!(!d.out.contains(&Out::Continue), "{:?}", d.out);
    d.send(b"{}");
    assert_eq!(d.status(), 201);
    assert!(!d.out.contains(&Out::Continue));
});

t!(c03_expect_100_with_a_body_on_get_head_options_is_answered {
    for m in ["GET", "HEAD", "OPTIONS"] {
        let mut d = driver();
        d.send(&req(m, "/", "Content-Length: 3\r\nExpect: 100-continue\r\n"));
        assert_eq!(d.out.first(), Some(&Out::Continue), "{m}: {:?}", d.out);
        d.send(b"abc");
        let want = if m == "OPTIONS" { 204 } else { 200 };
        assert_eq!(d.status(), want, "{m}");
    }
});

t!(c04_last_modified_is_never_later_than_date {
    let mut d = driver();
    let future = T0 + 86_400;
    d.world.files.insert("future.html".into(), Ok(FileMeta { len: 3, mtime_secs: future, mtime_nanos: 0, is_dir: false }));
    d.send(&get("/future.html"));
    let r = d.only().clone();
    assert_eq!(r.header("Last-Modified"), r.header("Date"));
    // The same clamped value answers If-Modified-Since: not modified since "now".
    let lm = r.header("Last-Modified").unwrap_or_default().to_string();
    d.send(&req("GET", "/future.html", &format!("If-Modified-Since: {lm}\r\n")));
    assert_eq!(d.responses()[1].status, 304);
    // And a date If-Range cannot match a Last-Modified that is not strong (== Date).
    d.send(&req("GET", "/future.html", &format!("Range: bytes=0-0\r\nIf-Range: {lm}\r\n")));
    assert_eq!(d.responses()[2].status, 200);
});

t!(c05_a_stray_crlf_after_a_body_is_idle_time {
    let mut d = driver();
    let mut r = upload("{}");
    r.extend_from_slice(b"\r\n");
    d.send(&r);
    assert_eq!(d.status(), 201);
    // No head deadline: only the idle timeout, from the end of the write.
    assert_eq!(d.deadline(), Some(d.now.mono_ms + 30_000));
    d.advance_ms(10_000).fire_timeout();
    assert!(!d.closed);
    assert_eq!(d.responses().len(), 1, "no unsolicited 408");
    d.advance_ms(20_000).fire_timeout();
    assert!(d.closed);
    assert_eq!(d.responses().len(), 1);
});

t!(c06_conditional_fields_on_several_lines_are_combined {
    let mut d = driver();
    d.send(&get("/sample.txt"));
    let etag = d.only().header("ETag").unwrap_or_default().to_string();
    d.send(&req("GET", "/sample.txt", &format!("If-None-Match: \"a\"\r\nIf-None-Match: {etag}\r\n")));
    assert_eq!(d.responses()[1].status, 304);
    d.send(&req("GET", "/sample.txt", &format!("If-None-Match: {etag}\r\nIf-None-Match: \"a\"\r\n")));
    assert_eq!(d.responses()[2].status, 304);
    // If-Match likewise: one line of two that matches is a match.
    d.send(&req("GET", "/sample.txt", &format!("If-Match: \"a\"\r\nIf-Match: {etag}\r\n")));
    assert_eq!(d.responses()[3].status, 200);
});

t!(c07_star_covers_only_codings_not_listed {
    let d = one(&req("GET", "/style.css", "Accept-Encoding: gzip;q=0, *\r\n"));
    assert_eq!(d.only().header("Content-Encoding"), None);
    assert!(!d.out.contains(&Out::Open("style.css.gz".into())));
    // `*` still covers br here (no style.css.br exists, so identity is served).
    let d = one(&req("GET", "/app.js", "Accept-Encoding: gzip;q=0, *\r\n"));
    assert_eq!(d.only().header("Content-Encoding"), Some("br"));
    let d = one(&req("GET", "/app.js", "Accept-Encoding: br;q=0\r\nAccept-Encoding: *\r\n"));
    assert_eq!(d.only().header("Content-Encoding"), Some("gzip"));
});

t!(c08_json_with_invalid_utf8_is_400 {
    let mut r = b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n".to_vec();
    r.extend_from_slice(b"{\"a\":\"\xff\"}");
    let d = one(&r);
    assert_eq!(d.status(), 400);
    assert!(d.world.uploads.is_empty());
});

t!(c09_head_refused_for_framing_gets_no_body {
    let mut d = driver();
    d.send(b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: x\r\n\r\n");
    let r = d.only();
    assert_eq!(r.status, 400);
    assert!(r.body.is_empty(), "{:?}", String::from_utf8_lossy(&r.body));
    assert!(d.closed);
});

t!(c10_absolute_form_still_validates_host {
    let d = one(b"GET http://127.0.0.1:8080/sample.txt HTTP/1.1\r\nHost: user@evil\r\n\r\n");
    assert_eq!(d.status(), 400);
    // A valid Host naming another server is ignored: the target's authority decides.
    let d = one(b"GET http://127.0.0.1:8080/sample.txt HTTP/1.1\r\nHost: other.example\r\n\r\n");
    assert_eq!(d.status(), 200);
    let d = one(b"GET http://evil.example/sample.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
    assert_eq!(d.status(), 403);
});

t!(c11_if_match_and_if_unmodified_since {
    let mut d = driver();
    d.send(&get("/sample.txt"));
    let etag = d.only().header("ETag").unwrap_or_default().to_string();
    let lm = d.only().header("Last-Modified").unwrap_or_default().to_string();
    let cases: Vec<(String, u16)> = vec![
        ("If-Match: \"other\"\r\n".into(), 412),
        (format!("If-Match: {etag}\r\n"), 200),
        ("If-Match: *\r\n".into(), 200),
        (format!("If-Match: W/{etag}\r\n"), 412), // strong comparison
        ("If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n".into(), 412),
        (format!("If-Unmodified-Since: {lm}\r\n"), 200),
        // If-Match decides; If-Unmodified-Since is then ignored.
        (format!("If-Match: {etag}\r\nIf-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n"), 200),
        // A failed If-Match comes before If-None-Match's 304.
        (format!("If-Match: \"x\"\r\nIf-None-Match: {etag}\r\n"), 412),
        // Ranges too.
        ("If-Match: \"x\"\r\nRange: bytes=0-1\r\n".into(), 412),
        (format!("If-Match: {etag}\r\nRange: bytes=0-1\r\n"), 206),
    ];
    for (fields, status) in cases {
        for m in ["GET", "HEAD"] {
            let d = one(&req(m, "/sample.txt", &fields));
            assert_eq!(d.status(), status, "{m} {fields:?}");
            if m == "HEAD" {
                assert!(d.only().body.is_empty());
            }
        }
    }
});

t!(c12_version_with_leading_zeros_is_400 {
    for v in ["HTTP/01.1", "HTTP/1.01", "HTTP/001.1"] {
        let d = one(format!("GET / {v}\r\n{HOST}\r\n").as_bytes());
        assert_eq!(d.status(), 400, "{v}");
    }
    assert_eq!(one(format!("GET / HTTP/2.0\r\n{HOST}\r\n").as_bytes()).status(), 505);
});

t!(c13_a_body_has_an_overall_deadline {
    let mut d = driver();
    d.send(&req("POST", "/upload", "Content-Type: application/json\r\nContent-Length: 100\r\n"));
    // One byte every 29 s never trips the idle timeout, but the body timeout (60 s) ends it.
    for _ in 0..2 {
        d.advance_ms(29_000).send(b" ").fire_timeout();
        assert!(!d.closed);
    }
    d.advance_ms(2_000).fire_timeout();
    assert_eq!(d.status(), 408);
    assert!(d.closed);
    assert!(d.world.uploads.is_empty());
    // Configurable.
    let mut c = config();
    c.body_timeout_ms = 5_000;
    let mut d = driver_with(c);
    d.send(&req("POST", "/upload", "Content-Type: application/json\r\nContent-Length: 100\r\n"));
    assert_eq!(d.deadline(), Some(5_000));
});

t!(c14_huge_durations_saturate {
    let mut c = Config::new("127.0.0.1", 8080, &[]);
    c.idle_timeout_ms = u64::MAX;
    c.head_timeout_ms = u64::MAX;
    c.body_timeout_ms = u64::MAX;
    let mut d = driver_with(c);
    d.advance_ms(5);
    assert_eq!(d.deadline(), Some(u64::MAX));
    d.send(b"GET / HTTP/1.1\r\n");
    assert_eq!(d.deadline(), Some(u64::MAX));
    d.send(b"Host: 127.0.0.1:8080\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(d.deadline(), Some(u64::MAX));
    d.fire_timeout();
    assert!(!d.closed);
});

t!(c15_an_upload_name_that_exists_is_drawn_again {
    let mut d = driver();
    d.world.upload_queue.push_back(Err(protocol::UploadError::AlreadyExists { reseed: [1; 16] }));
    d.world.upload_queue.push_back(Err(protocol::UploadError::AlreadyExists { reseed: [2; 16] }));
    d.send(&upload("{\"k\":1}"));
    assert_eq!(d.status(), 201);
    let names: Vec<&str> = d.world.uploads.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 3);
    assert!(names[0] != names[1] && names[1] != names[2] && names[0] != names[2]);
    assert!(d.world.uploads.iter().all(|(_, b)| b == b"{\"k\":1}"));
});

// Issue 13 (9): upload bodies held in memory share one budget per server; past it, 503
// with Retry-After and a close, and the budget comes back when a body is done.
t!(upload_bodies_share_a_memory_budget {
    let budget = std::sync::Arc::new(protocol::BodyBudget::new(100));
    let mut c = config();
    c.body_budget = std::sync::Arc::clone(&budget);
    let head = |len: usize| {
        format!("POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n")
    };
    let mut first = driver_with(c.clone());
    first.send(head(80).as_bytes()).send(b"[");
    assert_eq!(budget.used(), 80);
    let mut second = driver_with(c.clone());
    second.send(head(50).as_bytes());
    let r = second.only();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert!(second.closed);
    // The first finishes: its 80 bytes come back, and a third fits.
    first.send(&[b' '; 78]).send(b"]");
    assert_eq!(first.status(), 201);
    assert_eq!(budget.used(), 0);
    let mut third = driver_with(c.clone());
    third.send(&upload("[1,2,3]"));
    assert_eq!(third.status(), 201);
    assert_eq!(budget.used(), 0);
    // A chunked body takes its room as it grows.
    let mut d = driver_with(c.clone());
    d.send(b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    d.send(b"3c\r\n");
    d.send(&[b' '; 60]);
    assert_eq!(budget.used(), 60);
    d.send(b"\r\n3c\r\n").send(&[b' '; 60]);
    assert_eq!(d.status(), 503);
    assert!(d.closed);
    drop(d);
    assert_eq!(budget.used(), 0, "a closed connection gives its room back");
});
