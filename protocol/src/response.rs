//! Response heads and short error pages. Heads are written straight into a byte buffer
//! (no intermediate strings); the `Date` value is formatted once per second.

use std::time::{Duration, UNIX_EPOCH};

/// The reason phrase for the statuses this server sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

/// The methods every `Allow` header lists.
pub const ALLOW: &str = "GET, HEAD, POST, OPTIONS";
/// The methods of a path that some `--auth` rule lets be written.
pub const ALLOW_WRITABLE: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";

/// The `Date` header value, reformatted only when the second changes.
#[derive(Clone, Debug, Default)]
pub struct DateCache {
    secs: u64,
    text: String,
}

impl DateCache {
    /// The IMF-fixdate for `unix_secs`.
    pub fn get(&mut self, unix_secs: u64) -> &str {
        if self.text.is_empty() || self.secs != unix_secs {
            self.secs = unix_secs;
            self.text = http_date(unix_secs);
        }
        &self.text
    }
}

/// `unix_secs` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(unix_secs: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(unix_secs.min(MAX_HTTP_DATE)))
}

/// The last second an IMF-fixdate can show (9999-12-31T23:59:59Z); httpdate panics past
/// it, so a later time (a file's mtime can be anything) is shown as this one.
pub const MAX_HTTP_DATE: u64 = 253_402_300_799;

/// Appends `unix_secs` as an IMF-fixdate, without an intermediate string.
pub fn write_http_date(out: &mut String, unix_secs: u64) {
    use std::fmt::Write;
    let date =
        httpdate::HttpDate::from(UNIX_EPOCH + Duration::from_secs(unix_secs.min(MAX_HTTP_DATE)));
    let _ = write!(out, "{date}");
}

/// Parses an HTTP date (any of the three RFC 9110 §5.6.7 forms) to Unix seconds.
pub fn parse_http_date(text: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(text).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// Writes a response head into a buffer, field by field.
pub struct HeadWriter<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> HeadWriter<'a> {
    /// Starts `HTTP/1.1 STATUS REASON` with `Server` and `Date`.
    pub fn new(buf: &'a mut Vec<u8>, status: u16, server: &str, date: &str) -> Self {
        buf.extend_from_slice(b"HTTP/1.1 ");
        push_u64(buf, u64::from(status));
        buf.push(b' ');
        buf.extend_from_slice(reason_phrase(status).as_bytes());
        let mut w = HeadWriter { buf };
        w.field("Server", server);
        w.field("Date", date);
        w
    }

    /// One `Name: value` field.
    pub fn field(&mut self, name: &str, value: &str) -> &mut Self {
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(value.as_bytes());
        self
    }

    /// One field with a number as its value.
    pub fn number(&mut self, name: &str, value: u64) -> &mut Self {
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        push_u64(self.buf, value);
        self
    }

    /// `Keep-Alive: timeout=T, max=M`.
    pub fn keep_alive(&mut self, timeout: u64, max: u64) -> &mut Self {
        self.buf.extend_from_slice(b"\r\nKeep-Alive: timeout=");
        push_u64(self.buf, timeout);
        self.buf.extend_from_slice(b", max=");
        push_u64(self.buf, max);
        self
    }

    /// Ends the head (the blank line).
    pub fn finish(self) {
        self.buf.extend_from_slice(b"\r\n\r\n");
    }
}

/// Appends the decimal digits of `n`.
pub fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// Writes a whole error answer into `buf`: the head (`Content-Type`, `Content-Length`,
/// then whatever `fields` adds, such as `Connection`), and the short HTML page unless the
/// request was `HEAD`. Every error the server sends, on a connection or from the accept
/// loop, is written here.
pub fn write_error(
    buf: &mut Vec<u8>,
    server: &str,
    date: &str,
    status: u16,
    reason: &str,
    head_only: bool,
    fields: impl FnOnce(&mut HeadWriter<'_>),
) -> u64 {
    let phrase = reason_phrase(status);
    let body = format!(
        "<!doctype html>\n<title>{status} {phrase}</title>\n<h1>{status} {phrase}</h1>\n<p>{}.</p>\n",
        escape_html(reason)
    );
    let mut w = HeadWriter::new(buf, status, server, date);
    w.field("Content-Type", "text/html; charset=utf-8")
        .number("Content-Length", body.len() as u64);
    fields(&mut w);
    w.finish();
    if !head_only {
        buf.extend_from_slice(body.as_bytes());
    }
    body.len() as u64
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The whole `503` answer a runtime sends when it cannot take a connection.
pub fn overload_response(unix_secs: u64, server: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(512);
    let date = http_date(unix_secs);
    let reason = "the server is busy, try again in a second";
    write_error(&mut buf, server, &date, 503, reason, false, |w| {
        w.field("Retry-After", "1").field("Connection", "close");
    });
    buf
}
