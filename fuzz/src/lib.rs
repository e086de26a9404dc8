//! # protocol-fuzz — the harness shared by the fuzz targets
//!
//! Three targets (in `fuzz_targets/`) drive the sans-IO core:
//!
//! - `parse`: raw bytes into [`protocol::parse::parse_head`] ([`check_parse`]).
//! - `connection`: the input is decoded as a [`Script`] of events for one
//!   [`protocol::Connection`] ([`run_script`]); after every step a [`Checker`] looks at
//!   the actions the step produced, and a [`Shadow`] counts the requests the client has
//!   sent so far, so the checker can tell how many answers are allowed.
//! - `split`: the same request bytes fed whole and fed in pieces must give the same
//!   actions ([`run_split`]).
//!
//! The script format is a hand-written byte decoder ([`Input`]) rather than `arbitrary`,
//! so that the seed corpus can be written by hand (see `fuzz/make_seeds.py`) and a
//! crashing input reads as a list of events (`fuzz/README.md` tells how).

use std::sync::Arc;

use protocol::framing::{ChunkedDecoder, Framing};
use protocol::parse::{parse_head, Method, Parsed};
use protocol::{Action, Config, Connection, FileError, FileMeta, Now, UploadError};

/// The port the fuzzed server believes it is bound to.
pub const PORT: u16 = 8080;
/// Small enough that the request limit is reached within a short script.
pub const MAX_REQUESTS: u32 = 5;
/// Short deadlines, so that scripts reach them with a few clock steps.
pub const IDLE_TIMEOUT_MS: u64 = 2_000;
pub const HEAD_TIMEOUT_MS: u64 = 1_000;
/// The wall clock the scripts start at (only the `Date` header sees it).
pub const UNIX_START: u64 = 1_700_000_000;
/// The exact interim response the core sends for `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The `max_body` settings a script can choose from (its first byte picks one).
pub const MAX_BODIES: [u64; 4] = [16, 1024, 64 * 1024, 10 * 1024 * 1024];

/// The fuzzing configuration: the SPEC's defaults, with short timeouts, a small request
/// limit and the chosen body limit.
pub fn config(max_body: u64) -> Arc<Config> {
    let mut c = Config::new("127.0.0.1", PORT, &[]);
    c.idle_timeout_ms = IDLE_TIMEOUT_MS;
    c.head_timeout_ms = HEAD_TIMEOUT_MS;
    c.max_requests = MAX_REQUESTS;
    c.max_body = max_body;
    Arc::new(c)
}

/// Realistic requests (and pieces of requests) a script can send with one opcode, so
/// that the fuzzer starts deep inside the state machine.
pub const CANNED: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"HEAD /index.html HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
    b"GET /sample.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nRange: bytes=2-5\r\n\r\n",
    b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept-Encoding: br, gzip\r\n\r\n",
    b"GET /logo.png HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nIf-None-Match: *\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"a\":[1]}",
    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-T: 1\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    b"{}",
    b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"DELETE /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET /a.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET /%2e%2e/x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n",
    b"\r\n",
    b"POST /nowhere HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET http://127.0.0.1:8080/docs/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /sample.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nRange: bytes=-3\r\nIf-Range: \"0-0.0\"\r\n\r\n",
    b"GET /style.css HTTP/1.1\r\nHost: [::1]:8080\r\nAccept-Encoding: gzip\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 5\r\n\r\n[1,2",
];

// ----- the byte decoder -----

