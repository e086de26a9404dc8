//! Who may read and who may write (SPEC "Access control") and the switches for web pages
//! (SPEC "Web pages and browsers"): `--auth` rules with real argon2id and bcrypt hashes,
//! `--hash-password`, 401 / 403 / 429, the equal cost of an unknown user, the SIGHUP
//! reload of `--auth-file`, no password in any log line, a keep-alive client verified
//! once; `--cors` answers and preflights, `--header`, `--spa`, the root's `404.html`.
//!
//! Where a test goes: here if who the client is, or which origin its page comes from,
//! decides the answer.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::util::{lines_with, run_to_exit, tail};
use crate::{Client, Fixture, Response, Server};

/// The cases of this group, for [`tests!`](crate::tests): `spec` run over HTTP and over
/// HTTPS, `more` over HTTP only (see [`crate::cases`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __access_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] access;
            spec: [
                guests_read_and_one_account_writes,
                a_known_user_without_the_grant_is_403,
                cors_answers_and_preflights,
                extra_headers_spa_and_the_404_page,
            ];
            more: [
                hash_password_makes_a_hash_the_server_takes,
                a_plain_password_or_a_framing_header_is_refused_at_start,
                an_unknown_user_costs_as_much_as_a_wrong_password,
                ten_failures_in_a_minute_give_429_for_that_address,
                sighup_reloads_the_auth_file_and_a_bad_file_keeps_the_old_rules,
                no_password_appears_in_the_logs,
                a_keep_alive_client_is_verified_once,
                passwords_in_clear_are_warned_of,
            ];
        }
    };
}
pub use crate::__access_list as list;

/// A password no log line may contain.
const ALICE_PASSWORD: &str = "correct-horse-7f3a9";
/// bob's bcrypt hash (`htpasswd -nbB bob builder`), password `builder`.
pub(crate) const BOB_BCRYPT: &str = "$2y$05$v5CqD0Ka5Q7WcjyzTRK/T.gpqryQ3qtV0Bwn6LRxNxXdasSAGV/c6";

/// alice's argon2id hash, made once per test process by the binary's `--hash-password`.
fn alice_hash(bin: &str) -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_of(bin, ALICE_PASSWORD))
}

/// `BIN --hash-password` with `password` on standard input: the PHC string it prints.
fn hash_of(bin: &str, password: &str) -> String {
    let mut child = Command::new(bin)
        .arg("--hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run --hash-password");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("password");
    let out = child.wait_with_output().expect("--hash-password");
    assert!(out.status.success(), "--hash-password: {out:?}");
    let phc = String::from_utf8(out.stdout).expect("utf-8");
    let phc = phc.trim().to_string();
    assert!(phc.starts_with("$argon2id$"), "{phc:?}");
    phc
}

/// The `Authorization` line for `user:password`.
pub(crate) fn basic(user: &str, password: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    format!("Authorization: Basic {out}\r\n")
}

fn request(s: &Server, method: &str, path: &str, extra: &str) -> Response {
    s.raw(&format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\n{extra}Connection: close\r\n\r\n",
        s.host()
    ))
}

/// The dufs-style shared folder of the README: guests read, alice writes.
pub fn guests_read_and_one_account_writes(bin: &str) {
    let alice = format!("alice:{}@/:rw", alice_hash(bin));
    let s = Server::start(bin, &["-a", "@/:ro", "-a", &alice]);
    request(&s, "GET", "/sample.txt", "").expect_status(200);
    let r = upload_raw(&s, "");
    r.expect_status(401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"rust-file-server\", charset=\"UTF-8\""),
        "{r:?}"
    );
    upload_raw(&s, &basic("alice", ALICE_PASSWORD)).expect_status(201);
    upload_raw(&s, &basic("alice", "wrong")).expect_status(401);
    upload_raw(&s, &basic("mallory", ALICE_PASSWORD)).expect_status(401);
    assert_eq!(s.fx.uploads().len(), 1, "only alice's upload was written");
}

/// An upload through the harness's client (over TLS when the case runs there).
fn upload_raw(s: &Server, extra: &str) -> Response {
    let body = "{\"from\":\"access\"}";
    s.raw(&format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\n{extra}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        s.host(),
        body.len()
    ))
}

