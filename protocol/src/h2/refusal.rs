//! A full server's `503` to a client that chose HTTP/2 by ALPN.
//!
//! Over HTTP/1.1 the refusal is written at once: a 503 with `Retry-After`, then the
//! close. Over HTTP/2 an answer needs a stream, so the refusal waits for the client's
//! first request: its HEADERS frame's stream id is all it reads (the header block is not
//! decoded: the connection ends here, so no HPACK state has to stay in step). That
//! stream gets the same 503, head and body, and a GOAWAY names it as the last stream:
//! nothing else was processed, so the client may retry any other request. A client
//! that breaks the protocol before its first request gets GOAWAY with PROTOCOL_ERROR;
//! one that sends more than [`MAX_HELD`] bytes without a request gets GOAWAY naming no
//! stream.

use super::frame::{
    flags, kind, write_header_block, write_settings, ErrorCode, Frame, FrameHeader,
};
use super::frame::{DEFAULT_MAX_FRAME_SIZE, HEADER_LEN, PREFACE};
use super::hpack::{Encoder, Field};

/// What the refusal holds of a client that sends no request.
pub const MAX_HELD: usize = 64 << 10;

/// The refusal of one HTTP/2 connection: bytes in, the ending out.
#[derive(Debug, Default)]
pub struct H2Refusal {
    held: Vec<u8>,
    done: bool,
}

impl H2Refusal {
    pub fn new() -> Self {
        Self::default()
    }

    /// The server's connection preface (an empty SETTINGS), to send at once.
    pub fn preface() -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        write_settings(&mut out, &[]);
        out
    }

    /// Takes the client's bytes. Once they hold its first request (or show it will send
    /// none), the bytes that end the connection: `answer` (an HTTP/1.1 response, as the
    /// core writes it) on that request's stream, then GOAWAY. `None`: more is needed (or
    /// the ending was already given).
    pub fn received(&mut self, bytes: &[u8], answer: &[u8]) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        self.held.extend_from_slice(bytes);
        let n = self.held.len().min(PREFACE.len());
        if self.held[..n] != PREFACE[..n] {
            return Some(self.end(0, ErrorCode::PROTOCOL_ERROR));
        }
        let mut at = PREFACE.len();
        while let Some(head) = self
            .held
            .get(at..)
            .and_then(|b| b.first_chunk::<HEADER_LEN>())
        {
            let header = FrameHeader::parse(head);
            if header.length > DEFAULT_MAX_FRAME_SIZE {
                return Some(self.end(0, ErrorCode::FRAME_SIZE_ERROR));
            }
            if header.kind == kind::HEADERS {
                let id = header.stream_id;
                if id.is_multiple_of(2) {
                    return Some(self.end(0, ErrorCode::PROTOCOL_ERROR));
                }
                let mut out = h2_answer(id, answer);
                out.extend_from_slice(&self.end(id, ErrorCode::NO_ERROR));
                return Some(out);
            }
            at += HEADER_LEN + header.length as usize;
        }
        if self.held.len() > MAX_HELD {
            return Some(self.end(0, ErrorCode::NO_ERROR));
        }
        None
    }

    /// The ending for a client that sent no request in time: GOAWAY naming no stream.
    pub fn give_up(&mut self) -> Vec<u8> {
        self.end(0, ErrorCode::NO_ERROR)
    }

    fn end(&mut self, last_stream_id: u32, code: ErrorCode) -> Vec<u8> {
        self.done = true;
        self.held = Vec::new();
        let mut out = Vec::with_capacity(HEADER_LEN + 8);
        Frame::GoAway {
            last_stream_id,
            code,
            debug: &[],
        }
        .encode(&mut out);
        out
    }
}

