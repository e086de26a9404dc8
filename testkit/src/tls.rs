//! Issue 16: what only HTTPS has, against the binary it is given (the whole suite over
//! TLS is `suite_tests_tls!`).
//!
//! ```ignore
//! // runtime-std/tests/tls.rs
//! testkit::tls_tests!(env!("CARGO_BIN_EXE_runtime-std"));
//! ```
//!
//! The README's `curl --cacert` examples (with a CA made here, and with a self-signed
//! certificate file as its own trust anchor), TLS 1.3 and 1.2 with ALPN `http/1.1`, a
//! 20 MiB download resumed with `curl -C -`, plain HTTP on the HTTPS port, garbage and
//! truncated `ClientHello`s, an SNI the certificate is not for, a stalled handshake,
//! certificate files that cannot be used, `--tls-self-signed`'s fingerprint, and
//! reloading on `SIGHUP` (and a failed reload keeping the old certificate). Where a
//! server is refused something, it must log it and keep serving.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use crate::https::{self, test_ca, TestCert, TEST_NAMES};
use crate::{binary_bytes, have, run_to_exit, Client, Fixture, Response, Server, INDEX_HTML};

/// Expands to one `#[test]` per case, run against the binary at `$bin`.
#[macro_export]
macro_rules! tls_tests {
    ($bin:expr) => {
        $crate::tls_tests!(@cases $bin;
            curl_examples_over_https_with_a_ca,
            curl_trusts_a_self_signed_certificate_file,
            tls13_and_tls12_with_alpn_http11,
            big_download_resumed_over_https,
            plain_http_to_the_https_port_gets_a_readable_400,
            garbage_and_truncated_client_hellos_are_logged_and_closed,
            unknown_sni_is_refused_and_logged,
            stalled_handshake_is_closed_at_the_head_deadline,
            unusable_certificate_files_exit_1_before_listening,
            self_signed_fingerprint_is_the_presented_certificate,
            sighup_reloads_and_a_failed_reload_keeps_the_old_certificate,
        );
    };
    (@cases $bin:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::tls::$name($bin);
            }
        )*
    };
}

/// Runs curl (`-sS`, 10 s at most) with `args`; the whole output, whatever the status.
fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl")
}

/// curl that must succeed.
#[track_caller]
fn curl_ok(args: &[&str]) -> Output {
    let out = curl(args);
    assert!(
        out.status.success(),
        "curl {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether curl is installed; a test that needs it says so when it is not.
fn need_curl() -> bool {
    if have("curl") {
        return true;
    }
    eprintln!("curl is not installed: this part is skipped");
    false
}

/// `GET path` over a new connection, `Connection: close`; the response.
fn get(s: &Server, path: &str) -> Response {
    s.get(path)
}

/// The bytes a rustls client sends first: a `ClientHello` (with SNI for a DNS name).
fn client_hello(name: ServerName<'static>) -> Vec<u8> {
    let mut conn =
        rustls::ClientConnection::new(https::trust_any(), name).expect("a client connection");
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).expect("write the ClientHello");
    }
    assert!(hello.len() > 100, "a ClientHello: {} bytes", hello.len());
    hello
}

/// A raw TCP connection to the server, with a read timeout.
fn raw(s: &Server) -> TcpStream {
    let c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    c
}

/// Reads until the server closes (end of stream or reset): what came, and whether it
/// closed within `within`.
fn read_to_close(c: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let until = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (got, false);
        }
        c.set_read_timeout(Some(left)).expect("read timeout");
        match c.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

