//! What only HTTPS has (`--tls-cert/--tls-key` and `--tls-self-signed` of SPEC "Command
//! line"; the README's "HTTPS"): the README's `curl --cacert` examples (with a CA made
//! here, and with a self-signed certificate file as its own trust anchor), TLS 1.3 and
//! 1.2 with ALPN `http/1.1`, a 20 MiB download resumed with `curl -C -`; bad input on the
//! HTTPS port (`bad_input.rs`: plain HTTP, garbage and truncated `ClientHello`s, an SNI the
//! certificate is not for, a stalled handshake); and certificates (`certificates.rs`:
//! files that cannot be used, `--tls-self-signed`'s fingerprint, reloading on `SIGHUP`
//! and a failed reload keeping the old certificate). Where a server is refused
//! something, it must log it and keep serving.
//!
//! Where a test goes: here if it is about TLS itself. Everything else already runs over
//! HTTPS: the `spec` cases of every group, in `over_tls.rs` (see [`crate::cases`]). The
//! harness's side of HTTPS (test certificates, the client's TLS) is [`crate::https`].

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use crate::https::{self, test_ca, TestCert};
use crate::{binary_bytes, have, Client, Fixture, Server, INDEX_HTML};

mod bad_input;
mod certificates;
pub use bad_input::*;
pub use certificates::*;

/// The cases of this group, for [`tests!`](crate::tests): `spec` run over HTTP and over
/// HTTPS, `more` over HTTP only (see [`crate::cases`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __tls_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] tls;
            spec: [];
            more: [
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
            ];
        }
    };
}
pub use crate::__tls_list as list;

// ----- Helpers -----

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
    let r = s.get("/");
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
    // curl takes the h2 that ALPN offers first (`--http2 off` offers http/1.1 only).
    assert!(verbose.contains("< HTTP/2 200"), "{verbose}");
    assert!(
        verbose
            .lines()
            .any(|l| l.contains("ALPN") && l.contains("accepted") && l.contains("h2")),
        "ALPN h2: {verbose}"
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
        // HTTP/2 (what curl takes when offered) shows header names in lower case.
        assert!(
            verbose
                .to_ascii_lowercase()
                .contains(&format!("range: bytes={partial}-")),
            "a range request: {verbose}"
        );
        assert!(
            verbose.contains("< HTTP/2 206") || verbose.contains("< HTTP/1.1 206"),
            "{verbose}"
        );
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