/// An HTTP/1.1 response (status line, fields, body) as HTTP/2 frames on `stream_id`:
/// `:status`, the fields in lowercase without the connection-specific ones, the body
/// as one DATA frame (the refusal's page is small).
fn h2_answer(stream_id: u32, answer: &[u8]) -> Vec<u8> {
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(at) => (&answer[..at], &answer[at + 4..]),
        None => (answer, &[][..]),
    };
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status = lines
        .next()
        .and_then(|l| l.split(|&b| b == b' ').nth(1))
        .unwrap_or(b"503");
    let fields: Vec<(Vec<u8>, &[u8])> = lines
        .filter_map(|l| {
            let colon = l.iter().position(|&b| b == b':')?;
            let name = l[..colon].to_ascii_lowercase();
            let value = l[colon + 1..].trim_ascii();
            (!super::conn::request::is_connection_specific(&name)).then_some((name, value))
        })
        .collect();
    let mut block = Vec::new();
    let mut encoder = Encoder::default();
    let all = std::iter::once(Field::new(b":status", status))
        .chain(fields.iter().map(|(n, v)| Field::new(n, *v)));
    encoder.encode(all, &mut block);
    let mut out = Vec::with_capacity(block.len() + body.len() + 2 * HEADER_LEN);
    write_header_block(
        &mut out,
        stream_id,
        &block,
        body.is_empty(),
        DEFAULT_MAX_FRAME_SIZE,
    );
    if !body.is_empty() {
        FrameHeader {
            length: body.len() as u32,
            kind: kind::DATA,
            flags: flags::END_STREAM,
            stream_id,
        }
        .write(&mut out);
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2::hpack::Decoder;

    const ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nServer: s\r\nRetry-After: 1\r\n\
        Connection: close\r\nContent-Length: 4\r\n\r\nbusy";

    fn frames(mut bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(head) = bytes.first_chunk::<HEADER_LEN>() {
            let header = FrameHeader::parse(head);
            let end = HEADER_LEN + header.length as usize;
            out.push((
                header.kind,
                header.flags,
                header.stream_id,
                bytes[HEADER_LEN..end].to_vec(),
            ));
            bytes = &bytes[end..];
        }
        out
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn the_first_request_gets_503_and_goaway_names_it() {
        let mut r = H2Refusal::new();
        assert_eq!(frames(&H2Refusal::preface())[0].0, kind::SETTINGS);
        let mut client = PREFACE.to_vec();
        write_settings(&mut client, &[]);
        // The preface alone, then a HEADERS frame cut in two: not yet.
        assert_eq!(r.received(&client, ANSWER), None);
        let headers = [
            0,
            0,
            1,
            kind::HEADERS,
            flags::END_HEADERS | flags::END_STREAM,
            0,
            0,
            0,
            3,
            0x82,
        ];
        assert_eq!(r.received(&headers[..5], ANSWER), None);
        let out = r.received(&headers[5..], ANSWER).expect("the ending");
        let got = frames(&out);
        let kinds: Vec<u8> = got.iter().map(|f| f.0).collect();
        assert_eq!(kinds, [kind::HEADERS, kind::DATA, kind::GOAWAY]);
        assert_eq!((got[0].2, got[1].2), (3, 3));
        assert_eq!(got[1].1 & flags::END_STREAM, flags::END_STREAM);
        assert_eq!(got[1].3, b"busy");
        let fields = Decoder::default().decode(&got[0].3).expect("HPACK");
        let text: Vec<(String, String)> = (fields.iter())
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into(),
                    String::from_utf8_lossy(v).into(),
                )
            })
            .collect();
        assert_eq!(text[0], (":status".into(), "503".into()));
        assert!(text.contains(&("retry-after".into(), "1".into())));
        assert!(!text.iter().any(|(n, _)| n == "connection"), "{text:?}");
        // GOAWAY: last stream 3, NO_ERROR.
        assert_eq!(got[2].3[..8], [0, 0, 0, 3, 0, 0, 0, 0]);
        assert_eq!(r.received(b"more", ANSWER), None, "one ending only");
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn a_client_without_a_request_gets_goaway() {
        let out = H2Refusal::new()
            .received(b"GET / HTTP/1.1\r\n", ANSWER)
            .expect("end");
        assert_eq!(
            frames(&out)[0].3[4..8],
            ErrorCode::PROTOCOL_ERROR.0.to_be_bytes()
        );
        let mut r = H2Refusal::new();
        let mut client = PREFACE.to_vec();
        let ping = [0, 0, 8, kind::PING, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        while client.len() <= MAX_HELD {
            client.extend_from_slice(&ping);
        }
        let out = r.received(&client, ANSWER).expect("end");
        assert_eq!(
            frames(&out)[0].3[..8],
            [0; 8],
            "GOAWAY, no stream, NO_ERROR"
        );
        let out = H2Refusal::new().give_up();
        assert_eq!(frames(&out)[0].0, kind::GOAWAY);
        assert_eq!(
            frames(&out)[0].3[..8],
            [0; 8],
            "time out: no stream, NO_ERROR"
        );
    }
}