pub fn a_known_user_without_the_grant_is_403(bin: &str) {
    let alice = format!("alice:{}@/:rw", alice_hash(bin));
    let bob = format!("bob:{BOB_BCRYPT}@/uploads:ro");
    let s = Server::start(bin, &["-a", &alice, "-a", &bob]);
    let bob = basic("bob", "builder");
    request(&s, "GET", "/sample.txt", &bob).expect_status(403);
    upload_raw(&s, &bob).expect_status(403);
    request(&s, "GET", "/sample.txt", &basic("alice", ALICE_PASSWORD)).expect_status(200);
    request(&s, "GET", "/sample.txt", "").expect_status(401);
    assert!(
        s.wait_log(&["WARN", "403", "bob"], Duration::from_secs(3))
            .is_some(),
        "{}",
        tail(&s.logs())
    );
}

pub fn hash_password_makes_a_hash_the_server_takes(bin: &str) {
    let phc = hash_of(bin, "s3cret pass");
    let s = Server::start(bin, &["-a", &format!("carol:{phc}@/")]);
    request(&s, "GET", "/sample.txt", &basic("carol", "s3cret pass")).expect_status(200);
    request(&s, "GET", "/sample.txt", &basic("carol", "s3cret")).expect_status(401);
    // And bcrypt, as `htpasswd -B` writes it.
    let s = Server::start(bin, &["-a", &format!("bob:{BOB_BCRYPT}@/")]);
    request(&s, "GET", "/sample.txt", &basic("bob", "builder")).expect_status(200);
}

pub fn a_plain_password_or_a_framing_header_is_refused_at_start(bin: &str) {
    let fx = Fixture::new();
    let root = fx.root.to_str().expect("utf-8").to_string();
    for (args, says) in [
        (vec!["-a", "alice:secret@/"], "--hash-password"),
        (vec!["--auth", "alice:secret"], "--hash-password"),
        (vec!["-H", "Content-Length: 5"], "Content-Length"),
        (
            vec!["--header", "Transfer-Encoding: chunked"],
            "Transfer-Encoding",
        ),
        (vec!["-H", "Connection: close"], "Connection"),
        (vec!["-H", "no colon"], "Name: value"),
        (vec!["--cors", "not an origin"], "--cors"),
    ] {
        let mut argv = vec!["--port", "0", "--root", &root];
        argv.extend(&args);
        let (status, out, err) = run_to_exit(bin, &argv, fx.base.path());
        assert_eq!(status.code(), Some(2), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains(says), "{args:?}: {err:?}");
        assert!(!err.contains("secret\n") || says != "--hash-password");
    }
}