/// Waits until stderr has at least `n` lines with every needle.
fn wait_count(s: &Server, needles: &[&str], n: usize, timeout: Duration) -> bool {
    let until = Instant::now() + timeout;
    loop {
        let count = s
            .logs()
            .lines()
            .filter(|l| needles.iter().all(|x| l.contains(x)))
            .count();
        if count >= n {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The server still serves HTTPS: `GET /` over a new TLS connection is the index.
#[track_caller]
fn still_serves(s: &Server) {
    let r = get(s, "/");
    r.expect_status(200);
    assert_eq!(r.body, INDEX_HTML.as_bytes());
}

// ----- curl, the README's way -----

/// `curl --cacert ca.pem https://127.0.0.1:PORT/` and the seed's curl examples over it.
pub fn curl_examples_over_https_with_a_ca(bin: &str) {
    if !need_curl() {
        return;
    }
    let s = Server::builder(bin).tls().start();
    assert!(
        s.listening.starts_with("https://127.0.0.1:"),
        "{}",
        s.listening
    );
    let trust = s.curl_args();
    let with = |more: &[&str]| -> Vec<String> {
        trust
            .iter()
            .cloned()
            .chain(more.iter().map(|a| a.to_string()))
            .collect()
    };
    let run = |more: &[&str]| {
        let args = with(more);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl_ok(&args)
    };
    let out = run(&["-v", &s.url("/")]);
    assert_eq!(out.stdout, INDEX_HTML.as_bytes());
    let verbose = String::from_utf8_lossy(&out.stderr);
    assert!(verbose.contains("< HTTP/1.1 200"), "{verbose}");
    assert!(
        verbose
            .lines()
            .any(|l| l.contains("ALPN") && l.contains("accepted") && l.contains("http/1.1")),
        "ALPN http/1.1: {verbose}"
    );
    assert!(verbose.contains("SSL certificate verify ok"), "{verbose}");

    let dest = s.fx.base.path().join("downloaded_logo.png");
    run(&[&s.url("/logo.png"), "-o", &dest.to_string_lossy()]);
    assert_eq!(
        std::fs::read(&dest).expect("downloaded"),
        std::fs::read(s.fx.root.join("logo.png")).expect("logo")
    );

    let out = run(&[
        "-X",
        "POST",
        &s.url("/upload"),
        "-H",
        "Content-Type: application/json",
        "-d",
        "{\"key\": \"value\"}",
        "-w",
        "\n%{http_code}",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.ends_with("\n201"), "{text}");
    assert!(text.contains("\"status\":\"created\""), "{text}");
    let names = s.fx.uploads();
    assert_eq!(names.len(), 1);
    assert_eq!(
        std::fs::read_to_string(s.fx.root.join("uploads").join(&names[0])).expect("upload"),
        "{\"key\": \"value\"}"
    );

    let code = |more: &[&str]| -> String {
        let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(more);
        String::from_utf8_lossy(&run(&all).stdout).into_owned()
    };
    assert_eq!(code(&["--path-as-is", &s.url("/../server.py")]), "403");
    assert_eq!(code(&["--path-as-is", &s.url("/../secret.txt")]), "403");
    assert_eq!(code(&["-H", "Host: example.com", &s.url("/")]), "403");
    // The Host header carries the port of the HTTPS URL.
    assert_eq!(
        code(&["-H", &format!("Host: localhost:{}", s.port), &s.url("/")]),
        "200"
    );
    // Without trusting the CA, curl refuses the certificate: the check is real.
    let out = curl(&[&s.url("/")]);
    assert_eq!(out.status.code(), Some(60), "{out:?}");
    still_serves(&s);
    // HTTP/1.0 over TLS: curl offers ALPN `http/1.0` alone.
    assert_eq!(code(&["--http1.0", &s.url("/sample.txt")]), "200");
}

/// The README's `curl --cacert cert.pem`: a self-signed certificate file given to
/// `--tls-cert` is its own trust anchor.
pub fn curl_trusts_a_self_signed_certificate_file(bin: &str) {
    let files = tempfile::tempdir().expect("tempdir");
    let cert = TestCert::self_signed(&["127.0.0.1", "localhost"]);
    let (cert_path, key_path) = cert.write_to(files.path());
    let s = Server::builder(bin)
        .tls_files(
            &cert_path,
            &key_path,
            https::trust_fingerprint(&cert.fingerprint()),
            Some(cert_path.clone()),
        )
        .start();
    assert_eq!(
        s.fingerprint(),
        None,
        "no fingerprint is printed for --tls-cert"
    );
    let mut c = s.connect();
    assert_eq!(c.peer_certificate().as_deref(), Some(&cert.der[..]));
    still_serves(&s);
    if !need_curl() {
        return;
    }
    let out = curl_ok(&[
        "--cacert",
        &cert_path.to_string_lossy(),
        &format!("https://127.0.0.1:{}/", s.port),
    ]);
    assert_eq!(out.stdout, INDEX_HTML.as_bytes());
    let out = curl_ok(&[
        "--cacert",
        &cert_path.to_string_lossy(),
        "--resolve",
        &format!("localhost:{}:127.0.0.1", s.port),
        &format!("https://localhost:{}/sample.txt", s.port),
    ]);
    assert_eq!(out.stdout, b"sample text\r\nsecond line\n");
}

/// TLS 1.3 by default, TLS 1.2 when the client offers only that; ALPN `http/1.1`.
pub fn tls13_and_tls12_with_alpn_http11(bin: &str) {
    let s = Server::builder(bin).tls().start();
    let mut c = s.connect();
    let (alpn, version) = c.tls_details().expect("a TLS connection");
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(version.as_deref(), Some("TLSv1_3"));
    let r = c.request(&format!(
        "GET /sample.txt HTTP/1.1\r\nHost: {}\r\n\r\n",
        s.host()
    ));
    r.expect_status(200);
    // TLS 1.2 only.
    let config = test_ca().client_config_for(&[&rustls::version::TLS12]);
    let mut c = Client::try_connect_tls(s.port, config, https::loopback_name()).expect("connect");
    let (alpn, version) = c.tls_details().expect("a TLS connection");
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(version.as_deref(), Some("TLSv1_2"));
    let r = c.request(&format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", s.host()));
    r.expect_status(200);
    assert_eq!(r.body, INDEX_HTML.as_bytes());
    // curl (OpenSSL) both ways.
    if need_curl() {
        let trust = s.curl_args();
        let url = s.url("/");
        for (flags, want) in [
            (&["--tlsv1.3"][..], "TLSv1.3"),
            (&["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2"),
        ] {
            let mut args: Vec<&str> = trust.iter().map(String::as_str).collect();
            args.push("-v");
            args.extend_from_slice(flags);
            args.push(&url);
            let out = curl_ok(&args);
            assert_eq!(out.stdout, INDEX_HTML.as_bytes());
            let verbose = String::from_utf8_lossy(&out.stderr);
            assert!(
                verbose
                    .lines()
                    .any(|l| l.contains("SSL connection using") && l.contains(want)),
                "{want}: {verbose}"
            );
        }
    }
}

// ----- A big download, resumed -----

/// A 20 MiB file over HTTPS: whole and byte-identical, and a download cut short then
/// resumed with `curl -C -` (a range request) byte-identical.
pub fn big_download_resumed_over_https(bin: &str) {
    let fx = Fixture::new();
    let big = binary_bytes(20 << 20);
    std::fs::write(fx.root.join("big.bin"), &big).expect("big");
    let s = Server::builder(bin).fixture(fx).tls().start();
    // The harness's client, whole.
    let r = s.get("/big.bin");
    r.expect_status(200);
    assert!(r.body == big, "20 MiB over TLS differs");
    if !need_curl() {
        return;
    }
    let trust = s.curl_args();
    let out_file = s.fx.base.path().join("big.download");
    let out_path = out_file.to_string_lossy().into_owned();
    let url = s.url("/big.bin");
    // Cut short: at most 3 MB/s for 2 s.
    let mut args: Vec<&str> = trust.iter().map(String::as_str).collect();
    args.extend([
        "--limit-rate",
        "3M",
        "--max-time",
        "2",
        "-o",
        &out_path,
        &url,
    ]);
    let out = Command::new("curl")
        .arg("-sS")
        .args(&args)
        .output()
        .expect("curl");
    assert_eq!(
        out.status.code(),
        Some(28),
        "the slow download is cut by --max-time: {out:?}"
    );
    let partial = std::fs::metadata(&out_file).map(|m| m.len()).unwrap_or(0);
    assert!(partial < big.len() as u64, "cut short: {partial} bytes");
    // Resumed.
    let mut args: Vec<&str> = trust.iter().map(String::as_str).collect();
    args.extend(["-v", "-C", "-", "-o", &out_path, &url]);
    let out = curl_ok(&args);
    let verbose = String::from_utf8_lossy(&out.stderr);
    if partial > 0 {
        assert!(
            verbose.contains(&format!("Range: bytes={partial}-")),
            "a range request: {verbose}"
        );
        assert!(verbose.contains("< HTTP/1.1 206"), "{verbose}");
    } else {
        eprintln!("the first download got no byte in 2 s: nothing to resume from");
    }
    let got = std::fs::read(&out_file).expect("the resumed file");
    assert_eq!(got.len(), big.len(), "resumed length");
    assert!(got == big, "the resumed file differs");
    // And once more, whole, with curl.
    let whole = s.fx.base.path().join("big.whole");
    let mut args: Vec<&str> = trust.iter().map(String::as_str).collect();
    let whole_path = whole.to_string_lossy().into_owned();
    args.extend(["-o", &whole_path, &url]);
    curl_ok(&args);
    assert!(
        std::fs::read(&whole).expect("whole") == big,
        "curl's copy differs"
    );
    still_serves(&s);
}

// ----- Bad input on the HTTPS port -----

/// Plain HTTP to the HTTPS port: a plain-text 400 that says to use https://, the
/// connection closes, it is logged at warn, and the server goes on serving.
pub fn plain_http_to_the_https_port_gets_a_readable_400(bin: &str) {
    let s = Server::builder(bin).tls().start();
    let mut c = raw(&s);
    let peer = c.local_addr().expect("addr").to_string();
    c.write_all(format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", s.host()).as_bytes())
        .expect("send");
    let (got, closed) = read_to_close(&mut c, Duration::from_secs(5));
    assert!(closed, "the connection closes after the 400");
    let r = Response::from_bytes(&got).expect("a readable HTTP response");
    r.expect_status(400);
    assert!(r.closes(), "{r:?}");
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/")),
        "{r:?}"
    );
    assert!(r.text().contains("https://"), "says to use https: {r:?}");
    assert!(
        s.wait_log(&["WARN", &peer], Duration::from_secs(3))
            .is_some(),
        "plain HTTP logged at warn:\n{}",
        s.logs()
    );
    // A POST with a body, and an HTTP/1.0 request: the same.
    for request in [
        format!(
            "POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}",
            s.host()
        ),
        "GET / HTTP/1.0\r\n\r\n".to_string(),
    ] {
        let mut c = raw(&s);
        c.write_all(request.as_bytes()).expect("send");
        let (got, _) = read_to_close(&mut c, Duration::from_secs(5));
        assert_eq!(Response::status_in(&got), Some(400), "{request:?}");
    }
    assert!(s.fx.uploads().is_empty());
    if need_curl() {
        let out = curl_ok(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://127.0.0.1:{}/", s.port),
        ]);
        assert_eq!(out.stdout, b"400");
    }
    still_serves(&s);
}

/// Garbage instead of a `ClientHello`, and `ClientHello`s cut short: each closed and
/// logged at warn with the peer; the server goes on serving.
pub fn garbage_and_truncated_client_hellos_are_logged_and_closed(bin: &str) {
    let s = Server::builder(bin).tls().start();
    let hello = client_hello(https::loopback_name());
    let mut junk_record = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    junk_record.extend(std::iter::repeat_n(0xAB, 0x40));
    let mut bad_version = hello.clone();
    bad_version[1] = 0x7F; // a record version no TLS has
    let mut alert_first = vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];
    alert_first.extend_from_slice(&hello);
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        // (what, bytes, then close the writing side)
        ("binary garbage", binary_bytes(300), false),
        ("a handshake record of junk", junk_record, false),
        ("a bad record version", bad_version, false),
        ("an alert before the hello", alert_first, false),
        ("NUL bytes", vec![0; 64], false),
        (
            "half a ClientHello, then the end",
            hello[..hello.len() / 2].to_vec(),
            true,
        ),
        ("a record header, then the end", hello[..5].to_vec(), true),
        ("one byte, then the end", hello[..1].to_vec(), true),
    ];
    let mut not_logged = Vec::new();
    for (what, bytes, finish) in cases {
        let mut c = raw(&s);
        let peer = c.local_addr().expect("addr").to_string();
        c.write_all(&bytes).expect("send");
        if finish {
            c.shutdown(Shutdown::Write).expect("shutdown");
        }
        let (got, closed) = read_to_close(&mut c, Duration::from_secs(5));
        assert!(closed, "{what}: the connection closes");
        // At most a TLS alert comes back: never an HTTP answer, never a ServerHello.
        assert!(
            got.is_empty() || got[0] == 0x15,
            "{what}: answered {:?}",
            &got[..got.len().min(16)]
        );
        if s.wait_log(&["WARN", &peer], Duration::from_secs(3))
            .is_none()
        {
            not_logged.push(format!("{what} ({peer})"));
        }
        still_serves(&s);
    }
    assert!(
        not_logged.is_empty(),
        "not logged at warn: {not_logged:?}\n{}",
        s.logs()
    );
}

/// A `ClientHello` naming (SNI) a host the certificate is not for: the handshake fails,
/// logged at warn; a name it is for (`localhost`) works.
pub fn unknown_sni_is_refused_and_logged(bin: &str) {
    let s = Server::builder(bin).tls().start();
    // The harness's client, accepting any certificate: the server must refuse anyway.
    let other = ServerName::try_from("other.example").expect("a name");
    let mut c = Client::try_connect_tls(s.port, https::trust_any(), other).expect("connect");
    let e = c
        .tls_handshake()
        .expect_err("no handshake for other.example");
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::InvalidData
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
        ),
        "{e}"
    );
    assert!(
        s.wait_log(&["WARN", "other.example"], Duration::from_secs(3))
            .is_some(),
        "the SNI refusal is logged at warn:\n{}",
        s.logs()
    );
    let localhost = ServerName::try_from("localhost").expect("a name");
    let mut c =
        Client::try_connect_tls(s.port, test_ca().client_config(), localhost).expect("connect");
    let r = c.request(&format!(
        "GET / HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
        s.port
    ));
    r.expect_status(200);
    if need_curl() {
        let mut args = s.curl_args();
        let resolve = format!("other.example:{}:127.0.0.1", s.port);
        let url = format!("https://other.example:{}/", s.port);
        args.extend(["--resolve".to_string(), resolve, url]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = curl(&args);
        assert!(
            !out.status.success(),
            "curl with SNI other.example: {out:?}"
        );
        assert_eq!(out.status.code(), Some(35), "a handshake failure: {out:?}");
        assert!(
            wait_count(&s, &["WARN", "other.example"], 2, Duration::from_secs(3)),
            "curl's refusal is logged too:\n{}",
            s.logs()
        );
        let mut args = s.curl_args();
        let resolve = format!("localhost:{}:127.0.0.1", s.port);
        let url = format!("https://localhost:{}/", s.port);
        args.extend(["--resolve".to_string(), resolve, url]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(curl_ok(&args).stdout, INDEX_HTML.as_bytes());
    }
    still_serves(&s);
}

/// With `--head-timeout 1`, a client that stops mid-handshake (half a `ClientHello`, a
/// whole one and then nothing, or nothing at all) is closed within about 2 s and logged
/// at warn; others are served meanwhile.
pub fn stalled_handshake_is_closed_at_the_head_deadline(bin: &str) {
    let s = Server::builder(bin)
        .tls()
        .args(&["--head-timeout", "1"])
        .start();
    let hello = client_hello(https::loopback_name());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("half a ClientHello", hello[..hello.len() / 2].to_vec()),
        ("a whole ClientHello, then nothing", hello.clone()),
        ("nothing at all", Vec::new()),
    ];
    for (what, bytes) in cases {
        let mut c = raw(&s);
        let peer = c.local_addr().expect("addr").to_string();
        let start = Instant::now();
        c.write_all(&bytes).expect("send");
        // Meanwhile, another client is served at once.
        let t = Instant::now();
        still_serves(&s);
        assert!(t.elapsed() < Duration::from_millis(900), "{what}: slow");
        let (_, closed) = read_to_close(&mut c, Duration::from_secs(4));
        let took = start.elapsed();
        assert!(closed, "{what}: not closed within 4 s");
        assert!(
            took >= Duration::from_millis(800) && took <= Duration::from_millis(2500),
            "{what}: closed after {took:?} (head deadline 1 s)"
        );
        assert!(
            s.wait_log(&["WARN", &peer, "handshake"], Duration::from_secs(3))
                .is_some(),
            "{what}: logged at warn:\n{}",
            s.logs()
        );
    }
    still_serves(&s);
}

// ----- Certificate files -----

/// A key that does not match, a file that cannot be read, a malformed one: one line on
/// stderr, exit status 1, and no start line (nothing was bound).
pub fn unusable_certificate_files_exit_1_before_listening(bin: &str) {
    let fx = Fixture::new();
    let dir = fx.base.path().join("tls");
    std::fs::create_dir(&dir).expect("mkdir");
    let good = test_ca().issue(TEST_NAMES);
    let other = test_ca().issue(TEST_NAMES);
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path.to_string_lossy().into_owned()
    };
    let cert = write("cert.pem", &good.cert_pem);
    let key = write("key.pem", &good.key_pem);
    let other_key = write("other-key.pem", &other.key_pem);
    let garbage = write("garbage.pem", "this is not PEM at all\n");
    let bad_base64 = write(
        "bad-base64.pem",
        "-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n",
    );
    let bad_der = write(
        "bad-der.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n",
    );
    let empty = write("empty.pem", "");
    let missing = dir.join("missing.pem").to_string_lossy().into_owned();
    let a_directory = dir.to_string_lossy().into_owned();
    let root = fx.root.to_string_lossy().into_owned();
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        // (what, --tls-cert, --tls-key, a word the line has)
        ("a key of another certificate", &cert, &other_key, "match"),
        ("a missing certificate", &missing, &key, "missing.pem"),
        ("a missing key", &cert, &missing, "missing.pem"),
        ("a directory as the certificate", &a_directory, &key, "tls"),
        ("a directory as the key", &cert, &a_directory, "tls"),
        (
            "a certificate that is not PEM",
            &garbage,
            &key,
            "garbage.pem",
        ),
        ("a key that is not PEM", &cert, &garbage, "garbage.pem"),
        (
            "a certificate of bad base64",
            &bad_base64,
            &key,
            "bad-base64.pem",
        ),
        ("a key that is not DER", &cert, &bad_der, "key"),
        ("an empty certificate file", &empty, &key, "empty.pem"),
        ("an empty key file", &cert, &empty, "empty.pem"),
        ("the key as the certificate", &key, &cert, "pem"),
    ];
    for (what, c, k, word) in cases {
        let args = [
            "--port",
            "0",
            "--root",
            &root,
            "--tls-cert",
            c,
            "--tls-key",
            k,
        ];
        let (status, out, err) = run_to_exit(bin, &args, fx.base.path());
        assert_eq!(status.code(), Some(1), "{what}: {status}; stderr {err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err:?}");
        assert!(err.contains("error"), "{what}: {err}");
        assert!(err.contains(word), "{what}: the line names {word:?}: {err}");
        assert!(!out.contains("listening"), "{what}: started: {out}");
    }
    // The good pair starts (the cases above failed for their files alone).
    let s = Server::builder(bin)
        .tls_files(&cert, &key, test_ca().client_config(), None)
        .start();
    still_serves(&s);
    // A flag without its partner, or both ways at once: usage errors (exit 2).
    for args in [
        &["--port", "0", "--root", &root, "--tls-cert", &cert][..],
        &["--port", "0", "--root", &root, "--tls-key", &key],
        &[
            "--port",
            "0",
            "--root",
            &root,
            "--tls-self-signed",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
    ] {
        let (status, out, err) = run_to_exit(bin, args, fx.base.path());
        assert_eq!(status.code(), Some(2), "{args:?}: {err}");
        assert!(!out.contains("listening"), "{args:?}: {out}");
    }
}

/// `--tls-self-signed`: the start line's fingerprint is the SHA-256 of the certificate
/// the server presents, which is valid for 127.0.0.1 and localhost.
pub fn self_signed_fingerprint_is_the_presented_certificate(bin: &str) {
    let s = Server::builder(bin).tls_self_signed().start();
    let printed = s.fingerprint().expect("a fingerprint").to_string();
    let pairs: Vec<&str> = printed.split(':').collect();
    assert_eq!(pairs.len(), 32, "32 bytes: {printed}");
    assert!(
        pairs.iter().all(|p| p.len() == 2
            && p.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())),
        "AB:CD:… in upper case: {printed}"
    );
    // Look at what the server presents, trusting anything.
    let mut c = Client::try_connect_tls(s.port, https::trust_any(), https::loopback_name())
        .expect("connect");
    let der = c.peer_certificate().expect("a certificate");
    assert_eq!(https::fingerprint(&der), printed);
    let r = c.request(&format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        s.host()
    ));
    r.expect_status(200);
    // The harness pins the printed fingerprint (s.connect), and curl trusts the
    // certificate itself, which is valid for 127.0.0.1 and for localhost.
    still_serves(&s);
    if need_curl() {
        let trust = s.curl_args();
        for url in [
            format!("https://127.0.0.1:{}/", s.port),
            format!("https://localhost:{}/", s.port),
        ] {
            let resolve = format!("localhost:{}:127.0.0.1", s.port);
            let mut args: Vec<&str> = trust.iter().map(String::as_str).collect();
            args.extend(["--resolve", &resolve, &url]);
            assert_eq!(curl_ok(&args).stdout, INDEX_HTML.as_bytes(), "{url}");
        }
    }
    // Another start makes another certificate.
    let again = Server::builder(bin).tls_self_signed().start();
    assert_ne!(again.fingerprint(), Some(printed.as_str()));
}

