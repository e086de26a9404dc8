//! §5.1 stream states, §5.1.1 stream identifiers, §5.1.2 concurrency, §5.3 priority,
//! §5.4 error handling, §5.5 extensions.

use super::*;
use crate::h2::frame::{flags, kind};

fn rst(c: &mut Client, id: u32) {
    c.frame(Frame::RstStream {
        stream_id: id,
        code: E::CANCEL,
    });
}

fn window_update(c: &mut Client, id: u32) {
    c.frame(Frame::WindowUpdate {
        stream_id: id,
        increment: 1,
    });
}

fn priority(c: &mut Client, id: u32) {
    c.raw(kind::PRIORITY, 0, id, &[0, 0, 0, 0, 15]);
}

/// A GET on stream 1, answered completely: stream 1 is closed (both END_STREAMs).
fn closed_normally(c: &mut Client) {
    c.get(1, "/");
    c.events();
    assert_eq!(c.conn.send_headers(1, 204, &[], true), Ok(()));
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s5_1_stream_states_table() {
    let cases: &[Case] = &[
        // idle: only HEADERS and PRIORITY.
        (
            "idle DATA",
            |_| {},
            |c| c.data(1, b"x", false),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "idle RST_STREAM",
            |_| {},
            |c| rst(c, 1),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "idle WINDOW_UPDATE",
            |_| {},
            |c| window_update(c, 1),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "idle CONTINUATION",
            |_| {},
            |c| c.raw(kind::CONTINUATION, 4, 1, &[0x82]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        ("idle PRIORITY", |_| {}, |c| priority(c, 1), Expect::Fine),
        (
            "idle above an open stream",
            |c| c.post(1, "/"),
            |c| c.data(3, b"x", false),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        // open: everything.
        (
            "open DATA, WINDOW_UPDATE, PRIORITY",
            |c| c.post(1, "/"),
            |c| {
                c.data(1, b"x", false);
                window_update(c, 1);
                priority(c, 1);
            },
            Expect::Fine,
        ),
        // half-closed (remote): WINDOW_UPDATE, PRIORITY, RST_STREAM only.
        (
            "half-closed (remote) DATA",
            |c| c.get(1, "/"),
            |c| c.data(1, b"x", false),
            Expect::Stream(1, E::STREAM_CLOSED),
        ),
        (
            "half-closed (remote) HEADERS",
            |c| c.get(1, "/"),
            |c| c.headers(1, &[("x-trailer", "1")], true),
            Expect::Stream(1, E::STREAM_CLOSED),
        ),
        (
            "half-closed (remote) HEADERS + CONTINUATION",
            |c| c.get(1, "/"),
            |c| {
                let b = c.block(&[("x-trailer", "1")]);
                c.raw(kind::HEADERS, 1, 1, &b[..1]);
                c.raw(kind::CONTINUATION, 4, 1, &b[1..]);
            },
            Expect::Stream(1, E::STREAM_CLOSED),
        ),
        (
            "half-closed (remote) WINDOW_UPDATE, PRIORITY",
            |c| c.get(1, "/"),
            |c| {
                window_update(c, 1);
                priority(c, 1);
            },
            Expect::Fine,
        ),
        // closed by the client's RST_STREAM: a stream error for anything but PRIORITY.
        (
            "closed by RST_STREAM, DATA",
            |c| {
                c.post(1, "/");
                rst(c, 1);
            },
            |c| c.data(1, b"x", false),
            Expect::Stream(1, E::STREAM_CLOSED),
        ),
        (
            "closed by RST_STREAM, HEADERS",
            |c| {
                c.post(1, "/");
                rst(c, 1);
            },
            |c| c.headers(1, &[("x-trailer", "1")], true),
            Expect::Stream(1, E::STREAM_CLOSED),
        ),
        (
            "closed by RST_STREAM, WINDOW_UPDATE",
            |c| {
                c.post(1, "/");
                rst(c, 1);
            },
            |c| window_update(c, 1),
            Expect::Stream(1, E::STREAM_CLOSED),
        ),
        (
            "closed by RST_STREAM, PRIORITY and RST_STREAM (never RST for RST)",
            |c| {
                c.post(1, "/");
                rst(c, 1);
            },
            |c| {
                priority(c, 1);
                rst(c, 1);
            },
            Expect::Fine,
        ),
        // closed after END_STREAM both ways.
        (
            "closed, DATA",
            closed_normally,
            |c| c.data(1, b"x", true),
            Expect::Stream(1, E::STREAM_CLOSED),
        ),
        (
            "closed, HEADERS",
            closed_normally,
            |c| c.get(1, "/"),
            Expect::Conn(E::STREAM_CLOSED),
        ),
        (
            "closed, CONTINUATION",
            closed_normally,
            |c| c.raw(kind::CONTINUATION, 4, 1, &[0x82]),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "closed, WINDOW_UPDATE, RST_STREAM, PRIORITY are ignored",
            closed_normally,
            |c| {
                window_update(c, 1);
                rst(c, 1);
                priority(c, 1);
            },
            Expect::Fine,
        ),
        // closed by our RST_STREAM: frames are ignored.
        (
            "closed by our reset: DATA, HEADERS, WINDOW_UPDATE ignored",
            |c| {
                c.post(1, "/");
                c.events();
                assert_eq!(c.conn.reset(1, E::CANCEL), Ok(()));
            },
            |c| {
                c.data(1, b"late", false);
                c.headers(1, &[("x-trailer", "1")], true);
                window_update(c, 1);
                assert_eq!(c.events(), vec![]);
            },
            Expect::Fine,
        ),
    ];
    run_table(&H2Settings::default(), cases);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s5_1_half_closed_local_still_receives_the_body() {
    let mut c = Client::default();
    c.post(1, "/up");
    c.events();
    assert_eq!(c.conn.send_headers(1, 200, &[], true), Ok(()));
    c.data(1, b"late body", true);
    let e = c.events();
    assert!(
        matches!(
            &e[..],
            [Event::Data {
                end_stream: true,
                ..
            }]
        ),
        "{e:?}"
    );
    c.expect_no_error();
    // Both halves closed now.
    assert!(c.conn.streams.is_empty());
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s5_1_1_stream_identifiers() {
    let cases: &[Case] = &[
        (
            "even stream id",
            |_| {},
            |c| c.get(2, "/"),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "lower than an earlier one",
            |c| c.get(5, "/"),
            |c| c.get(3, "/"),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "skipped ids are closed, not reusable",
            |c| {
                c.get(1, "/");
                c.get(7, "/");
            },
            |c| c.get(5, "/"),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "increasing with gaps is fine",
            |c| c.get(1, "/"),
            |c| {
                c.get(9, "/");
                c.get(2_147_483_647, "/");
                assert_eq!(c.events().len(), 2);
            },
            Expect::Fine,
        ),
        (
            "PRIORITY does not use an id up",
            |c| priority(c, 9),
            |c| c.get(3, "/"),
            Expect::Fine,
        ),
    ];
    run_table(&H2Settings::default(), cases);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s5_1_2_max_concurrent_streams_refuses_with_refused_stream() {
    let mut c = Client::default();
    for i in 0..100 {
        c.get(1 + 2 * i, "/");
    }
    assert_eq!(c.events().len(), 100);
    c.expect_no_error();
    c.get(201, "/");
    c.expect_stream_error(201, E::REFUSED_STREAM);
    assert_eq!(c.events(), vec![]);
    assert_eq!(c.conn.streams.len(), 100);
    // One finishes: room for one more. Half-closed streams count until then.
    assert_eq!(c.conn.send_headers(1, 204, &[], true), Ok(()));
    c.get(203, "/");
    assert!(matches!(
        c.events()[..],
        [Event::Request { stream_id: 203, .. }]
    ));
    c.get(205, "/");
    c.expect_stream_error(205, E::REFUSED_STREAM);
    // DATA that was in flight for a refused stream is ignored.
    c.data(205, b"x", true);
    c.expect_no_error();
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s5_3_1_a_stream_cannot_depend_on_itself() {
    let cases: &[Case] = &[
        (
            "HEADERS depending on itself",
            |_| {},
            |c| {
                let b = c.block(&req("GET", "/"));
                c.frame(Frame::Headers {
                    stream_id: 3,
                    fragment: &b,
                    pad_len: None,
                    priority: Some(crate::h2::frame::Priority {
                        exclusive: false,
                        dependency: 3,
                        weight: 15,
                    }),
                    end_stream: true,
                    end_headers: true,
                });
                assert_eq!(c.events(), vec![]);
            },
            Expect::Stream(3, E::PROTOCOL_ERROR),
        ),
        (
            "PRIORITY depending on itself",
            |c| c.get(1, "/"),
            |c| c.raw(kind::PRIORITY, 0, 1, &[0, 0, 0, 1, 15]),
            Expect::Stream(1, E::PROTOCOL_ERROR),
        ),
        (
            "HEADERS with another dependency",
            |_| {},
            |c| {
                let b = c.block(&req("GET", "/"));
                let mut payload = vec![0x80, 0, 0, 0, 200];
                payload.extend_from_slice(&b);
                c.raw(kind::HEADERS, flags::PRIORITY | 5, 1, &payload);
                assert_eq!(c.events().len(), 1);
            },
            Expect::Fine,
        ),
    ];
    run_table(&H2Settings::default(), cases);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s5_4_1_connection_error_sends_goaway_with_the_last_stream_then_closes() {
    let mut c = Client::default();
    c.get(1, "/");
    c.get(3, "/");
    c.events();
    c.raw(kind::PING, 0, 0, &[0; 7]);
    let out = c.read();
    assert!(out.contains(&Out::GoAway {
        last: 3,
        code: E::FRAME_SIZE_ERROR
    }));
    assert!(c.conn.is_closed());
    assert!(matches!(
        c.events()[..],
        [Event::GoAway {
            code: E::FRAME_SIZE_ERROR,
            remote: false,
            ..
        }]
    ));
    // Nothing more is read or sent.
    c.get(5, "/");
    assert_eq!(c.events(), vec![]);
    assert_eq!(c.read(), vec![]);
    assert_eq!(
        c.conn.send_headers(1, 200, &[], true),
        Err(super::super::SendError::ConnectionClosed)
    );
    assert_eq!(c.conn.deadline(), None);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s5_4_2_stream_error_resets_only_that_stream() {
    let mut c = Client::default();
    c.post(1, "/");
    c.post(3, "/");
    c.events();
    // Stream 1's window overflows: RST_STREAM FLOW_CONTROL_ERROR on 1, 3 goes on.
    c.frame(Frame::WindowUpdate {
        stream_id: 1,
        increment: MAX_WINDOW_SIZE,
    });
    c.expect_stream_error(1, E::FLOW_CONTROL_ERROR);
    assert_eq!(
        c.events(),
        vec![Event::Reset {
            stream_id: 1,
            code: E::FLOW_CONTROL_ERROR,
            remote: false
        }]
    );
    c.data(3, b"ok", true);
    assert_eq!(c.events().len(), 1);
    c.expect_no_error();
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s5_5_extensions() {
    let cases: &[Case] = &[
        (
            "unknown frame",
            |_| {},
            |c| c.raw(0x77, 0, 0, b"ext"),
            Expect::Fine,
        ),
        (
            "unknown frame in the middle of a header block",
            |c| c.raw(kind::HEADERS, 0, 1, &[0x82]),
            |c| c.raw(0x77, 0, 1, b"ext"),
            Expect::Conn(E::PROTOCOL_ERROR),
        ),
        (
            "unknown SETTINGS identifier",
            |_| {},
            |c| c.raw(kind::SETTINGS, 0, 0, &[0, 0x99, 0, 0, 0, 1]),
            Expect::Fine,
        ),
    ];
    run_table(&H2Settings::default(), cases);
}
