//! HTTP/2 frames (RFC 9113 §4 and §6): the 9-byte frame header, the ten frame types,
//! a decoder from bytes and an encoder into a `Vec<u8>`.
//!
//! ```text
//!   received bytes ──▶ decode(buf, max_frame_size)
//!                        ├─ Incomplete { need }       wait for `need` bytes in all
//!                        ├─ Frame { frame, len }      a Frame borrowing buf; drop `len`
//!                        └─ Err(FrameError)           Connection: GOAWAY(code) and close
//!                                                     Stream: RST_STREAM(code), skip it
//!   Frame / write_* ───▶ encode(out)                  bytes appended to `out`
//! ```
//!
//! The decoder checks everything that can be checked from one frame alone: lengths,
//! stream 0 or not, padding, flags, each SETTINGS parameter, the frame size against our
//! SETTINGS_MAX_FRAME_SIZE (as soon as the header is in, before waiting for a payload
//! that may never fit). What needs the connection's state (stream states, CONTINUATION
//! sequencing, flow-control windows, a HEADERS depending on its own stream, refusing
//! PUSH_PROMISE from a client) is the connection's job. Unknown frame types come out as
//! [`Frame::Unknown`], to be ignored; unknown flags are ignored.

use super::settings::SettingsParams;

/// What a client sends first (RFC 9113 §3.4), before its SETTINGS frame.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The size of the frame header.
pub const HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE before the peer says otherwise, and its least value.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 1 << 14;
/// The largest SETTINGS_MAX_FRAME_SIZE there can be (2^24 - 1).
pub const MAX_FRAME_SIZE_LIMIT: u32 = (1 << 24) - 1;
/// The largest flow-control window (2^31 - 1).
pub const MAX_WINDOW_SIZE: u32 = (1 << 31) - 1;

/// Frame type codes.
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags (each meaningful for some types only).
pub mod flags {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// An error code of RFC 9113 §7, as carried by RST_STREAM and GOAWAY. Codes we do not
/// know are kept as they are (and mean nothing special).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    pub const NO_ERROR: ErrorCode = ErrorCode(0x0);
    pub const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode(0x2);
    pub const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    pub const SETTINGS_TIMEOUT: ErrorCode = ErrorCode(0x4);
    pub const STREAM_CLOSED: ErrorCode = ErrorCode(0x5);
    pub const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x6);
    pub const REFUSED_STREAM: ErrorCode = ErrorCode(0x7);
    pub const CANCEL: ErrorCode = ErrorCode(0x8);
    pub const COMPRESSION_ERROR: ErrorCode = ErrorCode(0x9);
    pub const CONNECT_ERROR: ErrorCode = ErrorCode(0xa);
    pub const ENHANCE_YOUR_CALM: ErrorCode = ErrorCode(0xb);
    pub const INADEQUATE_SECURITY: ErrorCode = ErrorCode(0xc);
    pub const HTTP_1_1_REQUIRED: ErrorCode = ErrorCode(0xd);

    /// The RFC's name for a known code.
    pub fn name(self) -> Option<&'static str> {
        const NAMES: [&str; 14] = [
            "NO_ERROR",
            "PROTOCOL_ERROR",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "SETTINGS_TIMEOUT",
            "STREAM_CLOSED",
            "FRAME_SIZE_ERROR",
            "REFUSED_STREAM",
            "CANCEL",
            "COMPRESSION_ERROR",
            "CONNECT_ERROR",
            "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY",
            "HTTP_1_1_REQUIRED",
        ];
        NAMES.get(self.0 as usize).copied()
    }
}

impl std::fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "ErrorCode({:#x})", self.0),
        }
    }
}

/// A frame that cannot be accepted, and how far the failure reaches (RFC 9113 §5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The connection must end: send GOAWAY with `code`, then close.
    Connection {
        code: ErrorCode,
        reason: &'static str,
    },
    /// Only the stream fails: send RST_STREAM with `code`, drop the frame (its `consumed`
    /// bytes) and go on reading.
    Stream {
        stream_id: u32,
        code: ErrorCode,
        reason: &'static str,
        consumed: usize,
    },
}

