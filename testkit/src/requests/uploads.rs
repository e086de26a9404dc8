//! Uploads of JSON (`POST /upload`, SPEC "Requests"): created whole under a new name and
//! readable back, refused for another type, bad JSON or another path with nothing
//! written, 200 at once with no name given twice, an unwritable `uploads/` (500, and
//! serving goes on), and a server killed with SIGKILL in a storm of uploads that loses
//! none it acknowledged.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{created_location, exchange, expect_error_page, get, lines_with, post, tail};
use crate::{Client, Fixture, Server};

// ----- Created, refused -----

pub fn upload_is_created_atomically_and_readable_back(bin: &str) {
    let s = Server::start(bin, &[]);
    let body = "{\"key\": \"value\", \"list\": [1, 2.5, null], \"nested\": {\"é\": true}}";
    let mut c = s.connect();
    let r = c.request(&post(&s, "/upload", "application/json", body));
    let location = created_location(&r);
    let name = location.trim_start_matches("/uploads/");
    assert_eq!(name.len(), 36 + 5, "a UUID name: {name}");
    // On disk: exactly this file, whole, and no temporary left.
    assert_eq!(s.fx.uploads(), [name.to_string()]);
    assert_eq!(
        std::fs::read(s.fx.root.join("uploads").join(name)).expect("upload"),
        body.as_bytes()
    );
    // Readable back on the same connection.
    let back = c.request(&get(&s, &location));
    back.expect_status(200)
        .expect_header("content-type", "application/json");
    assert_eq!(back.body, body.as_bytes());
    // A second upload gets another name.
    let other = created_location(&c.request(&post(&s, "/upload", "application/json", "[]")));
    assert_ne!(other, location);
    assert_eq!(s.fx.uploads().len(), 2);
}

pub fn upload_content_type_parameters_are_allowed(bin: &str) {
    let s = Server::start(bin, &[]);
    for ct in [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "Application/JSON",
    ] {
        let r = s.upload(ct, "{\"a\":1}");
        assert_eq!(r.status, 201, "{ct}: {r:?}");
    }
    assert_eq!(s.fx.uploads().len(), 3);
}

pub fn upload_other_content_type_is_415(bin: &str) {
    let s = Server::start(bin, &[]);
    for ct in [
        "text/plain",
        "application/jsonx",
        "application/x-www-form-urlencoded",
    ] {
        expect_error_page(&s.upload(ct, "{\"a\":1}"), 415);
    }
    let r = s.raw(&format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        s.host()
    ));
    expect_error_page(&r, 415);
    assert!(s.fx.uploads().is_empty(), "{:?}", s.fx.uploads());
}

pub fn upload_invalid_json_is_400(bin: &str) {
    let s = Server::start(bin, &[]);
    for body in [
        "{\"a\":",
        "not json",
        "",
        "{} trailing",
        "{'a': 1}",
        "\u{1}",
    ] {
        let r = s.upload("application/json", body);
        assert_eq!(r.status, 400, "{body:?}: {r:?}");
    }
    assert!(s.fx.uploads().is_empty(), "{:?}", s.fx.uploads());
}

pub fn post_elsewhere_is_404_and_writes_nothing(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for path in [
        "/index.html",
        "/uploads/x.json",
        "/upload/extra",
        "/uploads",
        "/",
    ] {
        let r = c.request(&post(&s, path, "application/json", "{\"a\":1}"));
        expect_error_page(&r, 404);
    }
    assert!(s.fx.uploads().is_empty(), "{:?}", s.fx.uploads());
    assert!(!s.fx.root.join("uploads/x.json").exists());
}

// ----- Many at once, and failures -----

