//! SPEC "Compression and archives", the core's side: which answers are compressed and
//! in which coding (q-values, `identity;q=0`), the headers of a compressed answer
//! (`Content-Encoding`, `Vary`, a strong tag per coding, a length or chunked framing),
//! 304 and 412 per coding, and what is never compressed (ranges, small files,
//! attachments, precompressed siblings, `--compress off`, a refusal by the runtime).

mod common;

use common::*;
use protocol::sim::Tables;
use protocol::Coding;

/// A compressible file of 4 KiB (`/page.js`), with its identity tag.
fn compressible() -> (Driver, String) {
    let mut d = driver();
    d.world
        .files
        .insert("page.js".into(), Tables::file(4096, MTIME));
    let tag = format!("\"{:x}-{:x}.0\"", 4096, MTIME);
    (d, tag)
}

fn with_ae(path: &str, ae: &str) -> Vec<u8> {
    get_with(path, &format!("Accept-Encoding: {ae}\r\n"))
}

fn coding_tag(identity: &str, coding: &str) -> String {
    format!("{}-{coding}\"", identity.trim_end_matches('"'))
}

t!(the_preferred_coding_is_sent_with_its_own_tag {
    for (ae, coding) in [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip, br, zstd", "zstd"),
        ("br, gzip", "br"),
        ("zstd;q=0.5, br;q=0.9, gzip", "gzip"),
        ("*", "zstd"),
        ("gzip;q=0.1, identity;q=0", "gzip"),
    ] {
        let (mut d, tag) = compressible();
        d.send(&with_ae("/page.js", ae));
        let r = d.only();
        assert_eq!(r.status, 200, "{ae}: {r:?}");
        assert_eq!(r.header("content-encoding"), Some(coding), "{ae}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{ae}");
        assert_eq!(r.header("etag"), Some(coding_tag(&tag, coding).as_str()), "{ae}");
        // The sim's runtime compresses to 100 bytes.
        assert_eq!(r.header("content-length"), Some("100"), "{ae}");
        assert!(!r.has("accept-ranges"), "a compressed answer offers no ranges");
        assert!(d.out.contains(&Out::Compress(coding)), "{ae}");
        assert!(d.out.contains(&Out::SendFile { offset: 0, len: 100 }), "{ae}");
    }
});

t!(identity_when_the_client_prefers_it_or_names_nothing_we_have {
    for ae in ["identity", "compress, deflate", "gzip;q=0, br;q=0, zstd;q=0", ""] {
        let (mut d, tag) = compressible();
        d.send(&with_ae("/page.js", ae));
        let r = d.only();
        assert_eq!(r.status, 200, "{ae:?}");
        assert!(!r.has("content-encoding"), "{ae:?}");
        assert_eq!(r.header("etag"), Some(tag.as_str()));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{ae:?}");
        assert!(d.world.compressions.is_empty(), "{ae:?}");
    }
    // No Accept-Encoding at all: identity.
    let (mut d, _) = compressible();
    d.send(&get("/page.js"));
    assert!(!d.only().has("content-encoding"));
});

t!(nothing_acceptable_is_406 {
    for ae in ["identity;q=0", "*;q=0", "br;q=0, identity;q=0"] {
        let (mut d, _) = compressible();
        d.send(&with_ae("/page.js", ae));
        assert_eq!(d.status(), 406, "{ae}");
        // The connection goes on.
        d.send(&get("/page.js"));
        assert_eq!(d.responses().last().map(|r| r.status), Some(200), "{ae}");
    }
});

t!(a_304_and_a_412_are_decided_per_coding {
    let (mut d, tag) = compressible();
    let br = coding_tag(&tag, "br");
    // The br tag matches the br representation only.
    d.send(&with_ae("/page.js", &format!("br\r\nIf-None-Match: {br}")));
    let r = d.only();
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(br.as_str()));
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert!(d.world.compressions.is_empty(), "a 304 compresses nothing");
    for (ae, inm) in [("gzip", &br), ("identity", &br), ("br", &tag)] {
        let (mut d, _) = compressible();
        d.send(&with_ae("/page.js", &format!("{ae}\r\nIf-None-Match: {inm}")));
        assert_eq!(d.status(), 200, "{ae} with {inm}");
    }
    // If-Match of another representation's tag: 412.
    let (mut d, _) = compressible();
    d.send(&with_ae("/page.js", &format!("gzip\r\nIf-Match: {br}")));
    let r = d.only();
    assert_eq!(r.status, 412);
    assert!(d.world.compressions.is_empty());
    let (mut d, _) = compressible();
    let gz = coding_tag(&tag, "gzip");
    d.send(&with_ae("/page.js", &format!("gzip\r\nIf-Match: {gz}")));
    assert_eq!(d.status(), 200);
});