/// The time of one refused request on a new connection from 127.0.0.`from` (each
/// sample from its own address: the failure limit of one address is not what is
/// measured), in milliseconds.
fn refused_ms(s: &Server, extra: &str, from: u8) -> f64 {
    use rustix::net::{AddressFamily, SocketType};
    let local = std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(127, 0, 0, from), 0);
    let server = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, s.port);
    let t = Instant::now();
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).expect("socket");
    rustix::net::bind(&fd, &local).expect("bind");
    rustix::net::connect(&fd, &server).expect("connect");
    let mut c = std::net::TcpStream::from(fd);
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!(
        "GET /sample.txt HTTP/1.1\r\nHost: {}\r\n{extra}Connection: close\r\n\r\n",
        s.host()
    );
    c.write_all(request.as_bytes()).expect("send");
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut c, &mut got).expect("answer");
    let took = t.elapsed().as_secs_f64() * 1000.0;
    assert!(
        got.starts_with(b"HTTP/1.1 401 "),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    took
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
/// Nine of each (the issue asks for a median of five; more holds on a loaded machine),
/// interleaved and in alternating order (so that a drift of the machine weighs on both
/// alike), after one of each to warm up: medians within a factor 1.5. A round that
/// misses is measured again, three rounds at most: a machine busy with other work can
/// slow one side's samples for a while (a CI run beside a build once gave 1.58), but no
/// round of a server that skips the hash for an unknown user (a ratio in the hundreds)
/// comes within 1.5.
pub fn an_unknown_user_costs_as_much_as_a_wrong_password(bin: &str) {
    let alice = format!("alice:{}@/:rw", alice_hash(bin));
    let s = Server::start(bin, &["-a", &alice]);
    let wrong_line = basic("alice", "not her password");
    let unknown_line = basic("nobody-at-all", "not her password");
    let mut rounds = Vec::new();
    for round in 0..3u8 {
        let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
        for i in 0..10u8 {
            // A source address of its own for each sample (10 failures from one address
            // in a minute give 429).
            let (a, b) = (10 + 20 * round + 2 * i, 11 + 20 * round + 2 * i);
            let (w, u) = if i % 2 == 0 {
                let w = refused_ms(&s, &wrong_line, a);
                (w, refused_ms(&s, &unknown_line, b))
            } else {
                let u = refused_ms(&s, &unknown_line, a);
                (refused_ms(&s, &wrong_line, b), u)
            };
            if i > 0 {
                wrong.push(w);
                unknown.push(u);
            }
        }
        let (wrong, unknown) = (median(wrong), median(unknown));
        let ratio = unknown.max(wrong) / unknown.min(wrong);
        eprintln!(
            "round {round}: medians: wrong password {wrong:.1} ms, unknown user {unknown:.1} ms, \
             ratio {ratio:.2}"
        );
        // Each of them really verified (milliseconds of argon2id, not a shortcut).
        assert!(
            unknown > 5.0,
            "the unknown user took {unknown:.1} ms: no dummy hash?"
        );
        rounds.push((wrong, unknown, ratio));
        if ratio < 1.5 {
            return;
        }
    }
    panic!("no round within a factor 1.5 (wrong password ms, unknown user ms, ratio): {rounds:?}");
}

pub fn ten_failures_in_a_minute_give_429_for_that_address(bin: &str) {
    let alice = format!("alice:{}@/:rw", alice_hash(bin));
    let s = Server::start(bin, &["-a", &alice, "-a", "@/public:ro"]);
    for i in 0..10 {
        let r = request(
            &s,
            "GET",
            "/sample.txt",
            &basic("alice", &format!("guess{i}")),
        );
        r.expect_status(401);
    }
    // Now even the right password gets 429, with Retry-After, until the minute is over.
    let r = request(&s, "GET", "/sample.txt", &basic("alice", ALICE_PASSWORD));
    r.expect_status(429);
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    request(&s, "GET", "/sample.txt", "").expect_status(429);
    let failures = lines_with(&s.logs(), &["WARN", "authentication failed", "alice"]).len();
    assert_eq!(
        failures,
        10,
        "one warn line per failure:\n{}",
        tail(&s.logs())
    );
}

pub fn sighup_reloads_the_auth_file_and_a_bad_file_keeps_the_old_rules(bin: &str) {
    let fx = Fixture::new();
    let file = fx.base.path().join("rules.txt");
    let alice = format!("alice:{}@/:rw", alice_hash(bin));
    std::fs::write(&file, format!("# who may do what\n{alice}\n")).expect("rules");
    let path = file.to_str().expect("utf-8").to_string();
    let s = Server::start_in(bin, fx, &["--auth-file", &path]);
    let alice = basic("alice", ALICE_PASSWORD);
    let bob = basic("bob", "builder");
    request(&s, "GET", "/sample.txt", &alice).expect_status(200);
    request(&s, "GET", "/sample.txt", &bob).expect_status(401);
    // bob is added, alice removed: after SIGHUP the new rules hold, and alice's remembered
    // credential is forgotten.
    std::fs::write(&file, format!("bob:{BOB_BCRYPT}@/:ro\n")).expect("rules");
    s.signal("HUP");
    assert!(
        s.wait_log(&["reloaded"], Duration::from_secs(5)).is_some(),
        "{}",
        tail(&s.logs())
    );
    request(&s, "GET", "/sample.txt", &bob).expect_status(200);
    request(&s, "GET", "/sample.txt", &alice).expect_status(401);
    // A bad file: the old rules stay, and the log says why.
    std::fs::write(&file, "carol:plaintext@/\n").expect("rules");
    s.signal("HUP");
    assert!(
        s.wait_log(&["ERROR", "not reloaded"], Duration::from_secs(5))
            .is_some(),
        "{}",
        tail(&s.logs())
    );
    request(&s, "GET", "/sample.txt", &bob).expect_status(200);
}

pub fn no_password_appears_in_the_logs(bin: &str) {
    let alice = format!("alice:{}@/:rw", alice_hash(bin));
    let s = Server::builder(bin)
        .args(&["-a", &alice])
        .rust_log("trace")
        .start();
    request(&s, "GET", "/sample.txt", &basic("alice", ALICE_PASSWORD)).expect_status(200);
    request(
        &s,
        "GET",
        "/sample.txt",
        &basic("alice", "wrong-7f3a9-guess"),
    )
    .expect_status(401);
    request(
        &s,
        "GET",
        "/sample.txt",
        &basic("x\u{1b}[31m", ALICE_PASSWORD),
    )
    .expect_status(401);
    std::thread::sleep(Duration::from_millis(300));
    let logs = s.logs();
    let encoded = basic("alice", ALICE_PASSWORD);
    let encoded = encoded.trim_end().rsplit(' ').next().unwrap_or("");
    for secret in [ALICE_PASSWORD, "wrong-7f3a9-guess", encoded, "7f3a9"] {
        assert!(!logs.contains(secret), "{secret:?} in the logs:\n{logs}");
    }
    assert!(
        !logs.contains('\u{1b}'),
        "a control byte of a user name in the logs"
    );
    assert!(
        lines_with(&logs, &["WARN", "authentication failed", "alice"]).len() == 1,
        "{}",
        tail(&logs)
    );
}

pub fn a_keep_alive_client_is_verified_once(bin: &str) {
    let alice = format!("alice:{}@/:rw", alice_hash(bin));
    let s = Server::start(bin, &["-a", &alice]);
    let mut c: Client = s.connect();
    let line = basic("alice", ALICE_PASSWORD);
    for _ in 0..20 {
        let r = c.request(&format!(
            "GET /sample.txt HTTP/1.1\r\nHost: {}\r\n{line}\r\n",
            s.host()
        ));
        r.expect_status(200);
    }
    std::thread::sleep(Duration::from_millis(200));
    let verified = lines_with(&s.logs(), &["password of user", "verified"]).len();
    assert!(
        verified < 3,
        "20 requests verified {verified} times:\n{}",
        tail(&s.logs())
    );
    assert!(verified >= 1, "never verified?\n{}", tail(&s.logs()));
}

pub fn passwords_in_clear_are_warned_of(bin: &str) {
    let alice = format!("alice:{}@/:rw", alice_hash(bin));
    let s = Server::start(bin, &["--host", "0.0.0.0", "-a", &alice]);
    assert!(
        s.wait_log(&["WARN", "in clear"], Duration::from_secs(3))
            .is_some(),
        "{}",
        tail(&s.logs())
    );
    let quiet = Server::start(bin, &["-a", &alice]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        lines_with(&quiet.logs(), &["in clear"]).is_empty(),
        "a loopback server warned"
    );
}

pub fn cors_answers_and_preflights(bin: &str) {
    let s = Server::start(bin, &["--cors", "https://app.example"]);
    let r = request(&s, "GET", "/sample.txt", "Origin: https://app.example\r\n");
    r.expect_status(200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(r
        .header("access-control-expose-headers")
        .is_some_and(|v| v.contains("ETag")));
    let r = request(
        &s,
        "GET",
        "/sample.txt",
        "Origin: https://other.example\r\n",
    );
    assert!(r.header("access-control-allow-origin").is_none(), "{r:?}");
    let r = request(
        &s,
        "OPTIONS",
        "/upload",
        "Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: Content-Type\r\n",
    );
    r.expect_status(204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(r
        .header("access-control-allow-methods")
        .is_some_and(|v| v.contains("POST")));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    // A preflight needs no credentials, even with --auth.
    let alice = format!("alice:{}@/:rw", alice_hash(bin));
    let s = Server::start(bin, &["--cors", "https://app.example", "-a", &alice]);
    let r = request(
        &s,
        "OPTIONS",
        "/upload",
        "Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n",
    );
    r.expect_status(204);
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
}

pub fn extra_headers_spa_and_the_404_page(bin: &str) {
    let fx = Fixture::new().with_file("404.html", "<h1>Nothing here</h1>\n");
    let s = Server::start_in(
        bin,
        fx,
        &[
            "-H",
            "X-Frame-Options: DENY",
            "--header",
            "X-Team: files",
            "--spa",
        ],
    );
    for path in ["/sample.txt", "/missing.txt", "/app/settings"] {
        let r = request(&s, "GET", path, "Accept: text/html\r\n");
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(r.header("x-team"), Some("files"), "{path}");
    }
    let r = request(&s, "GET", "/app/settings", "Accept: text/html\r\n");
    r.expect_status(200);
    assert_eq!(
        r.body,
        crate::INDEX_HTML.as_bytes(),
        "the SPA route got index.html"
    );
    let r = request(&s, "GET", "/missing.txt", "Accept: text/html\r\n");
    r.expect_status(404);
    assert_eq!(r.body, b"<h1>Nothing here</h1>\n");
    let r = request(&s, "GET", "/app/settings", "Accept: application/json\r\n");
    r.expect_status(404);
}
