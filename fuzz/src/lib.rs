//! # protocol-fuzz — the harness shared by the fuzz targets
//!
//! Three targets (in `fuzz_targets/`) drive the sans-IO core:
//!
//! - `parse`: raw bytes into [`protocol::parse::parse_head`] ([`check_parse`]).
//! - `connection`: the input is decoded as a script of timed inputs for one
//!   [`protocol::Connection`] ([`run_script`]); after every input a [`Checker`] looks at
//!   the actions it produced, and a [`Shadow`] counts the requests the client has sent
//!   so far, so the checker can tell how many answers are allowed.
//! - `split`: the same request bytes fed whole and fed in pieces must give the same
//!   actions ([`run_split`]).
//!
//! The script format is a hand-written byte decoder ([`Reader`]) rather than `arbitrary`,
//! so that the seed corpus can be written by hand (see `fuzz/make_seeds.py`) and a
//! crashing input reads as a list of events (`fuzz/README.md` tells how).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use protocol::framing::{ChunkedDecoder, Framing};
use protocol::parse::{parse_head, Method, Parsed};
use protocol::{Action, Config, Connection, FileError, FileMeta, Input, Now, UploadError};

/// The port the fuzzed server believes it is bound to.
pub const PORT: u16 = 8080;
/// Small enough that the request limit is reached within a short script.
pub const MAX_REQUESTS: u32 = 5;
/// Short deadlines, so that scripts reach them with a few clock steps.
pub const IDLE_TIMEOUT_MS: u64 = 2_000;
pub const HEAD_TIMEOUT_MS: u64 = 1_000;
/// Longer than the idle timeout: a body that trickles in keeps the connection alive but
/// still meets this one.
pub const BODY_TIMEOUT_MS: u64 = 3_000;
/// The wall clock the scripts start at (the `Date` header and file dates see it).
pub const UNIX_START: u64 = 1_700_000_000;
/// The exact interim response the core sends for `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
/// Names an upload is tried under before it is a 500 (`AlreadyExists` each time).
pub const UPLOAD_NAME_TRIES: u32 = 4;

/// Whether `Drain` must close a connection that has received nothing but empty lines
/// since its last answer (the core counts them as idle time). Found by this target:
/// `Received("\r\n")` then `Drain` once left it open until the idle timeout.
pub const DRAIN_CLOSES_AFTER_EMPTY_LINES: bool = true;

/// The `max_body` settings a script can choose from (its first byte picks one).
pub const MAX_BODIES: [u64; 4] = [16, 1024, 64 * 1024, 10 * 1024 * 1024];

/// The fuzzing configuration: the SPEC's defaults, with short timeouts, a small request
/// limit and the chosen body limit.
pub fn config(max_body: u64) -> Arc<Config> {
    let mut c = Config::new("127.0.0.1", PORT, &[]);
    c.idle_timeout_ms = IDLE_TIMEOUT_MS;
    c.head_timeout_ms = HEAD_TIMEOUT_MS;
    c.body_timeout_ms = BODY_TIMEOUT_MS;
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
    // The preconditions (412), Expect in HTTP/1.0 (ignored) and on a refused method,
    // a malformed version (400 to a HEAD: no body), a bad Host in absolute form.
    b"GET /sample.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nIf-Match: \"x\", W/\"y\"\r\n\r\n",
    b"HEAD /sample.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nIf-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
    b"POST /upload HTTP/1.0\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    b"PUT /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"HEAD / HTTP/01.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET http://127.0.0.1:8080/ HTTP/1.1\r\nHost: a b\r\n\r\n",
    b"\r\n\r\nGET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nIf-None-Match: \"a\"\r\nIf-Match: *\r\n\r\n",
];

// ----- the byte decoder -----

