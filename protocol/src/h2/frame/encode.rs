//! The frame encoder: [`Frame::encode`] for any frame, and the writers the connection
//! uses most (SETTINGS, its ACK, a header block split into HEADERS + CONTINUATION).
//!
//! Each writes the 9-byte header and the payload at the end of a `Vec<u8>`; `encode`
//! reserves the header, appends the payload, then fills in the length it ended up with.
//! Padding is written as zeros. Nothing here checks the peer's limits: the connection
//! sizes DATA to its windows and SETTINGS_MAX_FRAME_SIZE, and `write_header_block`
//! splits blocks by the latter.

use super::{flags, kind, Frame, FrameHeader, DEFAULT_MAX_FRAME_SIZE, HEADER_LEN};
use super::{MAX_FRAME_SIZE_LIMIT, MAX_WINDOW_SIZE};
use crate::h2::settings::Setting;

impl Frame<'_> {
    /// Appends the frame to `out`. The caller keeps the payload within the peer's
    /// SETTINGS_MAX_FRAME_SIZE (see [`write_header_block`] for header blocks).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        let set = |on: bool, f: u8| if on { f } else { 0 };
        let padded = |out: &mut Vec<u8>, pad: Option<u8>| {
            if let Some(p) = pad {
                out.push(p);
            }
            set(pad.is_some(), flags::PADDED)
        };
        let pad_out = |out: &mut Vec<u8>, pad: Option<u8>| {
            out.resize(out.len() + usize::from(pad.unwrap_or(0)), 0);
        };
        let (kind, flags, stream_id) = match *self {
            Frame::Data {
                stream_id,
                data,
                pad_len,
                end_stream,
            } => {
                let f = padded(out, pad_len) | set(end_stream, flags::END_STREAM);
                out.extend_from_slice(data);
                pad_out(out, pad_len);
                (kind::DATA, f, stream_id)
            }
            Frame::Headers {
                stream_id,
                fragment,
                pad_len,
                priority,
                end_stream,
                end_headers,
            } => {
                let mut f = padded(out, pad_len);
                if let Some(p) = priority {
                    p.write(out);
                    f |= flags::PRIORITY;
                }
                out.extend_from_slice(fragment);
                pad_out(out, pad_len);
                f |= set(end_stream, flags::END_STREAM) | set(end_headers, flags::END_HEADERS);
                (kind::HEADERS, f, stream_id)
            }
            Frame::Priority {
                stream_id,
                priority,
            } => {
                priority.write(out);
                (kind::PRIORITY, 0, stream_id)
            }
            Frame::RstStream { stream_id, code } => {
                out.extend_from_slice(&code.0.to_be_bytes());
                (kind::RST_STREAM, 0, stream_id)
            }
            Frame::Settings { ack, params } => {
                out.extend_from_slice(params.as_bytes());
                (kind::SETTINGS, set(ack, flags::ACK), 0)
            }
            Frame::PushPromise {
                stream_id,
                promised_id,
                fragment,
                pad_len,
                end_headers,
            } => {
                let f = padded(out, pad_len) | set(end_headers, flags::END_HEADERS);
                out.extend_from_slice(&(promised_id & MAX_WINDOW_SIZE).to_be_bytes());
                out.extend_from_slice(fragment);
                pad_out(out, pad_len);
                (kind::PUSH_PROMISE, f, stream_id)
            }
            Frame::Ping { ack, data } => {
                out.extend_from_slice(&data);
                (kind::PING, set(ack, flags::ACK), 0)
            }
            Frame::GoAway {
                last_stream_id,
                code,
                debug,
            } => {
                out.extend_from_slice(&(last_stream_id & MAX_WINDOW_SIZE).to_be_bytes());
                out.extend_from_slice(&code.0.to_be_bytes());
                out.extend_from_slice(debug);
                (kind::GOAWAY, 0, 0)
            }
            Frame::WindowUpdate {
                stream_id,
                increment,
            } => {
                out.extend_from_slice(&(increment & MAX_WINDOW_SIZE).to_be_bytes());
                (kind::WINDOW_UPDATE, 0, stream_id)
            }
            Frame::Continuation {
                stream_id,
                fragment,
                end_headers,
            } => {
                out.extend_from_slice(fragment);
                (
                    kind::CONTINUATION,
                    set(end_headers, flags::END_HEADERS),
                    stream_id,
                )
            }
            Frame::Unknown {
                kind,
                flags,
                stream_id,
                payload,
            } => {
                out.extend_from_slice(payload);
                (kind, flags, stream_id)
            }
        };
        let length = (out.len() - start - HEADER_LEN) as u32;
        let mut header = Vec::with_capacity(HEADER_LEN);
        FrameHeader {
            length,
            kind,
            flags,
            stream_id,
        }
        .write(&mut header);
        out[start..start + HEADER_LEN].copy_from_slice(&header);
    }
}

/// Appends a SETTINGS frame carrying `settings`.
pub fn write_settings(out: &mut Vec<u8>, settings: &[Setting]) {
    let length = (settings.len() * 6) as u32;
    FrameHeader {
        length,
        kind: kind::SETTINGS,
        flags: 0,
        stream_id: 0,
    }
    .write(out);
    for s in settings {
        s.write(out);
    }
}

/// Appends the acknowledgement of the peer's SETTINGS.
pub fn write_settings_ack(out: &mut Vec<u8>) {
    FrameHeader {
        length: 0,
        kind: kind::SETTINGS,
        flags: flags::ACK,
        stream_id: 0,
    }
    .write(out);
}

/// Appends a header block as one HEADERS frame and as many CONTINUATION frames as the
/// peer's `max_frame_size` needs, END_HEADERS on the last.
pub fn write_header_block(
    out: &mut Vec<u8>,
    stream_id: u32,
    block: &[u8],
    end_stream: bool,
    max_frame_size: u32,
) {
    let max = max_frame_size.clamp(DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT) as usize;
    let mut chunks = block.chunks(max).peekable();
    let headers = Frame::Headers {
        stream_id,
        fragment: chunks.next().unwrap_or(&[]),
        pad_len: None,
        priority: None,
        end_stream,
        end_headers: chunks.peek().is_none(),
    };
    headers.encode(out);
    while let Some(fragment) = chunks.next() {
        let end_headers = chunks.peek().is_none();
        Frame::Continuation {
            stream_id,
            fragment,
            end_headers,
        }
        .encode(out);
    }
}
