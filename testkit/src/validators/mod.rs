//! Conditional and partial answers of a file (SPEC "Requests": `If-*`, HEAD; SPEC
//! "Compression and archives": precompressed siblings): validators and conditional
//! requests, single byte ranges (`ranges.rs`, with `If-Range` and `curl -C -` resumes),
//! precompressed siblings, HEAD = GET's headers, `--cache-control`, and the open-file
//! cache, which never answers with an old version of a file.
//!
//! The protocol side (every header, precedence rule and range form) is table-tested in
//! `protocol/tests/features.rs`; these tests check that a runtime carries it over the
//! wire with the real file system: real sizes and modification times, the small-file and
//! the `sendfile` paths (offsets past 64 KiB), sibling files on disk, keep-alive after a
//! 304 or a 416, and a real curl.
//!
//! Where a test goes: here if the answer depends on the file's version or on a `Range`,
//! `If-*` or `Accept-Encoding` header. What any request gets back is
//! [`requests`](crate::requests).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::util::{file, get, get_with, head_with, mtime_secs};
use crate::{binary_bytes, Client, Fixture, Response, Server};

mod ranges;
pub use ranges::*;

/// The cases of this group, for [`tests!`](crate::tests): `spec` run over HTTP and over
/// HTTPS, `more` over HTTP only (see [`crate::cases`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __validators_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] validators;
            spec: [
                ranges_and_conditional_requests,
                precompressed_sibling_is_served,
            ];
            more: [
                validators_on_file_responses,
                if_none_match_gives_304_without_body,
                if_modified_since_gives_304,
                head_has_exactly_the_gets_headers,
                single_ranges_give_206_with_the_right_bytes,
                unsatisfiable_range_gives_416_with_the_length,
                several_or_malformed_ranges_give_the_whole_file,
                if_range_is_honoured,
                curl_resumes_interrupted_downloads,
                precompressed_siblings_are_served,
                cache_control_flag,
                edits_are_served_by_the_next_request,
            ];
        }
    };
}
pub use crate::__validators_list as list;

// ----- The files -----

/// A file above the 64 KiB small-file limit of both runtimes (so it goes by sendfile).
const LARGE: usize = 300 * 1024 + 17;

/// A fixture with a large binary file and precompressed siblings.
fn fixture() -> Fixture {
    let fx = Fixture::new();
    std::fs::write(fx.root.join("large.bin"), binary_bytes(LARGE)).expect("large");
    std::fs::write(
        fx.root.join("x.js"),
        b"console.log('plain x.js');\n".repeat(20),
    )
    .expect("x.js");
    std::fs::write(fx.root.join("x.js.gz"), b"\x1f\x8b GZIP bytes of x.js").expect("gz");
    std::fs::write(fx.root.join("x.js.br"), b"BROTLI bytes of x.js \x00\xff").expect("br");
    std::fs::write(fx.root.join("y.css"), b"body { margin: 0 }").expect("y.css");
    std::fs::write(fx.root.join("y.css.gz"), b"\x1f\x8b GZIP bytes of y.css").expect("gz");
    // A sibling that is a directory, and one that escapes the root: neither is served.
    std::fs::write(fx.root.join("d.js"), b"let d = 1;").expect("d.js");
    std::fs::create_dir(fx.root.join("d.js.br")).expect("dir sibling");
    std::fs::write(fx.root.join("e.js"), b"let e = 1;").expect("e.js");
    std::os::unix::fs::symlink("../secret.txt", fx.root.join("e.js.br")).expect("symlink");
    // A sibling with no file beside it: never served.
    std::fs::write(fx.root.join("only.js.br"), b"compressed bytes").expect("only.js.br");
    fx
}

/// IMF-fixdate of a Unix time (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[track_caller]
fn expect_body(r: &Response, want: &[u8], what: &str) {
    assert!(
        r.body == want,
        "{what}: body of {} bytes differs from the expected {} bytes; headers {:?}",
        r.body.len(),
        want.len(),
        r.headers
    );
}

