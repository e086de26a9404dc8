//! Issue 7 over real sockets, shared by both runtimes: validators and conditional
//! requests, single byte ranges, precompressed siblings, HEAD = GET's headers,
//! `curl -C -` resumes, and `--cache-control`.
//!
//! A runtime's test file expands the macro with its binary:
//!
//! ```ignore
//! testkit::features_tests!(env!("CARGO_BIN_EXE_runtime-smol"));
//! ```
//!
//! The protocol side (every header, precedence rule and range form) is table-tested in
//! `protocol/tests/features.rs`; these tests check that a runtime carries it over the wire
//! with the real file system: real sizes and modification times, the small-file and the
//! `sendfile` paths (offsets past 64 KiB), sibling files on disk, keep-alive after a 304
//! or a 416, and a real curl.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{binary_bytes, have, Client, Fixture, Response, Server};

/// Expands to one `#[test]` per case, run against the binary at `$bin`.
#[macro_export]
macro_rules! features_tests {
    ($bin:expr) => {
        $crate::features_tests!(@cases $bin;
            validators_on_file_responses,
            if_none_match_gives_304_without_body,
            if_modified_since_gives_304,
            single_ranges_give_206_with_the_right_bytes,
            unsatisfiable_range_gives_416_with_the_length,
            several_or_malformed_ranges_give_the_whole_file,
            if_range_is_honoured,
            precompressed_siblings_are_served,
            head_has_exactly_the_gets_headers,
            curl_resumes_interrupted_downloads,
            cache_control_flag,
            edits_are_served_by_the_next_request,
        );
    };
    (@cases $bin:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::features::$name($bin);
            }
        )*
    };
}

/// A file above the 64 KiB small-file limit of both runtimes (so it goes by sendfile).
const LARGE: usize = 300 * 1024 + 17;

fn get(s: &Server, path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{extra}\r\n", s.host())
}

fn head(s: &Server, path: &str, extra: &str) -> String {
    format!("HEAD {path} HTTP/1.1\r\nHost: {}\r\n{extra}\r\n", s.host())
}

fn file(s: &Server, name: &str) -> Vec<u8> {
    std::fs::read(s.fx.root.join(name)).expect("fixture file")
}

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

fn mtime_secs(path: &std::path::Path) -> u64 {
    std::fs::metadata(path)
        .expect("metadata")
        .modified()
        .expect("mtime")
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
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
        let r = c.request(&get(&s, &format!("/{name}"), ""));
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
    let old = c.request(&get(&s, "/sample.txt", ""));
    let old_tag = old.header("etag").expect("ETag").to_string();
    std::fs::write(
        s.fx.root.join("sample.txt"),
        "rewritten, longer than before\n",
    )
    .expect("rewrite");
    let r = c.request(&get(
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
        let full = c.request(&get(&s, &path, ""));
        let etag = full.header("etag").expect("ETag").to_string();
        let modified = full.header("last-modified").expect("LM").to_string();
        for inm in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"nope\", {etag}"),
            "*".to_string(),
        ] {
            let r = c.request(&get(&s, &path, &format!("If-None-Match: {inm}\r\n")));
            r.expect_status(304)
                .expect_header("etag", &etag)
                .expect_header("last-modified", &modified)
                .expect_header("cache-control", "no-cache");
            assert!(r.body.is_empty(), "304 with a body: {r:?}");
            assert!(!r.closes(), "a 304 keeps the connection: {r:?}");
        }
        // The next request on the same connection is answered normally: no stray bytes
        // of a body followed the 304s.
        let r = c.request(&get(&s, "/sample.txt", ""));
        r.expect_status(200);
        expect_body(&r, &file(&s, "sample.txt"), "after 304");
        // A tag that does not match wins over a matching date: 200.
        let r = c.request(&get(
            &s,
            &path,
            &format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {modified}\r\n"),
        ));
        r.expect_status(200);
        expect_body(&r, &file(&s, name), "INM mismatch with IMS match");
        // HEAD too.
        let r = c.request(&head(&s, &path, &format!("If-None-Match: {etag}\r\n")));
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
        .request(&get(&s, path, ""))
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
        let r = c.request(&get(&s, path, &format!("If-Modified-Since: {ims}\r\n")));
        assert_eq!(r.status, want, "If-Modified-Since: {ims:?}: {r:?}");
        if want == 304 {
            assert!(r.body.is_empty());
            r.expect_header("last-modified", &modified);
        } else {
            expect_body(&r, &file(&s, "logo.png"), &ims);
        }
    }
    let r = c.request(&head(
        &s,
        path,
        &format!("If-Modified-Since: {modified}\r\n"),
    ));
    r.expect_status(304);
}

