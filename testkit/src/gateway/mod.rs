//! The suite over HTTP/2: a gateway inside the harness's [`Client`](crate::Client) that
//! carries the HTTP/1.1 requests a case writes as HTTP/2 streams, and hands the case back
//! the answers as HTTP/1.1 bytes (see [`crate::cases::run_over_h2`]).
//!
//! Inside [`over_h2`](crate::https::over_h2) every server a case starts speaks TLS and
//! every client to it offers ALPN `h2` only: the server must choose it. The gateway then
//! does what an HTTP/2-to-HTTP/1.1 proxy in front of the case would do, and checks the
//! server's side strictly as it goes:
//!
//! - a request head becomes a HEADERS frame on the next client stream (`:method`,
//!   `:scheme https`, `:authority` from `Host` or an absolute target, `:path`; names in
//!   lowercase; the connection-specific fields of RFC 9113 §8.2.2 dropped); its body,
//!   sized by `Content-Length` or decoded from chunks, goes out as DATA frames within the
//!   server's flow-control windows, as the case writes it (a slow upload stays slow);
//! - each answer comes back in request order, as an HTTP/1.1 response: interim (`1xx`)
//!   heads as they come, then the final head and its DATA. An answer without
//!   `Content-Length` is given chunked, as a proxy would; one with it must carry exactly
//!   that many bytes;
//! - the server's frames are checked: its header blocks decode (with the core's HPACK
//!   decoder, itself checked against RFC 7541 Appendix C), `:status` comes first and
//!   alone among pseudo-fields, no connection-specific field and no uppercase name
//!   appears. A violation fails every later read with what was wrong;
//! - `Connection: close` on a request (or HTTP/1.0 without keep-alive) ends what the case
//!   reads after that answer, which says `connection: close` (the gateway's own hop, as a
//!   proxy's would), since the HTTP/1.1 connection the case believes in ends there; a stream reset before its answer, or above a GOAWAY's last stream, ends it
//!   too (as a server that closes without answering would). The end of the TCP stream is
//!   the end.
//!
//! SETTINGS and PING are acknowledged, and the windows the client grants are 1 GiB,
//! topped up as DATA is read.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use protocol::h2::hpack::Decoder;

mod request;
use request::Body;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// The window the client grants, per stream and for the connection.
const GRANT: u32 = 1 << 30;

/// The byte stream under the gateway: the socket, or TLS over it.
pub(crate) trait Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Completes the TLS handshake and checks that ALPN chose `h2`.
    fn check_h2(&mut self) -> io::Result<()>;
    /// Sends nothing more (TLS `close_notify`, then the socket's writing side).
    fn shut(&mut self);
}

/// One HTTP/2 connection seen as HTTP/1.1, shared by a client and its writers.
pub(crate) struct Gateway {
    state: Mutex<State>,
    /// Held while reading the wire, so that one thread reads at a time.
    reading: Mutex<()>,
    /// Held while writing frames, so that frames never interleave.
    writing: Mutex<()>,
    /// Told when the windows grow (a writer may wait for that).
    grown: Condvar,
}

#[derive(Default)]
struct State {
    started: bool,
    // What came from the server.
    raw: Vec<u8>,
    decoder: Decoder,
    /// A header block waiting for its CONTINUATION frames: stream, block, END_STREAM.
    block: Option<(u32, Vec<u8>, bool)>,
    answers: HashMap<u32, Answer>,
    /// Streams whose answers the case reads, in request order.
    order: VecDeque<u32>,
    /// HTTP/1.1 bytes ready for the case.
    out: Vec<u8>,
    /// What the case reads has ended (a `Connection: close` answered, a stream reset).
    ended: bool,
    /// The connection was closed on our side since the case's ended.
    shut: bool,
    /// The wire reached its end.
    eof: bool,
    goaway: Option<u32>,
    /// What the server did wrong, for every later read.
    error: Option<String>,
    /// Frames to send that the reader made (acknowledgements, window updates).
    control: Vec<u8>,
    unacked_conn: u64,
    // What goes to the server.
    pending: Vec<u8>,
    body: Option<Body>,
    next_stream: u32,
    conn_window: i64,
    stream_windows: HashMap<u32, i64>,
    initial_window: i64,
    max_frame: usize,
}

