//! §6.1 to §6.10, each frame type; §5.2 and §6.9 flow control; §7 error codes.

use super::*;
use crate::h2::frame::{flags, kind};

fn settings(c: &mut Client, s: &[Setting]) {
    let mut b = Vec::new();
    frame::write_settings(&mut b, s);
    c.send(&b);
}

fn settings_raw(c: &mut Client, id: u16, value: u32) {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&value.to_be_bytes());
    c.raw(kind::SETTINGS, 0, 0, &p);
}

fn window_update(c: &mut Client, id: u32, increment: u32) {
    c.frame(Frame::WindowUpdate {
        stream_id: id,
        increment,
    });
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s6_frame_definitions_table() {
    let cases: &[Case] = &[
        // §6.1 DATA
        (
            "6.1 DATA on stream 0",
            |_| {},
            |c| c.raw(kind::DATA, 0, 0, b"x"),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.1 DATA with a pad length over the payload",
            |c| c.post(1, "/"),
            |c| c.raw(kind::DATA, flags::PADDED, 1, &[5, b'x']),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.1 DATA on a stream not open",
            |c| c.get(1, "/"),
            |c| c.data(1, b"x", true),
            Expect::Stream(1, E::STREAM_CLOSED),
        ),
        (
            "6.1 padded DATA delivers the data only",
            |c| c.post(1, "/"),
            |c| {
                c.raw(
                    kind::DATA,
                    flags::PADDED | flags::END_STREAM,
                    1,
                    &[2, b'h', b'i', 0, 0],
                );
                let e = c.events();
                assert!(
                    matches!(&e[..], [Event::Data { bytes, end_stream: true, .. }] if bytes == b"hi")
                );
            },
            Expect::Fine,
        ),
        // §6.2 HEADERS
        (
            "6.2 HEADERS on stream 0",
            |_| {},
            |c| c.raw(kind::HEADERS, 5, 0, &[0x82]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.2 HEADERS with a pad length over the payload",
            |_| {},
            |c| c.raw(kind::HEADERS, 5 | flags::PADDED, 1, &[9, 0x82]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.2 padded HEADERS",
            |_| {},
            |c| {
                let b = c.block(&req("GET", "/"));
                let payload = [&[3][..], &b, &[0, 0, 0]].concat();
                c.raw(kind::HEADERS, 5 | flags::PADDED, 1, &payload);
                assert_eq!(c.events().len(), 1);
            },
            Expect::Fine,
        ),
        // §6.3 PRIORITY
        (
            "6.3 PRIORITY on stream 0",
            |_| {},
            |c| c.raw(kind::PRIORITY, 0, 0, &[0, 0, 0, 1, 1]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.3 PRIORITY of length 4",
            |c| c.get(1, "/"),
            |c| c.raw(kind::PRIORITY, 0, 1, &[0x80, 0, 0, 1]),
            Expect::Stream(1, E::FRAME_SIZE_ERROR),
        ),
        // §6.4 RST_STREAM
        (
            "6.4 RST_STREAM on stream 0",
            |_| {},
            |c| c.raw(kind::RST_STREAM, 0, 0, &[0, 0, 0, 8]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.4 RST_STREAM on an idle stream",
            |_| {},
            |c| c.raw(kind::RST_STREAM, 0, 1, &[0, 0, 0, 8]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.4 RST_STREAM of length 3",
            |c| c.get(1, "/"),
            |c| c.raw(kind::RST_STREAM, 0, 1, &[0, 0, 8]),
            Expect::Conn(E::FRAME_SIZE_ERROR),
        ),
        // §6.5 SETTINGS
        (
            "6.5 SETTINGS ACK with a payload",
            |_| {},
            |c| c.raw(kind::SETTINGS, flags::ACK, 0, &[0, 3, 0, 0, 0, 1]),
            Expect::Conn(E::FRAME_SIZE_ERROR),
        ),
        (
            "6.5 SETTINGS on a stream",
            |_| {},
            |c| c.raw(kind::SETTINGS, 0, 1, &[]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.5 SETTINGS of length 5",
            |_| {},
            |c| c.raw(kind::SETTINGS, 0, 0, &[0, 3, 0, 0, 0]),
            Expect::Conn(E::FRAME_SIZE_ERROR),
        ),
        // §6.5.2
        (
            "6.5.2 ENABLE_PUSH 2",
            |_| {},
            |c| settings_raw(c, 2, 2),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.5.2 INITIAL_WINDOW_SIZE 2^31",
            |_| {},
            |c| settings_raw(c, 4, 1 << 31),
            Expect::Conn(E::FLOW_CONTROL_ERROR),
        ),
        (
            "6.5.2 MAX_FRAME_SIZE below 2^14",
            |_| {},
            |c| settings_raw(c, 5, 16_383),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.5.2 MAX_FRAME_SIZE above 2^24-1",
            |_| {},
            |c| settings_raw(c, 5, 1 << 24),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.5.2 ENABLE_PUSH 1 is fine",
            |_| {},
            |c| settings_raw(c, 2, 1),
            Expect::Fine,
        ),
        // §6.7 PING
        (
            "6.7 PING on a stream",
            |_| {},
            |c| c.raw(kind::PING, 0, 1, &[0; 8]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.7 PING of length 9",
            |_| {},
            |c| c.raw(kind::PING, 0, 0, &[0; 9]),
            Expect::Conn(E::FRAME_SIZE_ERROR),
        ),
        // §6.8 GOAWAY
        (
            "6.8 GOAWAY on a stream",
            |_| {},
            |c| c.raw(kind::GOAWAY, 0, 1, &[0; 8]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        // §6.9 WINDOW_UPDATE
        (
            "6.9 WINDOW_UPDATE of 0 on the connection",
            |_| {},
            |c| c.raw(kind::WINDOW_UPDATE, 0, 0, &[0; 4]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.9 WINDOW_UPDATE of 0 on a stream",
            |c| c.get(1, "/"),
            |c| c.raw(kind::WINDOW_UPDATE, 0, 1, &[0; 4]),
            Expect::Stream(1, E::PROTOCOL_ERROR),
        ),
        (
            "6.9 WINDOW_UPDATE of length 3",
            |_| {},
            |c| c.raw(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1]),
            Expect::Conn(E::FRAME_SIZE_ERROR),
        ),
        // §6.10 CONTINUATION
        (
            "6.10 CONTINUATION after END_HEADERS",
            |c| c.get(1, "/"),
            |c| c.raw(kind::CONTINUATION, 4, 1, &[0x82]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.10 CONTINUATION after a CONTINUATION with END_HEADERS",
            |c| {
                let b = c.block(&req("GET", "/"));
                c.raw(kind::HEADERS, 1, 1, &b[..1]);
                c.raw(kind::CONTINUATION, 4, 1, &b[1..]);
            },
            |c| c.raw(kind::CONTINUATION, 4, 1, &[0x82]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.10 CONTINUATION on stream 0",
            |c| c.raw(kind::HEADERS, 0, 1, &[0x82]),
            |c| c.raw(kind::CONTINUATION, 4, 0, &[0x84]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "6.10 CONTINUATION after DATA",
            |c| c.post(1, "/"),
            |c| {
                c.data(1, b"x", false);
                c.raw(kind::CONTINUATION, 4, 1, &[0x82]);
            },
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        // §7: unknown error codes mean nothing special.
        (
            "7 RST_STREAM with an unknown code",
            |c| c.post(1, "/"),
            |c| c.raw(kind::RST_STREAM, 0, 1, &[0, 0, 0xff, 0xff]),
            Expect::Fine,
        ),
    ];
    run_table(&H2Settings::default(), cases);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s6_5_settings_are_acked_applied_in_order_and_time_out() {
    let mut c = Client::default();
    c.open_response(1);
    // Two INITIAL_WINDOW_SIZE values: the last counts.
    settings(
        &mut c,
        &[
            Setting::InitialWindowSize(100),
            Setting::InitialWindowSize(10),
        ],
    );
    assert_eq!(
        c.read(),
        vec![Out::Settings {
            ack: true,
            params: vec![]
        }]
    );
    assert_eq!(c.conn.writable(1), 10);
    // MAX_FRAME_SIZE: our DATA frames follow it.
    settings(
        &mut c,
        &[
            Setting::MaxFrameSize(20_000),
            Setting::InitialWindowSize(100_000),
        ],
    );
    window_update(&mut c, 0, 100_000);
    c.read();
    assert_eq!(c.conn.send_data(1, &[1; 50_000], false, c.now), Ok(50_000));
    let sizes: Vec<usize> = (c.read().iter())
        .map(|o| match o {
            Out::Data { data, .. } => data.len(),
            o => panic!("{o:?}"),
        })
        .collect();
    assert_eq!(sizes, [20_000, 20_000, 10_000]);
    // Our own SETTINGS not acknowledged in time: SETTINGS_TIMEOUT (§6.5.3).
    let mut c = Client::bare(H2Settings::default());
    c.send(&preface());
    assert_eq!(c.conn.deadline(), Some(5_000));
    c.now = 5_000;
    c.conn.timeout(c.now);
    c.expect_conn_error(E::SETTINGS_TIMEOUT);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s6_5_2_header_table_size_from_the_client_resizes_our_encoder() {
    let mut c = Client::default();
    settings(&mut c, &[Setting::HeaderTableSize(0)]);
    c.read();
    c.get(1, "/");
    c.events();
    assert_eq!(c.conn.send_headers(1, 200, &[("x-a", "b")], true), Ok(()));
    // The client's decoder, with a 0 bound acknowledged, accepts only a block that
    // opens with the size update, and its table stays empty.
    let mut bytes = Vec::new();
    c.conn.take_output(&mut bytes, 0);
    let block = &bytes[9..];
    assert_eq!(block[0], 0x20, "a size update to 0 first");
    let mut d = crate::h2::hpack::Decoder::new(4096, 1 << 16);
    d.set_table_bound(0);
    assert!(d.decode(block).is_ok());
    assert!(d.table().is_empty());
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s6_7_ping_is_answered_with_its_payload_and_acks_are_not() {
    let mut c = Client::default();
    c.frame(Frame::Ping {
        ack: false,
        data: *b"pingpong",
    });
    c.frame(Frame::Ping {
        ack: true,
        data: *b"unasked!",
    });
    assert_eq!(
        c.read(),
        vec![Out::Ping {
            ack: true,
            data: *b"pingpong"
        }]
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s6_8_goaway_from_the_client_lets_open_streams_finish() {
    let mut c = Client::default();
    c.get(1, "/");
    c.events();
    c.raw(kind::GOAWAY, 0, 0, &[0; 8]);
    assert!(matches!(
        c.events()[..],
        [Event::GoAway {
            remote: true,
            code: E::NO_ERROR,
            ..
        }]
    ));
    assert!(!c.conn.is_closed());
    assert_eq!(c.conn.send_headers(1, 200, &[], false), Ok(()));
    assert_eq!(c.conn.send_data(1, b"done", true, 0), Ok(4));
    assert!(c.conn.is_closed());
    assert_eq!(c.read().len(), 2);
    // With an error code: closed at once, nothing sent. An unknown code (§7) is no
    // different from INTERNAL_ERROR.
    for code in [2, 0xffff] {
        let mut c = Client::default();
        c.get(1, "/");
        c.raw(
            kind::GOAWAY,
            0,
            0,
            &[&[0; 4][..], &u32::to_be_bytes(code)].concat(),
        );
        assert!(c.conn.is_closed());
        assert_eq!(c.read(), vec![]);
        assert!(matches!(
            c.events()[..],
            [Event::GoAway { remote: true, .. }]
        ));
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s6_8_drain_sends_goaway_finishes_open_streams_then_closes() {
    let mut c = Client::default();
    c.get(1, "/");
    c.get(3, "/");
    c.events();
    c.conn.drain();
    assert_eq!(
        c.read(),
        vec![Out::GoAway {
            last: 3,
            code: E::NO_ERROR
        }]
    );
    // A stream opened after the GOAWAY is ignored (its block still decoded).
    let mut fields = req("GET", "/late");
    fields.push(("x-new", "entry"));
    c.headers(5, &fields, true);
    assert_eq!(c.events(), vec![]);
    assert_eq!(c.conn.send_headers(1, 204, &[], true), Ok(()));
    assert!(!c.conn.is_closed());
    assert_eq!(c.conn.send_headers(3, 204, &[], true), Ok(()));
    assert!(c.conn.is_closed());
    // go_away: at once, with the code given.
    let mut c = Client::default();
    c.get(1, "/");
    c.conn.go_away(E::INTERNAL_ERROR);
    c.expect_conn_error(E::INTERNAL_ERROR);
}