pub fn concurrent_uploads_lose_and_duplicate_nothing(bin: &str) {
    const N: usize = 200;
    let s = Server::start(bin, &["--threads", "8", "--queue", "256"]);
    let port = s.port;
    let host = s.host();
    let locations: Vec<(usize, String)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let host = host.clone();
                scope.spawn(move || {
                    let body = format!("{{\"n\": {i}, \"pad\": \"{}\"}}", "x".repeat(i * 7));
                    let mut c = Client::connect(port);
                    let r = c.request(&format!(
                        "POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    ));
                    assert_eq!(r.status, 201, "upload {i}: {r:?}");
                    (i, r.header("location").expect("Location").to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("uploader"))
            .collect()
    });
    let unique: HashSet<&str> = locations.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(unique.len(), N, "duplicated locations");
    let on_disk = s.fx.uploads();
    assert_eq!(on_disk.len(), N, "files on disk: {}", on_disk.len());
    for (i, location) in &locations {
        let name = location.trim_start_matches("/uploads/");
        assert!(on_disk.iter().any(|n| n == name), "{name} missing");
        let text = std::fs::read_to_string(s.fx.root.join("uploads").join(name)).expect("read");
        let want = format!("{{\"n\": {i}, \"pad\": \"{}\"}}", "x".repeat(i * 7));
        assert_eq!(text, want, "upload {i} content");
    }
}

pub fn unwritable_uploads_give_500_and_serving_goes_on(bin: &str) {
    let fx = Fixture::new();
    std::fs::remove_dir(fx.root.join("uploads")).expect("rmdir");
    // A file where the directory should be: no user, not even root, can write below it.
    std::fs::write(fx.root.join("uploads"), "not a directory").expect("write");
    let s = Server::start_in(bin, fx, &[]);
    let mut c = s.connect();
    let r = c.request(&post(&s, "/upload", "application/json", "{\"a\":1}"));
    expect_error_page(&r, 500);
    c.request(&get(&s, "/sample.txt")).expect_status(200);
    s.get("/").expect_status(200);
    assert!(
        s.wait_log(&["ERROR"], Duration::from_secs(3)).is_some(),
        "a 500 is logged at error:\n{}",
        s.logs()
    );
    assert_eq!(
        std::fs::read_to_string(s.fx.root.join("uploads")).expect("read"),
        "not a directory"
    );
}

/// Starts `bin` on an existing root.
fn start_on_root(bin: &str, root: &Path, args: &[&str]) -> Server {
    Server::builder(bin)
        .fixture(Fixture::at(root))
        .args(args)
        .rust_log("info")
        .start()
}

/// A storm of concurrent uploads; the server is killed with SIGKILL in the middle and
/// restarted on the same root. Every upload that was answered 201 exists with exactly
/// its body; every `.json` present is one whole body that was sent (none partial); no
/// `.tmp-*` is left after the restart (and one that was left is reported); the
/// restarted server serves the old uploads and takes new ones.
pub fn sigkill_mid_upload_storm_loses_no_acknowledged_upload(bin: &str) {
    const CLIENTS: usize = 12;
    let fx = Fixture::new();
    let root = fx.root.clone();
    let s = start_on_root(bin, &root, &["--threads", "8", "--queue", "256"]);
    let port = s.port;
    let host = s.host();
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sent: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let ok = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (acked, sent, ok, host) = (
                Arc::clone(&acked),
                Arc::clone(&sent),
                Arc::clone(&ok),
                host.clone(),
            );
            thread::spawn(move || {
                let start = Instant::now();
                for seq in 0..10_000usize {
                    if start.elapsed() > Duration::from_secs(15) {
                        break;
                    }
                    // Sizes from a few bytes to ~300 KiB, so some writes are long.
                    let pad = "p".repeat((seq * 7919 + client * 104_729) % (300 << 10));
                    let id = format!("{client}-{seq}");
                    let body = format!("{{\"id\":\"{id}\",\"pad\":\"{pad}\"}}");
                    sent.lock().expect("sent").insert(id.clone(), body.clone());
                    let Ok(mut c) = Client::try_connect(port) else {
                        break; // the server is gone
                    };
                    let request = format!(
                        "POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    match exchange(&mut c, request.as_bytes()) {
                        Ok(r) if r.status == 201 => {
                            let location = r.header("location").unwrap_or_default().to_string();
                            acked.lock().expect("acked").push((location, body));
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => panic!("upload {id}: {}", r.status),
                        Err(_) => break, // killed mid-request
                    }
                }
            })
        })
        .collect();
    // Kill once a good number are through, while the others are mid-flight.
    let until = Instant::now() + Duration::from_secs(10);
    while ok.load(Ordering::Relaxed) < 60 && Instant::now() < until {
        thread::sleep(Duration::from_millis(5));
    }
    let mut s = s;
    s.signal("KILL");
    assert!(s.wait_exit(Duration::from_secs(5)).is_some(), "not killed");
    for h in handles {
        h.join().expect("client");
    }
    let acked = acked.lock().expect("acked").clone();
    let sent = sent.lock().expect("sent").clone();
    assert!(
        acked.len() >= 60,
        "only {} uploads before the kill",
        acked.len()
    );
    let uploads = root.join("uploads");
    let listing = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&uploads)
            .expect("uploads")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let check_files = |names: &[String]| {
        // `.tmp-*` are temporaries (hidden: the core never serves a dot-name).
        for name in names
            .iter()
            .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        {
            let text = std::fs::read_to_string(uploads.join(name)).expect("read upload");
            let value: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name} is not whole JSON ({e}), {} bytes", text.len()));
            let id = value["id"].as_str().expect("id");
            assert_eq!(
                sent.get(id),
                Some(&text),
                "{name} is not the body that was sent"
            );
        }
        for (location, body) in &acked {
            let name = location.strip_prefix("/uploads/").expect("location");
            let text = std::fs::read_to_string(uploads.join(name))
                .unwrap_or_else(|e| panic!("acknowledged {location} is missing: {e}"));
            assert!(text == *body, "acknowledged {location} differs");
        }
    };
    let before = listing();
    check_files(&before);
    let tmp_before = before.iter().filter(|n| n.starts_with(".tmp-")).count();
    drop(s);
    // Restart on the same root: temporaries are cleaned before it listens.
    let s = start_on_root(bin, &root, &["--threads", "4"]);
    let after = listing();
    assert!(
        after
            .iter()
            .all(|n| !n.starts_with(".tmp-") && n.ends_with(".json")),
        "left after the restart: {after:?}"
    );
    check_files(&after);
    if tmp_before > 0 {
        assert!(
            s.wait_log(
                &["WARN", "removed", "unfinished upload"],
                Duration::from_secs(2)
            )
            .is_some(),
            "{tmp_before} temporaries removed without a word:\n{}",
            s.logs()
        );
    }
    let mut c = s.connect();
    for (location, body) in acked.iter().step_by(7) {
        let r = c.request(&get(&s, location));
        r.expect_status(200);
        assert!(r.body == body.as_bytes(), "{location} over HTTP");
    }
    let r = s.upload("application/json", "{\"after\":\"restart\"}");
    r.expect_status(201);
    let json_before = before
        .iter()
        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        .count();
    eprintln!(
        "SIGKILL after {} acknowledged uploads: {json_before} .json and {tmp_before} .tmp-* on \
         disk at the kill; {} sent in all",
        acked.len(),
        sent.len()
    );
}

