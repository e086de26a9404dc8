//! Certificates: files that cannot be used (exit 1 before listening), the fingerprint
//! `--tls-self-signed` prints, and reloading on `SIGHUP`.

use std::time::Duration;

use super::{curl_ok, need_curl, still_serves, wait_count};
use crate::https::{self, test_ca, TEST_NAMES};
use crate::{run_to_exit, Client, Fixture, Server, INDEX_HTML};

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