impl FrameError {
    pub(crate) fn connection(code: ErrorCode, reason: &'static str) -> Self {
        FrameError::Connection { code, reason }
    }

    /// The error code to send.
    pub fn code(&self) -> ErrorCode {
        match *self {
            FrameError::Connection { code, .. } | FrameError::Stream { code, .. } => code,
        }
    }

    /// What was wrong, for the log.
    pub fn reason(&self) -> &'static str {
        match *self {
            FrameError::Connection { reason, .. } | FrameError::Stream { reason, .. } => reason,
        }
    }

    pub fn is_connection_error(&self) -> bool {
        matches!(self, FrameError::Connection { .. })
    }
}

/// The 9-byte header every frame starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length (24 bits).
    pub length: u32,
    pub kind: u8,
    pub flags: u8,
    /// The stream (31 bits; the reserved bit is dropped on reading, never written).
    pub stream_id: u32,
}

impl FrameHeader {
    pub fn parse(b: &[u8; HEADER_LEN]) -> Self {
        FrameHeader {
            length: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream_id: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & MAX_WINDOW_SIZE,
        }
    }

    /// Appends the header (for a payload written separately, such as file bytes).
    pub fn write(&self, out: &mut Vec<u8>) {
        debug_assert!(self.length <= MAX_FRAME_SIZE_LIMIT);
        out.extend_from_slice(&self.length.to_be_bytes()[1..]);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&(self.stream_id & MAX_WINDOW_SIZE).to_be_bytes());
    }
}

/// The priority fields of HEADERS and PRIORITY (deprecated by RFC 9113, still parsed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    pub exclusive: bool,
    pub dependency: u32,
    /// As on the wire: the weight minus one.
    pub weight: u8,
}

impl Priority {
    fn parse(b: &[u8]) -> Priority {
        let word = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        Priority {
            exclusive: word & !MAX_WINDOW_SIZE != 0,
            dependency: word & MAX_WINDOW_SIZE,
            weight: b[4],
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        let e = if self.exclusive { 1 << 31 } else { 0 };
        out.extend_from_slice(&(e | (self.dependency & MAX_WINDOW_SIZE)).to_be_bytes());
        out.push(self.weight);
    }
}

/// One frame, its payload borrowed from the decoder's input.
///
/// `pad_len` is `Some(n)` when the frame was (or is to be) PADDED with `n` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Data {
        stream_id: u32,
        data: &'a [u8],
        pad_len: Option<u8>,
        end_stream: bool,
    },
    Headers {
        stream_id: u32,
        fragment: &'a [u8],
        pad_len: Option<u8>,
        priority: Option<Priority>,
        end_stream: bool,
        end_headers: bool,
    },
    Priority {
        stream_id: u32,
        priority: Priority,
    },
    RstStream {
        stream_id: u32,
        code: ErrorCode,
    },
    Settings {
        ack: bool,
        params: SettingsParams<'a>,
    },
    /// Parsed so that it can be refused: a client must not send it.
    PushPromise {
        stream_id: u32,
        promised_id: u32,
        fragment: &'a [u8],
        pad_len: Option<u8>,
        end_headers: bool,
    },
    Ping {
        ack: bool,
        data: [u8; 8],
    },
    GoAway {
        last_stream_id: u32,
        code: ErrorCode,
        debug: &'a [u8],
    },
    WindowUpdate {
        stream_id: u32,
        increment: u32,
    },
    Continuation {
        stream_id: u32,
        fragment: &'a [u8],
        end_headers: bool,
    },
    /// A frame type this implementation does not know: to be ignored.
    Unknown {
        kind: u8,
        flags: u8,
        stream_id: u32,
        payload: &'a [u8],
    },
}

/// What [`decode`] found at the start of the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Not a whole frame yet: `need` bytes in all are needed (9 until the header is in).
    Incomplete { need: usize },
    /// A frame, which took the first `len` bytes.
    Frame { frame: Frame<'a>, len: usize },
}

