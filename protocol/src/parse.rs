//! The request head: httparse does the tokenizing; this module adds the limits and the
//! stricter rules of SPEC "Security" (no bare LF, no obsolete folding, no whitespace
//! before a colon, method length, 414/431, 505) and extracts the header fields the
//! server acts on, in one pass.

use crate::config::{MAX_HEAD, MAX_HEADERS, MAX_METHOD};
use crate::framing::{self, Framing};
use crate::syntax::{is_tchar, list, trim_ows};
use crate::Refusal;

/// The methods the server routes; every other token is [`Method::Other`] (405).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Other(String),
}

impl Method {
    fn from_token(t: &str) -> Method {
        match t {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_string()),
        }
    }

    /// The method token as sent.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other(s) => s,
        }
    }
}

/// A parsed request head with the header fields the server uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    /// The request target as sent (visible ASCII only).
    pub target: String,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor: u8,
    /// The one `Host` value, if there was exactly one.
    pub host: Option<Vec<u8>>,
    /// How many `Host` fields were sent.
    pub host_count: u32,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the client wants the connection kept open after this request.
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// The media type of `Content-Type` is `application/json`.
    pub content_type_json: bool,
    /// `Content-Type` as sent (a multipart body's boundary is in it).
    pub content_type: Option<String>,
    /// `If-Match` and `If-None-Match`: every field line joined into one list (RFC 9110
    /// §5.3). The single-valued fields below are `Some("")` (invalid, so ignored) when
    /// sent more than once.
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub if_unmodified_since: Option<String>,
    pub range: Option<String>,
    pub if_range: Option<String>,
    /// `Accept-Encoding` as sent (every field line joined), for on-the-fly compression.
    pub accept_encoding: Option<String>,
    /// `Accept` prefers `application/json` to `text/html` (a directory listing as JSON).
    pub accept_json: bool,
    /// `Accept` names `text/html` with a q-value above 0 (a browser asking for a page:
    /// `--spa`).
    pub accept_html: bool,
    /// `Authorization` (the last field sent).
    pub authorization: Option<String>,
    /// `Origin` (CORS), and a preflight's `Access-Control-Request-Method` and
    /// `-Headers`.
    pub origin: Option<String>,
    pub cors_method: Option<String>,
    pub cors_headers: Option<String>,
    /// `Referer` and `User-Agent` (the last field sent of each), for the access log: kept
    /// only when asked for ([`parse_head_for`]).
    pub referer: Option<String>,
    pub user_agent: Option<String>,
}

/// The outcome of looking at the start of the input buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not a whole head yet (and no limit crossed).
    Partial,
    /// A whole head of `len` bytes.
    Complete(Box<RequestHead>, usize),
}

/// Parses the request head at the start of `buf`.
///
/// Errors are refusals with the status of SPEC "Security"; all of them close the
/// connection, since the stream can no longer be trusted to be framed.
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the fuzz targets' entry
pub fn parse_head(buf: &[u8]) -> Result<Parsed, Refusal> {
    parse_head_for(buf, false)
}