// ----- Validators and conditional requests -----

/// Every file response carries a strong ETag, the file's Last-Modified, Accept-Ranges
/// and the default Cache-Control; a changed file gets a new ETag.
pub fn validators_on_file_responses(bin: &str) {
    let s = Server::start_in(bin, fixture(), &[]);
    assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    let mut c = s.connect();
    let mut tags = Vec::new();
    for name in [
        "index.html",
        "logo.png",
        "style.css",
        "sub/inner.html",
        "large.bin",
    ] {
        let r = c.request(&get_with(&s, &format!("/{name}"), ""));
        r.expect_status(200);
        expect_body(&r, &file(&s, name), name);
        let etag = r
            .header("etag")
            .unwrap_or_else(|| panic!("{name}: no ETag"));
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
            "{name}: not a strong entity tag: {etag}"
        );
        let want = http_date(mtime_secs(&s.fx.root.join(name)));
        r.expect_header("last-modified", &want)
            .expect_header("accept-ranges", "bytes")
            .expect_header("cache-control", "no-cache");
        tags.push(etag.to_string());
    }
    tags.sort();
    tags.dedup();
    assert_eq!(
        tags.len(),
        5,
        "entity tags of different files collide: {tags:?}"
    );
    // Rewriting a file (another size) changes its tag; the old one no longer matches.
    let old = c.request(&get_with(&s, "/sample.txt", ""));
    let old_tag = old.header("etag").expect("ETag").to_string();
    std::fs::write(
        s.fx.root.join("sample.txt"),
        "rewritten, longer than before\n",
    )
    .expect("rewrite");
    let r = c.request(&get_with(
        &s,
        "/sample.txt",
        &format!("If-None-Match: {old_tag}\r\n"),
    ));
    r.expect_status(200);
    expect_body(&r, b"rewritten, longer than before\n", "rewritten");
    assert_ne!(r.header("etag"), Some(old_tag.as_str()));
}

/// `If-None-Match` (weak comparison, lists, `*`) gives 304 with no body and the
/// validators; the connection stays usable; it takes precedence over
/// `If-Modified-Since` (RFC 9110 §13.2.2).
pub fn if_none_match_gives_304_without_body(bin: &str) {
    let s = Server::start_in(bin, fixture(), &[]);
    let mut c = s.connect();
    for name in ["logo.png", "large.bin", "index.html"] {
        let path = format!("/{name}");
        let full = c.request(&get_with(&s, &path, ""));
        let etag = full.header("etag").expect("ETag").to_string();
        let modified = full.header("last-modified").expect("LM").to_string();
        for inm in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"nope\", {etag}"),
            "*".to_string(),
        ] {
            let r = c.request(&get_with(&s, &path, &format!("If-None-Match: {inm}\r\n")));
            r.expect_status(304)
                .expect_header("etag", &etag)
                .expect_header("last-modified", &modified)
                .expect_header("cache-control", "no-cache");
            assert!(r.body.is_empty(), "304 with a body: {r:?}");
            assert!(!r.closes(), "a 304 keeps the connection: {r:?}");
        }
        // The next request on the same connection is answered normally: no stray bytes
        // of a body followed the 304s.
        let r = c.request(&get_with(&s, "/sample.txt", ""));
        r.expect_status(200);
        expect_body(&r, &file(&s, "sample.txt"), "after 304");
        // A tag that does not match wins over a matching date: 200.
        let r = c.request(&get_with(
            &s,
            &path,
            &format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {modified}\r\n"),
        ));
        r.expect_status(200);
        expect_body(&r, &file(&s, name), "INM mismatch with IMS match");
        // HEAD too.
        let r = c.request(&head_with(&s, &path, &format!("If-None-Match: {etag}\r\n")));
        r.expect_status(304);
    }
}

