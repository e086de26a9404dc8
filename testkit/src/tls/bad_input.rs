//! Bad input on the HTTPS port: plain HTTP, garbage and truncated `ClientHello`s, an SNI
//! the certificate is not for, a stalled handshake.

use std::io::Write;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use super::{client_hello, curl, curl_ok, need_curl, raw, read_to_close, still_serves, wait_count};
use rustls::pki_types::ServerName;

use crate::https::{self, test_ca};
use crate::{binary_bytes, Client, Response, Server, INDEX_HTML};

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
