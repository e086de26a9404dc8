//! Uploads of any file into the object store (SPEC "Uploads of any file",
//! `--upload-store s3://`): a `PUT` of `/uploads/NAME` and the files of a form stream
//! into the store (a body over 8 MiB as a multipart upload, completed only once the whole
//! body arrived), names taken are never written over, `DELETE` removes the object, and
//! an upload cut short leaves no object and no multipart upload behind
//! (`ListMultipartUploads`).

use std::io::Write;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::Garage;
use crate::uploads::{rules, send, AUTH};
use crate::Server;

fn server(g: &Garage, bin: &str) -> Server {
    let rules = rules(bin);
    let mut args: Vec<&str> = rules.iter().map(String::as_str).collect();
    args.extend(["--max-upload", "104857600"]);
    g.server(bin, &args)
}

/// A signed GET of the bucket's S3 API (`query` after `/uploads?`).
fn s3_get(g: &Garage, query: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "20"])
        .args(["--aws-sigv4", "aws:amz:garage:s3"])
        .args(["--user", &format!("{}:{}", g.key_id, g.secret)])
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
        .arg(format!("http://127.0.0.1:{}/uploads?{query}", g.s3_port))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "GET ?{query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The keys in the bucket (the server's prefix `test/` included).
fn keys(g: &Garage) -> Vec<String> {
    let xml = s3_get(g, "list-type=2&max-keys=1000");
    xml.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

/// How many multipart uploads are in progress (`ListMultipartUploads`).
fn multipart_uploads(g: &Garage) -> usize {
    s3_get(g, "uploads=").matches("<Upload>").count()
}

/// Waits (up to 10 s: an abort runs on a thread of its own) until no multipart upload
/// is in progress and no temporary object is left.
fn expect_nothing_left_over(g: &Garage) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let open = multipart_uploads(g);
        let tmp: Vec<String> = keys(g)
            .into_iter()
            .filter(|k| k.contains(".tmp-"))
            .collect();
        if open == 0 && tmp.is_empty() {
            return;
        }
        assert!(
            Instant::now() < until,
            "left in the bucket: {open} multipart uploads, temporaries {tmp:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

fn sha(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

pub fn a_large_put_streams_into_the_store_as_a_multipart_upload(bin: &str) {
    let g = Garage::start();
    let s = server(&g, bin);
    // 20 MiB: three parts; and a small one: one PUT.
    let big = bytes(20 << 20, 1);
    let r = send(&s, "PUT", "/uploads/big%20file.bin", AUTH, &big);
    r.expect_status(201);
    assert_eq!(r.header("location"), Some("/uploads/big%20file.bin"));
    let etag = r.header("etag").expect("ETag").to_string();
    let got = s.get("/uploads/big%20file.bin");
    got.expect_status(200);
    assert_eq!(got.body.len(), big.len());
    assert_eq!(sha(&got.body), sha(&big), "read back byte for byte");
    assert_eq!(got.header("etag"), Some(etag.as_str()));
    send(&s, "PUT", "/uploads/small.txt", AUTH, b"small").expect_status(201);
    assert_eq!(s.get("/uploads/small.txt").body, b"small");
    // Nothing below the root, nothing left over in the store.
    assert!(s.fx.uploads().is_empty(), "{:?}", s.fx.uploads());
    expect_nothing_left_over(&g);
    let mut k = keys(&g);
    k.sort();
    assert_eq!(k, ["test/big file.bin", "test/small.txt"]);
    // Over an existing object: 428 without a precondition, 204 with its tag.
    send(&s, "PUT", "/uploads/big%20file.bin", AUTH, b"x").expect_status(428);
    let r = send(
        &s,
        "PUT",
        "/uploads/big%20file.bin",
        &format!("{AUTH}If-Match: {etag}\r\n"),
        &big[..12 << 20],
    );
    r.expect_status(204);
    assert_eq!(
        sha(&s.get("/uploads/big%20file.bin").body),
        sha(&big[..12 << 20])
    );
    expect_nothing_left_over(&g);
    // DELETE removes the object.
    send(&s, "DELETE", "/uploads/big%20file.bin", AUTH, b"").expect_status(204);
    s.get("/uploads/big%20file.bin").expect_status(404);
    assert_eq!(keys(&g), ["test/small.txt"]);
}

pub fn form_files_go_to_the_store_under_numbered_names(bin: &str) {
    let g = Garage::start();
    let s = server(&g, bin);
    let big = bytes(10 << 20, 2);
    let mut body = Vec::new();
    for (name, content) in [("report.pdf", &big[..]), ("report.pdf", b"second")] {
        write!(
            body,
            "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .expect("write");
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--XyZ--\r\n");
    let r = send(
        &s,
        "POST",
        "/upload",
        &format!("{AUTH}Content-Type: multipart/form-data; boundary=XyZ\r\n"),
        &body,
    );
    r.expect_status(201);
    let json: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    let paths: Vec<&str> = json["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert_eq!(paths, ["/uploads/report.pdf", "/uploads/report-1.pdf"]);
    assert_eq!(sha(&s.get("/uploads/report.pdf").body), sha(&big));
    assert_eq!(s.get("/uploads/report-1.pdf").body, b"second");
    assert!(s.fx.uploads().is_empty(), "{:?}", s.fx.uploads());
    expect_nothing_left_over(&g);
}

pub fn an_upload_cut_short_leaves_nothing_in_the_store(bin: &str) {
    let g = Garage::start();
    let s = server(&g, bin);
    // The client promises 30 MiB, sends 20 (two parts gone to the store), and leaves.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    write!(
        c,
        "PUT /uploads/cut.bin HTTP/1.1\r\nHost: {}\r\n{AUTH}Content-Length: {}\r\n\r\n",
        s.host(),
        30 << 20
    )
    .expect("head");
    c.write_all(&bytes(20 << 20, 3)).expect("body");
    // Let the parts reach the store before the client goes.
    let until = Instant::now() + Duration::from_secs(20);
    while multipart_uploads(&g) == 0 && Instant::now() < until {
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        multipart_uploads(&g),
        1,
        "the parts went to the store as they came"
    );
    drop(c);
    expect_nothing_left_over(&g);
    assert!(keys(&g).is_empty(), "{:?}", keys(&g));
    s.get("/uploads/cut.bin").expect_status(404);
    // And the server still takes uploads.
    send(&s, "PUT", "/uploads/after.bin", AUTH, &bytes(9 << 20, 4)).expect_status(201);
    expect_nothing_left_over(&g);
}
