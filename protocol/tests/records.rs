//! SPEC "Operations" through a connection: the record of each answered request that the
//! runtime turns into access-log lines and metrics (`Config::records`,
//! `Connection::take_record`) — made once the answer is written, with the head's method,
//! target and version, the status and the body bytes that went out, the times on the
//! core's clock, the verified user, failed credentials, uploads and their bytes,
//! `Referer` and `User-Agent`; none without the switch.

mod common;

use std::sync::Arc;

use common::*;
use protocol::{AccessControl, Config, HttpVersion, Input, RequestRecord, Rules};

const ALICE: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$Vm/cP5vKzAT0WxgoA3cE+lsZUHKCKkeXi7E3uAzu8SA";
/// "Authorization: Basic alice:wonderland" and a wrong password.
const AUTH: &str = "Authorization: Basic YWxpY2U6d29uZGVybGFuZA==\r\n";
const WRONG: &str = "Authorization: Basic YWxpY2U6bm9wZQ==\r\n";

fn on() -> Config {
    let mut c = config();
    c.records = true;
    c
}

fn recording() -> Driver {
    driver_with(on())
}

fn with_rules() -> Driver {
    let mut c = on();
    let rules = Rules::parse_lines(&format!("@/:ro\nalice:{ALICE}@/:rw\n")).expect("rules");
    c.access = Some(Arc::new(AccessControl::new(rules, "r")));
    let mut d = driver_with(c);
    d.world
        .passwords
        .insert("alice".into(), "wonderland".into());
    d
}

fn only(d: &Driver) -> &RequestRecord {
    assert_eq!(d.records.len(), 1, "{:#?}", d.records);
    &d.records[0]
}

t!(a_get_has_its_head_status_bytes_and_times {
    let mut d = recording();
    d.send(&get_with(
        "/sample.txt?x=1",
        "Referer: http://a.test/p\r\nUser-Agent: curl/8 \"quoted\"\r\n",
    ));
    let r = only(&d);
    assert_eq!(r.method, "GET");
    assert_eq!(r.target, "/sample.txt?x=1");
    assert_eq!(r.version, HttpVersion::Http11);
    assert_eq!(r.version.as_str(), "HTTP/1.1");
    assert_eq!((r.status, r.body_bytes), (200, Some(218)));
    assert!(r.parsed() && r.written);
    assert_eq!(r.referer.as_deref(), Some("http://a.test/p"));
    assert_eq!(r.user_agent.as_deref(), Some("curl/8 \"quoted\""));
    // The file opened in 250 ms, the answer was written 40 ms later.
    assert_eq!((r.started_ms, r.finished_ms, r.duration_ms()), (0, 290, 290));
    assert_eq!((r.user.as_deref(), r.auth_failed, r.upload), (None, false, None));
});

t!(nothing_is_kept_without_the_switch {
    let mut d = driver();
    d.send(&get_with("/sample.txt", "User-Agent: x\r\n"));
    assert_eq!(d.status(), 200);
    assert!(d.records.is_empty());
    assert_eq!(d.conn.take_record(), None);
});

t!(one_record_per_answer_in_order_and_only_once_written {
    let mut d = recording();
    d.hold_writes = true;
    let mut pipelined = get("/sample.txt");
    pipelined.extend_from_slice(&get("/missing.html"));
    pipelined.extend_from_slice(&req("HEAD", "/index.html", ""));
    d.send(&pipelined);
    // The first answer is out but not written: no record yet.
    assert!(d.records.is_empty());
    d.written();
    let got: Vec<_> = d
        .records
        .iter()
        .map(|r| (r.method.as_ref(), r.target.as_str(), r.status, r.body_bytes))
        .collect();
    // A HEAD sends no body; a 404's page is its body.
    let page_404 = d.responses()[1].body.len() as u64;
    assert_eq!(
        got,
        [
            ("GET", "/sample.txt", 200, Some(218)),
            ("GET", "/missing.html", 404, Some(page_404)),
            ("HEAD", "/index.html", 200, Some(0)),
        ]
    );
    assert!(page_404 > 0);
});

t!(bytes_that_never_became_a_request_have_an_empty_method {
    let mut d = recording();
    d.send(b"\x16\x03\x01 garbage\r\n\r\n");
    let r = only(&d);
    assert_eq!(r.status, 400);
    assert!(!r.parsed());
    assert_eq!((r.method.as_ref(), r.target.as_str()), ("", ""));
    assert!(r.body_bytes.is_some_and(|n| n > 0));
});