/// `bytes=a-b`, `a-`, `-n` on a small file (read into the buffer) and a large one
/// (sendfile from an offset), one after another on one keep-alive connection.
pub fn single_ranges_give_206_with_the_right_bytes(bin: &str) {
    let s = Server::start_in(bin, fixture(), &[]);
    let mut c = s.connect();
    for name in ["logo.png", "large.bin"] {
        let bytes = file(&s, name);
        let len = bytes.len();
        let cases: Vec<(String, usize, usize)> = vec![
            ("bytes=0-0".into(), 0, 0),
            ("bytes=0-99".into(), 0, 99),
            ("bytes=10-19".into(), 10, 19),
            (format!("bytes={}-", len - 1), len - 1, len - 1),
            ("bytes=1000-".into(), 1000, len - 1),
            ("bytes=-500".into(), len - 500, len - 1),
            (format!("bytes=-{}", len + 10), 0, len - 1),
            (format!("bytes=100-{}", len * 3), 100, len - 1),
            (
                format!("bytes={}-{}", len / 2, len / 2 + 70_000),
                len / 2,
                (len / 2 + 70_000).min(len - 1),
            ),
            ("Bytes=5-6".into(), 5, 6),
        ];
        for (range, start, end) in cases {
            let r = c.request(&get(
                &s,
                &format!("/{name}"),
                &format!("Range: {range}\r\n"),
            ));
            assert_eq!(r.status, 206, "{name} {range}: {r:?}");
            r.expect_header("content-range", &format!("bytes {start}-{end}/{len}"))
                .expect_header("content-length", &(end - start + 1).to_string())
                .expect_header("accept-ranges", "bytes");
            assert!(r.header("etag").is_some());
            expect_body(&r, &bytes[start..=end], &format!("{name} {range}"));
        }
    }
    // A range of a precompressible file is a range of the identity bytes, even when the
    // client accepts br: no Content-Encoding.
    let x = file(&s, "x.js");
    let r = c.request(&get(
        &s,
        "/x.js",
        "Range: bytes=3-9\r\nAccept-Encoding: br, gzip\r\n",
    ));
    r.expect_status(206)
        .expect_header("content-range", &format!("bytes 3-9/{}", x.len()));
    assert!(r.header("content-encoding").is_none(), "{r:?}");
    expect_body(&r, &x[3..=9], "range of x.js");
}

/// A range past the end: 416, `Content-Range: bytes */LEN`, and the connection goes on.
pub fn unsatisfiable_range_gives_416_with_the_length(bin: &str) {
    let s = Server::start_in(bin, fixture(), &[]);
    let mut c = s.connect();
    for name in ["logo.png", "large.bin"] {
        let len = file(&s, name).len();
        for range in [
            format!("bytes={len}-"),
            format!("bytes={len}-{}", len + 10),
            "bytes=99999999-".to_string(),
            "bytes=-0".to_string(),
        ] {
            let r = c.request(&get(
                &s,
                &format!("/{name}"),
                &format!("Range: {range}\r\n"),
            ));
            assert_eq!(r.status, 416, "{name} {range}: {r:?}");
            r.expect_header("content-range", &format!("bytes */{len}"));
            assert!(!r.closes(), "{r:?}");
            assert!(r.body.len() < 2048);
        }
    }
    let r = c.request(&get(&s, "/sample.txt", ""));
    r.expect_status(200);
    expect_body(&r, &file(&s, "sample.txt"), "after 416");
}