/// The answer of one stream, as HTTP/1.1 bytes not yet handed to the case.
#[derive(Default)]
struct Answer {
    head_request: bool,
    close_after: bool,
    final_head: bool,
    chunked: bool,
    declared: Option<u64>,
    got: u64,
    unacked: u64,
    done: bool,
    reset: bool,
    bytes: Vec<u8>,
}

impl Gateway {
    pub(crate) fn new() -> Gateway {
        Gateway {
            state: Mutex::new(State {
                decoder: Decoder::new(4096, 1 << 20),
                next_stream: 1,
                conn_window: 65_535,
                initial_window: 65_535,
                max_frame: 16_384,
                ..State::default()
            }),
            reading: Mutex::new(()),
            writing: Mutex::new(()),
            grown: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends the preface, our SETTINGS and the connection's grant, once.
    fn start(&self, wire: &mut dyn Wire) -> io::Result<()> {
        let mut st = self.lock();
        if st.started {
            return Ok(());
        }
        st.started = true;
        drop(st);
        wire.check_h2()?;
        let mut hello = PREFACE.to_vec();
        let mut settings = Vec::new();
        for (id, value) in [(0x2u16, 0u32), (0x4, GRANT)] {
            settings.extend_from_slice(&id.to_be_bytes());
            settings.extend_from_slice(&value.to_be_bytes());
        }
        frame(&mut hello, SETTINGS, 0, 0, &settings);
        frame(
            &mut hello,
            WINDOW_UPDATE,
            0,
            0,
            &(GRANT - 65_535).to_be_bytes(),
        );
        self.send(wire, &hello)
    }

    fn send(&self, wire: &mut dyn Wire, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let _w = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        wire.write_all(bytes)
    }

    /// Reads HTTP/1.1 bytes of the answers: `Ok(0)` once what the case reads has ended.
    pub(crate) fn read(&self, wire: &mut dyn Wire, buf: &mut [u8]) -> io::Result<usize> {
        self.start(wire)?;
        loop {
            {
                let mut st = self.lock();
                if !st.out.is_empty() {
                    let n = buf.len().min(st.out.len());
                    buf[..n].copy_from_slice(&st.out[..n]);
                    st.out.drain(..n);
                    return Ok(n);
                }
                if let Some(e) = &st.error {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e.clone()));
                }
                if st.ended && !st.shut && !st.eof {
                    // The case's connection ends here: so does the HTTP/2 one.
                    st.shut = true;
                    drop(st);
                    let mut bye = Vec::new();
                    frame(&mut bye, GOAWAY, 0, 0, &[0; 8]);
                    let _ = self.send(wire, &bye);
                    wire.shut();
                    return Ok(0);
                }
                if st.ended || st.eof {
                    return Ok(0);
                }
            }
            let _r = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
            if !self.lock().out.is_empty() {
                continue;
            }
            self.fetch(wire)?;
        }
    }