/// Reads a fuzz input front to back; past the end every read is zero or empty, so every
/// input decodes to some script.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.byte();
        }
        u64::from_le_bytes(b)
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// A chunk length: one byte below 200 is the length itself, 200.. are multiples of
    /// 256 bytes (up to 14 KiB, past the 8 KiB head limit).
    pub fn chunk_len(&mut self) -> usize {
        match self.byte() {
            b @ 0..=199 => usize::from(b),
            b => (usize::from(b - 200) + 1) * 256,
        }
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

// ----- answering the runtime's part -----

/// How the fake runtime answers an `OpenFile`, from one choice byte (and more bytes for
/// the file's metadata).
pub fn file_answer(choice: u8, input: &mut Input<'_>) -> Result<FileMeta, FileError> {
    match choice % 8 {
        0..=3 => {
            let len = match input.byte() % 4 {
                0 => 0,
                1 => u64::from(input.byte()),
                2 => u64::from(input.u16()),
                _ => input.u64(),
            };
            let m = input.byte();
            let mtime_secs = match m % 4 {
                0 => 1_600_000_000,
                1 => UNIX_START + u64::from(input.u16()),
                2 => input.u64(),
                _ => 0,
            };
            Ok(FileMeta {
                len,
                mtime_secs,
                mtime_nanos: u32::from(m >> 2) * 7_654_321 % 1_000_000_000,
                is_dir: false,
            })
        }
        4 => Ok(FileMeta {
            is_dir: true,
            ..FileMeta::default()
        }),
        5 => Err(FileError::NotFound),
        6 => Err(FileError::Forbidden),
        _ => Err(FileError::Other),
    }
}

/// How the fake runtime answers a `WriteUpload`.
pub fn upload_answer(choice: u8) -> Result<(), UploadError> {
    match choice % 4 {
        0 | 1 => Ok(()),
        2 => Err(UploadError::AlreadyExists),
        _ => Err(UploadError::Other),
    }
}

// ----- the shadow: how many requests has the client sent? -----

/// Walks the same bytes the connection receives, request by request (head with
/// `parse_head`, body by its framing), to count the request heads and the complete
/// requests the client has sent. Stops at the first head the parser refuses.
pub struct Shadow {
    buf: Vec<u8>,
    pos: usize,
    body: ShadowBody,
    stopped: bool,
    max_body: u64,
    /// For each complete request head, in order: whether it was `HEAD`.
    pub heads: Vec<bool>,
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
            heads: Vec::new(),
            complete: 0,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.stopped {
            return;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            let avail = &self.buf[self.pos..];
            match &mut self.body {
                ShadowBody::None => match parse_head(avail) {
                    Ok(Parsed::Partial) => break,
                    Err(_) => {
                        self.stopped = true;
                        break;
                    }
                    Ok(Parsed::Complete(head, n)) => {
                        self.pos += n;
                        self.heads.push(head.method == Method::Head);
                        match head.framing {
                            Framing::None => self.complete += 1,
                            Framing::Length(n) if n > self.max_body => {
                                // Refused at once (413) and closed.
                                self.stopped = true;
                                break;
                            }
                            Framing::Length(n) => self.body = ShadowBody::Length(n),
                            Framing::Chunked => {
                                self.body = ShadowBody::Chunked(ChunkedDecoder::default())
                            }
                        }
                    }
                },
                ShadowBody::Length(remaining) => {
                    let take = (avail.len() as u64).min(*remaining);
                    *remaining -= take;
                    self.pos += take as usize;
                    if *remaining > 0 {
                        break;
                    }
                    self.complete += 1;
                    self.body = ShadowBody::None;
                }
                ShadowBody::Chunked(dec) => match dec.decode(avail, |_| Ok(())) {
                    Err(_) => {
                        self.stopped = true;
                        break;
                    }
                    Ok(used) => {
                        self.pos += used;
                        if !dec.is_done() {
                            break;
                        }
                        self.complete += 1;
                        self.body = ShadowBody::None;
                    }
                },
            }
        }
    }
}

// ----- the checker: invariants over the actions -----

/// What produced a batch of actions (some closes are only allowed after some events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Receive,
    Eof,
    Timeout,
    Answer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    File,
    Upload,
}

