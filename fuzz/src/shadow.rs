//! The shadow request model: the same bytes the connection receives, walked request by
//! request with `parse_head` and the body framing, to count the request heads and the
//! complete requests the client has sent (how many answers are allowed), and to keep
//! what the checker compares answers with (method, target, `Accept`, `Expect`, body).

use protocol::framing::{ChunkedDecoder, Framing};
use protocol::parse::{parse_head, Method, Parsed};

/// What the shadow knows of one request head the client sent.
#[derive(Clone, Debug)]
pub struct ShadowRequest {
    pub is_head: bool,
    /// `GET` or `HEAD` (what may be a file, a redirect or a listing).
    pub is_get_or_head: bool,
    /// The request target, as sent.
    pub target: String,
    /// `Accept` prefers `application/json`, as the parser reports it.
    pub accept_json: bool,
    /// `Expect: 100-continue` as the parser reports it (never for HTTP/1.0).
    pub expect_continue: bool,
    /// A body follows the head (`Content-Length` above 0, or chunked).
    pub has_body: bool,
    /// The body bytes (decoded), up to `max_body + 1` of them.
    pub body: Vec<u8>,
}

/// Walks the same bytes the connection receives, request by request (head with
/// `parse_head`, body by its framing), to count the request heads and the complete
/// requests the client has sent. Stops at the first head the parser refuses.
pub struct Shadow {
    buf: Vec<u8>,
    pos: usize,
    body: ShadowBody,
    stopped: bool,
    max_body: u64,
    /// Every complete request head, in order.
    pub requests: Vec<ShadowRequest>,
    /// How many requests (head and body) are complete.
    pub complete: usize,
}

enum ShadowBody {
    None,
    Length(u64),
    Chunked(ChunkedDecoder),
}

impl Shadow {
    pub fn new(max_body: u64) -> Self {
        Shadow {
            buf: Vec::new(),
            pos: 0,
            body: ShadowBody::None,
            stopped: false,
            max_body,
            requests: Vec::new(),
            complete: 0,
        }
    }

    /// Between requests with nothing received after the last (or, with `empty_lines`,
    /// nothing but empty lines: idle time).
    pub fn idle(&self) -> bool {
        let rest = &self.buf[self.pos..];
        !self.stopped
            && matches!(self.body, ShadowBody::None)
            && rest.iter().all(|&b| b == b'\r' || b == b'\n')
    }

    /// The bytes received after the last whole request head (or body) the shadow read.
    pub fn unparsed(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// The bytes after the last whole request head start (after the empty lines the
    /// parser skips: CRLF pairs) a `HEAD`.
    pub fn unparsed_is_head(&self) -> bool {
        let mut rest = &self.buf[self.pos..];
        while let Some(r) = rest.strip_prefix(b"\r\n") {
            rest = r;
        }
        rest.starts_with(b"HEAD ")
    }

    /// Walks the bytes on from where the last call stopped.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.stopped {
            return;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            let read_on = match self.body {
                ShadowBody::None => self.read_head(),
                ShadowBody::Length(_) => self.read_length(),
                ShadowBody::Chunked(_) => self.read_chunked(),
            };
            if !read_on {
                break;
            }
        }
    }

    /// How many body bytes are kept per request: one past `max_body` shows it was over.
    fn keep(&self) -> usize {
        usize::try_from(self.max_body)
            .unwrap_or(usize::MAX)
            .saturating_add(1)
    }

    /// Reads the next request head, if it is all here; returns whether to read on.
    fn read_head(&mut self) -> bool {
        let head = match parse_head(&self.buf[self.pos..]) {
            Ok(Parsed::Partial) => return false,
            Err(_) => {
                self.stopped = true;
                return false;
            }
            Ok(Parsed::Complete(head, n)) => {
                self.pos += n;
                head
            }
        };
        self.requests.push(ShadowRequest {
            is_head: head.method == Method::Head,
            is_get_or_head: matches!(head.method, Method::Get | Method::Head),
            target: head.target.clone(),
            accept_json: head.accept_json,
            expect_continue: head.expect_continue,
            has_body: !matches!(head.framing, Framing::None | Framing::Length(0)),
            body: Vec::new(),
        });
        match head.framing {
            Framing::None | Framing::Length(0) => self.complete += 1,
            Framing::Length(n) if n > self.max_body => {
                // Refused at once (413) and closed.
                self.stopped = true;
                return false;
            }
            Framing::Length(n) => self.body = ShadowBody::Length(n),
            Framing::Chunked => self.body = ShadowBody::Chunked(ChunkedDecoder::default()),
        }
        true
    }

    /// Reads what is here of a `Content-Length` body; returns whether it is complete.
    fn read_length(&mut self) -> bool {
        let keep = self.keep();
        let ShadowBody::Length(remaining) = &mut self.body else {
            unreachable!("not in a Content-Length body");
        };
        let avail = &self.buf[self.pos..];
        let take = (avail.len() as u64).min(*remaining);
        let data = &avail[..take as usize];
        if let Some(req) = self.requests.last_mut() {
            let room = keep.saturating_sub(req.body.len());
            req.body.extend_from_slice(&data[..data.len().min(room)]);
        }
        *remaining -= take;
        self.pos += take as usize;
        if *remaining > 0 {
            return false;
        }
        self.complete += 1;
        self.body = ShadowBody::None;
        true
    }

    /// Decodes what is here of a chunked body; returns whether it is complete.
    fn read_chunked(&mut self) -> bool {
        let keep = self.keep();
        let ShadowBody::Chunked(dec) = &mut self.body else {
            unreachable!("not in a chunked body");
        };
        let mut body = self
            .requests
            .last_mut()
            .map(|r| std::mem::take(&mut r.body))
            .unwrap_or_default();
        let result = dec.decode(&self.buf[self.pos..], |data| {
            let room = keep.saturating_sub(body.len());
            body.extend_from_slice(&data[..data.len().min(room)]);
            Ok(())
        });
        if let Some(req) = self.requests.last_mut() {
            req.body = body;
        }
        match result {
            Err(_) => {
                self.stopped = true;
                false
            }
            Ok(used) => {
                self.pos += used;
                if !dec.is_done() {
                    return false;
                }
                self.complete += 1;
                self.body = ShadowBody::None;
                true
            }
        }
    }
}