/// [`parse_head`], also keeping `Referer` and `User-Agent` when `log_fields` (the
/// access log wants them; nothing else does, so they cost nothing otherwise).
pub fn parse_head_for(buf: &[u8], log_fields: bool) -> Result<Parsed, Refusal> {
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
    // The empty lines count towards the head limit: else an endless run of CRLFs would
    // stay Partial and be buffered without bound.
    let whole = buf;
    let skip = leading_empty_lines(buf);
    let buf = &buf[skip..];
    check_method_len(buf)?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    // Never look past the head limit, so that a head refused for its size gets the same
    // answer however it arrives (found by the split fuzz target).
    let window = &buf[..buf.len().min((MAX_HEAD + 1).saturating_sub(skip))];
    let status = match req.parse(window) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::close(431, "too many header fields"))
        }
        Err(httparse::Error::Version) => {
            return match version_refusal(window) {
                Some(r) => Err(r),
                None if whole.len() > MAX_HEAD => Err(oversize(whole)),
                None => Ok(Parsed::Partial),
            }
        }
        Err(_) => return Err(Refusal::close(400, "malformed request head")),
    };
    let len = match status {
        httparse::Status::Partial => {
            return if whole.len() > MAX_HEAD {
                Err(oversize(whole))
            } else {
                Ok(Parsed::Partial)
            }
        }
        httparse::Status::Complete(len) => len,
    };
    if skip + len > MAX_HEAD {
        return Err(oversize(whole));
    }
    // httparse accepts a bare LF as a line end (RFC 9112 §2.2 MAY); we do not, so that no
    // front-end that disagrees can be used to smuggle a request past us.
    if has_bare_lf(&buf[..len]) {
        return Err(Refusal::close(400, "bare LF in request head"));
    }
    let method = Method::from_token(req.method.unwrap_or(""));
    let target = req.path.unwrap_or("");
    if !target.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(Refusal::close(400, "invalid byte in request target"));
    }
    let minor = req.version.unwrap_or(1);
    let mut head = RequestHead {
        method,
        target: target.to_string(),
        minor,
        host: None,
        host_count: 0,
        framing: Framing::None,
        keep_alive: minor == 1,
        expect_continue: false,
        content_type_json: false,
        content_type: None,
        if_match: None,
        if_none_match: None,
        if_modified_since: None,
        if_unmodified_since: None,
        range: None,
        if_range: None,
        accept_encoding: None,
        accept_json: false,
        accept_html: false,
        authorization: None,
        origin: None,
        cors_method: None,
        cors_headers: None,
        referer: None,
        user_agent: None,
    };
    let mut lengths = framing::LengthFields::default();
    let mut media = AcceptMedia::default();
    let (mut saw_close, mut saw_keep_alive) = (false, false);
    for h in req.headers.iter() {
        let name = h.name;
        let value = trim_ows(h.value);
        if name.eq_ignore_ascii_case("host") {
            head.host_count += 1;
            head.host = Some(value.to_vec());
        } else if name.eq_ignore_ascii_case("content-length") {
            lengths.content_length(value)?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            lengths.transfer_encoding(value)?;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in list(value) {
                saw_close |= token.eq_ignore_ascii_case(b"close");
                saw_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if value.eq_ignore_ascii_case(b"100-continue") {
                // RFC 9110 §10.1.1: an HTTP/1.0 client cannot be sent a 1xx; ignore it.
                head.expect_continue = minor == 1;
            } else {
                return Err(Refusal::close(417, "unsupported expectation"));
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            let media = value.split(|&b| b == b';').next().unwrap_or(b"");
            head.content_type_json = trim_ows(media).eq_ignore_ascii_case(b"application/json");
            head.content_type = Some(String::from_utf8_lossy(value).into_owned());
        } else if name.eq_ignore_ascii_case("if-none-match") {
            join(&mut head.if_none_match, value);
        } else if name.eq_ignore_ascii_case("if-match") {
            join(&mut head.if_match, value);
        } else if name.eq_ignore_ascii_case("if-modified-since") {
            single(&mut head.if_modified_since, value);
        } else if name.eq_ignore_ascii_case("if-unmodified-since") {
            single(&mut head.if_unmodified_since, value);
        } else if name.eq_ignore_ascii_case("range") {
            single(&mut head.range, value);
        } else if name.eq_ignore_ascii_case("if-range") {
            single(&mut head.if_range, value);
        } else if name.eq_ignore_ascii_case("accept-encoding") {
            join(&mut head.accept_encoding, value);
        } else if name.eq_ignore_ascii_case("accept") {
            media.add(value);
        } else if name.eq_ignore_ascii_case("authorization") {
            head.authorization = Some(String::from_utf8_lossy(value).into_owned());
        } else if name.eq_ignore_ascii_case("origin") {
            single(&mut head.origin, value);
        } else if name.eq_ignore_ascii_case("access-control-request-method") {
            single(&mut head.cors_method, value);
        } else if name.eq_ignore_ascii_case("access-control-request-headers") {
            join(&mut head.cors_headers, value);
        } else if log_fields && name.eq_ignore_ascii_case("referer") {
            head.referer = Some(String::from_utf8_lossy(value).into_owned());
        } else if log_fields && name.eq_ignore_ascii_case("user-agent") {
            head.user_agent = Some(String::from_utf8_lossy(value).into_owned());
        }
    }
    head.accept_json = media.prefers_json();
    head.accept_html = media.html.is_some_and(|q| q > 0);
    head.framing = lengths.finish(minor)?;
    if head.host_count != 1 {
        head.host = None;
    }
    // HTTP/1.1 persists unless `close`; HTTP/1.0 only with `keep-alive`; `close` wins.
    head.keep_alive = !saw_close && (minor == 1 || saw_keep_alive);
    Ok(Parsed::Complete(Box::new(head), skip + len))
}

fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    while buf[i..].starts_with(b"\r\n") {
        i += 2;
    }
    i
}

/// A method token longer than [`MAX_METHOD`] is refused before anything else.
fn check_method_len(buf: &[u8]) -> Result<(), Refusal> {
    let scan = &buf[..buf.len().min(MAX_METHOD + 1)];
    match scan.iter().position(|&b| b == b' ') {
        Some(_) => Ok(()),
        // Only a run of token characters is a method that is too long; anything else is
        // malformed, as httparse says, whatever the segmentation (found by fuzzing).
        None if scan.len() > MAX_METHOD && scan.iter().all(|&b| is_tchar(b)) => {
            Err(Refusal::close(400, "method token too long"))
        }
        None => Ok(()),
    }
}

