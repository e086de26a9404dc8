//! The access log's formats (`access.rs`): dates, escaping, numbers, JSON fields.

use std::borrow::Cow;

use super::*;
use protocol::HttpVersion;

fn entry() -> Entry {
    Entry {
        record: RequestRecord {
            method: Cow::Borrowed("GET"),
            target: "/a%20b.txt?q=\"x\"".into(),
            version: HttpVersion::Http11,
            status: 200,
            body_bytes: Some(218),
            started_ms: 5,
            finished_ms: 17,
            user: Some("al ice\"".into()),
            auth_failed: false,
            upload: None,
            referer: Some("http://r.test/".into()),
            user_agent: Some("curl/8 \"x\"\n\u{e9}\\".into()),
            written: true,
        },
        ip: Some("127.0.0.1".parse().expect("ip")),
        tls: true,
        // 2026-12-03 10:00:00.123 UTC
        unix_ms: 1_796_292_000_123,
        bytes: 218,
    }
}

fn line(e: &Entry, f: Format) -> String {
    let mut out = Vec::new();
    format_line(&mut out, e, f);
    String::from_utf8(out).expect("ASCII")
}

#[test]
fn dates_are_the_calendars() {
    let mut out = Vec::new();
    clf_time(&mut out, 0);
    out.push(b' ');
    clf_time(&mut out, 951_782_400); // 2000-02-29
    out.push(b' ');
    rfc3339(&mut out, 1_796_292_000_123);
    assert_eq!(
        String::from_utf8(out).expect("ascii"),
        "01/Jan/1970:00:00:00 +0000 29/Feb/2000:00:00:00 +0000 2026-12-03T10:00:00.123Z"
    );
}

#[test]
fn common_and_combined_escape_client_text() {
    let e = entry();
    assert_eq!(
        line(&e, Format::Common),
        "127.0.0.1 - al\\x20ice\\x22 [03/Dec/2026:10:00:00 +0000] \
         \"GET /a%20b.txt?q=\\x22x\\x22 HTTP/1.1\" 200 218\n"
    );
    assert_eq!(
        line(&e, Format::Combined),
        "127.0.0.1 - al\\x20ice\\x22 [03/Dec/2026:10:00:00 +0000] \
         \"GET /a%20b.txt?q=\\x22x\\x22 HTTP/1.1\" 200 218 \"http://r.test/\" \
         \"curl/8 \\x22x\\x22\\x0A\\xC3\\xA9\\x5C\"\n"
    );
    // No user, no Referer, bytes that never became a request.
    let mut e = entry();
    e.record.user = None;
    e.record.referer = None;
    e.record.method = Cow::Borrowed("");
    e.record.target.clear();
    e.record.status = 400;
    assert!(line(&e, Format::Combined)
        .starts_with("127.0.0.1 - - [03/Dec/2026:10:00:00 +0000] \"-\" 400 218 \"-\" \"curl/8"));
}

#[test]
fn numbers_and_addresses_as_core_fmt_writes_them() {
    for n in [0, 1, 9, 10, 99, 100, 12_345, u64::from(u32::MAX), u64::MAX] {
        let mut out = Vec::new();
        number(&mut out, n);
        out.push(b' ');
        padded(&mut out, n, 4);
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            format!("{n} {n:04}")
        );
    }
    for ip in [
        "10.0.255.1",
        "0.0.0.0",
        "::1",
        "2001:db8::7",
        "::ffff:1.2.3.4",
    ] {
        let ip: IpAddr = ip.parse().expect("ip");
        let mut out = Vec::new();
        remote(&mut out, Some(ip));
        assert_eq!(String::from_utf8(out).expect("ascii"), ip.to_string());
    }
    let mut out = Vec::new();
    remote(&mut out, None);
    escape(&mut out, " a\u{7f}", true);
    assert_eq!(out, b"unix:\\x20a\\x7F");
}

#[test]
fn json_has_the_named_fields() {
    let text = line(&entry(), Format::Json);
    assert!(text.ends_with('\n') && !text.trim_end().contains('\n'));
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["time"], "2026-12-03T10:00:00.123Z");
    assert_eq!(v["remote_addr"], "127.0.0.1");
    assert_eq!(v["user"], "al ice\"");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["target"], "/a%20b.txt?q=\"x\"");
    assert_eq!(v["protocol"], "HTTP/1.1");
    assert_eq!(v["status"], 200);
    assert_eq!(v["bytes"], 218);
    assert_eq!(v["duration_ms"], 12);
    assert_eq!(v["referer"], "http://r.test/");
    assert_eq!(v["user_agent"], "curl/8 \"x\"\n\u{e9}\\");
    assert_eq!(v["tls"], true);
    let mut e = entry();
    e.record.method = Cow::Borrowed("");
    e.record.user = None;
    let v: serde_json::Value = serde_json::from_str(&line(&e, Format::Json)).expect("JSON");
    assert!(v["method"].is_null() && v["target"].is_null() && v["user"].is_null());
}

/// Lines formatted on several threads come out in the order their requests ended,
/// whichever thread's batch held them; a thread that has ended leaves none behind; and
/// a batch past its bound drops and counts (the only test in this process that starts
/// the log: it is set up once).
#[test]
fn threads_batches_are_written_in_the_order_requests_ended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.log");
    start(&path, Format::Common).expect("start");
    let with_target = |n: u64| {
        let mut e = entry();
        e.record.user = None;
        e.record.target = format!("/{n}");
        e
    };
    // Two threads, keys interleaved: 1, 3, 5, … on one and 2, 4, 6, … on the other;
    // each thread ends before the flush.
    let threads: Vec<_> = [1u64, 2]
        .into_iter()
        .map(|first| {
            std::thread::spawn(move || {
                for n in (first..=40).step_by(2) {
                    send(&with_target(n), n);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a sending thread");
    }
    send(&with_target(41), 41);
    flush(Duration::from_secs(10));
    let text = std::fs::read_to_string(&path).expect("the log");
    let targets: Vec<&str> = text
        .lines()
        .map(|l| l.split(' ').nth(6).unwrap_or(""))
        .collect();
    let want: Vec<String> = (1..=41).map(|n| format!("/{n}")).collect();
    assert_eq!(targets, want, "{text}");
    // Past a batch's bound, lines are dropped and counted (a bound of 0: nothing here
    // stops the writer to fill one).
    let before = dropped();
    send_within(&with_target(42), 42, 0);
    assert_eq!(dropped(), before + 1);
    assert_eq!(
        CAP.load(Ordering::Relaxed),
        THREAD_CAP.1,
        "few threads: 1 MiB each"
    );
}