/// Decodes the frame at the start of `buf`, refusing one longer than `max_frame_size`
/// (our SETTINGS_MAX_FRAME_SIZE) with a FRAME_SIZE_ERROR as soon as its header is in.
pub fn decode(buf: &[u8], max_frame_size: u32) -> Result<Decoded<'_>, FrameError> {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(Decoded::Incomplete { need: HEADER_LEN });
    };
    let header = FrameHeader::parse(head);
    if header.length > max_frame_size {
        return Err(FrameError::connection(
            ErrorCode::FRAME_SIZE_ERROR,
            "frame larger than SETTINGS_MAX_FRAME_SIZE",
        ));
    }
    let len = HEADER_LEN + header.length as usize;
    match buf.get(HEADER_LEN..len) {
        None => Ok(Decoded::Incomplete { need: len }),
        Some(payload) => Ok(Decoded::Frame {
            frame: parse(&header, payload)?,
            len,
        }),
    }
}

fn conn<T>(code: ErrorCode, reason: &'static str) -> Result<T, FrameError> {
    Err(FrameError::connection(code, reason))
}

fn stream<T>(h: &FrameHeader, code: ErrorCode, reason: &'static str) -> Result<T, FrameError> {
    Err(FrameError::Stream {
        stream_id: h.stream_id,
        code,
        reason,
        consumed: HEADER_LEN + h.length as usize,
    })
}

/// The parts of a frame that may be PADDED: fixed fields, body, pad length.
type Unpadded<'a> = (&'a [u8], &'a [u8], Option<u8>);

/// Splits a payload that may be PADDED into (fixed fields, body, pad length): `fixed`
/// bytes of fields follow the pad length, and the padding may not eat into them.
fn unpad<'a>(h: &FrameHeader, payload: &'a [u8], fixed: usize) -> Result<Unpadded<'a>, FrameError> {
    let (pad, rest) = if h.flags & flags::PADDED != 0 {
        match payload.split_first() {
            Some((&pad, rest)) => (Some(pad), rest),
            None => {
                return conn(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "PADDED frame without a pad length",
                )
            }
        }
    } else {
        (None, payload)
    };
    if rest.len() < fixed {
        return conn(
            ErrorCode::FRAME_SIZE_ERROR,
            "frame too short for its fields",
        );
    }
    let (fields, rest) = rest.split_at(fixed);
    let body_len = rest.len().checked_sub(pad.map_or(0, usize::from));
    match body_len {
        Some(n) => Ok((fields, &rest[..n], pad)),
        None => conn(ErrorCode::PROTOCOL_ERROR, "padding longer than the payload"),
    }
}

