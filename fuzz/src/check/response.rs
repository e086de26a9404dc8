//! A final response: its head (parsed with httparse: version, status, reason, one `Date`
//! of the input's time, one `Server`, `Transfer-Encoding` only for a streamed
//! compressed 200, `Connection` and
//! `Keep-Alive` counting down), which request it answers, and its body (inline, none,
//! or the `SendFile` after it).

use std::time::{Duration, UNIX_EPOCH};

use super::{Checker, Ctx};
use crate::shadow::Shadow;
use crate::IDLE_TIMEOUT_MS;

/// The parts of a response head the checker looks at.
#[derive(Debug)]
pub(super) struct Head {
    pub status: u16,
    pub head_len: usize,
    pub content_length: Option<u64>,
    pub closing: bool,
    pub content_range: Option<String>,
    pub content_type: Option<String>,
    /// `Transfer-Encoding: chunked` (a streamed compressed answer).
    pub chunked: bool,
    /// Every `Location` field.
    pub locations: Vec<String>,
}

/// The `Date` value for `unix_secs`, formatted independently of the core.
pub fn http_date(unix_secs: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(unix_secs))
}

impl Checker {
    /// Checks one final response (and the `SendFile` after it).
    pub(super) fn response(
        &mut self,
        bytes: &[u8],
        sendfile: Option<(u64, u64)>,
        ctx: &Ctx<'_, '_>,
    ) -> Head {
        let index = self.count_final();
        let shadow = ctx.shadow;
        let head = parse_response(bytes, self.max_requests - self.finals, &ctx.date);
        if self.finals == self.max_requests {
            assert!(head.closing, "the last allowed response does not close");
        }
        answers_a_request(index, &head, shadow);
        let req = shadow.requests.get(index);
        let inline = &bytes[head.head_len..];
        let status = head.status;
        if status == 301 {
            self.check_redirect(&head, req);
        } else if status != 201 {
            // Only a redirect and a created upload say where to go.
            assert!(head.locations.is_empty(), "a {status} with Location");
        }
        if let Some(listing) = ctx.listing.filter(|_| status == 200) {
            let req = req.expect("a listing for a request never sent");
            assert!(sendfile.is_none(), "a listing with SendFile");
            let cl = head
                .content_length
                .expect("a listing without Content-Length");
            let ct = head
                .content_type
                .as_deref()
                .expect("a listing without Content-Type");
            super::check_listing(&self.last_list, req, ct, cl, inline, listing);
        }
        // A HEAD request, or bytes refused before their head parsed that start `HEAD `.
        let is_head = match req {
            Some(r) => r.is_head,
            None => shadow.unparsed_is_head(),
        };
        check_body(&head, inline, sendfile, is_head, req.is_some());
        head
    }

    /// Counts a final response (never more than `max_requests`); returns its index.
    fn count_final(&mut self) -> usize {
        self.finals += 1;
        assert!(
            self.finals <= self.max_requests,
            "more responses ({}) than max_requests ({})",
            self.finals,
            self.max_requests
        );
        self.finals as usize - 1
    }
}

/// Which request response `index` answers: a keep-alive answer needs a complete
/// request; a closing one may answer a head whose body never came, or bytes that never
/// became a head (408, 400, 431, ...), but only once.
fn answers_a_request(index: usize, head: &Head, shadow: &Shadow) {
    if head.closing {
        assert!(
            index <= shadow.requests.len(),
            "response {} but only {} request heads sent",
            index + 1,
            shadow.requests.len()
        );
    } else {
        assert!(
            index < shadow.complete,
            "keep-alive response {} but only {} complete requests sent",
            index + 1,
            shadow.complete
        );
    }
}

/// The bytes after the head: none for 204 and 304 (and no `Content-Length` on 204);
/// else a `Content-Length`, and none and a `SendFile` of that length (for a request
/// that is not `HEAD`), or none for a `HEAD`, or exactly that many bytes inline.
fn check_body(
    head: &Head,
    inline: &[u8],
    sendfile: Option<(u64, u64)>,
    is_head: bool,
    has_request: bool,
) {
    let status = head.status;
    if status == 204 || status == 304 {
        assert!(inline.is_empty(), "a {status} with a body");
        assert!(sendfile.is_none(), "a {status} with SendFile");
        if status == 204 {
            assert!(head.content_length.is_none(), "a 204 with Content-Length");
        }
        return;
    }
    if head.chunked {
        // Compressed as it is sent: the runtime frames what SendFile names.
        assert_eq!(status, 200, "a chunked {status}");
        assert!(inline.is_empty(), "inline body before a chunked SendFile");
        match sendfile {
            Some((offset, len)) => {
                assert!(has_request && !is_head, "SendFile for a HEAD");
                assert_eq!(offset, 0, "a chunked SendFile not from the start");
                assert!(len > 0, "SendFile of nothing");
            }
            None => assert!(is_head, "a chunked 200 to a GET without SendFile"),
        }
        return;
    }
    // An archive to HTTP/1.0: no length, the close ends it.
    if head.content_length.is_none()
        && head.closing
        && status == 200
        && head.content_type.as_deref() == Some("application/zip")
    {
        assert!(inline.is_empty(), "inline bytes before an archive");
        if let Some((offset, len)) = sendfile {
            assert!(has_request && !is_head, "SendFile for a HEAD");
            assert_eq!((offset, len), (0, u64::MAX), "an archive's SendFile");
        }
        return;
    }
    let cl = head
        .content_length
        .unwrap_or_else(|| panic!("a {status} without Content-Length"));
    if let Some((offset, len)) = sendfile {
        assert!(inline.is_empty(), "inline body before SendFile");
        assert_eq!(cl, len, "Content-Length differs from the SendFile length");
        assert!(len > 0, "SendFile of nothing");
        assert!(
            has_request && !is_head,
            "SendFile for a HEAD or for no request"
        );
        check_sendfile(head, offset, len);
    } else if is_head {
        assert!(inline.is_empty(), "a body in a response to HEAD");
    } else {
        assert_eq!(
            inline.len() as u64,
            cl,
            "inline body length differs from Content-Length (status {status})"
        );
    }
}

