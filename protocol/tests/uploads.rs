//! SPEC "Uploads of any file" through a connection: `PUT` (created, replaced under
//! `If-Match`, 428, 412, 409), `DELETE`, multipart forms (names sanitised and numbered,
//! never overwriting), streaming in bounded chunks with back-pressure, `--max-upload`,
//! the rate rule, a full disk, and the file begun always aborted when an upload stops.

mod common;

use std::sync::Arc;

use common::*;
use protocol::sim::Tables;
use protocol::{AccessControl, Config, Rules, UploadError};

const ALICE: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$Vm/cP5vKzAT0WxgoA3cE+lsZUHKCKkeXi7E3uAzu8SA";
/// "Authorization: Basic alice:wonderland".
const AUTH: &str = "Authorization: Basic YWxpY2U6d29uZGVybGFuZA==\r\n";

fn upload_config() -> Config {
    let mut c = config();
    let rules = Rules::parse_lines(&format!("@/:ro\nalice:{ALICE}@/:rw\n")).expect("rules");
    c.access = Some(Arc::new(AccessControl::new(rules, "r")));
    c.max_upload = 8 << 20;
    c
}

fn uploader() -> Driver {
    let mut d = driver_with(upload_config());
    d.world
        .passwords
        .insert("alice".into(), "wonderland".into());
    d
}

fn put(path: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut r = req(
        "PUT",
        path,
        &format!("{AUTH}{extra}Content-Length: {}\r\n\r\n", body.len()),
    );
    r.extend_from_slice(body);
    r
}

fn etag_of(d: &Driver, path: &str) -> String {
    let Some(Ok(m)) = d.world.files.get(path) else {
        panic!("no {path}");
    };
    format!("\"{:x}-{:x}.{:x}\"", m.len, m.mtime_secs, m.mtime_nanos)
}

t!(put_without_a_rule_is_405 {
    let d = one(&req("PUT", "/x.txt", "Content-Length: 0\r\n"));
    let r = d.only();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST, OPTIONS"));
    // With a rule that lets it be written, OPTIONS says so.
    let mut d = uploader();
    d.send(&req("OPTIONS", "/x.txt", ""));
    assert_eq!(d.only().header("allow"), Some("GET, HEAD, POST, PUT, DELETE, OPTIONS"));
});

t!(put_creates_a_file_201 {
    let mut d = uploader();
    d.send(&put("/docs/new.txt", "", b"hello"));
    let r = d.only();
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("location"), Some("/docs/new.txt"));
    assert!(r.header("etag").is_some());
    assert_eq!(d.world.committed.get("docs/new.txt").map(Vec::as_slice), Some(&b"hello"[..]));
    assert!(d.out.contains(&Out::Commit("docs/new.txt".into(), false)));
});

t!(anonymous_put_is_401_and_writes_nothing {
    let mut d = uploader();
    let mut r = req("PUT", "/a.txt", "Content-Length: 5\r\n\r\n");
    r.extend_from_slice(b"hello");
    d.send(&r);
    assert_eq!(d.status(), 401);
    assert!(d.world.committed.is_empty());
    assert!(!d.out.iter().any(|o| matches!(o, Out::Begin(_))));
});

t!(put_over_an_existing_file_needs_if_match {
    let mut d = uploader();
    d.send(&put("/index.html", "", b"new"));
    assert_eq!(d.status(), 428);
    assert!(d.world.committed.is_empty());
    let mut d = uploader();
    d.send(&put("/index.html", "If-Match: \"stale\"\r\n", b"new"));
    assert_eq!(d.status(), 412);
    let mut d = uploader();
    d.send(&put("/index.html", "If-None-Match: *\r\n", b"new"));
    assert_eq!(d.status(), 412);
    let mut d = uploader();
    let tag = etag_of(&d, "index.html");
    d.send(&put("/index.html", &format!("If-Match: {tag}\r\n"), b"new"));
    let r = d.only();
    assert_eq!(r.status, 204, "{r:?}");
    assert!(r.header("etag").is_some_and(|t| t != tag));
    assert!(d.out.contains(&Out::Commit("index.html".into(), true)));
    // If-None-Match: * creates only.
    let mut d = uploader();
    d.send(&put("/fresh.txt", "If-None-Match: *\r\n", b"x"));
    assert_eq!(d.status(), 201);
});

t!(put_to_a_directory_or_without_its_parent_is_409 {
    let mut d = uploader();
    d.send(&put("/docs", "", b"x"));
    assert_eq!(d.status(), 409);
    let mut d = uploader();
    d.send(&put("/nowhere/x.txt", "", b"x"));
    assert_eq!(d.status(), 409);
    assert_eq!(d.world.aborted, 0, "nothing was begun");
});

