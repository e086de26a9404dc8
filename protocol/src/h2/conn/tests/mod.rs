//! Tests of the connection, by RFC 9113 section (the number is in each test's name):
//! a [`Client`] builds its input with the frame encoder and HPACK, and reads our output
//! back with the frame decoder.
//!
//! - `s3_s4`: the preface (§3.4), frames (§4.1, §4.2), header blocks (§4.3).
//! - `s5`: stream states (§5.1), ids (§5.1.1), concurrency (§5.1.2), priority (§5.3),
//!   error handling (§5.4), extensions (§5.5).
//! - `s6`: each frame type (§6.1 to §6.10), §7 codes; `s6_9`: flow control (§5.2,
//!   §6.9).
//! - `s8`: HTTP semantics (§8), the round trip, the output side.
//! - `defences`: the attacks of SPEC "HTTP/2"; `fuzz`: random frames never panic.

mod defences;
mod fuzz;
mod s3_s4;
mod s5;
mod s6;
mod s6_9;
mod s8;

use super::{Event, H2Conn, H2Settings};
pub(super) use crate::h2::frame::ErrorCode;
use crate::h2::frame::{self, Decoded, Frame, FrameHeader, PREFACE};
use crate::h2::frame::{MAX_FRAME_SIZE_LIMIT, MAX_WINDOW_SIZE};
use crate::h2::hpack::{Decoder, Encoder, Field};
use crate::h2::settings::{Setting, SettingsParams};

pub(super) use crate::h2::frame::ErrorCode as E;

/// A frame we sent, decoded; header blocks joined and decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Out {
    Settings {
        ack: bool,
        params: Vec<Setting>,
    },
    Headers {
        id: u32,
        fields: Vec<(String, String)>,
        end_stream: bool,
        /// HEADERS + CONTINUATION frames it took.
        frames: usize,
    },
    Data {
        id: u32,
        data: Vec<u8>,
        end_stream: bool,
    },
    Rst {
        id: u32,
        code: ErrorCode,
    },
    GoAway {
        last: u32,
        code: ErrorCode,
    },
    WindowUpdate {
        id: u32,
        increment: u32,
    },
    Ping {
        ack: bool,
        data: [u8; 8],
    },
}

/// The client preface and an empty SETTINGS.
pub(super) fn preface() -> Vec<u8> {
    let mut b = PREFACE.to_vec();
    frame::write_settings(&mut b, &[]);
    b
}

/// A frame built by hand.
pub(super) fn raw(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader {
        length: payload.len() as u32,
        kind,
        flags,
        stream_id,
    }
    .write(&mut out);
    out.extend_from_slice(payload);
    out
}

pub(super) fn encode(f: Frame<'_>) -> Vec<u8> {
    let mut b = Vec::new();
    f.encode(&mut b);
    b
}

/// The pseudo-header fields of a request.
pub(super) fn req<'a>(method: &'a str, path: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        (":method", method),
        (":scheme", "https"),
        (":path", path),
        (":authority", "example.com"),
    ]
}

/// The client side of a test: our connection, the clock, HPACK both ways.
pub(super) struct Client {
    pub conn: H2Conn,
    pub now: u64,
    enc: Encoder,
    dec: Decoder,
    /// A header block of ours being read: stream, bytes, END_STREAM, frames.
    partial: Option<(u32, Vec<u8>, bool, usize)>,
}

impl Client {
    /// The connection alone, nothing received; its output untouched.
    pub fn bare(settings: H2Settings) -> Self {
        Client {
            conn: H2Conn::new(settings, 0),
            now: 0,
            enc: Encoder::new(4096),
            dec: Decoder::new(4096, 1 << 20),
            partial: None,
        }
    }

    /// Past the preface and both SETTINGS exchanges, output and events drained.
    pub fn new(settings: H2Settings) -> Self {
        let mut c = Client::bare(settings);
        c.send(&preface());
        let out = c.read();
        assert!(out.contains(&Out::Settings {
            ack: true,
            params: vec![]
        }));
        c.send(&raw(frame::kind::SETTINGS, frame::flags::ACK, 0, &[]));
        assert_eq!(c.events(), vec![]);
        assert_eq!(c.read(), vec![]);
        c
    }