/// Checks every action the connection emits against the invariants of issue 5 and
/// SPEC "Connections". Panics (a fuzz crash) on the first violation.
pub struct Checker {
    max_requests: u32,
    max_body: u64,
    /// Final (non-1xx) responses seen.
    pub finals: u32,
    /// `Close` seen.
    pub closed: bool,
    /// An `OpenFile` or `WriteUpload` waiting for its answer.
    pub pending: Option<Pending>,
    /// The client half-closed.
    pub eof: bool,
}

/// The parts of a response head the checker looks at.
#[derive(Debug)]
struct Head {
    status: u16,
    head_len: usize,
    content_length: Option<u64>,
    closing: bool,
    content_range: Option<String>,
}

impl Checker {
    pub fn new(max_requests: u32, max_body: u64) -> Self {
        Checker {
            max_requests,
            max_body,
            finals: 0,
            closed: false,
            pending: None,
            eof: false,
        }
    }

    /// Checks the actions one step produced, in order.
    pub fn check(&mut self, step: Step, actions: &[Action], shadow: &Shadow) {
        let mut i = 0;
        while i < actions.len() {
            assert!(!self.closed, "action after Close: {:?}", actions[i]);
            assert!(
                self.pending.is_none(),
                "action while waiting for the runtime's answer to {:?}: {:?}",
                self.pending,
                actions[i]
            );
            match &actions[i] {
                Action::Send(bytes) if bytes.as_slice() == CONTINUE => {}
                Action::Send(bytes) => {
                    let next = actions.get(i + 1);
                    let sendfile = match next {
                        Some(Action::SendFile { offset, len }) => Some((*offset, *len)),
                        _ => None,
                    };
                    let closing = self.response(bytes, sendfile, shadow);
                    if sendfile.is_some() {
                        i += 1;
                    }
                    if closing {
                        assert_eq!(
                            actions.get(i + 1),
                            Some(&Action::Close),
                            "a Connection: close response not followed by Close"
                        );
                        i += 1;
                        self.closed = true;
                    }
                }
                Action::SendFile { .. } => {
                    panic!("SendFile not right after a response head: {actions:?}")
                }
                Action::OpenFile(path) => {
                    check_path(path.as_str());
                    self.pending = Some(Pending::File);
                }
                Action::WriteUpload { name, body } => {
                    check_upload_name(name);
                    assert!(
                        body.len() as u64 <= self.max_body,
                        "an upload body of {} bytes over max_body {}",
                        body.len(),
                        self.max_body
                    );
                    self.pending = Some(Pending::Upload);
                }
                Action::Close => {
                    // Not right after a `Connection: close` response (that case is
                    // handled with the response): only EOF or idleness close.
                    assert!(
                        self.eof || step == Step::Timeout,
                        "Close without a closing response, EOF or timeout (step {step:?})"
                    );
                    assert_eq!(
                        self.finals as usize, shadow.complete,
                        "closed with complete requests unanswered"
                    );
                    self.closed = true;
                }
            }
            i += 1;
        }
    }