fn word(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn parse<'a>(h: &FrameHeader, payload: &'a [u8]) -> Result<Frame<'a>, FrameError> {
    use ErrorCode as E;
    let on_stream = h.stream_id != 0;
    let flag = |f: u8| h.flags & f != 0;
    let needs_stream = |name| -> Result<(), FrameError> {
        if on_stream {
            Ok(())
        } else {
            conn(E::PROTOCOL_ERROR, name)
        }
    };
    let needs_conn = |name| -> Result<(), FrameError> {
        if on_stream {
            conn(E::PROTOCOL_ERROR, name)
        } else {
            Ok(())
        }
    };
    Ok(match h.kind {
        kind::DATA => {
            needs_stream("DATA on stream 0")?;
            let (_, data, pad_len) = unpad(h, payload, 0)?;
            Frame::Data {
                stream_id: h.stream_id,
                data,
                pad_len,
                end_stream: flag(flags::END_STREAM),
            }
        }
        kind::HEADERS => {
            needs_stream("HEADERS on stream 0")?;
            let fixed = if flag(flags::PRIORITY) { 5 } else { 0 };
            let (fields, fragment, pad_len) = unpad(h, payload, fixed)?;
            Frame::Headers {
                stream_id: h.stream_id,
                fragment,
                pad_len,
                priority: (fixed == 5).then(|| Priority::parse(fields)),
                end_stream: flag(flags::END_STREAM),
                end_headers: flag(flags::END_HEADERS),
            }
        }
        kind::PRIORITY => {
            needs_stream("PRIORITY on stream 0")?;
            if payload.len() != 5 {
                return stream(h, E::FRAME_SIZE_ERROR, "PRIORITY length not 5");
            }
            let priority = Priority::parse(payload);
            if priority.dependency == h.stream_id {
                return stream(h, E::PROTOCOL_ERROR, "stream depends on itself");
            }
            Frame::Priority {
                stream_id: h.stream_id,
                priority,
            }
        }
        kind::RST_STREAM => {
            needs_stream("RST_STREAM on stream 0")?;
            if payload.len() != 4 {
                return conn(E::FRAME_SIZE_ERROR, "RST_STREAM length not 4");
            }
            Frame::RstStream {
                stream_id: h.stream_id,
                code: ErrorCode(word(payload)),
            }
        }
        kind::SETTINGS => {
            needs_conn("SETTINGS on a stream")?;
            let ack = flag(flags::ACK);
            if ack && !payload.is_empty() {
                return conn(E::FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
            }
            Frame::Settings {
                ack,
                params: SettingsParams::parse(payload)?,
            }
        }
        kind::PUSH_PROMISE => {
            needs_stream("PUSH_PROMISE on stream 0")?;
            let (fields, fragment, pad_len) = unpad(h, payload, 4)?;
            Frame::PushPromise {
                stream_id: h.stream_id,
                promised_id: word(fields) & MAX_WINDOW_SIZE,
                fragment,
                pad_len,
                end_headers: flag(flags::END_HEADERS),
            }
        }
        kind::PING => {
            needs_conn("PING on a stream")?;
            match payload.first_chunk::<8>() {
                Some(&data) if payload.len() == 8 => Frame::Ping {
                    ack: flag(flags::ACK),
                    data,
                },
                _ => return conn(E::FRAME_SIZE_ERROR, "PING length not 8"),
            }
        }
        kind::GOAWAY => {
            needs_conn("GOAWAY on a stream")?;
            if payload.len() < 8 {
                return conn(E::FRAME_SIZE_ERROR, "GOAWAY shorter than 8");
            }
            Frame::GoAway {
                last_stream_id: word(payload) & MAX_WINDOW_SIZE,
                code: ErrorCode(word(&payload[4..])),
                debug: &payload[8..],
            }
        }
        kind::WINDOW_UPDATE => {
            if payload.len() != 4 {
                return conn(E::FRAME_SIZE_ERROR, "WINDOW_UPDATE length not 4");
            }
            let increment = word(payload) & MAX_WINDOW_SIZE;
            if increment == 0 {
                let reason = "WINDOW_UPDATE increment 0";
                return match on_stream {
                    true => stream(h, E::PROTOCOL_ERROR, reason),
                    false => conn(E::PROTOCOL_ERROR, reason),
                };
            }
            Frame::WindowUpdate {
                stream_id: h.stream_id,
                increment,
            }
        }
        kind::CONTINUATION => {
            needs_stream("CONTINUATION on stream 0")?;
            Frame::Continuation {
                stream_id: h.stream_id,
                fragment: payload,
                end_headers: flag(flags::END_HEADERS),
            }
        }
        kind => Frame::Unknown {
            kind,
            flags: h.flags,
            stream_id: h.stream_id,
            payload,
        },
    })
}

impl Frame<'_> {
    /// The stream the frame is on (0 for the connection).
    pub fn stream_id(&self) -> u32 {
        match *self {
            Frame::Data { stream_id, .. }
            | Frame::Headers { stream_id, .. }
            | Frame::Priority { stream_id, .. }
            | Frame::RstStream { stream_id, .. }
            | Frame::PushPromise { stream_id, .. }
            | Frame::WindowUpdate { stream_id, .. }
            | Frame::Continuation { stream_id, .. }
            | Frame::Unknown { stream_id, .. } => stream_id,
            Frame::Settings { .. } | Frame::Ping { .. } | Frame::GoAway { .. } => 0,
        }
    }

    /// What the frame counts for in flow control: the whole payload of a DATA frame,
    /// padding included (RFC 9113 §6.1); 0 for other frames.
    pub fn flow_controlled_len(&self) -> u32 {
        match *self {
            Frame::Data { data, pad_len, .. } => {
                (data.len() + pad_len.map_or(0, |p| 1 + usize::from(p))) as u32
            }
            _ => 0,
        }
    }
}

mod encode;
pub use encode::{write_header_block, write_settings, write_settings_ack};

#[cfg(test)]
mod error_tests;
#[cfg(test)]
mod tests;
