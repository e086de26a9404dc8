//! The one parser of HTTP/1.1 responses: the server's under test, and chromedriver's.

use std::io::Read;

use crate::find;

/// A parsed response.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the response says the connection closes.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// Asserts the status, with the response in the message.
    #[track_caller]
    pub fn expect_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "status; headers {:?}, body {:?}",
            self.headers,
            self.text()
        );
        self
    }

    /// Asserts a header value.
    #[track_caller]
    pub fn expect_header(&self, name: &str, value: &str) -> &Self {
        assert_eq!(
            self.header(name),
            Some(value),
            "header {name}; status {}, headers {:?}",
            self.status,
            self.headers
        );
        self
    }

    /// The head at the start of `bytes`, once it is complete (up to the empty line):
    /// the response with an empty body, and the length of the head. `Ok(None)` while
    /// the head is incomplete.
    pub fn parse_head(bytes: &[u8]) -> Result<Option<(Response, usize)>, String> {
        let Some(end) = find(bytes, b"\r\n\r\n") else {
            return Ok(None);
        };
        let head_text = std::str::from_utf8(&bytes[..end])
            .map_err(|_| "response head is not UTF-8".to_string())?;
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_string();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut headers = Vec::new();
        for line in lines {
            let (n, v) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?}"))?;
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let resp = Response {
            status,
            version,
            headers,
            body: Vec::new(),
        };
        Ok(Some((resp, end + 4)))
    }

    /// The status code of the response head at the start of `bytes`, once the head is
    /// complete (for raw reads that only watch for an answer).
    pub fn status_in(bytes: &[u8]) -> Option<u16> {
        Response::parse_head(bytes)
            .ok()
            .flatten()
            .map(|(r, _)| r.status)
    }

    /// One whole response at the start of `bytes`, and how many bytes it takes.
    ///
    /// The body is framed as HTTP/1.1 says: none after a HEAD request (`head_only`), a
    /// 1xx, a 204 or a 304; chunks with `Transfer-Encoding: chunked` (the body is the
    /// decoded chunks); `Content-Length` bytes; otherwise everything up to the end of
    /// the stream. `Ok(None)` means more bytes are needed; `at_end` says none will come
    /// (the stream ended), which ends a close-delimited body and makes anything
    /// incomplete an error.
    pub fn parse(
        bytes: &[u8],
        head_only: bool,
        at_end: bool,
    ) -> Result<Option<(Response, usize)>, String> {
        let Some((mut resp, at)) = Response::parse_head(bytes)? else {
            return if at_end {
                Err(format!(
                    "connection closed after {} bytes of head",
                    bytes.len()
                ))
            } else {
                Ok(None)
            };
        };
        let rest = &bytes[at..];
        let no_body =
            head_only || resp.status / 100 == 1 || resp.status == 204 || resp.status == 304;
        if no_body {
            return Ok(Some((resp, at)));
        }
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            return match chunked_body(rest) {
                Some((body, used)) => {
                    resp.body = body;
                    Ok(Some((resp, at + used)))
                }
                None if at_end => Err(format!("chunked body cut after {} bytes", rest.len())),
                None => Ok(None),
            };
        }
        if let Some(len) = resp.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| format!("bad Content-Length {len:?}"))?;
            if rest.len() >= len {
                resp.body = rest[..len].to_vec();
                Ok(Some((resp, at + len)))
            } else if at_end {
                Err(format!("body cut at {} of {len} bytes", rest.len()))
            } else {
                Ok(None)
            }
        } else if at_end {
            resp.body = rest.to_vec();
            Ok(Some((resp, bytes.len())))
        } else {
            Ok(None)
        }
    }

    /// The response at the start of `bytes`, all that a stream carried before it ended
    /// (not a HEAD's).
    pub fn from_bytes(bytes: &[u8]) -> Result<Response, String> {
        let (resp, _) = Response::parse(bytes, false, true)?.ok_or("no response")?;
        Ok(resp)
    }

    /// Reads one response from `stream`. `buf` holds bytes already read and keeps any
    /// that follow the response (pipelining). A reset counts as the end of the stream.
    pub fn read_from(
        stream: &mut impl Read,
        buf: &mut Vec<u8>,
        head_only: bool,
    ) -> Result<Response, String> {
        loop {
            if let Some((resp, used)) = Response::parse(buf, head_only, false)? {
                buf.drain(..used);
                return Ok(resp);
            }
            let mut chunk = [0u8; 65536];
            let n = match stream.read(&mut chunk) {
                Ok(n) => n,
                // A signal to the test process (seen in CI): read again.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
                Err(e) => return Err(format!("read failed: {e}")),
            };
            if n == 0 {
                let (resp, used) = Response::parse(buf, head_only, true)?
                    .ok_or("the stream ended inside a response")?;
                buf.drain(..used);
                return Ok(resp);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The decoded body of a complete chunked body at the start of `data` (chunk extensions
/// and trailers skipped), or `None` while it is incomplete or malformed.
pub fn dechunk(data: &[u8]) -> Option<Vec<u8>> {
    chunked_body(data).map(|(body, _)| body)
}

/// The decoded chunks and how many bytes of `data` they take, up to the end of the
/// trailer section.
fn chunked_body(mut data: &[u8]) -> Option<(Vec<u8>, usize)> {
    let total = data.len();
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            // Trailer fields, then the empty line.
            loop {
                let line_end = find(data, b"\r\n")?;
                data = &data[line_end + 2..];
                if line_end == 0 {
                    return Some((out, total - data.len()));
                }
            }
        }
        out.extend_from_slice(data.get(..size)?);
        if data.get(size..size + 2)? != b"\r\n" {
            return None;
        }
        data = &data[size + 2..];
    }
}
