//! §3.4 the connection preface, §4.1 frame format, §4.2 frame size, §4.3 header
//! compression.

use super::*;
use crate::h2::frame::{flags, kind};

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s3_4_server_preface_is_settings_first() {
    let mut c = Client::bare(H2Settings::default());
    let out = c.read();
    assert_eq!(
        out[0],
        Out::Settings {
            ack: false,
            params: vec![
                Setting::MaxConcurrentStreams(100),
                Setting::MaxHeaderListSize(8192),
                Setting::InitialWindowSize(256 * 1024),
            ]
        }
    );
    // The connection window is raised to its setting at once.
    assert_eq!(
        out[1..],
        [Out::WindowUpdate {
            id: 0,
            increment: 1024 * 1024 - 65_535
        }]
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s3_4_client_preface_byte_by_byte_then_settings_is_acked() {
    let mut c = Client::bare(H2Settings::default());
    c.read();
    for b in preface() {
        c.send(&[b]);
    }
    assert_eq!(
        c.read(),
        vec![Out::Settings {
            ack: true,
            params: vec![]
        }]
    );
    assert!(!c.conn.is_closed());
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s3_4_invalid_preface_is_a_protocol_error() {
    let ping = raw(kind::PING, 0, 0, &[0; 8]);
    let settings_ack = raw(kind::SETTINGS, flags::ACK, 0, &[]);
    let cases: [(&str, Vec<u8>); 5] = [
        ("HTTP/1.1", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
        (
            "a wrong byte late",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r!".to_vec(),
        ),
        ("PING first", [&PREFACE[..], &ping].concat()),
        ("SETTINGS ACK first", [&PREFACE[..], &settings_ack].concat()),
        (
            "HEADERS first",
            [&PREFACE[..], &raw(kind::HEADERS, 5, 1, &[0x82])].concat(),
        ),
    ];
    for (name, bytes) in cases {
        let mut c = Client::bare(H2Settings::default());
        c.read();
        c.send(&bytes);
        c.expect_conn_error(E::PROTOCOL_ERROR);
        assert!(
            matches!(c.events()[..], [Event::GoAway { remote: false, .. }]),
            "{name}"
        );
    }
    // Detected at the first wrong byte, without waiting for 24.
    let mut c = Client::bare(H2Settings::default());
    c.send(b"G");
    assert!(c.conn.is_closed());
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s3_4_preface_must_arrive_within_the_head_deadline() {
    let mut c = Client::bare(H2Settings::default());
    assert_eq!(c.conn.deadline(), Some(10_000));
    c.send(&PREFACE[..10]);
    c.now = 9_999;
    c.conn.timeout(c.now);
    assert!(!c.conn.is_closed());
    c.now = 10_000;
    c.conn.timeout(c.now);
    c.expect_conn_error(E::ENHANCE_YOUR_CALM);
    assert_eq!(c.conn.deadline(), None);
    // The preface in, the SETTINGS not: the same deadline.
    let mut c = Client::bare(H2Settings::default());
    c.send(&PREFACE[..]);
    c.now = 10_000;
    c.conn.timeout(c.now);
    c.expect_conn_error(E::ENHANCE_YOUR_CALM);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s4_1_unknown_types_undefined_flags_and_the_reserved_bit_are_ignored() {
    let cases: &[Case] = &[
        (
            "unknown type",
            |_| {},
            |c| c.raw(0xfa, 0xff, 0, b"x"),
            Expect::Fine,
        ),
        (
            "unknown type on a stream",
            |_| {},
            |c| c.raw(0x20, 0, 7, b""),
            Expect::Fine,
        ),
        (
            "undefined flags on PING",
            |_| {},
            |c| c.raw(kind::PING, 0xfe, 0, &[0; 8]),
            Expect::Fine,
        ),
        (
            "undefined flags on HEADERS",
            |_| {},
            |c| {
                let b = c.block(&req("GET", "/"));
                c.raw(kind::HEADERS, 0xd5, 1, &b);
                assert!(matches!(c.events()[..], [Event::Request { .. }]));
            },
            Expect::Fine,
        ),
        (
            "reserved bit on the stream id",
            |_| {},
            |c| {
                let b = c.block(&req("GET", "/"));
                let mut f = raw(kind::HEADERS, 5, 1, &b);
                f[5] |= 0x80;
                c.send(&f);
                let e = c.events();
                assert!(matches!(e[..], [Event::Request { stream_id: 1, .. }]));
            },
            Expect::Fine,
        ),
        (
            "reserved bit on WINDOW_UPDATE's increment",
            |_| {},
            |c| c.raw(kind::WINDOW_UPDATE, 0, 0, &[0x80, 0, 0, 1]),
            Expect::Fine,
        ),
    ];
    run_table(&H2Settings::default(), cases);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s4_2_frame_size() {
    let cases: &[Case] = &[
        (
            "DATA of 2^14 is accepted",
            |c| c.post(1, "/up"),
            |c| {
                c.data(1, &[7; 16_384], false);
                let e = c.events();
                assert!(matches!(&e[..], [Event::Data { bytes, .. }] if bytes.len() == 16_384));
            },
            Expect::Fine,
        ),
        (
            "DATA over SETTINGS_MAX_FRAME_SIZE",
            |c| c.post(1, "/up"),
            |c| c.data(1, &[7; 16_385], false),
            Expect::Conn(E::FRAME_SIZE_ERROR),
        ),
        (
            "HEADERS over SETTINGS_MAX_FRAME_SIZE",
            |_| {},
            |c| c.raw(kind::HEADERS, 5, 1, &[0; 16_385]),
            Expect::Conn(E::FRAME_SIZE_ERROR),
        ),
        (
            "the header alone is enough to refuse",
            |_| {},
            |c| c.send(&[0, 0x40, 0x01, 0, 0, 0, 0, 0, 1]),
            Expect::Conn(E::FRAME_SIZE_ERROR),
        ),
    ];
    run_table(&H2Settings::default(), cases);
    // A larger SETTINGS_MAX_FRAME_SIZE of ours lets larger frames in.
    let big = H2Settings {
        max_frame_size: 32_768,
        ..H2Settings::default()
    };
    let mut c = Client::new(big);
    c.post(1, "/up");
    c.data(1, &[7; 20_000], false);
    c.expect_no_error();
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s4_3_header_blocks() {
    let cases: &[Case] = &[
        (
            "an undecodable block is a COMPRESSION_ERROR",
            |_| {},
            |c| c.raw(kind::HEADERS, 5, 1, &[0x80]),
            Expect::Conn(E::COMPRESSION_ERROR),
        ),
        (
            "a truncated block too",
            |_| {},
            |c| c.raw(kind::HEADERS, 5, 1, &[0x41, 0x05, b'a']),
            Expect::Conn(E::COMPRESSION_ERROR),
        ),
        (
            "PRIORITY inside a block",
            |c| c.raw(kind::HEADERS, 0, 1, &[0x82]),
            |c| c.raw(kind::PRIORITY, 0, 1, &[0, 0, 0, 3, 9]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "HEADERS of another stream inside a block",
            |c| c.raw(kind::HEADERS, 0, 1, &[0x82]),
            |c| c.raw(kind::HEADERS, 5, 3, &[0x82]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "CONTINUATION of another stream",
            |c| c.raw(kind::HEADERS, 0, 1, &[0x82]),
            |c| c.raw(kind::CONTINUATION, 4, 3, &[0x84]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "DATA inside a block",
            |c| c.raw(kind::HEADERS, 0, 1, &[0x82]),
            |c| c.raw(kind::DATA, 0, 1, b"x"),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "a block split over CONTINUATIONs",
            |_| {},
            |c| {
                let b = c.block(&req("GET", "/split"));
                c.raw(kind::HEADERS, 1, 1, &b[..2]);
                c.raw(kind::CONTINUATION, 0, 1, &b[2..4]);
                c.raw(kind::CONTINUATION, 4, 1, &b[4..]);
                let e = c.events();
                assert!(matches!(
                    &e[..],
                    [Event::Request {
                        stream_id: 1,
                        end_stream: true,
                        ..
                    }]
                ));
            },
            Expect::Fine,
        ),
    ];
    run_table(&H2Settings::default(), cases);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s4_3_blocks_are_decoded_even_when_their_stream_is_refused() {
    // The refused stream's block adds an entry to the dynamic table; the next request
    // refers to it: it decodes right only if the refused block was decoded.
    let one = H2Settings {
        max_concurrent_streams: 1,
        ..H2Settings::default()
    };
    let mut c = Client::new(one);
    c.get(1, "/a");
    let mut fields = req("GET", "/b");
    fields.push(("x-token", "abc"));
    c.headers(3, &fields, true);
    c.expect_stream_error(3, E::REFUSED_STREAM);
    c.events();
    assert_eq!(c.conn.send_headers(1, 204, &[], true), Ok(()));
    c.headers(5, &fields, true);
    let e = c.events();
    let Event::Request { headers, .. } = &e[0] else {
        panic!("{e:?}")
    };
    assert!(headers.contains(&(b"x-token".to_vec(), b"abc".to_vec())));
}