/// `kill -HUP PID`: a new connection gets the new certificate (one already open goes
/// on); a reload that fails (a broken key, a key that does not match, a missing file)
/// keeps the certificate in use, logged at error, and new connections still succeed.
pub fn sighup_reloads_and_a_failed_reload_keeps_the_old_certificate(bin: &str) {
    let files = tempfile::tempdir().expect("tempdir");
    let first = test_ca().issue(TEST_NAMES);
    let (cert, key) = first.write_to(files.path());
    let ca = files.path().join("ca.pem");
    std::fs::write(&ca, test_ca().pem()).expect("ca");
    let s = Server::builder(bin)
        .tls_files(&cert, &key, test_ca().client_config(), Some(ca))
        .start();
    // A fresh client configuration each time: no session to resume (a resumed session
    // is not shown the certificate again).
    let presented = |s: &Server| {
        Client::try_connect_tls(s.port, test_ca().client_config(), https::loopback_name())
            .expect("connect")
            .peer_certificate()
            .expect("a certificate")
    };
    assert_eq!(presented(&s), first.der);
    let mut open = s.connect();
    open.request(&format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", s.host()))
        .expect_status(200);

    // A new certificate (same CA), then SIGHUP.
    let second = test_ca().issue(TEST_NAMES);
    second.write_files(&cert, &key);
    s.signal("HUP");
    assert!(
        s.wait_log(
            &["certificate reloaded", &second.fingerprint()],
            Duration::from_secs(5)
        )
        .is_some(),
        "the reload is logged with the new fingerprint:\n{}",
        s.logs()
    );
    assert_eq!(
        presented(&s),
        second.der,
        "a new connection sees the new certificate"
    );
    still_serves(&s);
    // The connection opened before goes on.
    open.request(&format!(
        "GET /sample.txt HTTP/1.1\r\nHost: {}\r\n\r\n",
        s.host()
    ))
    .expect_status(200);
    if need_curl() {
        let trust = s.curl_args();
        let mut args: Vec<&str> = trust.iter().map(String::as_str).collect();
        let url = s.url("/");
        args.push(&url);
        assert_eq!(curl_ok(&args).stdout, INDEX_HTML.as_bytes());
    }

    // Failed reloads: each logged at error; the second certificate stays.
    let third = test_ca().issue(TEST_NAMES);
    let fourth = test_ca().issue(TEST_NAMES);
    let broken = ["a broken key", "a key that does not match", "a missing key"];
    for (n, what) in broken.into_iter().enumerate() {
        https::replace_file(&cert, third.cert_pem.as_bytes());
        match n {
            0 => https::replace_file(
                &key,
                b"-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n",
            ),
            1 => https::replace_file(&key, fourth.key_pem.as_bytes()),
            _ => std::fs::remove_file(&key).expect("remove the key"),
        }
        s.signal("HUP");
        assert!(
            wait_count(
                &s,
                &["ERROR", "certificate not reloaded"],
                n + 1,
                Duration::from_secs(5)
            ),
            "{what}: the failed reload is logged at error:\n{}",
            s.logs()
        );
        assert_eq!(
            presented(&s),
            second.der,
            "{what}: the certificate in use stays"
        );
        still_serves(&s);
    }
    assert!(
        s.logs()
            .lines()
            .filter(|l| l.contains("certificate reloaded"))
            .count()
            == 1
    );
    // Good files again: reloaded.
    third.write_files(&cert, &key);
    s.signal("HUP");
    assert!(
        s.wait_log(
            &["certificate reloaded", &third.fingerprint()],
            Duration::from_secs(5)
        )
        .is_some(),
        "{}",
        s.logs()
    );
    assert_eq!(presented(&s), third.der);
    still_serves(&s);
}
