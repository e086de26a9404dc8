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