    /// Checks one final response (and the `SendFile` after it); returns whether it
    /// closes the connection.
    fn response(&mut self, bytes: &[u8], sendfile: Option<(u64, u64)>, shadow: &Shadow) -> bool {
        self.finals += 1;
        let index = self.finals as usize - 1;
        assert!(
            self.finals <= self.max_requests,
            "more responses ({}) than max_requests ({})",
            self.finals,
            self.max_requests
        );
        let head = parse_response(bytes, self.max_requests - self.finals);
        if self.finals == self.max_requests {
            assert!(head.closing, "the last allowed response does not close");
        }
        // Which request this answers: keep-alive answers need a complete request; a
        // closing one may answer a head whose body never came, or bytes that never
        // became a head (408, 400, 431, ...), but only once.
        if head.closing {
            assert!(
                index <= shadow.heads.len(),
                "response {} but only {} request heads sent",
                index + 1,
                shadow.heads.len()
            );
        } else {
            assert!(
                index < shadow.complete,
                "keep-alive response {} but only {} complete requests sent",
                index + 1,
                shadow.complete
            );
        }
        let is_head = shadow.heads.get(index).copied();
        let inline = &bytes[head.head_len..];
        let status = head.status;
        if status == 204 || status == 304 {
            assert!(inline.is_empty(), "a {status} with a body");
            assert!(sendfile.is_none(), "a {status} with SendFile");
            if status == 204 {
                assert!(head.content_length.is_none(), "a 204 with Content-Length");
            }
            return head.closing;
        }
        let cl = head
            .content_length
            .unwrap_or_else(|| panic!("a {status} without Content-Length"));
        if let Some((offset, len)) = sendfile {
            assert!(inline.is_empty(), "inline body before SendFile");
            assert_eq!(cl, len, "Content-Length differs from the SendFile length");
            assert!(len > 0, "SendFile of nothing");
            assert_eq!(
                is_head,
                Some(false),
                "SendFile for a HEAD or for no request"
            );
            match status {
                200 => assert_eq!(offset, 0, "a 200 SendFile not from the start"),
                206 => {
                    let range = head.content_range.expect("206 without Content-Range");
                    let (a, b, total) = parse_content_range(&range);
                    assert_eq!(a, offset, "Content-Range start differs from SendFile");
                    assert_eq!(
                        b,
                        offset + len - 1,
                        "Content-Range end differs from SendFile"
                    );
                    assert!(b < total, "Content-Range past the file");
                }
                _ => panic!("SendFile after a {status}"),
            }
        } else if is_head == Some(true) {
            assert!(inline.is_empty(), "a body in a response to HEAD");
        } else {
            assert_eq!(
                inline.len() as u64,
                cl,
                "inline body length differs from Content-Length (status {status})"
            );
        }
        head.closing
    }
}

