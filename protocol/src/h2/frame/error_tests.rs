//! Tests of every check of the frame decoder: each malformed frame of RFC 9113 §6 fails
//! as the RFC says, as a connection or a stream error, with the RFC's error code.

use super::tests::{error, one, raw};
use super::*;
use crate::h2::settings::Setting;
use ErrorCode as E;

/// The error for a frame built by hand.
fn err(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> (bool, ErrorCode) {
    error(&raw(kind, flags, stream_id, payload))
}

const CONN: bool = true;
const STREAM: bool = false;
const CONN_FRAME_SIZE: (bool, ErrorCode) = (CONN, E::FRAME_SIZE_ERROR);
const CONN_PROTOCOL: (bool, ErrorCode) = (CONN, E::PROTOCOL_ERROR);
const STREAM_FRAME_SIZE: (bool, ErrorCode) = (STREAM, E::FRAME_SIZE_ERROR);
const STREAM_PROTOCOL: (bool, ErrorCode) = (STREAM, E::PROTOCOL_ERROR);

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn max_frame_size_is_enforced_from_the_header() {
    let header = raw(kind::DATA, 0, 1, &[])[..].to_vec();
    let mut h = header.clone();
    h[..3].copy_from_slice(&[0x00, 0x40, 0x01]); // 16_385
    let e = decode(&h, DEFAULT_MAX_FRAME_SIZE).map(|_| ());
    assert_eq!(
        e.map_err(|e| (e.is_connection_error(), e.code())),
        Err(CONN_FRAME_SIZE)
    );
    // At the limit: incomplete, waiting for the payload.
    h[..3].copy_from_slice(&[0x00, 0x40, 0x00]);
    assert_eq!(
        decode(&h, DEFAULT_MAX_FRAME_SIZE),
        Ok(Decoded::Incomplete { need: 9 + 16_384 })
    );
    // A larger advertised maximum lets larger frames in, up to 2^24 - 1.
    h[..3].copy_from_slice(&[0xff, 0xff, 0xff]);
    assert_eq!(
        decode(&h, MAX_FRAME_SIZE_LIMIT),
        Ok(Decoded::Incomplete {
            need: 9 + 0xff_ffff
        })
    );
    // Any frame type, even an unknown one.
    let big = raw(0xee, 0, 0, &[0; 100]);
    assert_eq!(
        decode(&big, 99).map_err(|e| e.code()),
        Err(E::FRAME_SIZE_ERROR)
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn wrong_lengths() {
    for len in [0, 7, 9, 16] {
        assert_eq!(
            err(kind::PING, 0, 0, &vec![0; len]),
            CONN_FRAME_SIZE,
            "PING {len}"
        );
    }
    for len in [1, 5, 7, 13] {
        assert_eq!(
            err(kind::SETTINGS, 0, 0, &vec![0; len]),
            CONN_FRAME_SIZE,
            "SETTINGS {len}"
        );
    }
    assert_eq!(err(kind::SETTINGS, flags::ACK, 0, &[0; 6]), CONN_FRAME_SIZE);
    for len in [0, 3, 5, 8] {
        assert_eq!(
            err(kind::WINDOW_UPDATE, 0, 0, &vec![1; len]),
            CONN_FRAME_SIZE
        );
        assert_eq!(
            err(kind::WINDOW_UPDATE, 0, 1, &vec![1; len]),
            CONN_FRAME_SIZE
        );
        assert_eq!(err(kind::RST_STREAM, 0, 1, &vec![0; len]), CONN_FRAME_SIZE);
    }
    for len in [0, 4, 6, 10] {
        // PRIORITY on a stream: only that stream fails, and the frame is skipped.
        let bytes = raw(kind::PRIORITY, 0, 3, &vec![0; len]);
        assert_eq!(error(&bytes), STREAM_FRAME_SIZE);
        let Err(FrameError::Stream {
            stream_id,
            consumed,
            ..
        }) = one(&bytes)
        else {
            panic!()
        };
        assert_eq!((stream_id, consumed), (3, 9 + len));
    }
    for len in [0, 7] {
        assert_eq!(err(kind::GOAWAY, 0, 0, &vec![0; len]), CONN_FRAME_SIZE);
    }
    // Too short for the fixed fields of HEADERS with PRIORITY, and of PUSH_PROMISE.
    assert_eq!(
        err(kind::HEADERS, flags::PRIORITY, 1, &[0; 4]),
        CONN_FRAME_SIZE
    );
    assert_eq!(err(kind::PUSH_PROMISE, 0, 1, &[0; 3]), CONN_FRAME_SIZE);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn stream_zero_where_forbidden() {
    let cases: [(u8, &[u8]); 6] = [
        (kind::DATA, b"x"),
        (kind::HEADERS, b"\x82"),
        (kind::PRIORITY, &[0, 0, 0, 3, 16]),
        (kind::RST_STREAM, &[0, 0, 0, 8]),
        (kind::PUSH_PROMISE, &[0, 0, 0, 2]),
        (kind::CONTINUATION, b"\x82"),
    ];
    for (k, payload) in cases {
        assert_eq!(err(k, 0, 0, payload), CONN_PROTOCOL, "type {k}");
        assert!(one(&raw(k, 0, 1, payload)).is_ok(), "type {k} on stream 1");
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn stream_non_zero_where_forbidden() {
    let cases: [(u8, &[u8]); 3] = [
        (kind::SETTINGS, b""),
        (kind::PING, &[0; 8]),
        (kind::GOAWAY, &[0; 8]),
    ];
    for (k, payload) in cases {
        assert_eq!(err(k, 0, 1, payload), CONN_PROTOCOL, "type {k}");
        assert!(one(&raw(k, 0, 0, payload)).is_ok(), "type {k} on stream 0");
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn padding() {
    let p = flags::PADDED;
    // DATA: pad length equal to the rest is fine (empty data); one more is not.
    let empty = raw(kind::DATA, p, 1, &[3, 0, 0, 0]);
    assert!(matches!(one(&empty), Ok(Frame::Data { data: b"", .. })));
    assert_eq!(err(kind::DATA, p, 1, &[4, 0, 0, 0]), CONN_PROTOCOL);
    assert_eq!(err(kind::DATA, p, 1, &[255]), CONN_PROTOCOL);
    // PADDED with no room for the pad length itself.
    assert_eq!(err(kind::DATA, p, 1, &[]), CONN_FRAME_SIZE);
    assert_eq!(err(kind::HEADERS, p, 1, &[]), CONN_FRAME_SIZE);
    // HEADERS: the padding may not eat into the priority fields.
    let with_prio = p | flags::PRIORITY;
    assert!(one(&raw(kind::HEADERS, with_prio, 1, &[1, 0, 0, 0, 0, 9, 0])).is_ok());
    assert_eq!(
        err(kind::HEADERS, with_prio, 1, &[2, 0, 0, 0, 0, 9, 0]),
        CONN_PROTOCOL
    );
    assert_eq!(err(kind::HEADERS, p, 1, &[2, 0x82]), CONN_PROTOCOL);
    // PUSH_PROMISE: nor into the promised stream id.
    assert!(one(&raw(kind::PUSH_PROMISE, p, 1, &[1, 0, 0, 0, 2, 0])).is_ok());
    assert_eq!(
        err(kind::PUSH_PROMISE, p, 1, &[2, 0, 0, 0, 2, 0]),
        CONN_PROTOCOL
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn window_update_of_zero() {
    // On the connection: a connection error; on a stream: that stream's.
    assert_eq!(err(kind::WINDOW_UPDATE, 0, 0, &[0; 4]), CONN_PROTOCOL);
    assert_eq!(err(kind::WINDOW_UPDATE, 0, 5, &[0; 4]), STREAM_PROTOCOL);
    // Only the reserved bit set is still zero.
    assert_eq!(
        err(kind::WINDOW_UPDATE, 0, 5, &[0x80, 0, 0, 0]),
        STREAM_PROTOCOL
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn settings_parameters_are_validated() {
    let frame = |id: u16, value: u32| {
        let mut payload = Vec::new();
        Setting::HeaderTableSize(0).write(&mut payload);
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&value.to_be_bytes());
        raw(kind::SETTINGS, 0, 0, &payload)
    };
    assert_eq!(error(&frame(2, 2)), CONN_PROTOCOL);
    assert!(one(&frame(2, 1)).is_ok());
    assert_eq!(error(&frame(4, 1 << 31)), (CONN, E::FLOW_CONTROL_ERROR));
    assert!(one(&frame(4, (1 << 31) - 1)).is_ok());
    assert_eq!(error(&frame(5, 16_383)), CONN_PROTOCOL);
    assert_eq!(error(&frame(5, 1 << 24)), CONN_PROTOCOL);
    assert!(one(&frame(5, 16_384)).is_ok());
    // An unknown identifier is fine, and comes out as Unknown.
    let unknown = frame(0x4242, 9);
    let Ok(Frame::Settings { params, ack: false }) = one(&unknown) else {
        panic!()
    };
    let last = params.iter().last();
    assert_eq!(
        last,
        Some(Setting::Unknown {
            id: 0x4242,
            value: 9
        })
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn priority_on_itself_is_a_stream_error() {
    let bytes = raw(kind::PRIORITY, 0, 5, &[0x80, 0, 0, 5, 0]);
    assert_eq!(error(&bytes), STREAM_PROTOCOL);
    assert!(one(&raw(kind::PRIORITY, 0, 5, &[0x80, 0, 0, 3, 0])).is_ok());
}
