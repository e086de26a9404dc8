//! Compression on the fly (SPEC "Compression and archives", `--compress`): each coding
//! decodes to the file (kept variants and streamed ones), a strong tag and a 304 per
//! coding, an edit seen by the very next compressed answer, what is never compressed
//! (ranges, attachments, small files, HTTP/1.0 streams, `--compress off`), a precompressed
//! sibling still winning, and a streamed answer that keeps the connection.
//!
//! Where a test goes: here if it is about `Content-Encoding` of an answer; zip archives
//! of folders are in [`listing`](crate::listing).

use std::io::Read;

use crate::util::{get_with, head_with};
use crate::{Fixture, Response, Server};

#[doc(hidden)]
#[macro_export]
macro_rules! __compress_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] compress;
            spec: [
                each_coding_decodes_to_the_file,
                a_tag_and_a_304_per_coding,
                an_edit_is_compressed_at_once,
                what_is_never_compressed,
                a_large_file_is_streamed_in_chunks,
            ];
            more: [
                compress_off_and_precompressed_siblings,
                redbot_finds_nothing_wrong,
            ];
        }
    };
}
pub use crate::__compress_list as list;

/// Text that compresses well, of `len` bytes, different for each `seed`.
pub fn text(len: usize, seed: u32) -> Vec<u8> {
    let mut s = String::with_capacity(len + 64);
    let mut i = 0u32;
    while s.len() < len {
        s.push_str(&format!(
            "{{\"id\": {i}, \"seed\": {seed}, \"name\": \"item {}\"}},\n",
            (i * 7 + seed) % 101
        ));
        i += 1;
    }
    s.truncate(len);
    s.into_bytes()
}

/// The body of `r` decoded by its `Content-Encoding` (none: as it is).
pub fn decoded(r: &Response) -> Vec<u8> {
    let body = &r.body[..];
    let mut out = Vec::new();
    match r.header("content-encoding") {
        None => out.extend_from_slice(body),
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("gzip decodes");
        }
        Some("br") => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .expect("br decodes");
        }
        Some("zstd") => {
            ruzstd::decoding::StreamingDecoder::new(body)
                .expect("a zstd frame")
                .read_to_end(&mut out)
                .expect("zstd decodes");
        }
        Some(other) => panic!("Content-Encoding: {other}"),
    }
    out
}

fn ask(s: &Server, path: &str, extra: &str) -> Response {
    s.connect().request(&get_with(s, path, extra))
}

/// Under the 1 KiB threshold, yet over the 96 bytes REDbot asks for in its range check
/// (`bytes=0-96`), so that its 206 is partial.
const SMALL_CSS: &[u8] = b"p { color: blue }\nh1 { color: navy }\nh2 { color: teal }\n\
a { color: purple }\nem { color: maroon }\nstrong { color: olive }\ncode { color: gray }\n";

fn fixture() -> Fixture {
    Fixture::new()
        .with_file("app.bundle.js", text(100 << 10, 1))
        .with_file("big.json", text(3 << 20, 2))
        .with_file("small.css", SMALL_CSS)
        .with_file("pre.js", text(8 << 10, 3))
        .with_file("pre.js.br", b"not really brotli, but the sibling wins")
}

pub fn each_coding_decodes_to_the_file(bin: &str) {
    let fx = fixture();
    let want = std::fs::read(fx.root.join("app.bundle.js")).expect("file");
    let s = Server::start_in(bin, fx, &[]);
    for coding in ["gzip", "br", "zstd"] {
        // Twice: made, then kept.
        for round in 0..2 {
            let r = ask(
                &s,
                "/app.bundle.js",
                &format!("Accept-Encoding: {coding}\r\n"),
            );
            r.expect_status(200);
            assert_eq!(r.header("content-encoding"), Some(coding), "round {round}");
            assert_eq!(r.header("vary"), Some("Accept-Encoding"));
            let len: usize = r
                .header("content-length")
                .expect("a kept variant has a length")
                .parse()
                .expect("a number");
            assert_eq!(len, r.body.len());
            assert!(
                len < want.len() / 3,
                "{coding}: {len} bytes of {}",
                want.len()
            );
            assert_eq!(decoded(&r), want, "{coding}, round {round}");
        }
    }
    // The client's preference, with q-values.
    let r = ask(
        &s,
        "/app.bundle.js",
        "Accept-Encoding: zstd;q=0.2, br;q=0.9, gzip;q=0.5\r\n",
    );
    assert_eq!(r.header("content-encoding"), Some("br"));
    // Nothing acceptable: 406, and the connection goes on.
    let mut c = s.connect();
    let r = c.request(&get_with(
        &s,
        "/app.bundle.js",
        "Accept-Encoding: identity;q=0\r\n",
    ));
    r.expect_status(406);
    let r = c.request(&get_with(&s, "/app.bundle.js", ""));
    r.expect_status(200);
    assert_eq!(r.body, want);
}

