//! SPEC "HTTP/2" through `protocol::H2Server` (the connection plus one HTTP/1.1 core per
//! stream), driven by `protocol::sim::H2Driver`: the routes answered per stream with
//! the same rules as HTTP/1.1 (files, HEAD, 404/415, uploads in both framings, ranges),
//! hop-by-hop fields gone, streams side by side with their actions tagged, flow control
//! of bodies both ways (a file held by the windows; an upload's credit given only for
//! what was consumed), resets, `--max-requests`, drain, 431, the slow-reader rule and
//! the deadlines.

mod common;

use std::sync::Arc;

use common::*;
use protocol::sim::{Frame2, H2Driver, Start, Tables};
use protocol::{AccessControl, Action, Config, H2Input, Rules, UploadTarget};

type D = H2Driver<Tables>;

fn driver_with(config: Config) -> D {
    let mut d = H2Driver::new(config, web_root(), Start::default());
    d.handshake(None);
    d
}

fn driver() -> D {
    driver_with(config())
}

/// Whether `code` was sent as RST_STREAM on `id`.
fn reset(d: &D, id: u32) -> Option<u32> {
    d.frames.iter().find_map(|f| match f {
        Frame2::Rst { id: i, code } if *i == id => Some(*code),
        _ => None,
    })
}

fn pattern(offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((offset + i) % 251) as u8)
        .collect()
}