/// httparse says "Version" for anything after the target that is not HTTP/1.0 or 1.1.
/// RFC 9112 §2.3: `HTTP-version = "HTTP/" DIGIT "." DIGIT`. A well-formed version we do
/// not speak is 505; anything else (`HTTP/01.1`, `HTTP/1.10`, `HTTX/1.1`) is malformed,
/// 400. `None` while the bytes so far could still become either: the answer must not
/// depend on how the line arrives (the split fuzz target checks it).
fn version_refusal(buf: &[u8]) -> Option<Refusal> {
    const MALFORMED: Refusal = Refusal::close(400, "malformed request line");
    let line_end = buf.iter().position(|&b| b == b'\r' || b == b'\n');
    let line = &buf[..line_end.unwrap_or(buf.len())];
    // The version is the third field.
    let version = line.splitn(3, |&b| b == b' ').nth(2).unwrap_or(b"");
    let shape = b"HTTP/0.0";
    let fits = |(i, &b): (usize, &u8)| {
        if shape[i] == b'0' {
            b.is_ascii_digit()
        } else {
            b == shape[i]
        }
    };
    if version.len() > shape.len() || !version.iter().enumerate().all(fits) {
        return Some(MALFORMED);
    }
    match line_end {
        None => None,
        Some(_) if version.len() == shape.len() => {
            Some(Refusal::close(505, "HTTP version not supported"))
        }
        Some(_) => Some(MALFORMED),
    }
}

/// Over the head limit: 414 when the request line alone does not fit, else 431.
fn oversize(buf: &[u8]) -> Refusal {
    let line_end = buf.iter().take(MAX_HEAD + 1).position(|&b| b == b'\n');
    match line_end {
        None => Refusal::close(414, "request target too long"),
        Some(_) => Refusal::close(431, "request head too large"),
    }
}

fn has_bare_lf(head: &[u8]) -> bool {
    let mut prev = 0u8;
    for &b in head {
        if b == b'\n' && prev != b'\r' {
            return true;
        }
        prev = b;
    }
    false
}

/// Appends one field line of a list-valued field to what earlier lines gave.
fn join(field: &mut Option<String>, value: &[u8]) {
    let value = String::from_utf8_lossy(value);
    match field {
        Some(f) => {
            f.push_str(", ");
            f.push_str(&value);
        }
        None => *field = Some(value.into_owned()),
    }
}

/// A single-valued field: a second line makes it invalid (`Some("")`, ignored later).
fn single(field: &mut Option<String>, value: &[u8]) {
    *field = match field {
        Some(_) => Some(String::new()),
        None => Some(std::str::from_utf8(value).unwrap_or("").to_string()),
    };
}

/// What `Accept` says of the two forms of a directory listing: the q-value of
/// `application/json` and of `text/html` (a media range such as `text/*` or `*/*` does
/// not count: JSON only when asked for by name, and not less than HTML).
#[derive(Default)]
struct AcceptMedia {
    json: Option<u16>,
    html: Option<u16>,
}

impl AcceptMedia {
    fn add(&mut self, value: &[u8]) {
        for item in list(value) {
            let mut parts = item.split(|&b| b == b';');
            let range = trim_ows(parts.next().unwrap_or(b""));
            let q = parts
                .filter_map(|p| {
                    trim_ows(p)
                        .strip_prefix(b"q=")
                        .or_else(|| trim_ows(p).strip_prefix(b"Q="))
                })
                .map(qvalue)
                .next()
                .unwrap_or(1000);
            if range.eq_ignore_ascii_case(b"application/json") {
                self.json = Some(self.json.map_or(q, |old| old.max(q)));
            } else if range.eq_ignore_ascii_case(b"text/html") {
                self.html = Some(self.html.map_or(q, |old| old.max(q)));
            }
        }
    }

    fn prefers_json(&self) -> bool {
        match (self.json, self.html) {
            (Some(j), Some(h)) => j > 0 && j >= h,
            (Some(j), None) => j > 0,
            _ => false,
        }
    }
}

/// A q-value in thousandths (`0.5` → 500); malformed is 0.
fn qvalue(v: &[u8]) -> u16 {
    let text = std::str::from_utf8(v).unwrap_or("");
    match text.parse::<f32>() {
        Ok(q) if (0.0..=1.0).contains(&q) => (q * 1000.0).round() as u16,
        _ => 0,
    }
}