t!(http_1_0_and_a_failed_write {
    let mut d = recording();
    d.hold_writes = true;
    d.send(b"GET /index.html HTTP/1.0\r\n\r\n");
    d.input(Input::WriteFailed);
    let r = only(&d);
    assert_eq!(r.version, HttpVersion::Http10);
    assert_eq!(r.version.as_str(), "HTTP/1.0");
    assert!(!r.written);
});

t!(the_verified_user_failed_credentials_and_a_challenge {
    // A good password: the user.
    let mut d = with_rules();
    d.send(&req("GET", "/index.html", AUTH));
    let r = only(&d);
    assert_eq!((r.status, r.user.as_deref(), r.auth_failed), (200, Some("alice"), false));
    // A wrong one: 401, a failure.
    let mut d = with_rules();
    d.send(&req("POST", "/upload", &format!("{WRONG}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}")));
    let r = only(&d);
    assert_eq!((r.status, r.user.as_deref(), r.auth_failed), (401, None, true));
    assert_eq!(r.upload, Some(0));
    // Unreadable credentials: a failure too.
    let mut d = with_rules();
    d.send(&req("POST", "/upload", "Authorization: Basic !!!\r\nContent-Length: 0\r\nContent-Type: application/json\r\n"));
    assert!(only(&d).auth_failed);
    // None where none are needed, or a challenge: no failure.
    let mut d = with_rules();
    d.send(&req("PUT", "/x.txt", "Content-Length: 0\r\n"));
    let r = only(&d);
    assert_eq!((r.status, r.auth_failed, r.user.as_deref()), (401, false, None));
});

t!(uploads_carry_their_bytes_other_requests_none {
    let mut d = recording();
    d.send(&upload("{\"key\": \"value\"}"));
    let r = only(&d);
    assert_eq!((r.method.as_ref(), r.status, r.upload), ("POST", 201, Some(16)));
    // Another type is a refused upload; a POST elsewhere is no upload.
    let mut d = recording();
    d.send(&req("POST", "/upload", "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"));
    d.send(&req("POST", "/elsewhere", "Content-Length: 0\r\n"));
    let got: Vec<_> = d.records.iter().map(|r| (r.status, r.upload)).collect();
    assert_eq!(got, [(415, Some(0)), (404, None)]);
    // A streamed PUT counts the file data handed out.
    let mut d = with_rules();
    let body = vec![b'x'; 300_000];
    let mut put = req("PUT", "/new.bin", &format!("{AUTH}Content-Length: {}\r\n\r\n", body.len()));
    put.extend_from_slice(&body);
    d.send(&put);
    let r = only(&d);
    assert_eq!((r.method.as_ref(), r.status, r.upload), ("PUT", 201, Some(300_000)));
    assert_eq!(r.user.as_deref(), Some("alice"));
});

t!(a_connection_keeps_a_few_for_a_runtime_that_never_takes_them {
    // Without the driver, which takes them: the connection by hand.
    let mut conn = protocol::Connection::new(Arc::new(on()), protocol::Now::new(0, T0), [1; 16], "p");
    for i in 0..40u64 {
        let now = protocol::Now::new(i, T0);
        conn.handle(now, Input::Received(&req("OPTIONS", "*", "")));
        while conn.poll().is_some() {}
        conn.handle(now, Input::Written);
        while conn.poll().is_some() {}
    }
    let mut kept = 0;
    let mut last = 0;
    while let Some(r) = conn.take_record() {
        assert_eq!(r.status, 204);
        last = r.started_ms;
        kept += 1;
    }
    assert_eq!((kept, last), (16, 39), "the newest are kept");
});

t!(a_compressed_answer_counts_what_the_core_knows {
    // Compressed whole: its length. As it is sent: unknown to the core (the runtime counts).
    for (compressed, want) in [
        (protocol::Compressed::Len(100), Some(100)),
        (protocol::Compressed::Stream, None),
    ] {
        let mut d = recording();
        d.world.compressed = compressed;
        d.send(&get_with("/index.html", "Accept-Encoding: gzip\r\n"));
        let r = only(&d);
        assert_eq!((r.status, r.body_bytes), (200, want));
    }
});