/// `If-Modified-Since` at or after the modification time gives 304; before it, or not
/// a date, gives 200.
pub fn if_modified_since_gives_304(bin: &str) {
    let s = Server::start_in(bin, fixture(), &[]);
    let mut c = s.connect();
    let path = "/logo.png";
    let modified = c
        .request(&get_with(&s, path, ""))
        .header("last-modified")
        .expect("LM")
        .to_string();
    let mtime = mtime_secs(&s.fx.root.join("logo.png"));
    let future = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("now")
        .as_secs()
        + 86_400;
    for (ims, want) in [
        (modified.clone(), 304),
        (http_date(mtime + 1), 304),
        (http_date(future), 304),
        (http_date(mtime - 1), 200),
        ("Thu, 01 Jan 1970 00:00:01 GMT".to_string(), 200),
        ("not a date".to_string(), 200),
        (String::new(), 200),
    ] {
        let r = c.request(&get_with(
            &s,
            path,
            &format!("If-Modified-Since: {ims}\r\n"),
        ));
        assert_eq!(r.status, want, "If-Modified-Since: {ims:?}: {r:?}");
        if want == 304 {
            assert!(r.body.is_empty());
            r.expect_header("last-modified", &modified);
        } else {
            expect_body(&r, &file(&s, "logo.png"), &ims);
        }
    }
    let r = c.request(&head_with(
        &s,
        path,
        &format!("If-Modified-Since: {modified}\r\n"),
    ));
    r.expect_status(304);
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

/// HEAD answers exactly the GET's status and headers (all but Date), for a plain file,
/// an attachment, a 206, a 416, a 304 and a precompressed variant.
pub fn head_has_exactly_the_gets_headers(bin: &str) {
    let s = Server::start_in(bin, fixture(), &[]);
    let etag = s.get("/logo.png").header("etag").expect("ETag").to_string();
    let cases: Vec<(&str, String)> = vec![
        ("/index.html", String::new()),
        ("/logo.png", String::new()),
        ("/large.bin", String::new()),
        ("/large.bin", "Range: bytes=100-70100\r\n".into()),
        ("/logo.png", "Range: bytes=999999-\r\n".into()),
        ("/logo.png", format!("If-None-Match: {etag}\r\n")),
        ("/x.js", "Accept-Encoding: br\r\n".into()),
        ("/x.js", "Accept-Encoding: gzip\r\n".into()),
        ("/x.js", String::new()),
        ("/missing.html", String::new()),
    ];
    let without_date = |r: &Response| -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        h.sort();
        h
    };
    for (path, extra) in cases {
        let extra = format!("{extra}Connection: close\r\n");
        let g = s.connect().request(&get_with(&s, path, &extra));
        let h = s.connect().request(&head_with(&s, path, &extra));
        assert_eq!(g.status, h.status, "{path} {extra:?}");
        assert_eq!(without_date(&g), without_date(&h), "{path} {extra:?}");
    }
    // And a HEAD on a keep-alive connection sends no body: the next answer is intact.
    let mut c: Client = s.connect();
    let r = c.request(&head_with(&s, "/large.bin", "Accept-Encoding: br\r\n"));
    r.expect_header("content-length", &LARGE.to_string());
    let r = c.request(&get_with(&s, "/sample.txt", ""));
    expect_body(&r, &file(&s, "sample.txt"), "after HEAD");
}

// ----- Precompressed siblings -----

