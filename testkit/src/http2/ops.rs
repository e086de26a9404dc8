//! What an operator sees of HTTP/2 streams (SPEC "Operations"), and a folder as a zip
//! archive over a stream.

use std::process::Command;

use super::{curl, fixture};
use crate::Server;

/// Each stream leaves its record (SPEC "Operations"): one access-log line as HTTP/2.0
/// with its bytes (those of a body compressed as it went included), and the metrics
/// count it; and a folder as a zip archive (`GET /DIR/?zip`) over a stream.
pub fn access_log_metrics_and_zip_per_stream(bin: &str) {
    use crate::operations::{lines_of, metrics_addr, must, scrape_until};
    let fx = fixture();
    let log = fx.base.path().join("access.jsonl");
    let log_arg = log.to_string_lossy().into_owned();
    let s = Server::start_in(
        bin,
        fx,
        &[
            "--access-log",
            &log_arg,
            "--log-format",
            "json",
            "--metrics",
            "127.0.0.1:0",
            "--dir-listing",
        ],
    );
    let m = metrics_addr(&s);
    let digits = curl(&s, "/digits.txt", &["-A", "h2-agent"]);
    assert_eq!((digits.code, digits.version.as_str()), (200, "2"));
    let gz = curl(&s, "/big.json", &["-H", "Accept-Encoding: gzip"]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(curl(&s, "/missing.html", &[]).code, 404);
    let zip = curl(&s, "/?zip", &[]);
    assert_eq!((zip.code, zip.version.as_str()), (200, "2"));
    assert_eq!(zip.header("content-type"), Some("application/zip"));
    // A whole archive: the local header first, the end of the central directory last,
    // and the files in it.
    assert!(
        zip.body.starts_with(b"PK\x03\x04"),
        "{:?}",
        &zip.body[..8.min(zip.body.len())]
    );
    let eocd = zip.body.len().saturating_sub(22);
    assert_eq!(
        &zip.body[eocd..eocd + 4],
        b"PK\x05\x06",
        "the archive ends whole"
    );
    // Python's zipfile reads it (CRCs checked): digits.txt as it is on disk.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("root.zip");
    std::fs::write(&path, &zip.body).expect("write the zip");
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
                      assert z.testzip() is None; sys.stdout.write(z.read('digits.txt').decode())",
        ])
        .arg(&path)
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0123456789abcdefghij",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines_of(&log, 4);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let v: Vec<serde_json::Value> = (lines.iter())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let find = |target: &str| {
        (v.iter())
            .find(|x| x["target"] == target)
            .unwrap_or_else(|| panic!("no line for {target}: {lines:#?}"))
    };
    for x in &v {
        assert_eq!(x["protocol"], "HTTP/2.0", "{x}");
    }
    let d = find("/digits.txt");
    assert_eq!((&d["status"], &d["bytes"]), (&200.into(), &20.into()));
    assert_eq!(d["user_agent"], "h2-agent");
    assert_eq!(
        find("/big.json")["bytes"],
        gz.body.len(),
        "compressed bytes counted"
    );
    assert_eq!(find("/missing.html")["status"], 404);
    assert_eq!(find("/?zip")["bytes"], zip.body.len());
    let text = scrape_until(m, "four requests", |t| {
        crate::operations::value_of(t, "rfs_http_requests_total{method=\"GET\",code=\"200\"}")
            == Some(3)
    });
    assert_eq!(
        must(
            &text,
            "rfs_http_requests_total{method=\"GET\",code=\"404\"}"
        ),
        1
    );
    let bytes = 20 + gz.body.len() + zip.body.len() + curl_len(&v, "/missing.html");
    assert_eq!(must(&text, "rfs_http_response_bytes_total"), bytes as u64);
}

/// The bytes an access-log line (JSON) says of `target`.
fn curl_len(v: &[serde_json::Value], target: &str) -> usize {
    (v.iter())
        .find(|x| x["target"] == target)
        .and_then(|x| x["bytes"].as_u64())
        .unwrap_or(0) as usize
}

/// A full server (SPEC "Capacity") and a client that chose `h2` by ALPN but sends no
/// request: it gets the server's SETTINGS, and once the server's linger passes (2 s),
/// GOAWAY naming no stream (nothing was processed: it may retry elsewhere), then the
/// close. No HTTP/1.1 `503`, which such a client could not read.
pub fn a_full_server_sends_goaway_to_a_silent_h2_client(bin: &str) {
    #[cfg(feature = "tls")]
    {
        use std::io::{ErrorKind, Read, Write};
        use std::time::{Duration, Instant};

        use super::frames::{self, Frame};

        let s = Server::builder(bin)
            .fixture(fixture())
            .tls()
            .args(&["--threads", "1", "--queue", "1", "--max-connections", "2"])
            .start();
        // Both places are taken by connections that have sent nothing (as in
        // `capacity::busy_workers_and_full_queue_give_503`).
        let _a = s.connect();
        std::thread::sleep(Duration::from_millis(100));
        let _b = s.connect();
        std::thread::sleep(Duration::from_millis(300));
        let mut config = (*s.tls_config().expect("TLS")).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let conn = rustls::ClientConnection::new(
            std::sync::Arc::new(config),
            crate::https::loopback_name(),
        )
        .expect("client");
        let sock = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let start = Instant::now();
        let mut hello = frames::PREFACE.to_vec();
        hello.extend(frames::settings(&[]));
        tls.write_all(&hello).expect("the preface");
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"h2"[..]), "ALPN h2");
        // Everything until the server closes (a bound of 10 s on each read).
        let mut got = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match tls.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // A close without close_notify, or a reset after the GOAWAY: closed.
                Err(e) if e.kind() != ErrorKind::WouldBlock && e.kind() != ErrorKind::TimedOut => {
                    break
                }
                Err(e) => panic!("the server neither answered nor closed: {e}"),
            }
        }
        let took = start.elapsed();
        assert!(
            !got.starts_with(b"HTTP/1.1"),
            "an HTTP/1.1 answer to an h2 client"
        );
        let mut list = Vec::new();
        let mut at = 0;
        while got.len() >= at + 9 {
            let len = u32::from_be_bytes([0, got[at], got[at + 1], got[at + 2]]) as usize;
            let Some(payload) = got.get(at + 9..at + 9 + len) else {
                break;
            };
            list.push(Frame {
                kind: got[at + 3],
                flags: got[at + 4],
                stream: u32::from_be_bytes([got[at + 5], got[at + 6], got[at + 7], got[at + 8]])
                    & 0x7fff_ffff,
                payload: payload.to_vec(),
            });
            at += 9 + len;
        }
        assert_eq!(at, got.len(), "whole frames only: {list:?}");
        assert_eq!(
            list.first().map(|f| f.kind),
            Some(frames::SETTINGS),
            "{list:?}"
        );
        assert!(
            list.iter().all(|f| f.kind != frames::HEADERS),
            "no answer without a request: {list:?}"
        );
        let goaway = list.last().filter(|f| f.kind == frames::GOAWAY);
        let goaway = goaway.unwrap_or_else(|| panic!("GOAWAY last: {list:?}"));
        assert_eq!(goaway.last_stream(), Some(0), "GOAWAY names no stream");
        // The server waited for a request first (its linger is 2 s; a lower bound holds
        // however loaded the machine is).
        assert!(took >= Duration::from_secs(1), "closed after {took:?}");
    }
    #[cfg(not(feature = "tls"))]
    eprintln!("{bin}: built without TLS; no ALPN to choose h2 by");
}
