//! SPEC "Connections": keep-alive, request limit, pipelining, deadlines, and that the
//! incremental parser gives the same answer however the bytes are split.
mod common;
use common::*;
use protocol::{Config, Input};

t!(http11_keeps_alive_by_default {
    let d = one(&get("/"));
    let r = d.only();
    assert_eq!(r.header("Keep-Alive"), Some("timeout=30, max=99"));
    assert_eq!(r.header("Connection"), None);
    assert!(!d.closed);
});

t!(connection_close_closes {
    let d = one(&req("GET", "/", "Connection: close\r\n"));
    assert_eq!(d.only().header("Connection"), Some("close"));
    assert!(!d.only().has("Keep-Alive"));
    assert_eq!(d.out.last(), Some(&Out::Close));
    // After the file body: the SendFile comes before Close.
    let n = d.out.len();
    assert!(matches!(d.out[n - 2], Out::SendFile { .. }));
});

t!(http10_closes_unless_keep_alive {
    let d = one(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(d.only().header("Connection"), Some("close"));
    assert!(d.closed);
    let d = one(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(d.only().header("Connection"), Some("keep-alive"));
    assert_eq!(d.only().header("Keep-Alive"), Some("timeout=30, max=99"));
    assert!(!d.closed);
    let d = one(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    assert!(d.closed);
});

t!(hundredth_request_closes {
    let mut d = driver();
    for i in 1..=100u32 {
        d.send(&get("/"));
        let r = d.responses();
        let last = r[r.len() - 1];
        if i < 100 {
            assert_eq!(last.header("Keep-Alive"), Some(format!("timeout=30, max={}", 100 - i).as_str()));
            assert!(!d.closed, "closed after {i}");
        } else {
            assert_eq!(last.header("Connection"), Some("close"));
            assert!(d.closed);
        }
    }
    // Nothing more is answered.
    d.send(&get("/"));
    assert_eq!(d.responses().len(), 100);
    assert_eq!(d.conn.ignored(), 1);
});

t!(max_requests_is_configurable {
    let mut c = config();
    c.max_requests = 2;
    let mut d = driver_with(c);
    d.send(&[get("/"), get("/"), get("/")].concat());
    assert_eq!(d.responses().len(), 2);
    assert!(d.closed);
});

t!(pipelined_requests_answered_in_order {
    let mut d = driver();
    let all = [get("/logo.png"), get("/nope.html"), upload("{}"), req("PUT", "/", ""), get("/sample.txt")].concat();
    d.send(&all);
    let s: Vec<u16> = d.responses().iter().map(|r| r.status).collect();
    assert_eq!(s, vec![200, 404, 201, 405, 200]);
    // Each file body follows its own head.
    let order: Vec<String> = d
        .out
        .iter()
        .filter_map(|o| match o {
            Out::Resp(r) => Some(r.status.to_string()),
            Out::SendFile { len, .. } => Some(format!("file{len}")),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["200", "file7028", "404", "201", "405", "200", "file218"]);
});

t!(idle_timeout_closes_silently {
    let mut d = driver();
    assert_eq!(d.deadline(), Some(30_000));
    d.advance_ms(29_999).fire_timeout();
    assert!(!d.closed);
    d.advance_ms(1).fire_timeout();
    assert!(d.closed);
    assert!(d.responses().is_empty());
});

t!(idle_timeout_restarts_after_each_request {
    let mut d = driver();
    d.advance_ms(20_000).send(&get("/"));
    // From the moment the answer was written (the driver took time to open and write).
    assert!(d.now.mono_ms > 20_000);
    assert_eq!(d.deadline(), Some(d.now.mono_ms + 30_000));
    let mut c = config();
    c.idle_timeout_ms = 5_000;
    let d = driver_with(c);
    assert_eq!(d.deadline(), Some(5_000));
});

t!(keep_alive_header_follows_idle_timeout {
    let mut c = config();
    c.idle_timeout_ms = 7_000;
    let mut d = driver_with(c);
    d.send(&get("/"));
    assert_eq!(d.only().header("Keep-Alive"), Some("timeout=7, max=99"));
});

t!(slow_head_gets_408 {
    let mut d = driver();
    d.send(b"GET / HTTP/1.1\r\nX-Drip: ");
    assert_eq!(d.deadline(), Some(10_000));
    // Dripping bytes does not move the head deadline.
    for _ in 0..9 {
        d.advance_ms(1_000).send(b"a");
    }
    assert!(d.responses().is_empty());
    d.advance_ms(1_000).fire_timeout();
    assert_eq!(d.status(), 408);
    assert!(d.closed);
});

t!(slow_body_gets_408 {
    let mut d = driver();
    d.send(&req("POST", "/upload", "Content-Type: application/json\r\nContent-Length: 10\r\n"));
    d.send(b"{");
    d.advance_ms(30_000).fire_timeout();
    assert_eq!(d.status(), 408);
    assert!(d.closed);
    assert!(d.world.uploads.is_empty());
});

t!(no_deadline_while_waiting_for_the_runtime {
    let cfg = std::sync::Arc::new(Config::new("127.0.0.1", 8080, &[]));
    let mut c = protocol::Connection::new(cfg, protocol::Now::new(0, T0), [0; 16], "p");
    c.handle(protocol::Now::new(1, T0), protocol::Input::Received(&get("/")));
    assert!(matches!(c.poll(), Some(protocol::Action::OpenFile(_))));
    assert_eq!(common::deadline(&c), None);
    assert!(!matches!(c.wait(), protocol::Wait::Read { .. }));
    // Nor while the answer is being written.
    let mut d = driver();
    d.hold_writes = true;
    d.send(&get("/"));
    assert_eq!(d.responses().len(), 1);
    assert_eq!(d.deadline(), None);
    d.written();
    assert_eq!(d.deadline(), Some(d.now.mono_ms + 30_000));
});

t!(eof_answers_complete_requests_then_closes {
    let mut d = driver();
    d.send(&[get("/"), get("/sample.txt")].concat()).eof();
    assert_eq!(d.responses().len(), 2);
    assert_eq!(d.out.last(), Some(&Out::Close));
    let mut d = driver();
    d.send(b"GET / HTTP/1.1\r\nHo").eof();
    assert!(d.closed && d.responses().is_empty());
});

t!(expect_100_continue {
    let mut d = driver();
    d.send(&req("POST", "/upload", "Content-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"));
    assert_eq!(d.out, vec![Out::Continue]);
    d.send(b"{}");
    assert_eq!(d.status(), 201);
    // Refused before the body: answered at once, and the connection closes.
    let d = one(&req("POST", "/upload", "Content-Type: text/plain\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"));
    assert_eq!(d.status(), 415);
    assert!(d.closed);
    let d = one(&req("POST", "/upload", "Content-Length: 2\r\nExpect: something\r\n"));
    assert_eq!(d.status(), 417);
});

// Every request, split at every byte boundary, gives the same actions as whole.
t!(every_split_gives_the_same_actions {
    let cases: Vec<Vec<u8>> = vec![
        get("/"),
        req("HEAD", "/logo.png", "Accept-Encoding: gzip\r\n"),
        upload(r#"{"k":[1,2,{"x":"y"}]}"#),
        req("POST", "/upload", "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\n{\"k\r\n6\r\n\":123}\r\n0\r\nX-T: 1\r\n\r\n"),
        [get("/sample.txt"), req("OPTIONS", "*", ""), get("/nope.html")].concat(),
        req("GET", "/a%2e%2e/..%2fx", ""),
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
        req("POST", "/upload", "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    ];
    for case in cases {
        let whole = one(&case).out;
        for cut in 0..=case.len() {
            let mut d = driver();
            d.send(&case[..cut]).send(&case[cut..]);
            assert_eq!(d.out, whole, "split at {cut} of {:?}", String::from_utf8_lossy(&case));
        }
        let mut d = driver();
        for b in &case {
            d.send(std::slice::from_ref(b));
        }
        assert_eq!(d.out, whole, "byte by byte: {:?}", String::from_utf8_lossy(&case));
    }
});

t!(results_nobody_asked_for_are_ignored {
    let mut d = driver();
    d.send(&req("GET", "/", "Connection: close\r\n"));
    assert!(d.closed);
    // After Close, stray results must not reopen the connection; each is counted.
    let meta = protocol::FileMeta::default();
    d.input(Input::FileOpened(Ok(meta)))
        .input(Input::FileOpened(Err(protocol::FileError::NotFound)))
        .input(Input::UploadWritten(Ok(())))
        .input(Input::Written)
        .send(&get("/"));
    assert_eq!(d.conn.poll(), None);
    assert!((d.conn.wait() == protocol::Wait::Closed));
    assert_eq!(d.conn.ignored(), 5);
    // While reading a head, a stray result changes nothing either.
    let mut d = driver();
    d.send(b"GET / HTTP/1.1\r\n");
    d.input(Input::UploadWritten(Ok(())))
        .input(Input::FileOpened(Ok(meta)))
        .input(Input::Written)
        .input(Input::WriteFailed);
    assert_eq!(d.conn.ignored(), 4);
    d.send(b"Host: 127.0.0.1:8080\r\n\r\n");
    assert_eq!(d.status(), 200);
    assert_eq!(d.conn.ignored(), 4);
});

t!(drain_closes_idle_and_answers_the_last_request_with_close {
    let mut d = driver();
    d.send(&get("/"));
    d.input(Input::Drain);
    assert!(d.closed, "an idle connection closes at once");
    let mut d = driver();
    d.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n");
    d.input(Input::Drain);
    d.send(b"\r\n");
    assert_eq!(d.only().header("Connection"), Some("close"));
    assert!(d.closed);
});

t!(idle_is_between_requests_only {
    let mut d = driver();
    assert!(d.is_idle());
    d.send(b"GET / HTTP/1.1\r\n");
    assert!(!d.is_idle(), "a request has started");
    d.send(b"Host: 127.0.0.1:8080\r\n\r\n");
    assert!(d.is_idle(), "answered and written");
    d.hold_writes = true;
    d.send(&get("/"));
    assert!(!d.is_idle(), "an answer is being written");
    d.written();
    assert!(d.is_idle());
    d.send(b"\r\n");
    assert!(d.is_idle(), "empty lines are idle time");
    d.send(&req("POST", "/upload", "Content-Type: application/json\r\nContent-Length: 5\r\n"));
    assert!(!d.is_idle(), "a body is due");
});
