//! Tests of the frame codec: every type round-trips, header blocks split, random bytes
//! never panic (the failures of each check are in `error_tests.rs`).

use super::*;
use crate::h2::hpack::tests::Lcg;
use crate::h2::settings::Setting;
use ErrorCode as E;

/// A frame built by hand: header fields and payload.
pub(super) fn raw(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let length = payload.len() as u32;
    FrameHeader {
        length,
        kind,
        flags,
        stream_id,
    }
    .write(&mut out);
    out.extend_from_slice(payload);
    out
}

/// Decodes a whole frame, which must be exactly `bytes`.
pub(super) fn one(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    match decode(bytes, DEFAULT_MAX_FRAME_SIZE)? {
        Decoded::Frame { frame, len } => {
            assert_eq!(len, bytes.len());
            Ok(frame)
        }
        Decoded::Incomplete { need } => panic!("incomplete, needs {need}"),
    }
}

/// The error for `bytes`: (connection?, code).
pub(super) fn error(bytes: &[u8]) -> (bool, ErrorCode) {
    match one(bytes) {
        Err(e) => (e.is_connection_error(), e.code()),
        Ok(f) => panic!("accepted {f:?}"),
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn preface_and_header() {
    assert_eq!(PREFACE.len(), 24);
    assert_eq!(&PREFACE[..], b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    let h = FrameHeader {
        length: 0x01_0203,
        kind: 0x04,
        flags: 0x05,
        stream_id: 0x0607_0809,
    };
    let mut out = Vec::new();
    h.write(&mut out);
    assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(FrameHeader::parse(&[1, 2, 3, 4, 5, 6, 7, 8, 9]), h);
    // The reserved bit is dropped on reading, and never written.
    let r = FrameHeader::parse(&[0, 0, 0, 0, 0, 0x80, 0, 0, 1]);
    assert_eq!(r.stream_id, 1);
    let mut out = Vec::new();
    FrameHeader {
        stream_id: u32::MAX,
        ..h
    }
    .write(&mut out);
    assert_eq!(out[5..], [0x7f, 0xff, 0xff, 0xff]);
    assert_eq!(E::ENHANCE_YOUR_CALM.name(), Some("ENHANCE_YOUR_CALM"));
    assert_eq!(format!("{:?}", E(0x1234)), "ErrorCode(0x1234)");
    assert_eq!(format!("{:?}", E::NO_ERROR), "NO_ERROR");
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn every_type_round_trips() {
    let settings = [
        Setting::MaxConcurrentStreams(100),
        Setting::InitialWindowSize(1 << 20),
    ];
    let mut settings_bytes = Vec::new();
    write_settings(&mut settings_bytes, &settings);
    let Ok(Frame::Settings { params, .. }) = one(&settings_bytes) else {
        panic!()
    };
    assert_eq!(params.iter().collect::<Vec<_>>(), settings);
    let prio = Priority {
        exclusive: true,
        dependency: 3,
        weight: 15,
    };
    let frames = [
        Frame::Data {
            stream_id: 1,
            data: b"hello",
            pad_len: None,
            end_stream: false,
        },
        Frame::Data {
            stream_id: 1,
            data: b"hello",
            pad_len: Some(3),
            end_stream: true,
        },
        Frame::Data {
            stream_id: 3,
            data: b"",
            pad_len: Some(0),
            end_stream: true,
        },
        Frame::Headers {
            stream_id: 5,
            fragment: b"\x82\x86",
            pad_len: None,
            priority: None,
            end_stream: true,
            end_headers: true,
        },
        Frame::Headers {
            stream_id: 5,
            fragment: b"\x82",
            pad_len: Some(2),
            priority: Some(prio),
            end_stream: false,
            end_headers: false,
        },
        Frame::Priority {
            stream_id: 7,
            priority: Priority {
                exclusive: false,
                dependency: 0,
                weight: 255,
            },
        },
        Frame::RstStream {
            stream_id: 7,
            code: E::CANCEL,
        },
        Frame::RstStream {
            stream_id: 7,
            code: E(0xdead),
        },
        Frame::Settings {
            ack: true,
            params: SettingsParams::default(),
        },
        Frame::Settings { ack: false, params },
        Frame::PushPromise {
            stream_id: 1,
            promised_id: 2,
            fragment: b"\x82",
            pad_len: Some(1),
            end_headers: true,
        },
        Frame::Ping {
            ack: false,
            data: *b"12345678",
        },
        Frame::Ping {
            ack: true,
            data: [0xff; 8],
        },
        Frame::GoAway {
            last_stream_id: 9,
            code: E::NO_ERROR,
            debug: b"",
        },
        Frame::GoAway {
            last_stream_id: 0x7fff_ffff,
            code: E::ENHANCE_YOUR_CALM,
            debug: b"calm",
        },
        Frame::WindowUpdate {
            stream_id: 0,
            increment: 1,
        },
        Frame::WindowUpdate {
            stream_id: 9,
            increment: MAX_WINDOW_SIZE,
        },
        Frame::Continuation {
            stream_id: 5,
            fragment: b"\x84",
            end_headers: true,
        },
        Frame::Continuation {
            stream_id: 5,
            fragment: b"",
            end_headers: false,
        },
        Frame::Unknown {
            kind: 0xfa,
            flags: 0xff,
            stream_id: 3,
            payload: b"whatever",
        },
    ];
    for frame in frames {
        let mut out = Vec::new();
        frame.encode(&mut out);
        assert_eq!(one(&out), Ok(frame), "{frame:?}");
        // Two frames back to back: the first takes exactly its own bytes.
        let mut two = out.clone();
        two.extend_from_slice(&out);
        let first = decode(&two, DEFAULT_MAX_FRAME_SIZE);
        assert_eq!(
            first,
            Ok(Decoded::Frame {
                frame,
                len: out.len()
            })
        );
    }
    let mut out = Vec::new();
    Frame::Settings { ack: false, params }.encode(&mut out);
    assert_eq!(out, settings_bytes);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn wire_layout_of_some_frames() {
    let mut out = Vec::new();
    Frame::Data {
        stream_id: 1,
        data: b"ab",
        pad_len: Some(2),
        end_stream: true,
    }
    .encode(&mut out);
    assert_eq!(out, [0, 0, 5, 0, 0x09, 0, 0, 0, 1, 2, b'a', b'b', 0, 0]);
    assert_eq!(one(&out).map(|f| f.flow_controlled_len()), Ok(5));
    out.clear();
    write_settings_ack(&mut out);
    assert_eq!(out, [0, 0, 0, 4, 1, 0, 0, 0, 0]);
    out.clear();
    Frame::WindowUpdate {
        stream_id: 3,
        increment: 0x0102_0304,
    }
    .encode(&mut out);
    assert_eq!(out, [0, 0, 4, 8, 0, 0, 0, 0, 3, 1, 2, 3, 4]);
    // The reserved bit of an increment is ignored.
    let bytes = raw(kind::WINDOW_UPDATE, 0, 0, &[0x80, 0, 0, 1]);
    let f = one(&bytes);
    assert_eq!(
        f,
        Ok(Frame::WindowUpdate {
            stream_id: 0,
            increment: 1
        })
    );
    // Unknown flags are ignored.
    let bytes = raw(kind::PING, 0xfe, 0, &[0; 8]);
    let f = one(&bytes);
    assert_eq!(
        f,
        Ok(Frame::Ping {
            ack: false,
            data: [0; 8]
        })
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn incomplete_until_the_whole_frame_is_in() {
    let mut bytes = Vec::new();
    let data = [7; 100];
    let frame = Frame::Data {
        stream_id: 1,
        data: &data,
        pad_len: None,
        end_stream: false,
    };
    frame.encode(&mut bytes);
    for cut in 0..bytes.len() {
        let want = if cut < 9 { 9 } else { 109 };
        let got = decode(&bytes[..cut], DEFAULT_MAX_FRAME_SIZE);
        assert_eq!(got, Ok(Decoded::Incomplete { need: want }));
    }
    assert!(matches!(
        decode(&bytes, DEFAULT_MAX_FRAME_SIZE),
        Ok(Decoded::Frame { len: 109, .. })
    ));
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn header_blocks_split_at_the_frame_size() {
    let block: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    let mut out = Vec::new();
    write_header_block(&mut out, 7, &block, true, 16_384);
    let mut rest = &out[..];
    let mut joined = Vec::new();
    let mut seen = Vec::new();
    while !rest.is_empty() {
        let Ok(Decoded::Frame { frame, len }) = decode(rest, 16_384) else {
            panic!()
        };
        match frame {
            Frame::Headers {
                stream_id: 7,
                fragment,
                end_stream: true,
                end_headers,
                ..
            } => {
                joined.extend_from_slice(fragment);
                seen.push(("H", fragment.len(), end_headers));
            }
            Frame::Continuation {
                stream_id: 7,
                fragment,
                end_headers,
            } => {
                joined.extend_from_slice(fragment);
                seen.push(("C", fragment.len(), end_headers));
            }
            other => panic!("{other:?}"),
        }
        rest = &rest[len..];
    }
    assert_eq!(joined, block);
    assert_eq!(
        seen,
        [
            ("H", 16_384, false),
            ("C", 16_384, false),
            ("C", 7232, true)
        ]
    );
    // A small block is one HEADERS frame; an empty one too.
    for block in [&b"\x82"[..], b""] {
        out.clear();
        write_header_block(&mut out, 1, block, false, 16_384);
        let frame = Frame::Headers {
            stream_id: 1,
            fragment: block,
            pad_len: None,
            priority: None,
            end_stream: false,
            end_headers: true,
        };
        assert_eq!(one(&out), Ok(frame));
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn never_panics_on_random_bytes() {
    let mut rng = Lcg(0x0123_4567_89ab_cdef);
    let (mut frames, mut errors) = (0, 0);
    for i in 0..20_000 {
        let mut buf = rng.bytes(64);
        // Make most lengths small and some types known, so that payloads get parsed.
        if buf.len() >= 9 && i % 4 != 0 {
            buf[0] = 0;
            buf[1] = 0;
            buf[2] = (buf[2] as usize % (buf.len() - 8)) as u8;
            buf[3] %= 11;
        }
        let mut rest = &buf[..];
        loop {
            match decode(rest, DEFAULT_MAX_FRAME_SIZE) {
                Ok(Decoded::Frame { frame, len }) => {
                    frames += 1;
                    assert!(len >= HEADER_LEN && len <= rest.len());
                    let mut out = Vec::new();
                    frame.encode(&mut out);
                    assert_eq!(one(&out), Ok(frame));
                    rest = &rest[len..];
                }
                Ok(Decoded::Incomplete { need }) => {
                    assert!(need > rest.len());
                    break;
                }
                Err(FrameError::Stream { consumed, .. }) => {
                    errors += 1;
                    rest = &rest[consumed..];
                }
                Err(FrameError::Connection { .. }) => {
                    errors += 1;
                    break;
                }
            }
        }
    }
    assert!(
        frames > 1000 && errors > 1000,
        "{frames} frames, {errors} errors"
    );
}