    /// Reads the wire once (the caller holds `reading`) and takes in what came.
    fn fetch(&self, wire: &mut dyn Wire) -> io::Result<()> {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = match wire.read(&mut chunk) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => 0,
            r => r?,
        };
        let control = {
            let mut st = self.lock();
            if n == 0 {
                st.eof = true;
                st.pump();
            } else {
                st.raw.extend_from_slice(&chunk[..n]);
                st.take_frames();
            }
            std::mem::take(&mut st.control)
        };
        self.grown.notify_all();
        self.send(wire, &control)
    }

    /// Takes HTTP/1.1 request bytes from the case and sends what they make, waiting for
    /// the server's windows when a body needs them (up to `limit`).
    pub(crate) fn write(
        &self,
        wire: &mut dyn Wire,
        bytes: &[u8],
        limit: Duration,
    ) -> io::Result<()> {
        self.start(wire)?;
        let deadline = Instant::now() + limit;
        self.lock().pending.extend_from_slice(bytes);
        loop {
            let (frames, blocked) = {
                let mut st = self.lock();
                let mut frames = std::mem::take(&mut st.control);
                let blocked = st.translate(&mut frames)?;
                (frames, blocked)
            };
            self.send(wire, &frames)?;
            if !blocked {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "h2: the server's window stayed closed",
                ));
            }
            // Wait for a WINDOW_UPDATE: read the wire, unless another thread is.
            match self.reading.try_lock() {
                Ok(_r) => self.fetch(wire)?,
                Err(_) => {
                    let st = self.lock();
                    let _ = self
                        .grown
                        .wait_timeout(st, Duration::from_millis(20))
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
            if self.lock().eof {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
        }
    }

    /// The case will not send the rest of the body in progress (after an answer that
    /// refused it, as an HTTP/1.1 client would close instead): its stream is cancelled,
    /// and the next bytes are a new request.
    pub(crate) fn abandon_body(&self, wire: &mut dyn Wire) -> io::Result<()> {
        let mut frames = Vec::new();
        if let Some(body) = self.lock().body.take() {
            frame(&mut frames, RST_STREAM, 0, body.stream, &8u32.to_be_bytes());
        }
        self.send(wire, &frames)
    }

    /// The case finished writing: a body still open ends here (short, as it is).
    pub(crate) fn finish(&self, wire: &mut dyn Wire) -> io::Result<()> {
        let mut frames = Vec::new();
        {
            let mut st = self.lock();
            if let Some(body) = st.body.take() {
                frame(&mut frames, DATA, END_STREAM, body.stream, &[]);
            }
        }
        self.send(wire, &frames)
    }
}

/// Appends one frame.
fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// An HPACK literal without indexing, new name, no Huffman coding.
fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    for s in [name, value] {
        let mut len = s.len();
        if len < 127 {
            out.push(len as u8);
        } else {
            out.push(127);
            len -= 127;
            while len >= 128 {
                out.push((len % 128) as u8 | 0x80);
                len /= 128;
            }
            out.push(len as u8);
        }
        out.extend_from_slice(s);
    }
}

/// The fields HTTP/2 forbids (RFC 9113 §8.2.2).
const CONNECTION_SPECIFIC: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

impl State {
    fn fail(&mut self, why: String) {
        if self.error.is_none() {
            self.error = Some(format!("h2: {why}"));
        }
    }

    // ---------------------------------------------------------------------------------
    // The server's frames
    // ---------------------------------------------------------------------------------

    fn take_frames(&mut self) {
        while self.raw.len() >= 9 {
            let len = u32::from_be_bytes([0, self.raw[0], self.raw[1], self.raw[2]]) as usize;
            if self.raw.len() < 9 + len {
                break;
            }
            let head: Vec<u8> = self.raw.drain(..9).collect();
            let payload: Vec<u8> = self.raw.drain(..len).collect();
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            self.on_frame(head[3], head[4], stream, payload);
        }
        self.pump();
    }

