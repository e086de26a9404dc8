//! Uploads of any file (SPEC "Uploads of any file"): `PUT` (created, replaced under
//! `If-Match`, 428, 412, 409), `DELETE`, multipart forms with hostile file names, a
//! 2 GiB `PUT` in bounded memory, 20 at once, a SIGKILL among large ones, a full disk
//! (a 1 MiB tmpfs), a body that stops coming, `--max-upload`.
//!
//! Where a test goes: here if a file of any type is sent to be stored (`PUT`, a form);
//! the JSON endpoint of the seed is [`requests`](crate::requests).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::util::{proc_kib, run_to_exit, tail};
use crate::{Fixture, Response, Server};

/// The cases of this group, for [`tests!`](crate::tests): `spec` run over HTTP and over
/// HTTPS, `more` over HTTP only (see [`crate::cases`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __uploads_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] uploads;
            spec: [
                put_creates_replaces_and_refuses,
                delete_removes_a_file,
                a_form_saves_files_under_safe_names,
            ];
            more: [
                a_two_gib_put_in_bounded_memory,
                twenty_puts_at_once_are_all_intact,
                sigkill_among_large_puts_leaves_nothing_partial,
                a_full_disk_is_507_and_uploads_resume,
                a_stalled_upload_is_408_and_leaves_nothing,
                max_upload_is_413_at_once,
                put_without_a_rule_is_405,
            ];
        }
    };
}
pub use crate::__uploads_list as list;

const PASSWORD: &str = "upload-pass";

/// The hash of [`PASSWORD`] for `up`, made once per test process by `--hash-password`.
pub(crate) fn hash(bin: &str) -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let mut child = Command::new(bin)
            .arg("--hash-password")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("--hash-password");
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{PASSWORD}\n").as_bytes());
        let out = child.wait_with_output().expect("--hash-password");
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_string()
    })
}

/// Rules where anyone reads and `up` writes.
pub(crate) fn rules(bin: &str) -> Vec<String> {
    vec![
        "-a".into(),
        "@/:ro".into(),
        "-a".into(),
        format!("up:{}@/:rw", hash(bin)),
    ]
}

fn start(bin: &str, fx: Fixture, extra: &[&str]) -> Server {
    let mut args: Vec<String> = rules(bin);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_in(bin, fx, &args)
}

/// `Authorization` for `up`.
pub(crate) const AUTH: &str = "Authorization: Basic dXA6dXBsb2FkLXBhc3M=\r\n";

pub(crate) fn send(s: &Server, method: &str, path: &str, extra: &str, body: &[u8]) -> Response {
    let mut c = s.connect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        s.host(),
        body.len()
    );
    c.send(head.as_bytes());
    c.send(body);
    c.read_response()
}

pub fn put_creates_replaces_and_refuses(bin: &str) {
    let s = start(bin, Fixture::new(), &[]);
    let r = send(&s, "PUT", "/new.txt", AUTH, b"first version\n");
    r.expect_status(201);
    assert_eq!(r.header("location"), Some("/new.txt"));
    let etag = r.header("etag").expect("ETag").to_string();
    let got = s.get("/new.txt");
    got.expect_status(200);
    assert_eq!(got.body, b"first version\n");
    assert_eq!(
        got.header("etag"),
        Some(etag.as_str()),
        "the same tag as the 201's"
    );
    // Over it: 428 without If-Match, 412 with a stale one or If-None-Match: *.
    send(&s, "PUT", "/new.txt", AUTH, b"x").expect_status(428);
    send(
        &s,
        "PUT",
        "/new.txt",
        &format!("{AUTH}If-Match: \"0-0.0\"\r\n"),
        b"x",
    )
    .expect_status(412);
    send(
        &s,
        "PUT",
        "/new.txt",
        &format!("{AUTH}If-None-Match: *\r\n"),
        b"x",
    )
    .expect_status(412);
    assert_eq!(
        s.get("/new.txt").body,
        b"first version\n",
        "nothing was destroyed"
    );
    let r = send(
        &s,
        "PUT",
        "/new.txt",
        &format!("{AUTH}If-Match: {etag}\r\n"),
        b"second\n",
    );
    r.expect_status(204);
    assert_ne!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(
        s.get("/new.txt").body,
        b"second\n",
        "served the next request"
    );
    // A directory, or a missing parent: 409. Anonymous: 401.
    send(&s, "PUT", "/uploads", AUTH, b"x").expect_status(409);
    send(&s, "PUT", "/no/such/dir.txt", AUTH, b"x").expect_status(409);
    send(&s, "PUT", "/anon.txt", "", b"x").expect_status(401);
    s.get("/anon.txt").expect_status(404);
}