/// Several ranges are answered with the whole file as one 200 (the documented choice);
/// a Range that is not `bytes=` or does not parse is ignored.
pub fn several_or_malformed_ranges_give_the_whole_file(bin: &str) {
    let s = Server::start_in(bin, fixture(), &[]);
    let mut c = s.connect();
    let logo = file(&s, "logo.png");
    for range in [
        "bytes=0-1,5-6",
        "bytes=0-1, -5",
        "bytes=-5,0-1",
        "items=0-1",
        "bytes=abc",
        "bytes",
        "bytes=--5",
    ] {
        let r = c.request(&get(&s, "/logo.png", &format!("Range: {range}\r\n")));
        assert_eq!(r.status, 200, "Range: {range}: {r:?}");
        assert!(r.header("content-range").is_none(), "{range}: {r:?}");
        expect_body(&r, &logo, range);
    }
}

/// `If-Range` with the current strong tag or the exact Last-Modified: 206; with an old
/// tag, a weak tag or another date: the whole file, 200.
pub fn if_range_is_honoured(bin: &str) {
    let s = Server::start_in(bin, fixture(), &[]);
    // A date validator is strong only when it is at least a second before Date (RFC 9110
    // §8.8.2.2): a file written this very second cannot be matched by date.
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(s.fx.root.join("large.bin"))
        .and_then(|f| f.set_modified(an_hour_ago))
        .expect("set mtime");
    let mut c = s.connect();
    let big = file(&s, "large.bin");
    let full = c.request(&get(&s, "/large.bin", ""));
    let etag = full.header("etag").expect("ETag").to_string();
    let modified = full.header("last-modified").expect("LM").to_string();
    let mtime = mtime_secs(&s.fx.root.join("large.bin"));
    for (cond, partial) in [
        (etag.clone(), true),
        (modified.clone(), true),
        (format!("W/{etag}"), false),
        ("\"stale-tag\"".to_string(), false),
        (http_date(mtime - 10), false),
    ] {
        let r = c.request(&get(
            &s,
            "/large.bin",
            &format!("Range: bytes=70000-70999\r\nIf-Range: {cond}\r\n"),
        ));
        if partial {
            r.expect_status(206)
                .expect_header("content-range", &format!("bytes 70000-70999/{}", big.len()));
            expect_body(&r, &big[70_000..71_000], &cond);
        } else {
            r.expect_status(200);
            assert!(r.header("content-range").is_none());
            expect_body(&r, &big, &cond);
        }
    }
}

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
        let r = c.request(&get(&s, "/x.js", &extra));
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
    let r = c.request(&get(
        &s,
        "/x.js",
        &format!("Accept-Encoding: br\r\nIf-None-Match: {br_tag}\r\n"),
    ));
    r.expect_status(304).expect_header("etag", br_tag);
    // Only a .gz beside y.css: a client accepting br and gzip gets the gzip.
    let r = c.request(&get(&s, "/y.css", "Accept-Encoding: br, gzip\r\n"));
    r.expect_status(200)
        .expect_header("content-encoding", "gzip");
    expect_body(&r, &file(&s, "y.css.gz"), "y.css.gz");
    // A directory named d.js.br, an escaping symlink e.js.br: the plain file is served.
    for name in ["d.js", "e.js"] {
        let r = c.request(&get(&s, &format!("/{name}"), "Accept-Encoding: br\r\n"));
        r.expect_status(200);
        assert!(r.header("content-encoding").is_none(), "{name}: {r:?}");
        expect_body(&r, &file(&s, name), name);
    }
    // A sibling is served only beside its file: only.js.br alone is a 404 for /only.js.
    let r = c.request(&get(&s, "/only.js", "Accept-Encoding: br, gzip\r\n"));
    r.expect_status(404);
    // A sibling is never requested directly by its encoded name as something else: the
    // .br file itself has no known type.
    let r = c.request(&get(&s, "/x.js.br", ""));
    assert!(r.header("content-encoding").is_none(), "{r:?}");
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
        let g = s.connect().request(&get(&s, path, &extra));
        let h = s.connect().request(&head(&s, path, &extra));
        assert_eq!(g.status, h.status, "{path} {extra:?}");
        assert_eq!(without_date(&g), without_date(&h), "{path} {extra:?}");
    }
    // And a HEAD on a keep-alive connection sends no body: the next answer is intact.
    let mut c: Client = s.connect();
    let r = c.request(&head(&s, "/large.bin", "Accept-Encoding: br\r\n"));
    r.expect_header("content-length", &LARGE.to_string());
    let r = c.request(&get(&s, "/sample.txt", ""));
    expect_body(&r, &file(&s, "sample.txt"), "after HEAD");
}

