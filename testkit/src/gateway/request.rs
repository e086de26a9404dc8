//! The case's side of the gateway: HTTP/1.1 request bytes into HEADERS and DATA frames
//! (see the [module](super)).

use std::io;

use super::{
    frame, literal, Answer, State, CONNECTION_SPECIFIC, CONTINUATION, DATA, END_HEADERS,
    END_STREAM, HEADERS,
};

/// The body of the request being sent.
pub(super) struct Body {
    pub(super) stream: u32,
    size: Sizing,
}

enum Sizing {
    Length(u64),
    Chunked(Chunks),
}

/// Where a chunked body's decoding stands.
enum Chunks {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
}

impl State {
    // ---------------------------------------------------------------------------------

    /// Turns the pending request bytes into frames; true when a body waits for a window.
    pub(super) fn translate(&mut self, frames: &mut Vec<u8>) -> io::Result<bool> {
        loop {
            if let Some(body) = self.body.take() {
                let (body, blocked) = self.send_body(body, frames);
                self.body = body;
                if blocked || self.body.is_some() {
                    return Ok(blocked);
                }
                continue;
            }
            if self.pending.is_empty() {
                return Ok(false);
            }
            let mut fields = [httparse::EMPTY_HEADER; 128];
            let mut req = httparse::Request::new(&mut fields);
            let used = match req.parse(&self.pending) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => return Ok(false),
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("h2 gateway: not an HTTP/1.1 request it can carry: {e}"),
                    ))
                }
            };
            let (block, close, size, head) = self.request_block(&req)?;
            self.pending.drain(..used);
            let stream = self.next_stream;
            self.next_stream += 2;
            let size = size.filter(|s| !matches!(s, Sizing::Length(0)));
            let flags = END_HEADERS | if size.is_none() { END_STREAM } else { 0 };
            self.header_frames(frames, stream, flags, &block);
            self.answers.insert(
                stream,
                Answer {
                    head_request: head,
                    close_after: close,
                    ..Answer::default()
                },
            );
            self.order.push_back(stream);
            if let Some(size) = size {
                self.stream_windows.insert(stream, self.initial_window);
                self.body = Some(Body { stream, size });
            }
        }
    }

    fn header_frames(&self, frames: &mut Vec<u8>, stream: u32, flags: u8, block: &[u8]) {
        let mut parts = block.chunks(self.max_frame.max(1)).peekable();
        let first = parts.next().unwrap_or_default();
        let more = parts.peek().is_some();
        let end_headers = if more { 0 } else { END_HEADERS };
        frame(
            frames,
            HEADERS,
            (flags & !END_HEADERS) | end_headers,
            stream,
            first,
        );
        while let Some(part) = parts.next() {
            let last = parts.peek().is_none();
            frame(
                frames,
                CONTINUATION,
                if last { END_HEADERS } else { 0 },
                stream,
                part,
            );
        }
    }

    /// The header block of a request, whether the case's connection ends after it, how
    /// its body is sized, and whether it is HEAD.
    #[allow(clippy::type_complexity)]
    fn request_block(
        &self,
        req: &httparse::Request,
    ) -> io::Result<(Vec<u8>, bool, Option<Sizing>, bool)> {
        let method = req.method.unwrap_or("GET");
        let target = req.path.unwrap_or("/");
        let http10 = req.version == Some(0);
        let value = |name: &str| {
            req.headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
                .collect::<Vec<_>>()
        };
        let connection = value("connection").join(",");
        let options: Vec<&str> = connection.split(',').map(str::trim).collect();
        let close = options.contains(&"close") || (http10 && !options.contains(&"keep-alive"));
        let te = value("transfer-encoding");
        let lengths = value("content-length");
        if !te.is_empty() && !lengths.is_empty() || lengths.len() > 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "h2 gateway: a request framed twice has no HTTP/2 form",
            ));
        }
        let size = if te.iter().any(|t| t.contains("chunked")) {
            Some(Sizing::Chunked(Chunks::Size))
        } else if let Some(n) = lengths.first() {
            let n = n.trim().parse().map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "h2 gateway: Content-Length")
            })?;
            Some(Sizing::Length(n))
        } else {
            None
        };
        let (mut authority, mut path) = (None, target.to_string());
        if let Some(rest) = target
            .strip_prefix("http://")
            .or_else(|| target.strip_prefix("https://"))
        {
            let at = rest.find('/').unwrap_or(rest.len());
            authority = Some(rest[..at].to_string());
            path = if at == rest.len() {
                "/".into()
            } else {
                rest[at..].into()
            };
        }
        // One Host becomes :authority, as browsers send it; none or several go on as
        // `host` fields, as they came (RFC 9113 §8.3.1: no authority is invented).
        let hosts: Vec<_> = (req.headers.iter())
            .filter(|h| h.name.eq_ignore_ascii_case("host"))
            .collect();
        // An absolute target's authority replaces any Host (RFC 9112 §3.2.2).
        let absolute = authority.is_some();
        let host_as_authority = !absolute && hosts.len() == 1;
        if host_as_authority {
            authority = Some(String::from_utf8_lossy(hosts[0].value).into_owned());
        }
        let mut block = Vec::new();
        literal(&mut block, b":method", method.as_bytes());
        if method == "CONNECT" {
            // RFC 9113 §8.5: :method and :authority only.
            literal(&mut block, b":authority", target.as_bytes());
        } else {
            literal(&mut block, b":scheme", b"https");
            if let Some(a) = &authority {
                literal(&mut block, b":authority", a.as_bytes());
            }
            literal(&mut block, b":path", path.as_bytes());
        }
        for h in req.headers.iter() {
            let name = h.name.to_ascii_lowercase();
            let hop = CONNECTION_SPECIFIC.contains(&name.as_str())
                || (name == "host" && (absolute || host_as_authority || method == "CONNECT"))
                || options.contains(&name.as_str())
                || (name == "te" && !h.value.eq_ignore_ascii_case(b"trailers"));
            if !hop {
                literal(&mut block, name.as_bytes(), h.value);
            }
        }
        Ok((block, close, size, method == "HEAD"))
    }

    /// Sends what the pending bytes hold of `body`; the body back while it is not all
    /// sent, and whether the windows stopped it.
    fn send_body(&mut self, mut body: Body, frames: &mut Vec<u8>) -> (Option<Body>, bool) {
        loop {
            // How many pending bytes are body data now, and how many framing to skip.
            let (avail, ended) = match &mut body.size {
                Sizing::Length(left) => {
                    ((*left).min(self.pending.len() as u64) as usize, *left == 0)
                }
                Sizing::Chunked(c) => match c {
                    Chunks::Size | Chunks::Trailer => {
                        let Some(at) = self.pending.windows(2).position(|w| w == b"\r\n") else {
                            return (Some(body), false);
                        };
                        let line = String::from_utf8_lossy(&self.pending[..at]).into_owned();
                        self.pending.drain(..at + 2);
                        if matches!(c, Chunks::Trailer) {
                            if line.is_empty() {
                                (0, true)
                            } else {
                                continue;
                            }
                        } else {
                            let hex = line.split(';').next().unwrap_or("").trim();
                            let n = u64::from_str_radix(hex, 16).unwrap_or(0);
                            *c = if n == 0 {
                                Chunks::Trailer
                            } else {
                                Chunks::Data(n)
                            };
                            continue;
                        }
                    }
                    Chunks::Data(left) => ((*left).min(self.pending.len() as u64) as usize, false),
                    Chunks::DataEnd => {
                        if self.pending.len() < 2 {
                            return (Some(body), false);
                        }
                        self.pending.drain(..2);
                        *c = Chunks::Size;
                        continue;
                    }
                },
            };
            if ended {
                frame(frames, DATA, END_STREAM, body.stream, &[]);
                self.stream_windows.remove(&body.stream);
                return (None, false);
            }
            if avail == 0 {
                return (Some(body), false);
            }
            let window = self.stream_windows.get(&body.stream).copied().unwrap_or(0);
            let n = (avail as i64)
                .min(window)
                .min(self.conn_window)
                .min(self.max_frame as i64);
            if n <= 0 {
                return (Some(body), true);
            }
            let n = n as usize;
            let data: Vec<u8> = self.pending.drain(..n).collect();
            self.conn_window -= n as i64;
            if let Some(w) = self.stream_windows.get_mut(&body.stream) {
                *w -= n as i64;
            }
            let last = match &mut body.size {
                Sizing::Length(left) => {
                    *left -= n as u64;
                    *left == 0
                }
                Sizing::Chunked(c) => {
                    if let Chunks::Data(left) = c {
                        *left -= n as u64;
                        if *left == 0 {
                            *c = Chunks::DataEnd;
                        }
                    }
                    false
                }
            };
            frame(
                frames,
                DATA,
                if last { END_STREAM } else { 0 },
                body.stream,
                &data,
            );
            if last {
                self.stream_windows.remove(&body.stream);
                return (None, false);
            }
        }
    }
}