pub fn a_tag_and_a_304_per_coding(bin: &str) {
    let s = Server::start_in(bin, fixture(), &[]);
    let identity = ask(&s, "/app.bundle.js", "");
    let plain_tag = identity.header("etag").expect("ETag").to_string();
    let mut tags = vec![plain_tag.clone()];
    for coding in ["gzip", "br", "zstd"] {
        let ae = format!("Accept-Encoding: {coding}\r\n");
        let r = ask(&s, "/app.bundle.js", &ae);
        let tag = r.header("etag").expect("ETag").to_string();
        assert!(!tag.starts_with("W/"), "a strong tag: {tag}");
        assert!(!tags.contains(&tag), "{coding}'s tag {tag} is not its own");
        tags.push(tag.clone());
        // Its own tag: 304, with the same fields.
        let r = ask(
            &s,
            "/app.bundle.js",
            &format!("{ae}If-None-Match: {tag}\r\n"),
        );
        r.expect_status(304);
        assert_eq!(r.header("etag"), Some(tag.as_str()));
        assert_eq!(r.header("content-encoding"), Some(coding));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert!(r.body.is_empty());
        // The identity tag does not match this representation.
        let r = ask(
            &s,
            "/app.bundle.js",
            &format!("{ae}If-None-Match: {plain_tag}\r\n"),
        );
        r.expect_status(200);
        // HEAD: the same fields as GET, no body.
        let h = s.connect().request(&head_with(&s, "/app.bundle.js", &ae));
        h.expect_status(200);
        assert_eq!(h.header("etag"), Some(tag.as_str()));
        assert_eq!(h.header("content-encoding"), Some(coding));
        assert!(h.body.is_empty());
    }
    // Another coding's tag: 200 in the coding asked for; If-Match of another: 412.
    let r = ask(
        &s,
        "/app.bundle.js",
        &format!("Accept-Encoding: gzip\r\nIf-None-Match: {}\r\n", tags[2]),
    );
    r.expect_status(200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let r = ask(
        &s,
        "/app.bundle.js",
        &format!("Accept-Encoding: gzip\r\nIf-Match: {}\r\n", tags[2]),
    );
    r.expect_status(412);
}

pub fn an_edit_is_compressed_at_once(bin: &str) {
    let fx = fixture();
    let path = fx.root.join("app.bundle.js");
    let s = Server::start_in(bin, fx, &[]);
    for round in 0..6u32 {
        // The same length each time: only the content (and the times) change.
        let content = text(100 << 10, 10 + round);
        std::fs::write(&path, &content).expect("edit");
        for coding in ["br", "gzip", "zstd"] {
            let r = ask(
                &s,
                "/app.bundle.js",
                &format!("Accept-Encoding: {coding}\r\n"),
            );
            r.expect_status(200);
            assert_eq!(
                decoded(&r),
                content,
                "round {round}: {coding} right after the edit"
            );
        }
    }
}

pub fn what_is_never_compressed(bin: &str) {
    let fx = fixture().with_file("notes.txt", text(20 << 10, 4));
    let s = Server::start_in(bin, fx, &[]);
    let all = "Accept-Encoding: gzip, br, zstd\r\n";
    // A range: the identity representation's bytes.
    let r = ask(
        &s,
        "/app.bundle.js",
        &format!("{all}Range: bytes=10-19\r\n"),
    );
    r.expect_status(206);
    assert!(r.header("content-encoding").is_none());
    assert_eq!(r.body, text(100 << 10, 1)[10..20]);
    // Under 1 KiB.
    let r = ask(&s, "/small.css", all);
    assert!(r.header("content-encoding").is_none());
    assert_eq!(r.body, SMALL_CSS);
    // The seed's downloads (application/octet-stream attachments), and images.
    for path in ["/notes.txt", "/logo.png"] {
        let r = ask(&s, path, all);
        r.expect_status(200);
        assert!(r.header("content-encoding").is_none(), "{path}");
        assert!(r.header("content-disposition").is_some(), "{path}");
    }
    if s.is_h2() {
        // What follows is about HTTP/1.0, which HTTP/2 is not.
        return;
    }
    // HTTP/1.0 cannot take a stream of unknown length: a large file goes as it is.
    let r = s.raw("GET /big.json HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n");
    r.expect_status(200);
    assert!(r.header("content-encoding").is_none());
    assert!(r.header("transfer-encoding").is_none());
    assert_eq!(r.body.len(), 3 << 20);
    // But a kept variant can.
    let r = s.raw("GET /app.bundle.js HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(decoded(&r), text(100 << 10, 1));
}

pub fn a_large_file_is_streamed_in_chunks(bin: &str) {
    let s = Server::start_in(bin, fixture(), &[]);
    let want = text(3 << 20, 2);
    let mut c = s.connect();
    for coding in ["zstd", "gzip", "br"] {
        let r = c.request(&get_with(
            &s,
            "/big.json",
            &format!("Accept-Encoding: {coding}\r\n"),
        ));
        r.expect_status(200);
        assert_eq!(r.header("content-encoding"), Some(coding));
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert!(r.header("content-length").is_none());
        assert!(!r.closes(), "a streamed answer keeps the connection");
        assert!(r.body.len() < want.len() / 3);
        assert_eq!(decoded(&r), want, "{coding}");
    }
    // The same connection still serves.
    let r = c.request(&get_with(&s, "/small.css", ""));
    r.expect_status(200);
}

pub fn compress_off_and_precompressed_siblings(bin: &str) {
    let s = Server::start_in(bin, fixture(), &[]);
    // The sibling wins when the client takes its coding.
    let r = ask(&s, "/pre.js", "Accept-Encoding: br, gzip\r\n");
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(r.body, b"not really brotli, but the sibling wins");
    // Even for a client that prefers gzip (there is no pre.js.gz): it takes br.
    let r = ask(&s, "/pre.js", "Accept-Encoding: gzip, br;q=0.5\r\n");
    assert_eq!(r.header("content-encoding"), Some("br"));
    // A client that refuses br: compressed on the fly.
    let r = ask(&s, "/pre.js", "Accept-Encoding: gzip, br;q=0\r\n");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(decoded(&r), text(8 << 10, 3));
    drop(s);
    let s = Server::start_in(bin, fixture(), &["--compress", "off"]);
    let r = ask(&s, "/app.bundle.js", "Accept-Encoding: gzip, br, zstd\r\n");
    r.expect_status(200);
    assert!(r.header("content-encoding").is_none());
    assert_eq!(r.body, text(100 << 10, 1));
    // A bad value is refused at start.
    let (status, _, err) = crate::util::run_to_exit(
        bin,
        &["--compress", "maybe", "--port", "0"],
        std::path::Path::new("."),
    );
    assert!(!status.success());
    assert!(err.contains("on or off"), "{err}");
}

/// REDbot (the HTTP linter: `.ci/run` installs it in a virtualenv, pinned) on a kept
/// variant, a streamed one and an identity answer: no message worse than the one
/// warning SPEC asks for (`Keep-Alive`, which RFC 9112 calls deprecated).
pub fn redbot_finds_nothing_wrong(bin: &str) {
    assert!(
        crate::have("redbot"),
        "`redbot` is not installed: bash .ci/run installs it (pip install redbot==2.7.1 in a venv)"
    );
    let s = Server::start_in(bin, fixture(), &[]);
    for path in ["/app.bundle.js", "/big.json", "/small.css"] {
        let out = std::process::Command::new("redbot")
            .args(["-o", "har", &format!("http://{}{path}", s.host())])
            .output()
            .expect("redbot");
        assert!(out.status.success(), "redbot {path}: {out:?}");
        let har: serde_json::Value = serde_json::from_slice(&out.stdout).expect("HAR");
        let notes: Vec<(String, String, String)> = har["log"]["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .flat_map(|e| e["_red_messages"].as_array().cloned().unwrap_or_default())
            .map(|n| {
                let f = |k: &str| n[k].as_str().unwrap_or_default().to_string();
                (f("level"), f("subject"), f("summary"))
            })
            .collect();
        assert!(!notes.is_empty(), "{path}: REDbot said nothing");
        let bad: Vec<_> = notes
            .iter()
            .filter(|(level, _, summary)| {
                level == "BAD" || (level == "WARN" && !summary.contains("Keep-Alive"))
            })
            .collect();
        assert!(bad.is_empty(), "{path}: {bad:#?}");
        if path != "/small.css" {
            assert!(
                notes
                    .iter()
                    .any(|(level, subject, _)| level == "GOOD"
                        && subject == "field-content-encoding"),
                "{path}: REDbot saw no compression: {notes:#?}"
            );
        }
    }
}