    fn on_frame(&mut self, kind: u8, flags: u8, stream: u32, payload: Vec<u8>) {
        if let Some((on, _, _)) = &self.block {
            if kind != CONTINUATION || stream != *on {
                return self.fail(format!(
                    "frame {kind} inside the header block of stream {on}"
                ));
            }
        }
        match kind {
            DATA => self.on_data(flags, stream, &payload),
            HEADERS => {
                let Some(mut block) = unpad(flags, &payload) else {
                    return self.fail("HEADERS padding".into());
                };
                if flags & PRIORITY != 0 {
                    block = block.get(5..).unwrap_or_default();
                }
                self.block = Some((stream, block.to_vec(), flags & END_STREAM != 0));
                if flags & END_HEADERS != 0 {
                    self.on_block();
                }
            }
            CONTINUATION => {
                let Some((_, block, _)) = self.block.as_mut() else {
                    return self.fail("CONTINUATION without HEADERS".into());
                };
                block.extend_from_slice(&payload);
                if flags & END_HEADERS != 0 {
                    self.on_block();
                }
            }
            RST_STREAM => {
                if let Some(a) = self.answers.get_mut(&stream) {
                    if !a.done {
                        a.reset = true;
                    }
                }
                self.stream_windows.remove(&stream);
            }
            SETTINGS if flags & ACK == 0 => {
                for p in payload.chunks_exact(6) {
                    let value = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
                    match u16::from_be_bytes([p[0], p[1]]) {
                        0x4 => {
                            let delta = value as i64 - self.initial_window;
                            self.initial_window = value as i64;
                            self.stream_windows.values_mut().for_each(|w| *w += delta);
                        }
                        0x5 => self.max_frame = value as usize,
                        _ => {}
                    }
                }
                frame(&mut self.control, SETTINGS, ACK, 0, &[]);
            }
            PING if flags & ACK == 0 => frame(&mut self.control, PING, ACK, 0, &payload),
            GOAWAY => {
                let last = payload
                    .get(..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff);
                self.goaway = Some(last.unwrap_or(0));
            }
            WINDOW_UPDATE => {
                let inc = payload.get(..4).map_or(0, |b| {
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff
                });
                if stream == 0 {
                    self.conn_window += inc as i64;
                } else if let Some(w) = self.stream_windows.get_mut(&stream) {
                    *w += inc as i64;
                }
            }
            _ => {}
        }
    }

    fn on_data(&mut self, flags: u8, stream: u32, payload: &[u8]) {
        let Some(data) = unpad(flags, payload) else {
            return self.fail("DATA padding".into());
        };
        self.unacked_conn += payload.len() as u64;
        if self.unacked_conn >= GRANT as u64 / 2 {
            frame(
                &mut self.control,
                WINDOW_UPDATE,
                0,
                0,
                &(self.unacked_conn as u32).to_be_bytes(),
            );
            self.unacked_conn = 0;
        }
        let Some(a) = self.answers.get_mut(&stream) else {
            return self.fail(format!("DATA on stream {stream}, which has no request"));
        };
        if !a.final_head || a.done {
            return self.fail(format!(
                "DATA on stream {stream} before its head or after its end"
            ));
        }
        a.got += data.len() as u64;
        a.unacked += payload.len() as u64;
        if a.unacked >= GRANT as u64 / 2 && flags & END_STREAM == 0 {
            frame(
                &mut self.control,
                WINDOW_UPDATE,
                0,
                stream,
                &(a.unacked as u32).to_be_bytes(),
            );
            a.unacked = 0;
        }
        if a.head_request && !data.is_empty() {
            return self.fail(format!("DATA in the answer to HEAD on stream {stream}"));
        }
        if a.chunked && !data.is_empty() {
            a.bytes
                .extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            a.bytes.extend_from_slice(data);
            a.bytes.extend_from_slice(b"\r\n");
        } else if !a.head_request {
            a.bytes.extend_from_slice(data);
        }
        if flags & END_STREAM != 0 {
            self.end_stream(stream);
        }
    }

    fn end_stream(&mut self, stream: u32) {
        let Some(a) = self.answers.get_mut(&stream) else {
            return;
        };
        a.done = true;
        if a.chunked {
            a.bytes.extend_from_slice(b"0\r\n\r\n");
        }
        let wrong = match a.declared {
            Some(n) if !a.head_request && n != a.got => Some(n),
            _ => None,
        };
        let got = a.got;
        self.stream_windows.remove(&stream);
        if let Some(n) = wrong {
            self.fail(format!(
                "stream {stream}: content-length {n}, but DATA carried {got}"
            ));
        }
    }