t!(ranges_small_files_attachments_and_other_types_are_not_compressed {
    let cases = [
        // A range gets the identity representation.
        ("/page.js", "gzip\r\nRange: bytes=0-9", 206),
        // Under 1 KiB (style.css is 50 bytes).
        ("/style.css", "br", 200),
        // application/octet-stream attachments (the seed's txt, png, jpg).
        ("/logo.png", "gzip", 200),
        ("/sample.txt", "gzip", 200),
        // Not a compressible type.
        ("/favicon.ico", "gzip", 200),
    ];
    for (path, ae, status) in cases {
        let mut d = driver();
        d.world
            .files
            .insert("page.js".into(), Tables::file(4096, MTIME));
        d.world
            .files
            .insert("favicon.ico".into(), Tables::file(4096, MTIME));
        d.world
            .files
            .insert("sample.txt".into(), Tables::file(4096, MTIME));
        d.send(&with_ae(path, ae));
        let r = d.only();
        assert_eq!(r.status, status, "{path} {ae}");
        assert!(!r.has("content-encoding"), "{path} {ae}: {r:?}");
        assert!(d.world.compressions.is_empty(), "{path} {ae}");
    }
    // A small file is compressed anyway when identity is refused.
    let mut d = driver();
    d.send(&with_ae("/style.css", "br, identity;q=0"));
    assert_eq!(d.only().header("content-encoding"), Some("br"));
});

t!(a_precompressed_sibling_still_wins {
    let mut d = driver();
    d.world
        .files
        .insert("app.js".into(), Tables::file(4096, MTIME));
    d.send(&with_ae("/app.js", "br, gzip"));
    let r = d.only();
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(r.header("content-length"), Some("20"), "app.js.br is 20 bytes");
    assert!(d.out.contains(&Out::Open("app.js.br".into())));
    assert!(d.world.compressions.is_empty());
    // The client prefers gzip: app.js.gz.
    let mut d = driver();
    d.send(&with_ae("/app.js", "br;q=0.5, gzip"));
    assert_eq!(d.only().header("content-length"), Some("30"));
    // zstd preferred and no app.js.zst: the next sibling the client accepts.
    let mut d = driver();
    d.send(&with_ae("/app.js", "zstd, gzip;q=0.8"));
    assert_eq!(d.only().header("content-encoding"), Some("gzip"));
    assert!(d.out.contains(&Out::Open("app.js.zst".into())));
    // A sibling the client refuses is never sent: compressed on the fly instead.
    let mut d = driver();
    d.world
        .files
        .insert("only.js".into(), Tables::file(4096, MTIME));
    d.send(&with_ae("/only.js", "gzip, br;q=0"));
    let r = d.only();
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(!d.out.contains(&Out::Open("only.js.br".into())));
    assert_eq!(d.world.compressions, [Coding::Gzip]);
});

t!(compress_off_sends_identity {
    let mut c = config();
    c.compress = false;
    let mut d = driver_with(c);
    d.world
        .files
        .insert("page.js".into(), Tables::file(4096, MTIME));
    d.send(&with_ae("/page.js", "gzip, br"));
    let r = d.only();
    assert_eq!(r.status, 200);
    assert!(!r.has("content-encoding"));
    assert!(d.world.compressions.is_empty());
});

t!(a_refusal_by_the_runtime_sends_identity_at_once {
    let (mut d, tag) = compressible();
    d.world.compressed = protocol::Compressed::Refused;
    d.send(&with_ae("/page.js", "br"));
    let r = d.only();
    assert_eq!(r.status, 200);
    assert!(!r.has("content-encoding"));
    assert_eq!(r.header("etag"), Some(tag.as_str()));
    assert_eq!(r.header("content-length"), Some("4096"));
    assert!(d.out.contains(&Out::SendFile { offset: 0, len: 4096 }));
    assert_eq!(d.world.compressions, [Coding::Br]);
});

t!(a_streamed_answer_is_chunked_in_http_1_1 {
    let (mut d, _) = compressible();
    d.world.compressed = protocol::Compressed::Stream;
    d.send(&with_ae("/page.js", "zstd"));
    let r = d.only();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(!r.has("content-length"));
    assert_eq!(r.header("content-encoding"), Some("zstd"));
    // The runtime frames the file's compressed bytes.
    assert!(d.out.contains(&Out::SendFile { offset: 0, len: 4096 }));
    // The connection goes on.
    d.send(&get("/style.css"));
    assert_eq!(d.responses().len(), 2);
});

t!(head_gets_the_same_fields_without_a_body {
    let (mut d, tag) = compressible();
    d.send(&req("HEAD", "/page.js", "Accept-Encoding: br\r\n"));
    let r = d.only();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(r.header("content-length"), Some("100"));
    assert_eq!(r.header("etag"), Some(coding_tag(&tag, "br").as_str()));
    assert!(!d.out.iter().any(|o| matches!(o, Out::SendFile { .. })));
});

t!(http_1_0_never_gets_chunked_framing {
    let (mut d, _) = compressible();
    d.world.compressed = protocol::Compressed::Stream;
    d.send(b"GET /page.js HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n");
    let r = d.only();
    assert_eq!(r.status, 200);
    assert!(!r.has("transfer-encoding"));
    assert!(!r.has("content-encoding"));
    assert_eq!(r.header("content-length"), Some("4096"));
});