/// `uploads/` unusable — a regular file in its place (even root cannot create below
/// it), then a symlink to a directory outside the root: every upload, 16 at once, gets
/// 500 and an `error` line; nothing is written outside; GETs in between are served;
/// once `uploads/` is a directory again uploads work without a restart.
pub fn unwritable_uploads_give_500_and_the_server_recovers(bin: &str) {
    let fx = Fixture::new();
    std::fs::remove_dir(fx.root.join("uploads")).expect("rmdir");
    std::fs::write(fx.root.join("uploads"), "a file, not a directory").expect("write");
    let outside = fx.base.path().join("outside-uploads");
    std::fs::create_dir(&outside).expect("mkdir");
    let s = Server::start_in(bin, fx, &["--threads", "4", "--queue", "64"]);
    let storm = |s: &Server| {
        thread::scope(|scope| {
            let hs: Vec<_> = (0..16)
                .map(|i| {
                    scope.spawn(move || {
                        let r = s.upload("application/json", &format!("{{\"n\":{i}}}"));
                        let g = s.get("/sample.txt");
                        (r.status, g.status)
                    })
                })
                .collect();
            for h in hs {
                assert_eq!(h.join().expect("uploader"), (500, 200));
            }
        })
    };
    storm(&s);
    // The server log is written by a thread of its own: its lines may trail the answers
    // (a bound of 10 s, not a claim on time).
    let until = Instant::now() + Duration::from_secs(10);
    while lines_with(&s.logs(), &["ERROR", "upload"]).len() < 16 && Instant::now() < until {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        lines_with(&s.logs(), &["ERROR", "upload"]).len() >= 16,
        "each 500 is logged at error:\n{}",
        tail(&s.logs())
    );
    assert_eq!(
        std::fs::read_to_string(s.fx.root.join("uploads")).expect("read"),
        "a file, not a directory"
    );
    // A symlink to a directory outside the root in place of uploads/.
    std::fs::remove_file(s.fx.root.join("uploads")).expect("rm");
    std::os::unix::fs::symlink(&outside, s.fx.root.join("uploads")).expect("symlink");
    storm(&s);
    assert_eq!(
        std::fs::read_dir(&outside).expect("outside").count(),
        0,
        "an upload was written outside the root"
    );
    // Fixed by the operator: uploads work again, no restart.
    std::fs::remove_file(s.fx.root.join("uploads")).expect("rm");
    std::fs::create_dir(s.fx.root.join("uploads")).expect("mkdir");
    let r = s.upload("application/json", "{\"fixed\":true}");
    r.expect_status(201);
    assert_eq!(s.fx.uploads().len(), 1);
}