    /// A complete header block: an interim head, the final head, or trailers.
    fn on_block(&mut self) {
        let Some((stream, block, end)) = self.block.take() else {
            return;
        };
        let fields = match self.decoder.decode(&block) {
            Ok(f) => f,
            Err(e) => return self.fail(format!("HPACK: {e:?}")),
        };
        let Some(a) = self.answers.get_mut(&stream) else {
            return self.fail(format!("HEADERS on stream {stream}, which has no request"));
        };
        if a.final_head {
            // Trailers: only END_STREAM matters, and they carry no pseudo-field.
            if fields.iter().any(|(n, _)| n.starts_with(b":")) || !end {
                return self.fail(format!("a second head on stream {stream}"));
            }
            return self.end_stream(stream);
        }
        let mut status = None;
        let mut lines = Vec::new();
        for (i, (name, value)) in fields.iter().enumerate() {
            let n = String::from_utf8_lossy(name).into_owned();
            if n == ":status" && i == 0 {
                status = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse::<u16>().ok());
                continue;
            }
            if n.starts_with(':') {
                return self.fail(format!("pseudo-field {n} in an answer (stream {stream})"));
            }
            if n.bytes().any(|b| b.is_ascii_uppercase()) {
                return self.fail(format!("uppercase field name {n:?}"));
            }
            if CONNECTION_SPECIFIC.contains(&n.as_str()) {
                return self.fail(format!("connection-specific field {n} (RFC 9113 §8.2.2)"));
            }
            lines.push((n, value.clone()));
        }
        let Some(status) = status else {
            return self.fail(format!("no :status first on stream {stream}"));
        };
        let mut head = format!(
            "HTTP/1.1 {status} {}\r\n",
            protocol::response::reason_phrase(status)
        )
        .into_bytes();
        for (n, v) in &lines {
            head.extend_from_slice(n.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(v);
            head.extend_from_slice(b"\r\n");
        }
        if (100..200).contains(&status) {
            head.extend_from_slice(b"\r\n");
            a.bytes.extend_from_slice(&head);
            return;
        }
        a.final_head = true;
        let declared: Vec<_> = lines
            .iter()
            .filter(|(n, _)| n == "content-length")
            .collect();
        a.declared = declared
            .first()
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok());
        let bodiless = a.head_request || status == 204 || status == 304;
        if declared.is_empty() && !bodiless {
            a.chunked = true;
            head.extend_from_slice(b"transfer-encoding: chunked\r\n");
        }
        if a.close_after {
            // The gateway's own hop: the case's connection ends after this answer.
            head.extend_from_slice(b"connection: close\r\n");
        }
        head.extend_from_slice(b"\r\n");
        a.bytes.extend_from_slice(&head);
        if end {
            self.end_stream(stream);
        }
    }

    /// Moves the answers that are next in request order to what the case reads.
    fn pump(&mut self) {
        while let Some(&front) = self.order.front() {
            let beyond_goaway = self.goaway.is_some_and(|last| front > last);
            let Some(a) = self.answers.get_mut(&front) else {
                break;
            };
            self.out.append(&mut a.bytes);
            if a.done {
                let close = a.close_after;
                self.order.pop_front();
                self.answers.remove(&front);
                if close {
                    self.ended = true;
                    return;
                }
            } else if a.reset || beyond_goaway || (self.eof && !a.final_head) {
                self.ended = true;
                return;
            } else {
                break;
            }
        }
    }
}

/// Strips the padding of a DATA or HEADERS payload.
fn unpad(flags: u8, payload: &[u8]) -> Option<&[u8]> {
    if flags & PADDED == 0 {
        return Some(payload);
    }
    let pad = *payload.first()? as usize;
    payload.get(1..payload.len().checked_sub(pad)?)
}