/// A `SendFile`: a 200 from offset 0, or a 206 whose `Content-Range` it matches.
fn check_sendfile(head: &Head, offset: u64, len: u64) {
    match head.status {
        200 => assert_eq!(offset, 0, "a 200 SendFile not from the start"),
        // The root's 404.html as the body of a 404.
        404 => assert_eq!(offset, 0, "a 404 page not from the start"),
        206 => {
            let range = head
                .content_range
                .as_deref()
                .expect("206 without Content-Range");
            let (a, b, total) = parse_content_range(range);
            assert_eq!(a, offset, "Content-Range start differs from SendFile");
            assert_eq!(
                b,
                offset + len - 1,
                "Content-Range end differs from SendFile"
            );
            assert!(b < total, "Content-Range past the file");
        }
        status => panic!("SendFile after a {status}"),
    }
}

/// Parses a final response head with httparse and checks its fields; `remaining` is
/// how many responses `Keep-Alive: max=` must announce.
fn parse_response(bytes: &[u8], remaining: u32, expected_date: &str) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "a Send that is not a whole response head ({other:?}): {:?}",
            String::from_utf8_lossy(bytes)
        ),
    };
    assert_eq!(resp.version, Some(1), "not HTTP/1.1");
    let status = resp.code.unwrap_or(0);
    assert!((200..600).contains(&status), "status {status}");
    assert!(
        resp.reason.is_some_and(|r| !r.is_empty()),
        "no reason phrase"
    );
    let fields = Fields::read(resp.headers, expected_date);
    let closing = match fields.connection.as_deref() {
        Some("close") => true,
        None | Some("keep-alive") => false,
        Some(other) => panic!("Connection: {other}"),
    };
    if closing {
        assert!(
            fields.keep_alive.is_none(),
            "Keep-Alive on a closing response"
        );
    } else {
        let ka = fields
            .keep_alive
            .expect("a keep-alive response without Keep-Alive");
        let expected = format!("timeout={}, max={remaining}", IDLE_TIMEOUT_MS / 1000);
        assert_eq!(ka, expected, "Keep-Alive does not count down");
    }
    Head {
        status,
        head_len,
        content_length: fields.content_length,
        closing,
        content_range: fields.content_range,
        content_type: fields.content_type,
        chunked: fields.chunked,
        locations: fields.locations,
    }
}

/// The header fields of a response the checker reads.
#[derive(Default)]
struct Fields {
    content_length: Option<u64>,
    connection: Option<String>,
    keep_alive: Option<String>,
    content_range: Option<String>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    chunked: bool,
    locations: Vec<String>,
}

impl Fields {
    /// Reads the fields: one `Date` (the input's time) and one `Server`, at most one
    /// `Content-Length` (digits only), `Connection` and `Content-Type`;
    /// `Transfer-Encoding` only `chunked`, only with a `Content-Encoding` and without a
    /// `Content-Length`.
    fn read(headers: &[httparse::Header<'_>], expected_date: &str) -> Fields {
        let mut f = Fields::default();
        let (mut date, mut server) = (0, 0);
        for h in headers {
            let value = std::str::from_utf8(h.value).expect("a header value that is not UTF-8");
            match h.name.to_ascii_lowercase().as_str() {
                "date" => {
                    date += 1;
                    assert_eq!(value, expected_date, "Date is not the time of the input");
                }
                "server" => server += 1,
                "content-length" => {
                    assert!(f.content_length.is_none(), "two Content-Length fields");
                    assert!(
                        !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
                        "Content-Length {value:?}"
                    );
                    f.content_length =
                        Some(value.parse::<u64>().expect("Content-Length overflows"));
                }
                "connection" => {
                    assert!(f.connection.is_none(), "two Connection fields");
                    f.connection = Some(value.to_string());
                }
                "keep-alive" => f.keep_alive = Some(value.to_string()),
                "content-range" => f.content_range = Some(value.to_string()),
                "content-type" => {
                    assert!(f.content_type.is_none(), "two Content-Type fields");
                    f.content_type = Some(value.to_string());
                }
                "location" => f.locations.push(value.to_string()),
                "content-encoding" => f.content_encoding = Some(value.to_string()),
                "transfer-encoding" => {
                    assert_eq!(value, "chunked", "Transfer-Encoding {value:?}");
                    assert!(!f.chunked, "two Transfer-Encoding fields");
                    f.chunked = true;
                }
                _ => {}
            }
        }
        if f.chunked {
            let zip = f.content_type.as_deref() == Some("application/zip");
            assert!(
                (f.content_encoding.is_some() || zip) && f.content_length.is_none(),
                "Transfer-Encoding on an answer that is neither compressed nor an archive"
            );
        }
        assert_eq!((date, server), (1, 1), "Date and Server must appear once");
        f
    }
}

/// `bytes A-B/TOTAL` → (A, B, TOTAL).
fn parse_content_range(v: &str) -> (u64, u64, u64) {
    let rest = v.strip_prefix("bytes ").expect("Content-Range unit");
    let (range, total) = rest.split_once('/').expect("Content-Range total");
    let (a, b) = range.split_once('-').expect("Content-Range range");
    let num = |s: &str| s.parse::<u64>().expect("Content-Range number");
    let (a, b, total) = (num(a), num(b), num(total));
    assert!(a <= b, "Content-Range {v}");
    (a, b, total)
}