/// `NAME.br` / `NAME.gz` beside `NAME` are served when Accept-Encoding allows them,
/// with Content-Encoding, Vary and NAME's type; otherwise NAME itself (still with Vary).
/// A directory or an escaping symlink in a sibling's place is never served.
pub fn precompressed_siblings_are_served(bin: &str) {
    let s = Server::start_in(bin, fixture(), &[]);
    let mut c = s.connect();
    let js_type = |r: &Response| {
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.contains("javascript")),
            "type of x.js: {r:?}"
        )
    };
    let mut tags = Vec::new();
    for (ae, want, encoding) in [
        ("br", "x.js.br", Some("br")),
        ("gzip", "x.js.gz", Some("gzip")),
        ("gzip, deflate, br", "x.js.br", Some("br")),
        ("br;q=0, gzip", "x.js.gz", Some("gzip")),
        ("br;q=0.0, gzip;q=0", "x.js", None),
        ("*", "x.js.br", Some("br")),
        ("identity", "x.js", None),
        ("", "x.js", None),
    ] {
        let extra = if ae.is_empty() {
            String::new()
        } else {
            format!("Accept-Encoding: {ae}\r\n")
        };
        let r = c.request(&get_with(&s, "/x.js", &extra));
        r.expect_status(200);
        js_type(&r);
        expect_body(&r, &file(&s, want), ae);
        assert_eq!(r.header("content-encoding"), encoding, "AE {ae:?}: {r:?}");
        assert!(
            r.header("vary")
                .is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")),
            "AE {ae:?}: no Vary: {r:?}"
        );
        r.expect_header("content-length", &file(&s, want).len().to_string());
        tags.push(r.header("etag").expect("ETag").to_string());
    }
    // Each variant has its own tag, and it validates that variant.
    let (br_tag, gz_tag, id_tag) = (&tags[0], &tags[1], &tags[7]);
    assert!(
        br_tag != gz_tag && gz_tag != id_tag && br_tag != id_tag,
        "{tags:?}"
    );
    let r = c.request(&get_with(
        &s,
        "/x.js",
        &format!("Accept-Encoding: br\r\nIf-None-Match: {br_tag}\r\n"),
    ));
    r.expect_status(304).expect_header("etag", br_tag);
    // Only a .gz beside y.css: a client accepting br and gzip gets the gzip.
    let r = c.request(&get_with(&s, "/y.css", "Accept-Encoding: br, gzip\r\n"));
    r.expect_status(200)
        .expect_header("content-encoding", "gzip");
    expect_body(&r, &file(&s, "y.css.gz"), "y.css.gz");
    // A directory named d.js.br, an escaping symlink e.js.br: the plain file is served.
    for name in ["d.js", "e.js"] {
        let r = c.request(&get_with(
            &s,
            &format!("/{name}"),
            "Accept-Encoding: br\r\n",
        ));
        r.expect_status(200);
        assert!(r.header("content-encoding").is_none(), "{name}: {r:?}");
        expect_body(&r, &file(&s, name), name);
    }
    // A sibling is served only beside its file: only.js.br alone is a 404 for /only.js.
    let r = c.request(&get_with(&s, "/only.js", "Accept-Encoding: br, gzip\r\n"));
    r.expect_status(404);
    // A sibling is never requested directly by its encoded name as something else: the
    // .br file itself has no known type.
    let r = c.request(&get_with(&s, "/x.js.br", ""));
    assert!(r.header("content-encoding").is_none(), "{r:?}");
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

// ----- Cache-Control, and the open-file cache -----

/// `--cache-control VALUE` sets the header of file responses (200, 206, 304); an empty
/// value sends none; the default is `no-cache`.
pub fn cache_control_flag(bin: &str) {
    for (args, want) in [
        (&[][..], Some("no-cache")),
        (
            &["--cache-control", "public, max-age=3600"][..],
            Some("public, max-age=3600"),
        ),
        (&["--cache-control", ""][..], None),
    ] {
        let s = Server::start_in(bin, fixture(), args);
        let mut c = s.connect();
        let r = c.request(&get_with(&s, "/logo.png", ""));
        r.expect_status(200);
        assert_eq!(r.header("cache-control"), want, "{args:?}");
        let etag = r.header("etag").expect("ETag").to_string();
        let r = c.request(&get_with(&s, "/logo.png", "Range: bytes=0-9\r\n"));
        r.expect_status(206);
        assert_eq!(r.header("cache-control"), want, "206 {args:?}");
        let r = c.request(&get_with(
            &s,
            "/logo.png",
            &format!("If-None-Match: {etag}\r\n"),
        ));
        r.expect_status(304);
        assert_eq!(r.header("cache-control"), want, "304 {args:?}");
        let r = c.request(&head_with(&s, "/index.html", ""));
        assert_eq!(r.header("cache-control"), want, "HEAD {args:?}");
    }
}

