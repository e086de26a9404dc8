//! The defences of SPEC "HTTP/2", each against its attack sent frame by frame over a
//! socket ([`frames`]): rapid reset (CVE-2023-44487), a CONTINUATION flood, an HPACK
//! bomb, SETTINGS and PING floods, a window held at zero (the slow-reader rule), and
//! stream ids misused. After each, the server still serves a new connection, and its
//! memory stayed bounded where the attack aims at memory.

use std::time::{Duration, Instant};

use super::frames::{self, Conn};
use crate::util::proc_kib;
use crate::{Fixture, Server};

fn start(bin: &str, args: &[&str]) -> Server {
    let fx = Fixture::new()
        .with_file("digits.txt", b"0123456789abcdefghij")
        .with_file("big.bin", vec![7u8; 4 << 20]);
    Server::builder(bin)
        .fixture(fx)
        .rust_log("warn")
        .args(args)
        .start()
}

/// The server still answers a new HTTP/2 connection.
fn still_serves(s: &Server) {
    let mut c = Conn::open(s.port, &[]);
    let block = frames::get_block(&s.host(), "/digits.txt");
    c.headers(1, &block, frames::END_HEADERS | frames::END_STREAM);
    let done = c.wait_for(Duration::from_secs(10), |f| {
        f.kind == frames::DATA && f.stream == 1 && f.flags & frames::END_STREAM != 0
    });
    assert!(done.is_some(), "a new connection is served: {:?}", c.frames);
    assert_eq!(c.data(1), (20, true));
}

/// The GOAWAY that ended the connection (and that it did end).
fn goaway_and_closed(c: &mut Conn, what: &str) -> frames::Frame {
    let goaway = c
        .wait_for(Duration::from_secs(10), |f| f.kind == frames::GOAWAY)
        .unwrap_or_else(|| panic!("{what}: no GOAWAY ({} frames read)", c.frames.len()));
    assert!(c.wait_closed(Duration::from_secs(10)), "{what}: not closed");
    goaway
}

pub fn rapid_reset_is_enhance_your_calm(bin: &str) {
    let s = start(bin, &[]);
    let mut c = Conn::open(s.port, &[]);
    let block = frames::get_block(&s.host(), "/big.bin");
    let mut burst = Vec::new();
    // CVE-2023-44487: open a stream and reset it at once, over and over.
    for i in 0..1000u32 {
        let id = 2 * i + 1;
        burst.extend(frames::frame(
            frames::HEADERS,
            frames::END_HEADERS | frames::END_STREAM,
            id,
            &block,
        ));
        burst.extend(frames::rst_stream(id, frames::CANCEL));
    }
    c.send(&burst);
    let goaway = goaway_and_closed(&mut c, "rapid reset");
    assert_eq!(goaway.error_code(), Some(frames::ENHANCE_YOUR_CALM));
    let line = s.wait_log(
        &["refused (HTTP/2 GOAWAY ENHANCE_YOUR_CALM)"],
        Duration::from_secs(5),
    );
    assert!(
        line.is_some(),
        "a warn line: {}",
        crate::util::tail(&s.logs())
    );
    still_serves(&s);
}

pub fn continuation_flood_is_bounded(bin: &str) {
    let s = start(bin, &[]);
    let before = proc_kib(s.pid(), "VmRSS");
    let mut c = Conn::open(s.port, &[]);
    let block = frames::get_block(&s.host(), "/digits.txt");
    c.headers(1, &block, 0);
    // CONTINUATION frames that never end the block: up to 64 MiB offered.
    let junk = vec![0x40u8; 16 << 10];
    let continuation = frames::frame(frames::CONTINUATION, 0, 1, &junk);
    let mut offered = 0usize;
    let t = Instant::now();
    while offered < 64 << 20 && t.elapsed() < Duration::from_secs(20) {
        if !c.send(&continuation) {
            break;
        }
        offered += continuation.len();
    }
    let goaway = goaway_and_closed(&mut c, "CONTINUATION flood");
    assert_eq!(goaway.error_code(), Some(frames::ENHANCE_YOUR_CALM));
    assert!(offered < 64 << 20, "the server read all {offered} bytes");
    let peak = proc_kib(s.pid(), "VmHWM");
    assert!(
        peak < before + 16 * 1024,
        "peak RSS {peak} KiB (before: {before})"
    );
    still_serves(&s);
}

pub fn hpack_bomb_is_431(bin: &str) {
    let s = start(bin, &[]);
    let before = proc_kib(s.pid(), "VmRSS");
    let mut c = Conn::open(s.port, &[]);
    // 4 KiB entered in the table once, then referred to 4,000 times (16 MiB decoded)
    // in a block of a few KiB.
    let bomb = frames::bomb_block(&s.host(), 4000, 4000);
    assert!(bomb.len() < 16 << 10);
    c.headers(1, &bomb, frames::END_HEADERS | frames::END_STREAM);
    let end = c.wait_for(Duration::from_secs(10), |f| {
        f.stream == 1 && f.flags & frames::END_STREAM != 0 || f.kind == frames::GOAWAY
    });
    let end = end.expect("an answer to the bomb");
    assert_eq!(end.kind, frames::DATA, "431 with a body, not {end:?}");
    // The error page of a 431 (the head is HPACK-coded; the page is plain text).
    let page: Vec<u8> = (c.frames.iter())
        .filter(|f| f.kind == frames::DATA && f.stream == 1)
        .flat_map(|f| f.payload.clone())
        .collect();
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains("431 Request Header Fields Too Large"),
        "{page}"
    );
    let peak = proc_kib(s.pid(), "VmHWM");
    assert!(
        peak < before + 16 * 1024,
        "peak RSS {peak} KiB (before: {before})"
    );
    // The connection goes on.
    let block = frames::get_block(&s.host(), "/digits.txt");
    c.headers(3, &block, frames::END_HEADERS | frames::END_STREAM);
    let ok = c.wait_for(Duration::from_secs(10), |f| {
        f.stream == 3 && f.flags & frames::END_STREAM != 0
    });
    assert!(ok.is_some(), "the next stream is served");
}