    pub fn default() -> Self {
        Client::new(H2Settings::default())
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.conn.receive(bytes, self.now);
    }

    pub fn frame(&mut self, f: Frame<'_>) {
        self.send(&encode(f));
    }

    pub fn raw(&mut self, kind: u8, flags: u8, stream_id: u32, payload: &[u8]) {
        self.send(&raw(kind, flags, stream_id, payload));
    }

    /// A header block for `fields`, from the client's HPACK encoder.
    pub fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        self.enc
            .encode(fields.iter().map(|(n, v)| Field::new(*n, *v)), &mut b);
        b
    }

    /// One HEADERS frame with END_HEADERS.
    pub fn headers(&mut self, id: u32, fields: &[(&str, &str)], end_stream: bool) {
        let fragment = self.block(fields);
        self.frame(Frame::Headers {
            stream_id: id,
            fragment: &fragment,
            pad_len: None,
            priority: None,
            end_stream,
            end_headers: true,
        });
    }

    /// `GET path` on stream `id`, without a body.
    pub fn get(&mut self, id: u32, path: &str) {
        self.headers(id, &req("GET", path), true);
    }

    /// `POST path` on stream `id`, a body to follow.
    pub fn post(&mut self, id: u32, path: &str) {
        self.headers(id, &req("POST", path), false);
    }

    pub fn data(&mut self, id: u32, data: &[u8], end_stream: bool) {
        self.frame(Frame::Data {
            stream_id: id,
            data,
            pad_len: None,
            end_stream,
        });
    }

    /// A GET, its Request polled, answered with a head (no END_STREAM).
    pub fn open_response(&mut self, id: u32) {
        self.get(id, "/f");
        assert!(matches!(self.events()[..], [Event::Request { .. }]));
        assert_eq!(self.conn.send_headers(id, 200, &[], false), Ok(()));
        self.read();
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    /// Our output so far, decoded (and consumed).
    pub fn read(&mut self) -> Vec<Out> {
        let mut bytes = Vec::new();
        self.conn.take_output(&mut bytes, self.now);
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            match frame::decode(&bytes[pos..], MAX_FRAME_SIZE_LIMIT) {
                Ok(Decoded::Frame { frame, len }) => {
                    pos += len;
                    if let Some(o) = self.out(frame) {
                        out.push(o);
                    }
                }
                Ok(Decoded::Incomplete { .. }) => break,
                Err(e) => panic!("we sent a bad frame: {e:?}"),
            }
        }
        assert_eq!(pos, bytes.len(), "a partial frame in our output");
        out
    }

    fn out(&mut self, frame: Frame<'_>) -> Option<Out> {
        let stream_id = frame.stream_id();
        if let Some((id, ..)) = self.partial {
            assert!(
                matches!(frame, Frame::Continuation { .. }) && stream_id == id,
                "a frame inside our header block: {frame:?}"
            );
        }
        Some(match frame {
            Frame::Settings { ack, params } => Out::Settings {
                ack,
                params: params.iter().collect(),
            },
            Frame::Headers {
                fragment,
                end_stream,
                end_headers,
                ..
            } => {
                self.partial = Some((stream_id, fragment.to_vec(), end_stream, 1));
                return self.block_end(end_headers);
            }
            Frame::Continuation {
                fragment,
                end_headers,
                ..
            } => {
                let p = self.partial.as_mut().expect("CONTINUATION without HEADERS");
                p.1.extend_from_slice(fragment);
                p.3 += 1;
                return self.block_end(end_headers);
            }
            Frame::Data {
                data, end_stream, ..
            } => Out::Data {
                id: stream_id,
                data: data.to_vec(),
                end_stream,
            },
            Frame::RstStream { code, .. } => Out::Rst {
                id: stream_id,
                code,
            },
            Frame::GoAway {
                last_stream_id,
                code,
                ..
            } => Out::GoAway {
                last: last_stream_id,
                code,
            },
            Frame::WindowUpdate { increment, .. } => Out::WindowUpdate {
                id: stream_id,
                increment,
            },
            Frame::Ping { ack, data } => Out::Ping { ack, data },
            other => panic!("we sent {other:?}"),
        })
    }

    fn block_end(&mut self, end_headers: bool) -> Option<Out> {
        if !end_headers {
            return None;
        }
        let (id, block, end_stream, frames) = self.partial.take()?;
        let list = self.dec.decode(&block).expect("our header block decodes");
        let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8");
        Some(Out::Headers {
            id,
            fields: list.into_iter().map(|(n, v)| (text(n), text(v))).collect(),
            end_stream,
            frames,
        })
    }

    /// Asserts a connection error: GOAWAY with `code`, and closed.
    pub fn expect_conn_error(&mut self, code: ErrorCode) {
        let out = self.read();
        let goaway = out.iter().find_map(|o| match o {
            Out::GoAway { code, .. } => Some(*code),
            _ => None,
        });
        assert_eq!(goaway, Some(code), "output: {out:?}");
        assert!(self.conn.is_closed());
    }

    /// Asserts a stream error: RST_STREAM with `code` on `id`, and still open.
    pub fn expect_stream_error(&mut self, id: u32, code: ErrorCode) {
        let out = self.read();
        assert!(out.contains(&Out::Rst { id, code }), "output: {out:?}");
        assert!(!out.iter().any(|o| matches!(o, Out::GoAway { .. })));
        assert!(!self.conn.is_closed());
    }

    /// Asserts no error of either kind; returns the output.
    pub fn expect_no_error(&mut self) -> Vec<Out> {
        let out = self.read();
        let bad = |o: &Out| matches!(o, Out::GoAway { .. } | Out::Rst { .. });
        assert!(!out.iter().any(bad), "output: {out:?}");
        assert!(!self.conn.is_closed());
        out
    }
}