/// Sets a file's modification time to `secs` after the Unix epoch.
fn set_mtime(path: &std::path::Path, secs: u64) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open to set mtime");
    f.set_modified(UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .expect("set mtime");
}

/// The open-file cache (which, on runtime-smol, answers an unchanged file with no system
/// call at all while its change notification is silent) never answers with an old
/// version: a file edited in place, one replaced by a rename, a directory swapped for
/// another, and a large file rewritten are each served, with their new Last-Modified, by
/// the very next request on a keep-alive connection that already had the old version
/// (cached and confirmed twice), and again on a new connection. Each version carries an
/// old modification time, so that the server caches it (files changed within 2 s are
/// not cached); 30 rounds.
pub fn edits_are_served_by_the_next_request(bin: &str) {
    let fx = Fixture::new();
    let root = fx.root.clone();
    let old = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        - 86_400;
    let version = |i: usize, len: usize| -> Vec<u8> {
        let mut v = format!("version {i:04} ").into_bytes();
        v.resize(len, b'a' + (i % 26) as u8);
        v
    };
    std::fs::create_dir(root.join("d")).expect("d");
    for (name, len) in [("page.txt", 200), ("d/f.txt", 300), ("big.bin", LARGE)] {
        std::fs::write(root.join(name), version(0, len)).expect("write");
        set_mtime(&root.join(name), old);
    }
    let s = Server::start_in(bin, fx, &[]);
    let mut c = s.connect();
    let check = |c: &mut Client, name: &str, want: &[u8], what: &str| {
        let r = c.request(&get_with(&s, &format!("/{name}"), ""));
        r.expect_status(200);
        expect_body(&r, want, what);
        r.expect_header("last-modified", &http_date(mtime_secs(&root.join(name))));
    };
    for name in ["page.txt", "d/f.txt", "big.bin"] {
        let want = std::fs::read(root.join(name)).expect("read");
        check(&mut c, name, &want, "before any edit");
        check(&mut c, name, &want, "before any edit, again");
    }
    for i in 1..=30usize {
        let mtime = old + 10 * i as u64;
        let (name, want) = match i % 4 {
            0 => {
                // Edited in place (same length).
                let want = version(i, 200);
                std::fs::write(root.join("page.txt"), &want).expect("edit");
                set_mtime(&root.join("page.txt"), mtime);
                ("page.txt", want)
            }
            1 => {
                // Replaced by a rename, as editors save.
                let want = version(i, 200);
                let tmp = root.join(".page.tmp");
                std::fs::write(&tmp, &want).expect("tmp");
                set_mtime(&tmp, mtime);
                std::fs::rename(&tmp, root.join("page.txt")).expect("rename over");
                ("page.txt", want)
            }
            2 => {
                // The directory swapped for a new one.
                let want = version(i, 300);
                let fresh = root.join("d.new");
                std::fs::create_dir(&fresh).expect("d.new");
                std::fs::write(fresh.join("f.txt"), &want).expect("d.new/f.txt");
                set_mtime(&fresh.join("f.txt"), mtime);
                std::fs::rename(root.join("d"), root.join(format!("d.old{i}"))).expect("d out");
                std::fs::rename(&fresh, root.join("d")).expect("d in");
                ("d/f.txt", want)
            }
            _ => {
                // A large file (kept open by the cache) rewritten in place.
                let want = version(i, LARGE);
                std::fs::write(root.join("big.bin"), &want).expect("big");
                set_mtime(&root.join("big.bin"), mtime);
                ("big.bin", want)
            }
        };
        check(
            &mut c,
            name,
            &want,
            &format!("round {i}: the next request on the connection"),
        );
        check(
            &mut c,
            name,
            &want,
            &format!("round {i}: the request after it"),
        );
        let mut fresh = s.connect();
        check(
            &mut fresh,
            name,
            &want,
            &format!("round {i}: a new connection"),
        );
    }
}