pub fn settings_and_ping_floods_end_the_connection(bin: &str) {
    let s = start(bin, &[]);
    for (what, one) in [
        (
            "SETTINGS",
            frames::settings(&[(frames::INITIAL_WINDOW_SIZE, 65_535)]),
        ),
        ("PING", frames::frame(frames::PING, 0, 0, b"flooding")),
    ] {
        let mut c = Conn::open(s.port, &[]);
        let burst: Vec<u8> = one.iter().copied().cycle().take(one.len() * 2000).collect();
        c.send(&burst);
        let goaway = goaway_and_closed(&mut c, what);
        assert_eq!(
            goaway.error_code(),
            Some(frames::ENHANCE_YOUR_CALM),
            "{what}"
        );
        let acks = c
            .frames
            .iter()
            .filter(|f| f.flags & frames::ACK != 0)
            .count();
        assert!(acks < 1000, "{what}: {acks} answered");
    }
    still_serves(&s);
}

pub fn a_window_held_at_zero_is_dropped(bin: &str) {
    // The slow-reader rule's window is the idle timeout: 2 s here.
    let s = start(bin, &["--idle-timeout", "2"]);
    // A stream window of zero: the body cannot start.
    let mut c = Conn::open(s.port, &[(frames::INITIAL_WINDOW_SIZE, 0)]);
    let block = frames::get_block(&s.host(), "/big.bin");
    c.headers(1, &block, frames::END_HEADERS | frames::END_STREAM);
    // Without the rule the stream would wait for credit as long as the client likes
    // (30 s here is a bound for the test, far past the 2 s of the rule).
    let rst = c
        .wait_for(Duration::from_secs(30), |f| f.kind == frames::RST_STREAM)
        .expect("the stream is reset");
    assert_eq!((rst.stream, rst.error_code()), (1, Some(frames::CANCEL)));
    assert_eq!(c.data(1).0, 0);
    // The connection window (65,535) held at zero: the connection goes.
    let mut c = Conn::open(s.port, &[(frames::INITIAL_WINDOW_SIZE, 1 << 30)]);
    c.headers(1, &block, frames::END_HEADERS | frames::END_STREAM);
    let goaway = goaway_and_closed(&mut c, "connection window at zero");
    assert_eq!(goaway.error_code(), Some(frames::ENHANCE_YOUR_CALM));
    assert_eq!(c.data(1).0, 65_535, "what the connection window allowed");
    still_serves(&s);
}

/// A client that closes its side while its streams wait for window credit it will
/// never send: the server closes the connection at once (a bug once spun a worker on
/// the end of the stream, and runtime-std then served no other connection), not at the
/// idle timeout (60 s here, so that only the prompt close passes).
pub fn a_client_gone_with_streams_waiting_closes_them(bin: &str) {
    let s = start(bin, &["--idle-timeout", "60"]);
    let block = frames::get_block(&s.host(), "/big.bin");
    let mut conns: Vec<Conn> = (0..3)
        .map(|_| Conn::open(s.port, &[(frames::INITIAL_WINDOW_SIZE, 0)]))
        .collect();
    for c in &mut conns {
        for id in (1..200).step_by(2) {
            c.headers(id, &block, frames::END_HEADERS | frames::END_STREAM);
        }
        c.wait_for(Duration::from_secs(10), |f| f.kind == frames::HEADERS)
            .expect("answers begin (headers need no window)");
        c.stream
            .shutdown(std::net::Shutdown::Write)
            .expect("half-close");
    }
    for c in &mut conns {
        assert!(
            c.wait_closed(Duration::from_secs(20)),
            "the server keeps a connection whose client is gone"
        );
    }
    still_serves(&s);
}

/// A frame to send: stream id, type, payload.
type Sent = (u32, u8, Vec<u8>);

pub fn stream_id_misuse_is_a_protocol_error(bin: &str) {
    let s = start(bin, &[]);
    let block = frames::get_block(&s.host(), "/digits.txt");
    let flags = frames::END_HEADERS | frames::END_STREAM;
    // An even stream id (a server's), a stream id going down, DATA on stream 0.
    let cases: [(&str, Vec<Sent>); 3] = [
        ("even id", vec![(2, frames::HEADERS, block.clone())]),
        (
            "id going down",
            vec![
                (5, frames::HEADERS, block.clone()),
                (3, frames::HEADERS, block.clone()),
            ],
        ),
        ("DATA on stream 0", vec![(0, frames::DATA, b"x".to_vec())]),
    ];
    for (what, sends) in cases {
        let mut c = Conn::open(s.port, &[]);
        for (id, kind, payload) in sends {
            let f = if kind == frames::HEADERS { flags } else { 0 };
            c.send(&frames::frame(kind, f, id, &payload));
        }
        let goaway = goaway_and_closed(&mut c, what);
        assert_eq!(goaway.error_code(), Some(frames::PROTOCOL_ERROR), "{what}");
    }
    still_serves(&s);
}