/// Parses a final response head with httparse and checks its fields.
fn parse_response(bytes: &[u8], remaining: u32) -> Head {
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
    let (mut date, mut server) = (0, 0);
    let mut content_length = None;
    let mut connection = None;
    let mut keep_alive = None;
    let mut content_range = None;
    for h in resp.headers.iter() {
        let value = std::str::from_utf8(h.value).expect("a header value that is not UTF-8");
        match h.name.to_ascii_lowercase().as_str() {
            "date" => date += 1,
            "server" => server += 1,
            "content-length" => {
                assert!(content_length.is_none(), "two Content-Length fields");
                assert!(
                    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
                    "Content-Length {value:?}"
                );
                content_length = Some(value.parse::<u64>().expect("Content-Length overflows"));
            }
            "connection" => {
                assert!(connection.is_none(), "two Connection fields");
                connection = Some(value.to_string());
            }
            "keep-alive" => keep_alive = Some(value.to_string()),
            "content-range" => content_range = Some(value.to_string()),
            "transfer-encoding" => panic!("the server never sends Transfer-Encoding"),
            _ => {}
        }
    }
    assert_eq!((date, server), (1, 1), "Date and Server must appear once");
    let closing = match connection.as_deref() {
        Some("close") => true,
        None | Some("keep-alive") => false,
        Some(other) => panic!("Connection: {other}"),
    };
    if closing {
        assert!(keep_alive.is_none(), "Keep-Alive on a closing response");
    } else {
        let ka = keep_alive.expect("a keep-alive response without Keep-Alive");
        let expected = format!("timeout={}, max={remaining}", IDLE_TIMEOUT_MS / 1000);
        assert_eq!(ka, expected, "Keep-Alive does not count down");
    }
    Head {
        status,
        head_len,
        content_length,
        closing,
        content_range,
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

/// No path the core hands the runtime may climb or be absolute (SPEC "Security").
pub fn check_path(p: &str) {
    assert!(!p.is_empty(), "empty path");
    assert!(!p.starts_with('/'), "absolute path {p:?}");
    assert!(!p.contains('\0'), "NUL in path {p:?}");
    assert!(!p.contains('\\'), "backslash in path {p:?}");
    for seg in p.split('/') {
        assert!(seg != ".." && seg != ".", "dot segment in path {p:?}");
        assert!(!seg.is_empty(), "empty segment in path {p:?}");
        assert!(!seg.starts_with('.'), "hidden segment in path {p:?}");
        assert!(!seg.chars().any(char::is_control), "control char in {p:?}");
    }
}

/// Upload names are `UUID.json`, lower-case hex.
fn check_upload_name(name: &str) {
    let stem = name
        .strip_suffix(".json")
        .unwrap_or_else(|| panic!("upload name {name:?}"));
    assert_eq!(stem.len(), 36, "upload name {name:?}");
    assert!(
        stem.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-'),
        "upload name {name:?}"
    );
}

// ----- the targets -----

/// The `parse` target: the head parser never panics, and what it says is consistent.
pub fn check_parse(data: &[u8]) {
    match parse_head(data) {
        Ok(Parsed::Complete(head, len)) => {
            assert!(
                len > 0 && len <= data.len(),
                "length {len} of {}",
                data.len()
            );
            assert!(
                head.target.bytes().all(|b| (0x21..0x7f).contains(&b)),
                "target {:?}",
                head.target
            );
            assert!(head.minor <= 1);
            // The head alone parses the same, and a strict prefix of it is not complete.
            match parse_head(&data[..len]) {
                Ok(Parsed::Complete(again, n)) => {
                    assert_eq!(n, len);
                    assert_eq!(again, head);
                }
                other => panic!("the head alone parses as {other:?}"),
            }
            assert!(
                !matches!(parse_head(&data[..len - 1]), Ok(Parsed::Complete(..))),
                "a strict prefix of a head is complete"
            );
        }
        Ok(Parsed::Partial) => {
            // Past the head limit the parser must decide: a client cannot make the
            // server buffer more than 8 KiB waiting for a head.
            assert!(
                data.len() <= protocol::config::MAX_HEAD,
                "still Partial after {} bytes",
                data.len()
            );
        }
        Err(r) => {
            assert!(r.close, "a parse refusal that keeps the connection: {r:?}");
            assert!(
                matches!(r.status, 400 | 413 | 414 | 417 | 431 | 501 | 505),
                "refusal status {}",
                r.status
            );
        }
    }
}

/// One connection and everything the harness tracks about it.
pub struct Harness {
    pub conn: Connection,
    pub checker: Checker,
    pub shadow: Shadow,
    pub now: Now,
    /// Every action, in order (the `split` target compares these).
    pub log: Vec<Action>,
}

impl Harness {
    pub fn new(max_body: u64) -> Self {
        let now = Now::new(0, UNIX_START);
        Harness {
            conn: Connection::new(config(max_body), now, [7; 16], "fuzz"),
            checker: Checker::new(MAX_REQUESTS, max_body),
            shadow: Shadow::new(max_body),
            now,
            log: Vec::new(),
        }
    }

    /// Drains the actions of one step and checks them.
    fn settle(&mut self, step: Step) {
        let mut actions = Vec::new();
        while let Some(a) = self.conn.poll() {
            actions.push(a);
            assert!(actions.len() < 10_000, "endless actions");
        }
        self.checker.check(step, &actions, &self.shadow);
        self.log.extend(actions);
        assert_eq!(
            self.checker.closed,
            self.conn.is_closed(),
            "is_closed() disagrees with the Close action"
        );
        if !self.checker.closed && self.checker.pending.is_none() {
            assert!(
                self.conn.wants_read(),
                "neither waiting for the runtime nor for the client"
            );
            assert!(
                self.conn.deadline().is_some(),
                "waiting for the client with no deadline"
            );
        }
        if self.checker.pending.is_some() {
            assert!(
                !self.conn.wants_read(),
                "wants_read while an action is pending"
            );
        }
    }

    pub fn receive(&mut self, bytes: &[u8]) {
        if self.checker.eof {
            return; // a runtime reads nothing after EOF
        }
        if !self.checker.closed {
            self.shadow.feed(bytes);
        }
        self.conn.receive(bytes, self.now);
        self.settle(Step::Receive);
    }

    pub fn eof(&mut self) {
        if self.checker.eof {
            return;
        }
        self.checker.eof = true;
        self.conn.receive_eof(self.now);
        self.settle(Step::Eof);
    }

    /// Moves the clock forward by `ms` and calls `timeout` (as a runtime whose timer
    /// fired late, or early, would).
    pub fn tick(&mut self, ms: u64) {
        self.now.mono_ms += ms;
        self.now.unix_secs = UNIX_START + self.now.mono_ms / 1000;
        self.conn.timeout(self.now);
        self.settle(Step::Timeout);
    }

    /// Jumps to the connection's deadline (or just before it) and calls `timeout`.
    pub fn at_deadline(&mut self, before: bool) {
        let Some(d) = self.conn.deadline() else {
            return;
        };
        let target = if before { d.saturating_sub(1) } else { d };
        if target > self.now.mono_ms {
            self.now.mono_ms = target;
            self.now.unix_secs = UNIX_START + target / 1000;
        }
        let was_open = !self.checker.closed;
        let finals = self.checker.finals;
        self.conn.timeout(self.now);
        self.settle(Step::Timeout);
        if !before && self.now.mono_ms >= d && was_open {
            // A deadline reached always does something: close, or answer 408 and close.
            assert!(
                self.checker.closed,
                "a deadline passed and nothing happened"
            );
            assert!(self.checker.finals <= finals + 1);
        }
    }

    /// Answers the pending `OpenFile` / `WriteUpload`, if any.
    pub fn answer(&mut self, choice: u8, input: &mut Input<'_>) {
        match self.checker.pending.take() {
            None => {}
            Some(Pending::File) => match file_answer(choice, input) {
                Ok(meta) => self.conn.file_opened(meta),
                Err(e) => self.conn.file_failed(e),
            },
            Some(Pending::Upload) => self.conn.upload_written(upload_answer(choice)),
        }
        self.settle(Step::Answer);
    }

    /// Answers whatever is pending until nothing is (bounded).
    pub fn answer_all(&mut self, input: &mut Input<'_>) {
        for _ in 0..64 {
            if self.checker.pending.is_none() {
                return;
            }
            let choice = input.byte();
            self.answer(choice, input);
        }
        panic!("still waiting for the runtime after 64 answers");
    }

    /// The end of every script: answer, half-close, answer; the connection must close.
    pub fn finish(&mut self, input: &mut Input<'_>) {
        self.answer_all(input);
        self.eof();
        self.answer_all(input);
        assert!(
            self.checker.closed,
            "after EOF and every answer the connection is still open"
        );
        assert!(
            self.checker.finals as usize <= self.shadow.heads.len() + 1,
            "more responses than requests"
        );
    }
}

/// The `connection` target: decodes `data` as a script and runs it.
///
/// Byte 0 picks `max_body` from [`MAX_BODIES`]. Then opcodes (`op % 8`):
/// 0–2 bytes (a length from [`Input::chunk_len`], then that many bytes);
/// 3 a canned request (next byte indexes [`CANNED`]); 4 clock +u16 ms and `timeout`;
/// 5 jump to the deadline (next byte odd: 1 ms before it) and `timeout`; 6 EOF;
/// 7 answer the pending file/upload (next byte the choice, see [`file_answer`]).
/// At the end everything pending is answered, EOF is sent, and the connection must close.
pub fn run_script(data: &[u8]) {
    let mut input = Input::new(data);
    let max_body = MAX_BODIES[usize::from(input.byte() % 4)];
    let mut h = Harness::new(max_body);
    let mut steps = 0;
    while !input.is_empty() && steps < 512 {
        steps += 1;
        match input.byte() % 8 {
            0..=2 => {
                let n = input.chunk_len();
                let bytes = input.take(n);
                h.receive(bytes);
            }
            3 => {
                let i = usize::from(input.byte()) % CANNED.len();
                h.receive(CANNED[i]);
            }
            4 => {
                let ms = u64::from(input.u16());
                h.tick(ms);
            }
            5 => {
                let before = input.byte() % 2 == 1;
                h.at_deadline(before);
            }
            6 => h.eof(),
            _ => {
                let choice = input.byte();
                h.answer(choice, &mut input);
            }
        }
    }
    h.finish(&mut input);
}

/// A deterministic answer for a path (the same in both runs of `split`).
fn split_file_answer(path: &str) -> Result<FileMeta, FileError> {
    let h = path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    match h % 6 {
        0 => Err(FileError::NotFound),
        1 => Err(FileError::Forbidden),
        2 => Ok(FileMeta {
            is_dir: true,
            ..FileMeta::default()
        }),
        _ => Ok(FileMeta {
            len: (h >> 8) % 5000,
            mtime_secs: 1_600_000_000 + (h >> 20) % 100_000,
            mtime_nanos: 0,
            is_dir: false,
        }),
    }
}

/// Feeds `pieces` to a fresh connection, answering every file and upload request at
/// once and the same way; returns every action.
pub fn run_pieces(max_body: u64, pieces: &[&[u8]], eof: bool) -> Vec<Action> {
    let mut h = Harness::new(max_body);
    let answer_all = |h: &mut Harness| {
        for _ in 0..64 {
            let pending = h.checker.pending.take();
            match pending {
                None => return,
                Some(Pending::File) => {
                    let Some(Action::OpenFile(p)) = h.log.last() else {
                        panic!("pending file without OpenFile");
                    };
                    match split_file_answer(p.as_str()) {
                        Ok(meta) => h.conn.file_opened(meta),
                        Err(e) => h.conn.file_failed(e),
                    }
                }
                Some(Pending::Upload) => h.conn.upload_written(Ok(())),
            }
            h.settle(Step::Answer);
        }
        panic!("endless answers");
    };
    for piece in pieces {
        h.receive(piece);
        answer_all(&mut h);
    }
    if eof {
        h.eof();
        answer_all(&mut h);
        assert!(h.checker.closed, "open after EOF");
    }
    h.log
}

/// The `split` target. Byte 0: `max_body` (bits 0–1) and whether EOF follows (bit 2);
/// byte 1: how many split points (mod 16), each a u16 (mod the data length); the rest
/// is the request bytes, fed whole and then cut at those points.
pub fn run_split(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let max_body = MAX_BODIES[usize::from(flags % 4)];
    let eof = flags & 4 != 0;
    let n = usize::from(input.byte() % 16);
    let mut cuts: Vec<u16> = (0..n).map(|_| input.u16()).collect();
    let bytes = input.rest();
    let whole = run_pieces(max_body, &[bytes], eof);
    let mut cuts: Vec<usize> = cuts
        .drain(..)
        .map(|c| {
            if bytes.is_empty() {
                0
            } else {
                usize::from(c) % (bytes.len() + 1)
            }
        })
        .collect();
    cuts.sort_unstable();
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for c in cuts {
        pieces.push(&bytes[start..c]);
        start = c;
    }
    pieces.push(&bytes[start..]);
    let split = run_pieces(max_body, &pieces, eof);
    if whole != split {
        let show = |v: &[Action]| {
            v.iter()
                .map(|a| match a {
                    Action::Send(b) => format!("Send({:?})", String::from_utf8_lossy(b)),
                    other => format!("{other:?}"),
                })
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        panic!(
            "whole and split differ\nwhole:\n  {}\nsplit at {:?}:\n  {}",
            show(&whole),
            pieces.iter().map(|p| p.len()).collect::<Vec<_>>(),
            show(&split)
        );
    }
}
