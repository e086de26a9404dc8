//! The attacks of SPEC "HTTP/2", one test each (each fails without its defence), and
//! the deadlines.

use super::*;
use crate::h2::frame::kind;

fn rst(c: &mut Client, id: u32) {
    c.frame(Frame::RstStream {
        stream_id: id,
        code: E::CANCEL,
    });
}

fn settings_frame() -> Vec<u8> {
    let mut b = Vec::new();
    frame::write_settings(&mut b, &[Setting::EnablePush(false)]);
    b
}

fn ping() -> Vec<u8> {
    encode(Frame::Ping {
        ack: false,
        data: [1; 8],
    })
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn rapid_reset_cve_2023_44487_ends_in_enhance_your_calm() {
    // 100 open-and-reset streams a second are tolerated, for as long as it lasts...
    let mut c = Client::default();
    let mut id = 1;
    for _ in 0..5 {
        for _ in 0..100 {
            c.get(id, "/");
            rst(&mut c, id);
            id += 2;
        }
        c.now += 1000;
    }
    c.expect_no_error();
    // ... and the caller never saw them: reset before it polled, their events went.
    assert_eq!(c.events(), vec![]);
    // One more than the budget in a burst: GOAWAY.
    for _ in 0..101 {
        c.get(id, "/");
        rst(&mut c, id);
        id += 2;
    }
    c.expect_conn_error(E::ENHANCE_YOUR_CALM);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn rapid_reset_by_provoked_stream_errors_counts_too() {
    // The client makes us reset its streams (DATA on a half-closed stream).
    let mut c = Client::default();
    for i in 0..100 {
        c.get(1 + 2 * i, "/");
        c.data(1 + 2 * i, b"x", false);
    }
    assert!(!c.conn.is_closed());
    c.get(201, "/");
    c.data(201, b"x", false);
    c.expect_conn_error(E::ENHANCE_YOUR_CALM);
    // Refusals count as well (streams opened over the limit, at once).
    let mut c = Client::new(H2Settings {
        max_concurrent_streams: 0,
        ..H2Settings::default()
    });
    for i in 0..101 {
        c.get(1 + 2 * i, "/");
    }
    c.expect_conn_error(E::ENHANCE_YOUR_CALM);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn continuation_flood_cve_2024_27316_is_bounded() {
    // A block that never ends: collected up to twice the head limit, then GOAWAY.
    let mut c = Client::default();
    c.raw(kind::HEADERS, 0, 1, &[0x82]);
    let mut frames = 0;
    while !c.conn.is_closed() {
        c.raw(kind::CONTINUATION, 0, 1, &[0x82; 1000]);
        let held = c.conn.pending.as_ref().map_or(0, |p| p.block.len());
        assert!(held <= 16 * 1024, "{held}");
        frames += 1;
        assert!(frames < 100);
    }
    assert_eq!(frames, 17);
    c.expect_conn_error(E::ENHANCE_YOUR_CALM);
    // Empty CONTINUATIONs: bounded by count.
    let mut c = Client::default();
    c.raw(kind::HEADERS, 0, 1, &[0x82]);
    for _ in 0..64 {
        c.raw(kind::CONTINUATION, 0, 1, &[]);
    }
    assert!(!c.conn.is_closed());
    c.raw(kind::CONTINUATION, 0, 1, &[]);
    c.expect_conn_error(E::ENHANCE_YOUR_CALM);
    // A block dripped slowly: the head deadline.
    let mut c = Client::default();
    c.raw(kind::HEADERS, 0, 1, &[0x82]);
    assert_eq!(c.conn.deadline(), Some(10_000));
    c.now = 9_000;
    c.raw(kind::CONTINUATION, 0, 1, &[0x84]);
    c.now = 10_000;
    c.conn.timeout(c.now);
    c.expect_conn_error(E::ENHANCE_YOUR_CALM);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn a_head_over_the_limit_is_431_and_hpack_stays_in_step() {
    let mut c = Client::default();
    // 10 KB of headers in CONTINUATIONs: over 8 KiB decoded, under the block cap.
    let big = "v".repeat(9_000);
    let mut f = req("POST", "/up");
    f.push(("x-big", &big));
    f.push(("x-key", "remembered"));
    let b = c.block(&f);
    c.raw(kind::HEADERS, 0, 1, &b[..4000]);
    c.raw(kind::CONTINUATION, 4, 1, &b[4000..]);
    assert_eq!(c.events(), vec![Event::HeadersTooLarge { stream_id: 1 }]);
    // Its body is counted and dropped.
    c.data(1, b"body", false);
    assert_eq!(c.events(), vec![]);
    // The answer ends the stream: RST_STREAM NO_ERROR so that the body stops.
    assert_eq!(c.conn.send_headers(1, 431, &[], true), Ok(()));
    let out = c.read();
    assert!(
        out.contains(&Out::Rst {
            id: 1,
            code: E::NO_ERROR
        }),
        "{out:?}"
    );
    assert!(c.conn.streams.is_empty());
    // The next request uses the table entries the big block added.
    let mut f = req("GET", "/next");
    f.push(("x-key", "remembered"));
    c.headers(3, &f, true);
    let e = c.events();
    let Event::Request { headers, .. } = &e[0] else {
        panic!("{e:?}")
    };
    assert!(headers.contains(&(b"x-key".to_vec(), b"remembered".to_vec())));
    // More than 100 fields: 431 as well.
    let many: Vec<String> = (0..101).map(|i| format!("x-{i}")).collect();
    let mut f = req("GET", "/");
    f.extend(many.iter().map(|n| (n.as_str(), "1")));
    c.headers(5, &f, true);
    assert_eq!(c.events(), vec![Event::HeadersTooLarge { stream_id: 5 }]);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn hpack_bomb_is_capped() {
    let mut c = Client::default();
    // A 4 KB entry in the table, then blocks of one-byte references to it: 60 (240 KB
    // if decoded; under the field count limit, so only the decoder's cap stops it) and
    // 3000 (12 MB).
    let big = "z".repeat(4000);
    let mut f = req("GET", "/");
    f.push(("x-bomb", &big));
    c.headers(1, &f, true);
    assert_eq!(c.events().len(), 1);
    // :method GET, :scheme https, :path / (static), then index 62: the big entry.
    for (id, n) in [(3, 60), (5, 3000)] {
        let mut block = vec![0x82, 0x87, 0x84];
        block.extend(std::iter::repeat_n(0xbe, n));
        c.raw(kind::HEADERS, 5, id, &block);
        assert_eq!(c.events(), vec![Event::HeadersTooLarge { stream_id: id }]);
    }
    c.expect_no_error();
    // The table is still in step: the entry is there for the next request.
    c.raw(kind::HEADERS, 5, 7, &[0x82, 0x87, 0x84, 0xbe]);
    let e = c.events();
    assert!(matches!(&e[..], [Event::Request { headers, .. }] if headers[3].1.len() == 4000));
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn settings_and_ping_floods_end_in_enhance_your_calm() {
    for (name, frame) in [("SETTINGS", settings_frame()), ("PING", ping())] {
        // At 40 a second, read: fine for a minute.
        let mut c = Client::default();
        for _ in 0..60 {
            for _ in 0..40 {
                c.send(&frame);
                c.now += 25;
            }
            c.expect_no_error();
        }
        // 51 at once (the preface's SETTINGS is one): over the rate.
        let mut c = Client::default();
        let budget = if name == "SETTINGS" { 49 } else { 50 };
        for _ in 0..budget {
            c.send(&frame);
        }
        assert!(!c.conn.is_closed(), "{name}");
        c.send(&frame);
        c.expect_conn_error(E::ENHANCE_YOUR_CALM);
        // Within the rate, but the client never reads the ACKs: the output is bounded.
        let mut c = Client::default();
        let mut sent = 0;
        while !c.conn.is_closed() {
            c.send(&frame);
            c.now += 25;
            sent += 1;
            assert!(c.conn.output().len() <= 16 * 1024 + 100, "{name}");
        }
        assert!(sent > 900, "{name}: {sent}");
        c.expect_conn_error(E::ENHANCE_YOUR_CALM);
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn empty_frame_floods_end_in_enhance_your_calm() {
    type Flood = (&'static str, fn(&mut Client));
    let floods: [Flood; 5] = [
        ("empty DATA", |c| c.data(1, b"", false)),
        ("PRIORITY", |c| {
            c.raw(kind::PRIORITY, 0, 3, &[0, 0, 0, 0, 1])
        }),
        ("unknown frames", |c| c.raw(0x42, 0, 0, b"")),
        ("PING ACKs", |c| c.raw(kind::PING, 1, 0, &[0; 8])),
        ("WINDOW_UPDATE", |c| {
            c.raw(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 0, 1])
        }),
    ];
    for (name, flood) in floods {
        let mut c = Client::default();
        c.post(1, "/up");
        for _ in 0..1000 {
            flood(&mut c);
        }
        assert!(!c.conn.is_closed(), "{name}");
        flood(&mut c);
        c.expect_conn_error(E::ENHANCE_YOUR_CALM);
    }
    // WINDOW_UPDATEs earned by our DATA frames are not a flood.
    let mut c = Client::default();
    c.open_response(1);
    for _ in 0..700 {
        assert_eq!(c.conn.send_data(1, b"x", false, c.now), Ok(1));
    }
    c.read();
    for _ in 0..2300 {
        c.raw(kind::WINDOW_UPDATE, 0, 1, &[0, 0, 0, 1]);
    }
    c.expect_no_error();
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn a_zero_window_held_forever_resets_the_stream_then_the_connection() {
    // The stream's window: RST_STREAM CANCEL and Reset after 30 s.
    let mut c = Client::default();
    c.send(&{
        let mut b = Vec::new();
        frame::write_settings(&mut b, &[Setting::InitialWindowSize(0)]);
        b
    });
    c.open_response(1);
    c.now = 1_000;
    assert_eq!(c.conn.send_data(1, b"file", true, c.now), Ok(0));
    assert_eq!(c.conn.deadline(), Some(31_000));
    c.conn.timeout(30_999);
    c.expect_no_error();
    c.now = 31_000;
    c.conn.timeout(c.now);
    c.expect_stream_error(1, E::CANCEL);
    assert_eq!(
        c.events(),
        vec![Event::Reset {
            stream_id: 1,
            code: E::CANCEL,
            remote: false
        }]
    );
    // A window that opens stops the clock.
    let mut c = Client::default();
    c.open_response(1);
    assert_eq!(c.conn.send_data(1, &[0; 70_000], false, 0), Ok(65_535));
    c.read();
    c.now = 20_000;
    c.raw(kind::WINDOW_UPDATE, 0, 1, &[0, 0, 0x10, 0]);
    assert!(c.conn.streams[&1].stalled_since.is_none());
    // The connection's window: GOAWAY.
    let mut c = Client::default();
    c.send(&{
        let mut b = Vec::new();
        frame::write_settings(&mut b, &[Setting::InitialWindowSize(1 << 20)]);
        b
    });
    c.open_response(1);
    assert_eq!(c.conn.send_data(1, &[0; 70_000], false, 0), Ok(65_535));
    c.read();
    assert_eq!(c.conn.deadline(), Some(30_000));
    c.now = 30_000;
    c.conn.timeout(c.now);
    c.expect_conn_error(E::ENHANCE_YOUR_CALM);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn our_output_is_bounded_whatever_the_windows() {
    let mut c = Client::default();
    c.send(&{
        let mut b = Vec::new();
        frame::write_settings(&mut b, &[Setting::InitialWindowSize(MAX_WINDOW_SIZE)]);
        b
    });
    c.raw(
        kind::WINDOW_UPDATE,
        0,
        0,
        &(MAX_WINDOW_SIZE - 65_535).to_be_bytes(),
    );
    c.open_response(1);
    let file = vec![0u8; 1 << 20];
    let n = c.conn.send_data(1, &file, true, 0).unwrap_or(0);
    assert!(n > 100_000 && n <= 128 * 1024, "{n}");
    assert!(c.conn.output().len() <= 128 * 1024);
    assert_eq!(c.conn.writable(1), 0);
    // Written out: the stream may go on.
    c.read();
    assert_eq!(c.events(), vec![Event::WindowOpen { stream_id: 1 }]);
    assert!(c.conn.writable(1) > 100_000);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn an_idle_connection_is_closed_gracefully() {
    let mut c = Client::default();
    c.get(1, "/");
    c.events();
    c.now = 100_000;
    c.conn.timeout(c.now);
    assert!(!c.conn.is_closed(), "a stream is open");
    assert_eq!(c.conn.send_headers(1, 204, &[], true), Ok(()));
    assert_eq!(c.conn.deadline(), None, "the answer is not written yet");
    c.read();
    assert_eq!(c.conn.deadline(), Some(130_000));
    c.now = 130_000;
    c.conn.timeout(c.now);
    c.expect_conn_error(E::NO_ERROR);
}