/// Reads a fuzz input front to back; past the end every read is zero or empty, so every
/// input decodes to some script.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
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

    /// How long the next input comes after the last one, from the high nibble of an
    /// opcode (the next bytes for the last two classes).
    pub fn time_step(&mut self, class: u8) -> u64 {
        match class {
            1 => 1,
            2 => 10,
            3 => 100,
            4 => 250,
            5 => 999,
            6 => 1_000,
            7 => 1_500,
            8 => 2_000,
            9 => 3_000,
            10 => u64::from(self.byte()) * 16,
            11 => u64::from(self.u16()),
            _ => 0,
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
pub fn file_answer(choice: u8, r: &mut Reader<'_>) -> Result<FileMeta, FileError> {
    match choice % 8 {
        0..=3 => {
            let len = match r.byte() % 4 {
                0 => 0,
                1 => u64::from(r.byte()),
                2 => u64::from(r.u16()),
                _ => r.u64(),
            };
            let m = r.byte();
            let mtime_secs = match m % 4 {
                0 => 1_600_000_000,
                1 => UNIX_START + u64::from(r.u16()),
                2 => r.u64(),
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
        2 => Err(UploadError::AlreadyExists {
            reseed: std::array::from_fn(|i| choice.wrapping_mul(31).wrapping_add(i as u8)),
        }),
        _ => Err(UploadError::Other),
    }
}

/// The `Date` value for `unix_secs`, formatted independently of the core.
pub fn http_date(unix_secs: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(unix_secs))
}

// ----- the shadow: how many requests has the client sent? -----

/// What the shadow knows of one request head the client sent.
#[derive(Clone, Debug)]
pub struct ShadowRequest {
    pub is_head: bool,
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
    pub fn idle(&self, empty_lines: bool) -> bool {
        let rest = &self.buf[self.pos..];
        !self.stopped
            && matches!(self.body, ShadowBody::None)
            && if empty_lines {
                rest.iter().all(|&b| b == b'\r' || b == b'\n')
            } else {
                rest.is_empty()
            }
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

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.stopped {
            return;
        }
        self.buf.extend_from_slice(bytes);
        let keep = usize::try_from(self.max_body)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
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
                        self.requests.push(ShadowRequest {
                            is_head: head.method == Method::Head,
                            expect_continue: head.expect_continue,
                            has_body: !matches!(head.framing, Framing::None | Framing::Length(0)),
                            body: Vec::new(),
                        });
                        match head.framing {
                            Framing::None | Framing::Length(0) => self.complete += 1,
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
                    let data = &avail[..take as usize];
                    if let Some(req) = self.requests.last_mut() {
                        let room = keep.saturating_sub(req.body.len());
                        req.body.extend_from_slice(&data[..data.len().min(room)]);
                    }
                    *remaining -= take;
                    self.pos += take as usize;
                    if *remaining > 0 {
                        break;
                    }
                    self.complete += 1;
                    self.body = ShadowBody::None;
                }
                ShadowBody::Chunked(dec) => {
                    let mut body = self
                        .requests
                        .last_mut()
                        .map(|r| std::mem::take(&mut r.body))
                        .unwrap_or_default();
                    let result = dec.decode(avail, |data| {
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
                    }
                }
            }
        }
    }
}

// ----- the checker: invariants over the actions -----

/// Which input produced a batch of actions (what may come depends on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Received,
    Eof,
    FileOpened,
    UploadWritten(Result<(), UploadError>),
    Written,
    WriteFailed,
    /// `due`: the deadline (as `deadline()` said just before) has come.
    Timeout {
        due: bool,
    },
    Drain,
}

impl Step {
    pub fn of(input: &Input<'_>, due: bool) -> Step {
        match input {
            Input::Received(_) => Step::Received,
            Input::Eof => Step::Eof,
            Input::FileOpened(_) => Step::FileOpened,
            Input::UploadWritten(r) => Step::UploadWritten(*r),
            Input::Written => Step::Written,
            Input::WriteFailed => Step::WriteFailed,
            Input::Timeout => Step::Timeout { due },
            Input::Drain => Step::Drain,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    File,
    Upload,
}

/// Checks every action the connection emits against the invariants of SPEC
/// "Connections" and the one-answer-in-flight rule. Panics (a fuzz crash) on the first
/// violation.
pub struct Checker {
    max_requests: u32,
    max_body: u64,
    /// Final (non-1xx) responses seen.
    pub finals: u32,
    /// `Close` seen.
    pub closed: bool,
    /// An `OpenFile` or `WriteUpload` waiting for its answer.
    pub pending: Option<Pending>,
    /// `Send` / `SendFile` bytes not yet reported written.
    pub unwritten: bool,
    /// The unwritten answer closes the connection (`Close` once it is written).
    pub close_pending: bool,
    /// The client half-closed.
    pub eof: bool,
    /// `Drain` was handed in.
    pub draining: bool,
    /// Names the current upload has been tried under, and the last one.
    upload_tries: u32,
    upload_name: String,
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
            unwritten: false,
            close_pending: false,
            eof: false,
            draining: false,
            upload_tries: 0,
            upload_name: String::new(),
        }
    }

    /// Whether the connection expects this input now. An unexpected one (a file or
    /// upload result not asked for, `Written`/`WriteFailed` with nothing unwritten,
    /// anything after `Close`) must be ignored: no action, and `ignored()` counts it.
    pub fn expects(&self, step: Step) -> bool {
        if self.closed {
            return false;
        }
        match step {
            Step::FileOpened => self.pending == Some(Pending::File),
            Step::UploadWritten(_) => self.pending == Some(Pending::Upload),
            Step::Written | Step::WriteFailed => self.unwritten,
            _ => true,
        }
    }

    /// Checks the actions an expected input produced (at time `now`), in order.
    pub fn check(&mut self, step: Step, now: Now, actions: &[Action], shadow: &Shadow) {
        let close_due = self.close_pending;
        let tries_before = self.upload_tries;
        let finals_before = self.finals;
        match step {
            Step::Eof => self.eof = true,
            Step::Drain => self.draining = true,
            Step::FileOpened | Step::UploadWritten(_) => self.pending = None,
            Step::Written | Step::WriteFailed => self.unwritten = false,
            Step::Received | Step::Timeout { .. } => {}
        }
        let date = http_date(now.unix_secs);
        let mut statuses = Vec::new();
        let mut i = 0;
        while i < actions.len() {
            let action = &actions[i];
            assert!(!self.closed, "action after Close: {action:?}");
            assert!(
                self.pending.is_none(),
                "action while waiting for the runtime's answer to {:?}: {action:?}",
                self.pending
            );
            if *action == Action::Close {
                assert!(
                    !self.unwritten,
                    "Close while an answer is unwritten (it must wait for Written): {actions:?}"
                );
            } else {
                assert!(
                    !self.unwritten,
                    "{action:?} while the previous answer is unwritten (one answer in flight)"
                );
            }
            match action {
                Action::Send(bytes) if bytes.as_slice() == CONTINUE => {
                    let req = shadow.requests.get(self.finals as usize);
                    assert!(
                        req.is_some_and(|r| r.expect_continue && r.has_body),
                        "100 Continue for a request without Expect: 100-continue and a body: {req:?}"
                    );
                    self.unwritten = true;
                }
                Action::Send(bytes) => {
                    let sendfile = match actions.get(i + 1) {
                        Some(Action::SendFile { offset, len }) => Some((*offset, *len)),
                        _ => None,
                    };
                    let head = self.response(bytes, sendfile, shadow, &date);
                    if sendfile.is_some() {
                        i += 1;
                    }
                    if self.draining {
                        assert!(
                            head.closing,
                            "an answer after Drain that keeps the connection"
                        );
                    }
                    if matches!(step, Step::Timeout { .. }) {
                        assert_eq!(head.status, 408, "a Timeout answered with {}", head.status);
                    }
                    statuses.push(head.status);
                    self.unwritten = true;
                    self.close_pending = head.closing;
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
                    let req = shadow
                        .requests
                        .get(self.finals as usize)
                        .expect("an upload for a request never sent");
                    assert!(
                        body.as_slice() == req.body.as_slice(),
                        "the upload body differs from the request body"
                    );
                    if matches!(
                        step,
                        Step::UploadWritten(Err(UploadError::AlreadyExists { .. }))
                    ) {
                        assert_ne!(
                            *name, self.upload_name,
                            "an upload retried under the same name"
                        );
                        self.upload_tries += 1;
                    } else {
                        self.upload_tries = 1;
                    }
                    self.upload_name.clone_from(name);
                    self.pending = Some(Pending::Upload);
                }
                Action::Close => {
                    let after_answer =
                        (close_due && step == Step::Written) || step == Step::WriteFailed;
                    if !after_answer {
                        // Without a closing answer, only EOF, idleness or a drain close.
                        assert!(
                            self.eof || self.draining || matches!(step, Step::Timeout { .. }),
                            "Close without a closing answer, EOF, Drain or timeout (step {step:?})"
                        );
                        assert_eq!(
                            self.finals as usize, shadow.complete,
                            "closed with complete requests unanswered"
                        );
                    }
                    self.closed = true;
                    self.close_pending = false;
                }
            }
            i += 1;
        }
        // What must follow each input.
        match step {
            Step::Written if close_due => {
                assert_eq!(
                    actions,
                    [Action::Close],
                    "a closing answer written, then not Close"
                )
            }
            Step::WriteFailed => {
                assert_eq!(actions, [Action::Close], "WriteFailed did not close")
            }
            Step::FileOpened => assert!(
                !actions.is_empty(),
                "a file result with neither an answer nor another open"
            ),
            Step::UploadWritten(result) => match result {
                Ok(()) => assert_eq!(
                    statuses,
                    [201],
                    "a written upload not answered 201: {actions:?}"
                ),
                Err(UploadError::AlreadyExists { .. }) if tries_before < UPLOAD_NAME_TRIES => {
                    assert!(
                        matches!(actions, [Action::WriteUpload { .. }]),
                        "AlreadyExists after {tries_before} names, and no retry: {actions:?}"
                    )
                }
                Err(_) => assert_eq!(
                    statuses,
                    [500],
                    "a failed upload not answered 500: {actions:?}"
                ),
            },
            Step::Timeout { due: false } => {
                assert!(
                    actions.is_empty(),
                    "a Timeout before the deadline did something: {actions:?}"
                )
            }
            Step::Timeout { due: true } => {
                // A deadline reached always does something: close, or a 408 that closes.
                assert!(
                    self.closed || self.close_pending,
                    "a deadline passed and nothing happened"
                );
                assert!(self.finals <= finals_before + 1);
            }
            _ => {}
        }
    }

    /// Checks one final response (and the `SendFile` after it).
    fn response(
        &mut self,
        bytes: &[u8],
        sendfile: Option<(u64, u64)>,
        shadow: &Shadow,
        date: &str,
    ) -> Head {
        self.finals += 1;
        let index = self.finals as usize - 1;
        assert!(
            self.finals <= self.max_requests,
            "more responses ({}) than max_requests ({})",
            self.finals,
            self.max_requests
        );
        let head = parse_response(bytes, self.max_requests - self.finals, date);
        if self.finals == self.max_requests {
            assert!(head.closing, "the last allowed response does not close");
        }
        // Which request this answers: keep-alive answers need a complete request; a
        // closing one may answer a head whose body never came, or bytes that never
        // became a head (408, 400, 431, ...), but only once.
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
        // A HEAD request, or bytes refused before their head parsed that start `HEAD `.
        let is_head = match shadow.requests.get(index) {
            Some(r) => r.is_head,
            None => shadow.unparsed_is_head(),
        };
        let inline = &bytes[head.head_len..];
        let status = head.status;
        if status == 204 || status == 304 {
            assert!(inline.is_empty(), "a {status} with a body");
            assert!(sendfile.is_none(), "a {status} with SendFile");
            if status == 204 {
                assert!(head.content_length.is_none(), "a 204 with Content-Length");
            }
            return head;
        }
        let cl = head
            .content_length
            .unwrap_or_else(|| panic!("a {status} without Content-Length"));
        if let Some((offset, len)) = sendfile {
            assert!(inline.is_empty(), "inline body before SendFile");
            assert_eq!(cl, len, "Content-Length differs from the SendFile length");
            assert!(len > 0, "SendFile of nothing");
            assert!(
                index < shadow.requests.len() && !is_head,
                "SendFile for a HEAD or for no request"
            );
            match status {
                200 => assert_eq!(offset, 0, "a 200 SendFile not from the start"),
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
                _ => panic!("SendFile after a {status}"),
            }
        } else if is_head {
            assert!(inline.is_empty(), "a body in a response to HEAD");
        } else {
            assert_eq!(
                inline.len() as u64,
                cl,
                "inline body length differs from Content-Length (status {status})"
            );
        }
        head
    }
}

/// Parses a final response head with httparse and checks its fields.
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
    let (mut date, mut server) = (0, 0);
    let mut content_length = None;
    let mut connection = None;
    let mut keep_alive = None;
    let mut content_range = None;
    for h in resp.headers.iter() {
        let value = std::str::from_utf8(h.value).expect("a header value that is not UTF-8");
        match h.name.to_ascii_lowercase().as_str() {
            "date" => {
                date += 1;
                assert_eq!(value, expected_date, "Date is not the time of the input");
            }
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
            assert!(
                !head.expect_continue || head.minor == 1,
                "Expect: 100-continue kept for HTTP/1.0"
            );
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

/// What the connection waits for from the runtime (per the checker's model).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Awaits {
    File,
    Upload,
    Write,
    Nothing,
}

/// One connection and everything the harness tracks about it.
pub struct Harness {
    pub conn: Connection,
    pub checker: Checker,
    pub shadow: Shadow,
    pub now: Now,
    /// Every action, in order (the `split` target compares these).
    pub log: Vec<Action>,
    /// Copies of the `Send` buffers not yet written, handed back with `recycle` once
    /// they are.
    unrecycled: Vec<Vec<u8>>,
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
            unrecycled: Vec::new(),
        }
    }

    /// Moves the clock forward by `ms` (both clocks, the wall clock in whole seconds).
    pub fn advance(&mut self, ms: u64) {
        self.set_time(self.now.mono_ms.saturating_add(ms));
    }

    fn set_time(&mut self, mono_ms: u64) {
        self.now.mono_ms = mono_ms;
        self.now.unix_secs = UNIX_START + mono_ms / 1000;
    }

    /// What the connection waits for from the runtime.
    pub fn awaits(&self) -> Awaits {
        match self.checker.pending {
            Some(Pending::File) => Awaits::File,
            Some(Pending::Upload) => Awaits::Upload,
            None if self.checker.unwritten => Awaits::Write,
            None => Awaits::Nothing,
        }
    }

    /// Hands one input to the connection at the current time, drains and checks the
    /// actions it produced.
    pub fn step(&mut self, input: Input<'_>) {
        let deadline = self.conn.deadline();
        let due = deadline.is_some_and(|d| self.now.mono_ms >= d);
        let step = Step::of(&input, due);
        let expected = self.checker.expects(step);
        // A drained connection with nothing in flight and nothing but idle time received
        // must close at once (on `Drain`, or once its last answer is written).
        let idle = self.shadow.idle(DRAIN_CLOSES_AFTER_EMPTY_LINES)
            && self.checker.pending.is_none()
            && self.checker.finals as usize == self.shadow.complete;
        let drain_closes = expected
            && idle
            && !self.checker.close_pending
            && match step {
                Step::Drain => !self.checker.unwritten,
                Step::Written => self.checker.draining,
                _ => false,
            };
        let ignored = self.conn.ignored();
        if let Input::Received(bytes) = input {
            if !self.checker.closed {
                self.shadow.feed(bytes);
            }
        }
        self.conn.handle(self.now, input);
        let mut actions = Vec::new();
        while let Some(a) = self.conn.poll() {
            actions.push(a);
            assert!(actions.len() < 10_000, "endless actions");
        }
        let counted = self.conn.ignored() - ignored;
        if expected {
            assert_eq!(
                counted, 0,
                "an expected input ({step:?}) counted as ignored"
            );
            self.checker.check(step, self.now, &actions, &self.shadow);
            if step == Step::Written {
                for buf in self.unrecycled.drain(..) {
                    self.conn.recycle(buf);
                }
            }
        } else {
            assert_eq!(
                counted, 1,
                "an unexpected input ({step:?}) not counted once as ignored"
            );
            assert!(
                actions.is_empty(),
                "an unexpected input ({step:?}) produced {actions:?}"
            );
        }
        if drain_closes {
            assert_eq!(
                actions,
                [Action::Close],
                "drained while idle ({step:?}) and not closed"
            );
        }
        for a in &actions {
            if let Action::Send(bytes) = a {
                self.unrecycled.push(bytes.clone());
            }
        }
        self.log.extend(actions);
        self.check_state();
    }

    /// What the connection says of itself agrees with the checker's model.
    fn check_state(&self) {
        let c = &self.checker;
        assert_eq!(
            c.closed,
            self.conn.is_closed(),
            "is_closed() disagrees with the Close action"
        );
        if c.closed {
            return;
        }
        if c.unwritten {
            assert!(
                !self.conn.wants_read(),
                "wants_read while bytes are unwritten"
            );
            assert_eq!(
                self.conn.deadline(),
                None,
                "a deadline while bytes are unwritten"
            );
        } else if c.pending.is_some() {
            assert!(
                !self.conn.wants_read(),
                "wants_read while an action is pending"
            );
            assert_eq!(
                self.conn.deadline(),
                None,
                "a deadline while waiting for the runtime"
            );
        } else {
            assert!(
                self.conn.wants_read(),
                "neither waiting for the runtime nor for the client"
            );
            assert!(
                self.conn.deadline().is_some(),
                "waiting for the client with no deadline"
            );
        }
    }

    /// Bytes from the client (none after EOF: a runtime reads nothing more).
    pub fn receive(&mut self, bytes: &[u8]) {
        if !self.checker.eof {
            self.step(Input::Received(bytes));
        }
    }

    /// Jumps to the connection's deadline (or 1 ms before it) if it is later than now,
    /// and hands in `Timeout`.
    pub fn at_deadline(&mut self, before: bool) {
        if let Some(d) = self.conn.deadline() {
            let target = if before { d.saturating_sub(1) } else { d };
            if target > self.now.mono_ms {
                self.set_time(target);
            }
        }
        self.step(Input::Timeout);
    }

    /// Does one thing the connection waits for, as a runtime would: opens the file
    /// (result from `choice` and the reader), writes the upload, or reports the answer
    /// written. With nothing awaited, hands in a stray `Written`.
    pub fn runtime(&mut self, choice: u8, r: &mut Reader<'_>) {
        match self.awaits() {
            Awaits::File => self.step(Input::FileOpened(file_answer(choice, r))),
            Awaits::Upload => self.step(Input::UploadWritten(upload_answer(choice))),
            Awaits::Write | Awaits::Nothing => self.step(Input::Written),
        }
    }

    /// Does everything the connection waits for, `ms` apart, up to `limit` inputs;
    /// returns whether it ended with nothing awaited.
    pub fn catch_up(&mut self, ms: u64, limit: usize, r: &mut Reader<'_>) -> bool {
        for _ in 0..limit {
            if self.awaits() == Awaits::Nothing {
                return true;
            }
            self.advance(ms);
            let choice = r.byte();
            self.runtime(choice, r);
        }
        self.awaits() == Awaits::Nothing
    }

    /// The end of every script: catch up, half-close, catch up; the connection must
    /// close.
    pub fn finish(&mut self, r: &mut Reader<'_>) {
        assert!(
            self.catch_up(1, 256, r),
            "still waiting for the runtime after 256 inputs"
        );
        self.step(Input::Eof);
        assert!(
            self.catch_up(1, 256, r),
            "still waiting for the runtime after 256 inputs"
        );
        assert!(
            self.checker.closed,
            "after EOF and everything written the connection is still open"
        );
        assert!(
            self.checker.finals as usize <= self.shadow.requests.len() + 1,
            "more responses than requests"
        );
    }
}