/// `curl -C -` resumes a partial download of logo.png and of a 20 MiB file, both from a
/// partial file written by hand and from a download that was really cut off.
pub fn curl_resumes_interrupted_downloads(bin: &str) {
    if !have("curl") {
        panic!("curl is needed for this test (apt-get install -y curl)");
    }
    let fx = fixture();
    let huge = binary_bytes(20 << 20);
    std::fs::write(fx.root.join("huge.bin"), &huge).expect("huge");
    let s = Server::start_in(bin, fx, &[]);
    let dir = tempfile::tempdir().expect("download dir");
    let curl = |args: &[&str]| {
        Command::new("curl")
            .args(["-sS", "--max-time", "30"])
            .args(args)
            .output()
            .expect("run curl")
    };
    let logo = file(&s, "logo.png");
    for (name, want, cut) in [
        ("logo.png", &logo, 1000usize),
        ("logo.png", &logo, 1),
        ("huge.bin", &huge, 7_777_777),
        ("huge.bin", &huge, (20 << 20) - 3),
    ] {
        let out = dir.path().join(format!("{name}.{cut}"));
        std::fs::write(&out, &want[..cut]).expect("partial");
        let o = curl(&[
            "--fail",
            "-C",
            "-",
            "-o",
            path_str(&out),
            &s.url(&format!("/{name}")),
        ]);
        assert!(o.status.success(), "curl -C - {name} from {cut}: {o:?}");
        let got = std::fs::read(&out).expect("read download");
        assert!(
            got.len() == want.len() && got == *want,
            "{name} resumed from {cut}: {} bytes, want {}",
            got.len(),
            want.len()
        );
    }
    // A download cut off for real (rate-limited, stopped by --max-time), then resumed.
    let out = dir.path().join("huge.cut");
    let o = Command::new("curl")
        .args(["-sS", "--limit-rate", "4M", "--max-time", "1", "-o"])
        .arg(&out)
        .arg(s.url("/huge.bin"))
        .output()
        .expect("run curl");
    assert_eq!(
        o.status.code(),
        Some(28),
        "the first download should time out: {o:?}"
    );
    let cut = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    assert!(cut < huge.len() as u64, "not cut: {cut}");
    let o = curl(&[
        "--fail",
        "-C",
        "-",
        "-o",
        path_str(&out),
        &s.url("/huge.bin"),
    ]);
    assert!(o.status.success(), "resume after the cut at {cut}: {o:?}");
    let got = std::fs::read(&out).expect("read download");
    assert!(
        got == huge,
        "resumed after {cut}: {} bytes differ",
        got.len()
    );
    // The resumes were ranges (206), not whole downloads.
    assert!(
        s.wait_log(&["GET /huge.bin", " 206 "], Duration::from_secs(3))
            .is_some(),
        "no 206 for the resume in the log:\n{}",
        s.logs()
    );
}

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("temporary path is UTF-8")
}

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
        let r = c.request(&get(&s, "/logo.png", ""));
        r.expect_status(200);
        assert_eq!(r.header("cache-control"), want, "{args:?}");
        let etag = r.header("etag").expect("ETag").to_string();
        let r = c.request(&get(&s, "/logo.png", "Range: bytes=0-9\r\n"));
        r.expect_status(206);
        assert_eq!(r.header("cache-control"), want, "206 {args:?}");
        let r = c.request(&get(&s, "/logo.png", &format!("If-None-Match: {etag}\r\n")));
        r.expect_status(304);
        assert_eq!(r.header("cache-control"), want, "304 {args:?}");
        let r = c.request(&head(&s, "/index.html", ""));
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
        let r = c.request(&get(&s, &format!("/{name}"), ""));
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