t!(a_file_is_answered_on_its_stream {
    let mut d = driver();
    assert!(d.frames.contains(&Frame2::Settings { ack: false }));
    assert!(d.frames.contains(&Frame2::Settings { ack: true }));
    d.get(1, "/sample.txt");
    let r = d.reply(1);
    assert_eq!(r.status(), 200);
    assert!(r.ended);
    assert_eq!(r.header("content-length"), Some("218"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(r.header("date").is_some() && r.header("server").is_some());
    // The connection's own fields are gone.
    for hop in ["connection", "keep-alive", "transfer-encoding"] {
        assert_eq!(r.header(hop), None, "{hop}");
    }
    assert_eq!(r.body, pattern(0, 218));
    // The stream is over: the session hears it.
    assert!(d.log.contains(&(1, None)));
    assert!(d.server.is_idle());
});

t!(head_404_415_and_a_range {
    let mut d = driver();
    d.request(1, "HEAD", "/index.html", &[], true);
    let r = d.reply(1);
    assert_eq!((r.status(), r.ended, r.body.len()), (200, true, 0));
    assert_eq!(r.header("content-length"), Some("1133"));
    d.get(3, "/missing.html");
    let r = d.reply(3);
    assert_eq!(r.status(), 404);
    assert!(r.ended);
    assert_eq!(r.body.len().to_string(), r.header("content-length").unwrap());
    d.get(5, "/notes.qqq");
    assert_eq!(d.reply(5).status(), 415);
    d.request(7, "GET", "/logo.png", &[("range", "bytes=10-19")], true);
    let r = d.reply(7);
    assert_eq!(r.status(), 206);
    assert_eq!(r.body, pattern(10, 10));
    d.get(9, "/../secret");
    assert_eq!(d.reply(9).status(), 403);
    // A Host that names another server: 403, as over HTTP/1.1.
    d.headers(11, &[(":method", "GET"), (":scheme", "http"), (":path", "/"),
        (":authority", "example.com")], true);
    assert_eq!(d.reply(11).status(), 403);
    assert!(!d.server.is_closed());
});

t!(uploads_with_a_length_and_without {
    let mut d = driver();
    let body = br#"{"a": 1}"#;
    d.request(1, "POST", "/upload", &[("content-type", "application/json"),
        ("content-length", "8")], false);
    d.data(1, body, true);
    let r = d.reply(1);
    assert_eq!(r.status(), 201);
    assert!(r.header("location").unwrap().starts_with("/uploads/"));
    assert_eq!(d.world.uploads.last().unwrap().1, body);
    // No content-length: the DATA frames are chunks to the core.
    d.request(3, "POST", "/upload", &[("content-type", "application/json")], false);
    d.data(3, b"{\"b\":", false);
    d.data(3, b" [1, 2]}", true);
    assert_eq!(d.reply(3).status(), 201);
    assert_eq!(d.world.uploads.last().unwrap().1, b"{\"b\": [1, 2]}");
    // Two streams, two names.
    assert_ne!(d.world.uploads[0].0, d.world.uploads[1].0);
    d.request(5, "POST", "/upload", &[("content-type", "application/json")], false);
    d.data(5, b"{nope", true);
    assert_eq!(d.reply(5).status(), 400);
});

t!(streams_side_by_side_with_tagged_actions {
    let mut d = driver();
    d.hold_actions = true;
    for id in [1, 3, 5] {
        d.get(id, "/index.html");
    }
    let opens: Vec<u32> = (d.log.iter())
        .filter(|(_, a)| matches!(a, Some(Action::OpenFile(_))))
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(opens, vec![1, 3, 5]);
    assert_eq!(d.server.streams(), 3);
    d.run();
    for id in [1, 3, 5] {
        let r = d.reply(id);
        assert_eq!((r.status(), r.body.len(), r.ended), (200, 1133, true), "{id}");
    }
});

t!(a_body_waits_for_the_windows {
    let mut d = H2Driver::new(config(), web_root(), Start::default());
    d.handshake(Some(1000));
    d.get(1, "/logo.png");
    assert_eq!(d.reply(1).body.len(), 1000);
    assert!(!d.reply(1).ended);
    d.window_update(1, 3000);
    assert_eq!(d.reply(1).body.len(), 4000);
    // The connection window (65,535) is the other bound.
    d.window_update(1, 100_000);
    assert_eq!(d.reply(1).body, pattern(0, 7028));
    assert!(d.reply(1).ended);
});

t!(a_window_held_at_zero_resets_the_stream {
    let mut cfg = config();
    cfg.idle_timeout_ms = 2_000;
    let mut d = H2Driver::new(cfg, web_root(), Start::default());
    d.handshake(Some(0));
    d.get(1, "/logo.png");
    assert_eq!(d.reply(1).body.len(), 0);
    d.advance_ms(2_500).fire_timeout();
    assert_eq!(reset(&d, 1), Some(8), "CANCEL");
    assert!(d.log.contains(&(1, None)));
    assert!(!d.server.is_closed());
});

t!(a_reset_stream_is_done {
    let mut d = driver();
    d.hold_actions = true;
    d.get(1, "/index.html");
    d.rst(1, 8);
    assert!(d.log.contains(&(1, None)));
    assert!(d.server.is_idle());
    // Its result, late, is ignored.
    d.run();
    assert!(d.reply(1).fields.is_empty());
});

t!(max_requests_drains_the_connection {
    let mut cfg = config();
    cfg.max_requests = 2;
    let mut d = driver_with(cfg);
    d.get(1, "/sample.txt");
    assert_eq!(d.goaway(), None);
    d.get(3, "/sample.txt");
    assert_eq!(d.goaway(), Some(0));
    assert_eq!(d.reply(3).status(), 200);
    assert!(d.closed);
});

t!(drain_finishes_open_streams {
    let mut d = driver();
    d.hold_actions = true;
    d.get(1, "/index.html");
    d.input(H2Input::Drain);
    assert_eq!(d.goaway(), Some(0));
    assert!(!d.closed);
    d.run();
    assert_eq!(d.reply(1).status(), 200);
    assert!(d.reply(1).ended);
    assert!(d.closed);
    // An idle connection closes at once.
    let mut d = driver();
    d.input(H2Input::Drain);
    assert!(d.closed);
});

t!(a_head_over_the_limit_is_431 {
    let mut d = driver();
    let big = "x".repeat(9000);
    d.request(1, "GET", "/", &[("x-big", &big)], true);
    let r = d.reply(1);
    assert_eq!(r.status(), 431);
    assert!(r.ended);
    assert!(!d.server.is_closed());
    d.get(3, "/sample.txt");
    assert_eq!(d.reply(3).status(), 200);
});

t!(expect_100_continue_is_an_interim_head {
    let mut d = driver();
    d.request(1, "POST", "/upload", &[("content-type", "application/json"),
        ("content-length", "2"), ("expect", "100-continue")], false);
    assert_eq!(d.reply(1).interim, vec![100]);
    d.data(1, b"{}", true);
    assert_eq!(d.reply(1).status(), 201);
});

fn put_config() -> Config {
    const ALICE: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$Vm/cP5vKzAT0WxgoA3cE+lsZUHKCKkeXi7E3uAzu8SA";
    let mut c = config();
    let rules = Rules::parse_lines(&format!("@/:rw\nalice:{ALICE}@/:rw\n")).expect("rules");
    c.access = Some(Arc::new(AccessControl::new(rules, "r")));
    c.max_upload = 64 << 20;
    c
}

t!(an_upload_gets_credit_only_for_what_was_written {
    let mut d = driver_with(put_config());
    let total = 3 << 20;
    d.request(1, "PUT", "/new.bin", &[("content-length", &total.to_string())], false);
    assert!(d.log.iter().any(|(_, a)| matches!(a,
        Some(Action::BeginUpload { target: UploadTarget::Path(_) }))));
    // The disk is slow: nothing is written while actions wait.
    d.hold_actions = true;
    let credit = |d: &D| -> u64 {
        d.frames.iter().map(|f| match f {
            Frame2::WindowUpdate { id: 1, increment } => u64::from(*increment),
            _ => 0,
        }).sum()
    };
    let chunk = vec![7u8; 16 << 10];
    let mut sent = 0u64;
    // The client sends all the stream window allows (256 KiB to start, plus every
    // credit): the core reads no more while a chunk is being written, so the credit
    // stops (in memory: the core's chunk and one window).
    for _ in 0..200 {
        if sent + chunk.len() as u64 > (256 << 10) + credit(&d) {
            break;
        }
        d.data(1, &chunk, false);
        sent += chunk.len() as u64;
    }
    assert!(sent <= (768 + 256 + 16) << 10, "{sent} bytes taken while nothing was written");
    let before = credit(&d);
    assert!(before < sent && sent >= 256 << 10, "{before} of {sent}");
    d.run();
    assert!(credit(&d) > before, "credit once the chunks are written");
    d.hold_actions = false;
    while sent < total {
        let n = chunk.len().min((total - sent) as usize);
        d.data(1, &chunk[..n], sent + n as u64 == total);
        sent += n as u64;
    }
    assert_eq!(d.reply(1).status(), 201);
    let put = d.world.committed.get("new.bin").expect("committed");
    assert_eq!(put.len() as u64, total);
});

t!(idle_connection_closes_after_the_idle_timeout {
    let mut d = driver();
    d.get(1, "/sample.txt");
    let until = d.server.deadline().expect("an idle deadline");
    assert_eq!(until, 30_000);
    d.advance_ms(30_000).fire_timeout();
    assert_eq!(d.goaway(), Some(0));
    assert!(d.closed);
});

t!(a_stalled_upload_is_408 {
    let mut d = driver();
    d.request(1, "POST", "/upload", &[("content-type", "application/json"),
        ("content-length", "10")], false);
    d.data(1, b"{", false);
    d.advance_ms(30_001).fire_timeout();
    assert_eq!(d.reply(1).status(), 408);
    assert!(d.reply(1).ended);
});

t!(a_refusal_before_the_body_reads_the_rest {
    // 428 before the body (a PUT over a file without If-Match): the answer goes, the
    // body is read and dropped (credit given), no reset, as HTTP/1.1 reads it before
    // the next request.
    let mut d = driver_with(put_config());
    d.request(1, "PUT", "/sample.txt", &[("content-length", "300000")], false);
    let r = d.reply(1);
    assert_eq!(r.status(), 428);
    assert!(r.ended);
    assert!(d.log.contains(&(1, None)), "the session hears the stream is done");
    let chunk = vec![1u8; 16 << 10];
    let mut sent = 0;
    while sent + chunk.len() < 300_000 {
        d.data(1, &chunk, false);
        sent += chunk.len();
    }
    d.data(1, &vec![1u8; 300_000 - sent], true);
    assert_eq!(reset(&d, 1), None);
    assert!(d.server.is_idle());
    let credit: u64 = d.frames.iter().map(|f| match f {
        Frame2::WindowUpdate { id: 1, increment } => u64::from(*increment),
        _ => 0,
    }).sum();
    assert!(credit >= 128 << 10, "the body was credited as it was dropped: {credit}");
    // A body that never ends is reset after the idle timeout (or past 1 MiB).
    d.request(3, "PUT", "/sample.txt", &[("content-length", "10")], false);
    assert_eq!(d.reply(3).status(), 428);
    assert!(!d.server.is_idle());
    d.advance_ms(30_000).fire_timeout();
    assert_eq!(reset(&d, 3), Some(0));
    assert!(d.server.is_idle());
});

t!(a_413_at_once_resets_the_rest {
    let mut c = config();
    c.max_body = 100;
    let mut d = driver_with(c);
    d.request(1, "POST", "/upload", &[("content-type", "application/json"),
        ("content-length", "5000000")], false);
    assert_eq!(d.reply(1).status(), 413);
    assert_eq!(reset(&d, 1), Some(0), "RST_STREAM NO_ERROR: the rest is not wanted");
    assert!(d.server.is_idle());
});

t!(a_folder_as_a_zip_archive_on_its_stream {
    let mut c = config();
    c.dir_listing = true;
    let mut d = driver_with(c);
    d.get(1, "/docs/?zip");
    let r = d.reply(1);
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-type"), Some("application/zip"));
    assert_eq!(r.header("transfer-encoding"), None, "no chunks over HTTP/2");
    assert_eq!(r.header("content-length"), None, "the length is unknown");
    // The session's bytes (1,000 in the driver) as DATA, ended by the last piece.
    assert!(r.ended);
    assert_eq!(r.body, pattern(0, 1000));
    assert!(d.world.archived.contains(&("docs".to_string(), None)));
    // Not a folder: 404 on its stream, the connection goes on.
    d.get(3, "/nowhere/?zip");
    assert_eq!(d.reply(3).status(), 404);
    assert!(d.server.is_idle());
});

t!(each_stream_leaves_a_record_as_http2 {
    use protocol::HttpVersion;
    let mut c = config();
    c.records = true;
    let mut d = driver_with(c);
    d.request(1, "GET", "/sample.txt", &[("user-agent", "h2-test")], true);
    d.request(3, "HEAD", "/index.html", &[], true);
    d.get(5, "/missing.html");
    let _ = (d.reply(1), d.reply(3), d.reply(5));
    let mut records = Vec::new();
    while let Some(r) = d.server.take_record() {
        records.push(r);
    }
    let got: Vec<_> = (records.iter())
        .map(|r| (r.method.to_string(), r.target.as_str(), r.status, r.body_bytes))
        .collect();
    assert!(got.contains(&("GET".into(), "/sample.txt", 200, Some(218))), "{got:?}");
    assert!(got.contains(&("HEAD".into(), "/index.html", 200, Some(0))), "{got:?}");
    assert!(got.iter().any(|g| g.1 == "/missing.html" && g.2 == 404), "{got:?}");
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.version == HttpVersion::Http2 && r.written));
    let ua = records.iter().find(|r| r.target == "/sample.txt").and_then(|r| r.user_agent.clone());
    assert_eq!(ua.as_deref(), Some("h2-test"));
    // Off (the default), none are kept.
    let mut d = driver();
    d.get(1, "/sample.txt");
    let _ = d.reply(1);
    assert!(d.server.take_record().is_none());
});
