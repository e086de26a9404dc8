//! A hand-made HTTP/2 client over a plain socket, for the cases that send what no real
//! client sends (floods, bad ids, a window held at zero) and look at the frames that
//! come back. It encodes requests with HPACK's static table and literals only (no
//! Huffman, no dynamic table), and reads frames without decoding header blocks: the
//! tests look at frame types, stream ids, flags, error codes and DATA lengths; what an
//! answer says is checked with curl and nghttp.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const CANCEL: u32 = 0x8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// SETTINGS parameters.
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// A frame as it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of a GOAWAY or RST_STREAM.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            GOAWAY => 4,
            RST_STREAM => 0,
            _ => return None,
        };
        let b = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A GOAWAY's last stream id.
    pub fn last_stream(&self) -> Option<u32> {
        let b = self.payload.get(..4).filter(|_| self.kind == GOAWAY)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff)
    }

    /// A SETTINGS frame's parameters.
    pub fn settings(&self) -> Vec<(u16, u32)> {
        self.payload
            .chunks_exact(6)
            .map(|c| {
                let id = u16::from_be_bytes([c[0], c[1]]);
                (id, u32::from_be_bytes([c[2], c[3], c[4], c[5]]))
            })
            .collect()
    }
}

/// One frame's bytes.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut b = Vec::with_capacity(9 + payload.len());
    b.extend_from_slice(&len.to_be_bytes()[1..]);
    b.push(kind);
    b.push(flags);
    b.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    b.extend_from_slice(payload);
    b
}

/// A SETTINGS frame with these parameters.
pub fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in params {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

pub fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

/// An HPACK string literal, without Huffman coding (lengths up to 2^21).
fn string(out: &mut Vec<u8>, s: &[u8]) {
    integer(out, 0x00, 7, s.len());
    out.extend_from_slice(s);
}

/// An HPACK integer with an `n`-bit prefix, the high bits of the first byte `first`.
fn integer(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// A header block: a literal without indexing, new name, for each field.
pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, value) in fields {
        b.push(0x00);
        string(&mut b, name.as_bytes());
        string(&mut b, value.as_bytes());
    }
    b
}

/// The header block of `GET path` to `authority`.
pub fn get_block(authority: &str, path: &str) -> Vec<u8> {
    block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", path),
        (":authority", authority),
    ])
}

/// One field `name: value` entered in the dynamic table (literal with incremental
/// indexing, new name), then `refs` references to it (index 62): an HPACK bomb's shape.
pub fn bomb_block(authority: &str, value_len: usize, refs: usize) -> Vec<u8> {
    let mut b = get_block(authority, "/");
    b.push(0x40);
    string(&mut b, b"x-bomb");
    string(&mut b, &vec![b'a'; value_len]);
    b.extend(std::iter::repeat_n(0x80 | 62, refs));
    b
}

/// A plain HTTP/2 connection past the preface (ours and the server's SETTINGS, both
/// acknowledged).
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Every frame read so far.
    pub frames: Vec<Frame>,
    /// The server closed the connection.
    pub closed: bool,
}

impl Conn {
    /// Connects, sends the preface with `params` in our SETTINGS, and reads the server's
    /// SETTINGS (acknowledged).
    pub fn open(port: u16, params: &[(u16, u32)]) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let _ = stream.set_nodelay(true);
        let mut c = Conn {
            stream,
            buf: Vec::new(),
            frames: Vec::new(),
            closed: false,
        };
        let mut hello = PREFACE.to_vec();
        hello.extend(settings(params));
        c.send(&hello);
        let s = c
            .wait_for(Duration::from_secs(10), |f| {
                f.kind == SETTINGS && f.flags == 0
            })
            .expect("the server's SETTINGS");
        assert_eq!(s.stream, 0);
        c.send(&frame(SETTINGS, ACK, 0, &[]));
        c
    }

    /// Writes bytes; false once the server has closed (a reset, a broken pipe).
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    pub fn headers(&mut self, stream: u32, block: &[u8], flags: u8) -> bool {
        self.send(&frame(HEADERS, flags, stream, block))
    }

    /// Reads frames until `pred` matches one (returned), the server closes, or `within`
    /// passes.
    pub fn wait_for(&mut self, within: Duration, pred: impl Fn(&Frame) -> bool) -> Option<Frame> {
        let until = Instant::now() + within;
        let mut seen = self.frames.len();
        loop {
            while seen < self.frames.len() {
                if pred(&self.frames[seen]) {
                    return Some(self.frames[seen].clone());
                }
                seen += 1;
            }
            if self.closed || !self.read_some(until) {
                return None;
            }
        }
    }

    /// Reads until the server closes or `within` passes; whether it closed.
    pub fn wait_closed(&mut self, within: Duration) -> bool {
        let until = Instant::now() + within;
        while !self.closed && self.read_some(until) {}
        self.closed
    }

    /// One read (until `until` at most), its frames decoded; false at the deadline.
    fn read_some(&mut self, until: Instant) -> bool {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = self.stream.set_read_timeout(Some(left));
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => self.closed = true,
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => self.closed = true,
        }
        while self.buf.len() >= 9 {
            let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
            if self.buf.len() < 9 + len {
                break;
            }
            let b = &self.buf;
            let stream = u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff;
            let f = Frame {
                kind: b[3],
                flags: b[4],
                stream,
                payload: b[9..9 + len].to_vec(),
            };
            self.buf.drain(..9 + len);
            self.frames.push(f);
        }
        true
    }

    /// The first GOAWAY read, if any.
    pub fn goaway(&self) -> Option<&Frame> {
        self.frames.iter().find(|f| f.kind == GOAWAY)
    }

    /// DATA bytes read on `stream`, and whether END_STREAM came.
    pub fn data(&self, stream: u32) -> (usize, bool) {
        let on = self
            .frames
            .iter()
            .filter(|f| f.kind == DATA && f.stream == stream);
        on.fold((0, false), |(n, end), f| {
            (n + f.payload.len(), end || f.flags & END_STREAM != 0)
        })
    }
}