pub fn delete_removes_a_file(bin: &str) {
    let fx = Fixture::new().with_file("gone.txt", "bye");
    let s = start(bin, fx, &[]);
    send(&s, "DELETE", "/gone.txt", "", b"").expect_status(401);
    send(
        &s,
        "DELETE",
        "/gone.txt",
        &format!("{AUTH}If-Match: \"x\"\r\n"),
        b"",
    )
    .expect_status(412);
    send(&s, "DELETE", "/gone.txt", AUTH, b"").expect_status(204);
    s.get("/gone.txt").expect_status(404);
    send(&s, "DELETE", "/gone.txt", AUTH, b"").expect_status(404);
    send(&s, "DELETE", "/uploads", AUTH, b"").expect_status(409);
}

/// A multipart body of `files` (name, bytes).
fn form(files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----rfs7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n")
            .as_bytes(),
    );
    for (name, data) in files {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{escaped}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        format!("Content-Type: multipart/form-data; boundary={boundary}\r\n"),
        body,
    )
}

pub fn a_form_saves_files_under_safe_names(bin: &str) {
    let s = start(bin, Fixture::new(), &[]);
    let hostile: &[&str] = &[
        "report.pdf",
        "report.pdf",
        "../../etc/passwd",
        "..\\..\\boot.ini",
        ".htaccess",
        "CON.txt",
        "a\u{202e}gpj.exe",
        "spaces and dots. .",
        "ctrl\u{7}bell.txt",
        "résumé 2026.txt",
    ];
    let files: Vec<(&str, Vec<u8>)> = hostile
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, format!("file {i}").into_bytes()))
        .collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (*n, d.as_slice())).collect();
    let (ct, body) = form(&refs);
    let r = send(&s, "POST", "/upload", &format!("{AUTH}{ct}"), &body);
    r.expect_status(201);
    let json: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let paths = json["paths"].as_array().expect("paths").clone();
    assert_eq!(paths.len(), hostile.len(), "{json}");
    assert_eq!(json["path"], "/uploads/report.pdf");
    assert_eq!(paths[1], "/uploads/report-1.pdf", "never overwritten");
    let uploads = s.fx.root.join("uploads");
    for (i, p) in paths.iter().enumerate() {
        let url = p.as_str().expect("a path");
        // Every file is in uploads/ (no directory of its own) and holds its own bytes.
        let name = url.strip_prefix("/uploads/").expect("in uploads/");
        assert!(!name.contains('/'), "{url}");
        let name = decode(name);
        let got = std::fs::read(uploads.join(&name)).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert_eq!(got, format!("file {i}").into_bytes(), "{url}");
    }
    // What has a known type is served back.
    assert_eq!(s.get("/uploads/report-1.pdf").body, b"file 1");
    for entry in std::fs::read_dir(&uploads).expect("uploads") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8 name");
        assert!(
            name == ".gitignore" || !name.starts_with('.'),
            "a hidden name was written: {name:?}"
        );
        assert!(
            !name.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{name:?}"
        );
        assert!(
            !name.contains(['/', '\\', ':', '*', '?', '"', '<', '>', '|']),
            "{name:?}"
        );
        assert!(!name.eq_ignore_ascii_case("con.txt"), "{name:?}");
    }
    assert!(!s.fx.base.path().join("etc").exists());
}

/// Percent-decodes a URL path segment.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Deterministic bytes for offset `at` (a cheap generator, reproducible when checking).
fn fill(buf: &mut [u8], at: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        let x = (at + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        *b = (x >> 56) as u8;
    }
}

