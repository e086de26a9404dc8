//! Single byte ranges (206 with the right bytes, 416 with the length, several or
//! malformed ranges as the whole file), `If-Range`, and `curl -C -` resuming downloads.

use std::process::Command;
use std::time::Duration;

use super::{expect_body, fixture, http_date};
use crate::util::{file, get_with, mtime_secs};
use crate::{binary_bytes, have, Server};

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
            let r = c.request(&get_with(
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
    let r = c.request(&get_with(
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
            let r = c.request(&get_with(
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
    let r = c.request(&get_with(&s, "/sample.txt", ""));
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
        let r = c.request(&get_with(&s, "/logo.png", &format!("Range: {range}\r\n")));
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
    let full = c.request(&get_with(&s, "/large.bin", ""));
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
        let r = c.request(&get_with(
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