t!(a_large_body_streams_in_bounded_chunks {
    let mut d = uploader();
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let request = put("/big.bin", "", &body);
    for piece in request.chunks(64 * 1024) {
        d.send(piece);
    }
    assert_eq!(d.status(), 201);
    assert_eq!(d.world.committed.get("big.bin"), Some(&body));
    let chunks: Vec<usize> = d
        .out
        .iter()
        .filter_map(|o| if let Out::Chunk(n) = o { Some(*n) } else { None })
        .collect();
    assert!(chunks.len() >= 10, "{chunks:?}");
    assert!(chunks.iter().all(|&n| n <= 256 * 1024 + 64 * 1024), "{chunks:?}");
});

t!(back_pressure_stops_reading_while_a_chunk_is_written {
    let mut d = uploader();
    d.hold_writes = false;
    let body = vec![7u8; 2_000_000];
    let request = put("/bp.bin", "", &body);
    // Hand everything at once, but answer nothing: the core must not hold it all.
    d.handle(protocol::Input::Received(&request));
    // Answer the verification and the target's open, then the begin.
    for _ in 0..3 {
        if let Some(a) = d.answer() {
            d.handle(a.input());
        }
    }
    // The first chunk is out; the connection waits for the runtime, not the client.
    assert_eq!(d.conn.wait(), protocol::Wait::Runtime);
    d.run();
    assert_eq!(d.status(), 201);
    assert_eq!(d.world.committed.get("bp.bin").map(Vec::len), Some(body.len()));
});

t!(max_upload_is_413_at_once_from_content_length {
    let mut d = uploader();
    d.send(&req("PUT", "/big.bin", &format!("{AUTH}Content-Length: {}\r\n", 9 << 20)));
    let r = d.only();
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(!d.out.iter().any(|o| matches!(o, Out::Begin(_))));
    // Chunked: as soon as it passes, and the file begun is removed.
    let mut d = uploader();
    d.send(&req("PUT", "/big.bin", &format!("{AUTH}Transfer-Encoding: chunked\r\n")));
    let chunk = format!("{:x}\r\n{}\r\n", 1 << 20, "z".repeat(1 << 20));
    for _ in 0..9 {
        d.send(chunk.as_bytes());
    }
    assert_eq!(d.status(), 413);
    assert_eq!(d.world.aborted, 1);
    assert!(d.world.committed.is_empty());
});

t!(a_stalled_body_is_408_and_the_file_is_removed {
    let mut d = uploader();
    d.send(&req("PUT", "/slow.bin", &format!("{AUTH}Content-Length: 100000\r\n")));
    d.send(b"a few bytes");
    let until = d.deadline().expect("a deadline while the body is due");
    d.set_time(until);
    d.fire_timeout();
    let r = d.only();
    assert_eq!(r.status, 408);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(d.world.aborted, 1);
    assert!(d.world.committed.is_empty());
});

t!(a_client_gone_mid_body_aborts {
    let mut d = uploader();
    d.send(&req("PUT", "/gone.bin", &format!("{AUTH}Content-Length: 100000\r\n")));
    d.send(b"some bytes");
    d.eof();
    assert!(d.closed);
    assert_eq!(d.world.aborted, 1);
    assert!(d.world.committed.is_empty());
});

t!(a_full_disk_is_507 {
    let mut d = uploader();
    d.world.stream_results.push_back(Ok(()));
    d.world.stream_results.push_back(Err(UploadError::NoSpace));
    d.send(&put("/full.bin", "", &vec![1u8; 300_000]));
    assert_eq!(d.status(), 507);
    assert_eq!(d.world.aborted, 1);
    // A JSON upload too.
    let mut d = driver();
    d.world.upload_result = Err(UploadError::NoSpace);
    d.send(&upload("{\"a\":1}"));
    assert_eq!(d.status(), 507);
});

t!(delete_removes_a_file {
    let mut d = uploader();
    d.send(&req("DELETE", "/sample.txt", AUTH));
    assert_eq!(d.status(), 204);
    assert_eq!(d.world.deleted, ["sample.txt"]);
    let mut d = uploader();
    d.send(&req("DELETE", "/missing.txt", AUTH));
    assert_eq!(d.status(), 404);
    let mut d = uploader();
    d.send(&req("DELETE", "/docs", AUTH));
    assert_eq!(d.status(), 409);
    let mut d = uploader();
    d.send(&req("DELETE", "/sample.txt", &format!("{AUTH}If-Match: \"stale\"\r\n")));
    assert_eq!(d.status(), 412);
    assert!(d.world.deleted.is_empty());
    let mut d = uploader();
    d.send(&req("DELETE", "/sample.txt", ""));
    assert_eq!(d.status(), 401);
});

fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, data) in parts {
        body.extend_from_slice(b"--XyZ\r\n");
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--XyZ--\r\n");
    let mut r = req(
        "POST",
        "/upload",
        &format!(
            "{AUTH}Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ),
    );
    r.extend_from_slice(&body);
    r
}

t!(a_form_saves_each_file_under_its_sanitised_name {
    let mut d = uploader();
    d.send(&form(&[
        ("note", None, b"just a field"),
        ("file", Some("report.pdf"), b"%PDF-1"),
        ("file", Some("../../etc/passwd"), b"root:x"),
        ("file", Some(""), b""),
    ]));
    let r = d.only();
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("location"), Some("/uploads/report.pdf"));
    let json: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(json["status"], "created");
    assert_eq!(json["path"], "/uploads/report.pdf");
    assert_eq!(json["paths"], serde_json::json!(["/uploads/report.pdf", "/uploads/passwd"]));
    assert_eq!(d.world.committed.get("uploads/report.pdf").map(Vec::as_slice), Some(&b"%PDF-1"[..]));
    assert_eq!(d.world.committed.get("uploads/passwd").map(Vec::as_slice), Some(&b"root:x"[..]));
});

t!(a_taken_name_is_numbered_never_overwritten {
    let mut d = uploader();
    d.world.files.insert("uploads/report.pdf".into(), Tables::file(3, MTIME));
    d.world.files.insert("uploads/report-1.pdf".into(), Tables::file(3, MTIME));
    d.send(&form(&[("file", Some("report.pdf"), b"third")]));
    let r = d.only();
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some("/uploads/report-2.pdf"));
    assert_eq!(d.world.committed.get("uploads/report-2.pdf").map(Vec::as_slice), Some(&b"third"[..]));
});

t!(a_form_cut_anywhere_gives_the_same_files {
    let request = form(&[("a", Some("one.txt"), b"first file"), ("b", Some("two.txt"), b"second")]);
    for size in [1, 2, 3, 7, 64] {
        let mut d = uploader();
        for piece in request.chunks(size) {
            d.send(piece);
        }
        assert_eq!(d.status(), 201, "pieces of {size}");
        assert_eq!(d.world.committed.len(), 2, "pieces of {size}");
        assert_eq!(d.world.committed.get("uploads/two.txt").map(Vec::as_slice), Some(&b"second"[..]));
    }
});

t!(a_form_without_a_file_or_malformed_is_400 {
    let mut d = uploader();
    d.send(&form(&[("note", None, b"x")]));
    assert_eq!(d.status(), 400);
    let mut d = uploader();
    let mut r = req(
        "POST",
        "/upload",
        &format!("{AUTH}Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 10\r\n\r\n"),
    );
    r.extend_from_slice(b"--XyZ\r\nbad");
    d.send(&r);
    assert_eq!(d.status(), 400);
    // Anonymous: 401, nothing begun.
    let mut d = uploader();
    let f = form(&[("file", Some("x.txt"), b"x")]);
    let anonymous = String::from_utf8_lossy(&f).replace(AUTH, "");
    d.send(anonymous.as_bytes());
    assert_eq!(d.status(), 401);
    assert!(d.world.committed.is_empty());
});

t!(expect_continue_waits_for_the_preconditions {
    let mut d = uploader();
    d.send(&req("PUT", "/index.html", &format!("{AUTH}Expect: 100-continue\r\nContent-Length: 3\r\n")));
    assert_eq!(d.status(), 428);
    assert!(!d.out.iter().any(|o| matches!(o, Out::Continue)));
    let mut d = uploader();
    d.send(&req("PUT", "/new.txt", &format!("{AUTH}Expect: 100-continue\r\nContent-Length: 3\r\n")));
    assert!(d.out.iter().any(|o| matches!(o, Out::Continue)));
    d.send(b"abc");
    assert_eq!(d.status(), 201);
    // An empty PUT has no body to wait for: no 100 Continue, just the answer.
    let mut d = uploader();
    d.send(&req("PUT", "/empty.txt", &format!("{AUTH}Expect: 100-continue\r\nContent-Length: 0\r\n")));
    assert_eq!(d.status(), 201);
    assert!(!d.out.iter().any(|o| matches!(o, Out::Continue)));
});