/// Sends a `PUT` of `len` generated bytes on a raw socket, in 1 MiB writes; returns the
/// SHA-256 of what was sent and the answer's status.
fn put_generated(port: u16, host: &str, path: &str, len: u64) -> ([u8; 32], u16) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\n{AUTH}Content-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    c.write_all(head.as_bytes()).expect("head");
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut sent = 0u64;
    while sent < len {
        let n = buf.len().min((len - sent) as usize);
        fill(&mut buf[..n], sent);
        hasher.update(&buf[..n]);
        if c.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
    }
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    let status = Response::status_in(&answer).unwrap_or(0);
    (hasher.finalize().into(), status)
}

fn sha256_of(path: &Path) -> [u8; 32] {
    let mut f = std::fs::File::open(path).expect("the uploaded file");
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            return hasher.finalize().into();
        }
        hasher.update(&buf[..n]);
    }
}

pub fn a_two_gib_put_in_bounded_memory(bin: &str) {
    const LEN: u64 = 2 << 30;
    let s = start(bin, Fixture::new(), &["--max-upload", "4294967296"]);
    let t = Instant::now();
    let (sent, status) = put_generated(s.port, &s.host(), "/huge.bin", LEN);
    let took = t.elapsed();
    assert_eq!(status, 201, "{}", tail(&s.logs()));
    let peak = proc_kib(s.pid(), "VmHWM");
    let file = s.fx.root.join("huge.bin");
    assert_eq!(std::fs::metadata(&file).expect("huge.bin").len(), LEN);
    assert_eq!(
        sha256_of(&file),
        sent,
        "the bytes on disk are the bytes sent"
    );
    eprintln!(
        "2 GiB PUT in {took:.1?} ({:.0} MiB/s), peak RSS {} MiB",
        2048.0 / took.as_secs_f64(),
        peak / 1024
    );
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
    let _ = std::fs::remove_file(&file);
}

pub fn twenty_puts_at_once_are_all_intact(bin: &str) {
    let s = start(bin, Fixture::new(), &["--threads", "4"]);
    let host = s.host();
    let results: Vec<([u8; 32], u16)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let (port, host) = (s.port, host.clone());
                scope
                    .spawn(move || put_generated(port, &host, &format!("/f{i}.bin"), 3_000_000 + i))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    for (i, (sent, status)) in results.iter().enumerate() {
        assert_eq!(*status, 201, "PUT {i}");
        assert_eq!(
            sha256_of(&s.fx.root.join(format!("f{i}.bin"))),
            *sent,
            "f{i}.bin"
        );
    }
}

pub fn sigkill_among_large_puts_leaves_nothing_partial(bin: &str) {
    let fx = Fixture::new();
    let root = fx.root.clone();
    let s = start(bin, fx, &["--threads", "4"]);
    let (port, host) = (s.port, s.host());
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let host = host.clone();
            thread::spawn(move || put_generated(port, &host, &format!("/storm{i}.bin"), 64 << 20))
        })
        .collect();
    thread::sleep(Duration::from_millis(400));
    s.signal("KILL");
    let results: Vec<_> = clients
        .into_iter()
        .map(|c| c.join().expect("client"))
        .collect();
    // Every file under its name is whole (201 or not), or absent.
    for (i, (sent, status)) in results.iter().enumerate() {
        let path = root.join(format!("storm{i}.bin"));
        if path.exists() {
            assert_eq!(
                sha256_of(&path),
                *sent,
                "storm{i}.bin is partial (status {status})"
            );
        }
    }
    // A new server on the same root shows nothing partial either (the first one's
    // fixture, which owns the root, stays).
    let s2 = Server::start_in(bin, Fixture::at(&root), &[]);
    let s = &s2;
    for i in 0..8 {
        let r = s.get(&format!("/storm{i}.bin"));
        assert!(matches!(r.status, 200 | 404), "{r:?}");
        if r.status == 200 {
            assert_eq!(r.body.len() as u64, 64 << 20);
        }
    }
    let listing: Vec<String> = std::fs::read_dir(&root)
        .expect("root")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("storm"))
        .collect();
    assert!(listing.iter().all(|n| !n.starts_with('.')), "{listing:?}");
}

/// A 1 MiB tmpfs mounted at `dir` while this lives (tests run as root: `.ci/run`).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "the full-disk test mounts a 1 MiB tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