/// What a case of a table expects.
#[derive(Clone, Copy, Debug)]
pub(super) enum Expect {
    Conn(ErrorCode),
    Stream(u32, ErrorCode),
    Fine,
}

/// One row of a table: a name, what leads up to it, the frames under test, the outcome.
pub(super) type Case = (&'static str, fn(&mut Client), fn(&mut Client), Expect);

pub(super) fn run_table(settings: &H2Settings, cases: &[Case]) {
    for (name, setup, act, expect) in cases {
        let mut c = Client::new(settings.clone());
        setup(&mut c);
        c.read();
        c.events();
        act(&mut c);
        let out = c.read();
        let goaway = out.iter().find_map(|o| match o {
            Out::GoAway { code, .. } => Some(*code),
            _ => None,
        });
        match *expect {
            Expect::Conn(code) => {
                assert_eq!(goaway, Some(code), "{name}: {out:?}");
                assert!(c.conn.is_closed(), "{name}");
            }
            Expect::Stream(id, code) => {
                assert_eq!(goaway, None, "{name}: {out:?}");
                assert!(out.contains(&Out::Rst { id, code }), "{name}: {out:?}");
            }
            Expect::Fine => {
                assert_eq!(goaway, None, "{name}: {out:?}");
                let rst = out.iter().any(|o| matches!(o, Out::Rst { .. }));
                assert!(!rst, "{name}: {out:?}");
                assert!(!c.conn.is_closed(), "{name}");
            }
        }
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn harness_reads_its_own_frames() {
    // Sanity of the helpers the other tests lean on.
    let mut c = Client::default();
    let ping = encode(Frame::Ping {
        ack: false,
        data: *b"12345678",
    });
    c.send(&ping);
    assert_eq!(
        c.read(),
        vec![Out::Ping {
            ack: true,
            data: *b"12345678"
        }]
    );
    assert_eq!(raw(4, 1, 0, &[]), {
        let mut b = Vec::new();
        frame::write_settings_ack(&mut b);
        b
    });
    let _ = (MAX_WINDOW_SIZE, SettingsParams::default());
}