/// The `connection` target: decodes `data` as a script and runs it.
///
/// Byte 0 picks `max_body` from [`MAX_BODIES`]. Then one opcode per step: its high
/// nibble is how much time passes before the step's input ([`Reader::time_step`]), its
/// low nibble the input:
/// 0, 1, 14 bytes (a length from [`Reader::chunk_len`], then that many bytes);
/// 2, 15 a canned request (next byte indexes [`CANNED`]); 3 EOF; 4 `Timeout`;
/// 5 jump to the deadline (next byte odd: 1 ms before it), then `Timeout`;
/// 6 the runtime does what is awaited (next byte the choice, see [`file_answer`] and
/// [`upload_answer`]; a stray `Written` if nothing is); 7 `FileOpened` (choice byte,
/// expected or not); 8 `UploadWritten` (choice byte, expected or not); 9 `Written`;
/// 10 `WriteFailed`; 11 `Drain`; 12 the runtime does everything awaited, the step's time
/// before each input (up to 64); 13 `Received` of nothing.
/// At the end everything awaited is done, EOF is sent, and the connection must close.
pub fn run_script(data: &[u8]) {
    let mut r = Reader::new(data);
    let max_body = MAX_BODIES[usize::from(r.byte() % 4)];
    let mut h = Harness::new(max_body);
    let mut steps = 0;
    while !r.is_empty() && steps < 512 {
        steps += 1;
        let op = r.byte();
        let ms = r.time_step(op >> 4);
        match op & 0x0f {
            12 => {
                h.catch_up(ms, 64, &mut r);
                continue;
            }
            _ => h.advance(ms),
        }
        match op & 0x0f {
            0 | 1 | 14 => {
                let n = r.chunk_len();
                let bytes = r.take(n);
                h.receive(bytes);
            }
            2 | 15 => {
                let i = usize::from(r.byte()) % CANNED.len();
                h.receive(CANNED[i]);
            }
            3 => h.step(Input::Eof),
            4 => h.step(Input::Timeout),
            5 => {
                let before = r.byte() % 2 == 1;
                h.at_deadline(before);
            }
            6 => {
                let choice = r.byte();
                h.runtime(choice, &mut r);
            }
            7 => {
                let choice = r.byte();
                let result = file_answer(choice, &mut r);
                h.step(Input::FileOpened(result));
            }
            8 => {
                let choice = r.byte();
                h.step(Input::UploadWritten(upload_answer(choice)));
            }
            9 => h.step(Input::Written),
            10 => h.step(Input::WriteFailed),
            11 => h.step(Input::Drain),
            _ => h.receive(&[]),
        }
    }
    h.finish(&mut r);
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

/// Feeds `pieces` to a fresh connection; after each piece the runtime does everything
/// awaited, the same way in every run: files opened by [`split_file_answer`], uploads
/// written, and every answer reported `Written` as soon as it is handed out (so the next
/// pipelined request is read). Returns every action.
pub fn run_pieces(max_body: u64, pieces: &[&[u8]], eof: bool) -> Vec<Action> {
    let mut h = Harness::new(max_body);
    let catch_up = |h: &mut Harness| {
        for _ in 0..256 {
            match h.awaits() {
                Awaits::Nothing => return,
                Awaits::File => {
                    let Some(Action::OpenFile(p)) = h.log.last() else {
                        panic!("pending file without OpenFile");
                    };
                    let result = split_file_answer(p.as_str());
                    h.step(Input::FileOpened(result));
                }
                Awaits::Upload => h.step(Input::UploadWritten(Ok(()))),
                Awaits::Write => h.step(Input::Written),
            }
        }
        panic!("endless answers");
    };
    for piece in pieces {
        h.receive(piece);
        catch_up(&mut h);
    }
    if eof {
        h.step(Input::Eof);
        catch_up(&mut h);
        assert!(h.checker.closed, "open after EOF");
    }
    h.log
}

/// The `split` target. Byte 0: `max_body` (bits 0–1) and whether EOF follows (bit 2);
/// byte 1: how many split points (mod 16), each a u16 (mod the data length); the rest
/// is the request bytes, fed whole and then cut at those points.
pub fn run_split(data: &[u8]) {
    let mut r = Reader::new(data);
    let flags = r.byte();
    let max_body = MAX_BODIES[usize::from(flags % 4)];
    let eof = flags & 4 != 0;
    let n = usize::from(r.byte() % 16);
    let mut cuts: Vec<u16> = (0..n).map(|_| r.u16()).collect();
    let bytes = r.rest();
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