pub fn a_full_disk_is_507_and_uploads_resume(bin: &str) {
    let fx = Fixture::new();
    let small = fx.root.join("small");
    let _tmpfs = Tmpfs::mount(&small);
    let s = start(bin, fx, &[]);
    // A PUT larger than the disk: 507, logged at error, nothing left.
    let big = vec![b'x'; 3 << 20];
    let r = send(&s, "PUT", "/small/big.bin", AUTH, &big);
    assert_eq!(r.status, 507, "{r:?}");
    assert!(
        s.wait_log(&["ERROR", "full"], Duration::from_secs(3))
            .is_some(),
        "{}",
        tail(&s.logs())
    );
    let left: Vec<_> = std::fs::read_dir(&small).expect("small").collect();
    assert!(left.is_empty(), "left on the full disk: {left:?}");
    // Serving goes on, and a file that fits is stored.
    s.get("/sample.txt").expect_status(200);
    send(&s, "PUT", "/small/ok.txt", AUTH, b"fits").expect_status(201);
    assert_eq!(s.get("/small/ok.txt").body, b"fits");
    // A JSON upload on a full disk is 507 too (uploads/ on the tmpfs).
    let fx = Fixture::new();
    let uploads = fx.root.join("uploads");
    let _tmpfs2 = Tmpfs::mount(&uploads);
    std::fs::write(uploads.join("filler"), vec![0u8; 1000 * 1024]).ok();
    let s = start(bin, fx, &[]);
    let body = format!("{{\"pad\":\"{}\"}}", "p".repeat(200 * 1024));
    let r = send(
        &s,
        "POST",
        "/upload",
        &format!("{AUTH}Content-Type: application/json\r\n"),
        body.as_bytes(),
    );
    assert_eq!(r.status, 507, "{r:?}");
    // Once there is room again, uploads work.
    std::fs::remove_file(uploads.join("filler")).expect("make room");
    let r = send(
        &s,
        "POST",
        "/upload",
        &format!("{AUTH}Content-Type: application/json\r\n"),
        body.as_bytes(),
    );
    assert_eq!(r.status, 201, "{r:?}");
}

pub fn a_stalled_upload_is_408_and_leaves_nothing(bin: &str) {
    let s = start(bin, Fixture::new(), &["--idle-timeout", "2"]);
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    let head = format!(
        "PUT /stall.bin HTTP/1.1\r\nHost: {}\r\n{AUTH}Content-Length: 1000000\r\n\r\n",
        s.host()
    );
    c.write_all(head.as_bytes()).expect("head");
    c.write_all(&[b'a'; 100]).expect("a little");
    c.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    assert_eq!(
        Response::status_in(&answer),
        Some(408),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    thread::sleep(Duration::from_millis(200));
    let names: Vec<String> = std::fs::read_dir(&s.fx.root)
        .expect("root")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("stall")),
        "the temporary or the file was left: {names:?}"
    );
}

pub fn max_upload_is_413_at_once(bin: &str) {
    let s = start(bin, Fixture::new(), &["--max-upload", "1000"]);
    let mut c = s.connect();
    let t = Instant::now();
    c.send(
        format!(
            "PUT /big.bin HTTP/1.1\r\nHost: {}\r\n{AUTH}Content-Length: 5000\r\n\r\n",
            s.host()
        )
        .as_bytes(),
    );
    let r = c.read_response();
    r.expect_status(413);
    assert!(r.closes());
    assert!(t.elapsed() < Duration::from_secs(3), "413 not at once");
    // Under the limit, fine.
    send(&s, "PUT", "/small.bin", AUTH, &[1u8; 900]).expect_status(201);
}

pub fn put_without_a_rule_is_405(bin: &str) {
    let s = Server::start(bin, &[]);
    let r = send(&s, "PUT", "/x.txt", "", b"x");
    r.expect_status(405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST, OPTIONS"));
    send(&s, "DELETE", "/sample.txt", "", b"").expect_status(405);
    let fx = Fixture::new();
    let root = fx.root.to_str().expect("utf-8").to_string();
    let (status, _, err) = run_to_exit(
        bin,
        &["--port", "0", "--root", &root, "--max-upload", "0"],
        fx.base.path(),
    );
    assert_eq!(status.code(), Some(2), "{err}");
}
