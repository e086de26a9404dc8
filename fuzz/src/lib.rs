//! # protocol-fuzz — the harness shared by the fuzz targets
//!
//! Three targets (in `fuzz_targets/`) drive the sans-IO core:
//!
//! - `parse`: raw bytes into [`protocol::parse::parse_head`] ([`check_parse`]).
//! - `connection`: the input is decoded as a script of timed inputs for one
//!   [`protocol::Connection`] ([`run_script`]); after every input a [`Checker`] looks at
//!   the actions it produced, and a [`Shadow`] counts the requests the client has sent
//!   so far, so the checker can tell how many answers are allowed. Some scripts turn
//!   directory listings on: a fake file system answers `OpenFile` with directories and
//!   `ListDir` with entries made from the input ([`dir_answer`]), and the checker reads
//!   the redirects and the listing pages it gets back ([`check_listing`]).
//! - `split`: the same request bytes fed whole and fed in pieces must give the same
//!   actions ([`run_split`]).
//!
//! The script format is a hand-written byte decoder ([`Reader`]) rather than `arbitrary`,
//! so that the seed corpus can be written by hand (see `fuzz/make_seeds.py`) and a
//! crashing input reads as a list of events (`fuzz/README.md` tells how).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use std::collections::HashSet;

use protocol::framing::{ChunkedDecoder, Framing};
use protocol::listing::MAX_SHOWN;
use protocol::parse::{parse_head, Method, Parsed};
use protocol::target::{resolve_path, split_absolute};
use protocol::{
    Action, Config, Connection, DirEntry, FileError, FileMeta, Input, Listing, Now, PathRules,
    UploadError,
};

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
/// limit, the chosen body limit and directory listings on or off (`--dir-listing`).
pub fn config(max_body: u64, dir_listing: bool) -> Arc<Config> {
    let mut c = Config::new("127.0.0.1", PORT, &[]);
    c.idle_timeout_ms = IDLE_TIMEOUT_MS;
    c.head_timeout_ms = HEAD_TIMEOUT_MS;
    c.body_timeout_ms = BODY_TIMEOUT_MS;
    c.max_requests = MAX_REQUESTS;
    c.max_body = max_body;
    c.dir_listing = dir_listing;
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
    // Directories (listings on: a redirect without the slash, a listing with it): HTML,
    // JSON, HEAD, a query to keep, `//` that must not become a protocol-relative
    // redirect, escaped and non-ASCII names, absolute form.
    b"GET /pub HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET /pub/ HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"HEAD /pub/ HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET /pub/?sort=name HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: application/json\r\n\r\n",
    b"GET //pub?x=%20&y=/ HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"HEAD /a%20b/c%0Ad HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET http://127.0.0.1:8080/docs?q#f HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /caf%C3%A9/%3Cb%3E/ HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: text/html;q=0.5, application/json\r\n\r\n",
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

/// An FNV-1a hash of a path: the fake file systems answer the same path the same way.
fn path_hash(path: &str) -> u64 {
    path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A small fake file system that answers by the path: a name without a dot is a
/// directory, `index.html` is missing unless `index` (so directories get listed), any
/// other name is a file whose size and date come from the path.
pub fn fake_fs(path: &str, index: bool) -> Result<FileMeta, FileError> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let h = path_hash(path);
    if name == "index.html" && !index {
        Err(FileError::NotFound)
    } else if !name.contains('.') {
        Ok(FileMeta {
            len: 4096,
            mtime_secs: UNIX_START - h % 1_000_000,
            mtime_nanos: 0,
            is_dir: true,
        })
    } else {
        Ok(FileMeta {
            len: (h >> 8) % 5000,
            mtime_secs: 1_600_000_000 + (h >> 20) % 100_000,
            mtime_nanos: (h >> 40) as u32 % 1_000_000_000,
            is_dir: false,
        })
    }
}

/// Names that are hard to put in a page, a link or JSON, and hidden ones.
pub const TRICKY_NAMES: &[&str] = &[
    "a b#c?d%e\"f'g<h>&i.txt",
    "caf\u{e9}.txt",
    "new\nline.txt",
    "<script>alert(1)</script>",
    "&amp;&#39;&lt;",
    "%2e%2e",
    "%00%2F",
    "..",
    ".",
    ".git",
    ".hidden",
    ".<b>&\"",
    "-",
    "~",
    "index.html",
    "\u{202e}gnp.exe",
    "c1\u{85}ctl\u{9b}",
    "del\u{7f}",
    "tab\tcr\rlf\n",
    "\u{65e5}\u{672c}\u{8a9e}",
    "\u{1f511} key",
    "line\u{2028}sep",
    "\"onmouseover=\"x",
    "javascript:alert(1)",
    "?query",
    "#frag",
    "100%",
    "a+b=c;d,e",
    "trailing space ",
    " leading",
    "back\\slash",
    "\u{fffd}\u{feff}bom",
    "</a></td></tr>",
    "\u{1}\u{1f}",
];

/// Characters names are built from (one input byte each).
const NAME_CHARS: &[char] = &[
    'a',
    'b',
    'Z',
    '0',
    '9',
    '.',
    '-',
    '_',
    '~',
    ' ',
    '"',
    '\'',
    '<',
    '>',
    '&',
    '#',
    '?',
    '%',
    '+',
    ';',
    '=',
    ':',
    '@',
    '!',
    '$',
    '(',
    ')',
    '*',
    ',',
    '[',
    ']',
    '{',
    '}',
    '|',
    '^',
    '`',
    '\\',
    '\n',
    '\r',
    '\t',
    '\u{1}',
    '\u{1b}',
    '\u{7f}',
    '\u{80}',
    '\u{85}',
    '\u{9f}',
    '\u{a0}',
    '\u{e9}',
    '\u{df}',
    '\u{3c3}',
    '\u{5d0}',
    '\u{65e5}',
    '\u{200b}',
    '\u{200d}',
    '\u{2028}',
    '\u{202e}',
    '\u{2400}',
    '\u{fe0f}',
    '\u{feff}',
    '\u{fffd}',
    '\u{1f511}',
    '\u{10ffff}',
];

/// One directory entry's name from the input: raw bytes (lossy UTF-8), a tricky name,
/// both, or characters from [`NAME_CHARS`]. Never empty, never with `/` or NUL (a
/// runtime reading a directory never sees such a name).
fn entry_name(kind: u8, r: &mut Reader<'_>) -> String {
    let mut name = match kind {
        0..=2 => {
            let n = usize::from(r.byte() % 40);
            String::from_utf8_lossy(r.take(n)).into_owned()
        }
        3 => TRICKY_NAMES[usize::from(r.byte()) % TRICKY_NAMES.len()].to_string(),
        4 => {
            let t = TRICKY_NAMES[usize::from(r.byte()) % TRICKY_NAMES.len()];
            let n = usize::from(r.byte() % 16);
            format!("{t}{}", String::from_utf8_lossy(r.take(n)))
        }
        _ => {
            let n = usize::from(r.byte() % 24);
            r.take(n)
                .iter()
                .map(|&b| NAME_CHARS[usize::from(b) % NAME_CHARS.len()])
                .collect()
        }
    };
    name = name.replace(['/', '\0'], "_");
    if name.is_empty() {
        name.push('_');
    }
    name
}

/// One entry from the input: a flags byte (bit 0 a directory, bit 1 hidden, bits 2–4
/// how the name is made, bits 5–6 the size, bit 7 the date), then the name's bytes.
fn dir_entry(r: &mut Reader<'_>) -> DirEntry {
    let f = r.byte();
    let mut name = entry_name((f >> 2) & 7, r);
    if f & 2 != 0 && !name.starts_with('.') {
        name.insert(0, '.');
    }
    let size = match (f >> 5) & 3 {
        0 => 0,
        1 => u64::from(r.byte()),
        2 => u64::from(r.u16()) << 10,
        _ => r.u64(),
    };
    let mtime_secs = if f & 0x80 != 0 {
        r.u64()
    } else {
        UNIX_START - u64::from(r.byte()) * 86_400
    };
    DirEntry {
        name,
        is_dir: f & 1 != 0,
        size,
        mtime_secs,
    }
}

/// Makes every name unique (a directory never holds one name twice).
fn dedupe(entries: &mut [DirEntry]) {
    let mut seen = HashSet::with_capacity(entries.len());
    for (i, e) in entries.iter_mut().enumerate() {
        while !seen.insert(e.name.clone()) {
            e.name.push_str(&format!("~{i}"));
        }
    }
}

/// What the fake runtime read of a directory: the entries and how many more there were.
pub type DirAnswer = Result<(Vec<DirEntry>, u64), FileError>;

/// How the fake runtime answers a `ListDir`, from one choice byte (and more bytes for
/// the entries): `% 8` is 5 `NotFound`, 6 `Forbidden`, 7 `Other`, else a listing. Its
/// count byte `n`: [`HUGE_LISTING`], around [`MAX_SHOWN`] visible entries (from 128
/// under to 127 over the cap, by the next byte) plus hidden ones; else below 192,
/// `n % 64` entries from the input ([`dir_entry`]); else `(n - 191) * 4` entries (up to
/// 252) made from one of them (every third a directory, every fifth hidden). Then
/// `unread`: 0, a byte, a u16 or a u32.
pub fn dir_answer(choice: u8, r: &mut Reader<'_>) -> DirAnswer {
    match choice % 8 {
        5 => return Err(FileError::NotFound),
        6 => return Err(FileError::Forbidden),
        7 => return Err(FileError::Other),
        _ => {}
    }
    let n = r.byte();
    let mut entries = match n {
        HUGE_LISTING => huge_listing(r),
        0..=191 => (0..n % 64).map(|_| dir_entry(r)).collect::<Vec<_>>(),
        _ => {
            let base = dir_entry(r);
            (0..usize::from(n - 191) * 4)
                .map(|i| DirEntry {
                    name: match i % 5 {
                        0 => format!(".{}{i}", base.name),
                        _ => format!("{}{i}", base.name),
                    },
                    is_dir: i % 3 == 0,
                    size: base.size.wrapping_add(i as u64),
                    mtime_secs: base.mtime_secs,
                })
                .collect()
        }
    };
    dedupe(&mut entries);
    let unread = match r.byte() % 4 {
        0 => 0,
        1 => u64::from(r.byte()),
        2 => u64::from(r.u16()),
        _ => u64::from(r.u16()) << 16 | u64::from(r.u16()),
    };
    Ok((entries, unread))
}

/// The count byte of a huge listing (past the cap). Not 0 or 0xFF, which mutations
/// write often: a huge listing costs some 20 ms to render and check.
pub const HUGE_LISTING: u8 = 0x5a;

/// Around [`MAX_SHOWN`] visible entries (the next byte says how many: from 128 under to
/// 127 over the cap), every seventh a directory, and one hidden entry per 50.
fn huge_listing(r: &mut Reader<'_>) -> Vec<DirEntry> {
    let visible = MAX_SHOWN - 128 + usize::from(r.byte());
    let mut v = Vec::with_capacity(visible + visible / 50 + 1);
    for i in 0..visible {
        v.push(DirEntry {
            name: format!("f{i:05}"),
            is_dir: i % 7 == 0,
            size: i as u64,
            mtime_secs: UNIX_START,
        });
        if i % 50 == 0 {
            v.push(DirEntry {
                name: format!(".h{i}"),
                is_dir: false,
                size: 1,
                mtime_secs: UNIX_START,
            });
        }
    }
    v
}

/// The `Input::DirListed` for a fake runtime's answer.
pub fn dir_input(answer: &DirAnswer) -> Input<'_> {
    Input::DirListed(match answer {
        Ok((entries, unread)) => Ok(Listing {
            entries,
            unread: *unread,
        }),
        Err(e) => Err(*e),
    })
}

/// How the fake runtime answers a `WriteUpload`.
pub fn upload_answer(choice: u8) -> Result<(), UploadError> {
    match choice % 4 {
        0 | 1 => Ok(()),
        2 => Err(UploadError::AlreadyExists {
            reseed: std::array::from_fn(|i| choice.wrapping_mul(31).wrapping_add(i as u8)),
        }),
        _ if choice & 0x10 != 0 => Err(UploadError::Unavailable),
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
    DirListed(Result<(), FileError>),
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
            Input::DirListed(r) => Step::DirListed(r.map(|_| ())),
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
    List,
}

/// Checks every action the connection emits against the invariants of SPEC
/// "Connections" and the one-answer-in-flight rule. Panics (a fuzz crash) on the first
/// violation.
pub struct Checker {
    max_requests: u32,
    max_body: u64,
    /// `Config::dir_listing`.
    pub dir_listing: bool,
    /// The path of the last `OpenFile`, and of the last `ListDir`.
    pub last_open: String,
    pub last_list: String,
    /// Final (non-1xx) responses seen.
    pub finals: u32,
    /// `Close` seen.
    pub closed: bool,
    /// An `OpenFile`, `WriteUpload` or `ListDir` waiting for its answer.
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
    content_type: Option<String>,
    /// Every `Location` field.
    locations: Vec<String>,
}

impl Checker {
    pub fn new(max_requests: u32, max_body: u64, dir_listing: bool) -> Self {
        Checker {
            max_requests,
            max_body,
            dir_listing,
            last_open: String::new(),
            last_list: String::new(),
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

    /// Whether the connection expects this input now. An unexpected one (a file,
    /// upload or directory result not asked for, `Written`/`WriteFailed` with nothing unwritten,
    /// anything after `Close`) must be ignored: no action, and `ignored()` counts it.
    pub fn expects(&self, step: Step) -> bool {
        if self.closed {
            return false;
        }
        match step {
            Step::FileOpened => self.pending == Some(Pending::File),
            Step::UploadWritten(_) => self.pending == Some(Pending::Upload),
            Step::DirListed(_) => self.pending == Some(Pending::List),
            Step::Written | Step::WriteFailed => self.unwritten,
            _ => true,
        }
    }

    /// Checks the actions an expected input produced (at time `now`), in order;
    /// `listing` is what a `DirListed` step handed in.
    pub fn check(
        &mut self,
        step: Step,
        now: Now,
        actions: &[Action],
        shadow: &Shadow,
        listing: Option<&Listing<'_>>,
    ) {
        let close_due = self.close_pending;
        let tries_before = self.upload_tries;
        let finals_before = self.finals;
        match step {
            Step::Eof => self.eof = true,
            Step::Drain => self.draining = true,
            Step::FileOpened | Step::UploadWritten(_) | Step::DirListed(_) => self.pending = None,
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
                    let head = self.response(bytes, sendfile, shadow, &date, listing);
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
                    self.last_open.clear();
                    self.last_open.push_str(path.as_str());
                    self.pending = Some(Pending::File);
                }
                Action::ListDir(path) => {
                    let dir = path.as_str();
                    assert!(self.dir_listing, "ListDir({dir:?}) with listings off");
                    assert_eq!(
                        step,
                        Step::FileOpened,
                        "ListDir({dir:?}) not right after a missing index.html"
                    );
                    if !dir.is_empty() {
                        check_path(dir);
                    }
                    let req = shadow
                        .requests
                        .get(self.finals as usize)
                        .expect("a ListDir for a request never sent");
                    assert!(req.is_get_or_head, "ListDir for {:?}", req.target);
                    let path_part = target_path(&req.target);
                    assert!(
                        path_part.ends_with('/'),
                        "ListDir({dir:?}) for a target not ending in '/': {:?}",
                        req.target
                    );
                    // The very directory the target names: its index.html was missing.
                    let index = resolve_path(path_part, PathRules::Posix)
                        .unwrap_or_else(|r| panic!("ListDir for a refused target: {r:?}"));
                    let expected = index.as_str().strip_suffix("index.html").unwrap_or("");
                    assert_eq!(
                        dir,
                        expected.trim_end_matches('/'),
                        "ListDir of another directory than {:?} names",
                        req.target
                    );
                    assert_eq!(
                        self.last_open,
                        index.as_str(),
                        "ListDir({dir:?}) though index.html was not the file missing"
                    );
                    self.last_list.clear();
                    self.last_list.push_str(dir);
                    self.pending = Some(Pending::List);
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
            Step::DirListed(result) => {
                let expected = match result {
                    Ok(()) => 200,
                    Err(FileError::NotFound) => 404,
                    Err(FileError::Forbidden) => 403,
                    Err(FileError::Other) => 500,
                };
                assert_eq!(
                    statuses,
                    [expected],
                    "a directory result {result:?} answered {actions:?}"
                );
            }
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
                Err(UploadError::Unavailable) => assert_eq!(
                    statuses,
                    [503],
                    "an unavailable store not answered 503: {actions:?}"
                ),
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
        listing: Option<&Listing<'_>>,
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
        if status == 301 {
            self.check_redirect(&head, shadow.requests.get(index));
        } else if status != 201 {
            // Only a redirect and a created upload say where to go.
            assert!(head.locations.is_empty(), "a {status} with Location");
        }
        if let Some(listing) = listing.filter(|_| status == 200) {
            let req = shadow
                .requests
                .get(index)
                .expect("a listing for a request never sent");
            assert!(sendfile.is_none(), "a listing with SendFile");
            let cl = head
                .content_length
                .expect("a listing without Content-Length");
            let ct = head
                .content_type
                .as_deref()
                .expect("a listing without Content-Type");
            check_listing(&self.last_list, req, ct, cl, inline, listing);
        }
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

impl Checker {
    /// A `301` comes only with listings on, for a `GET`/`HEAD` of a directory named
    /// without its slash: one `Location`, a path on this site (`/`, never `//`: a
    /// protocol-relative URL would send the client to another host), no raw control or
    /// space byte, and a request for it opens that directory's index.html.
    fn check_redirect(&self, head: &Head, req: Option<&ShadowRequest>) {
        assert!(self.dir_listing, "a 301 with listings off");
        let req = req.expect("a 301 for a request never sent");
        assert!(req.is_get_or_head, "a 301 for {:?}", req.target);
        let path_part = target_path(&req.target);
        assert!(
            !path_part.ends_with('/'),
            "a 301 for a target that ends in '/': {:?}",
            req.target
        );
        let [location] = head.locations.as_slice() else {
            panic!("a 301 with Location fields {:?}", head.locations);
        };
        assert!(
            location.starts_with('/') && !location.starts_with("//"),
            "Location {location:?} (for {:?}) is not a path on this site",
            req.target
        );
        assert!(
            location.bytes().all(|b| (0x21..0x7f).contains(&b)),
            "Location {location:?} has a raw control, space or non-ASCII byte"
        );
        let loc_path = target_path(location);
        assert!(
            loc_path.ends_with('/'),
            "Location {location:?} without its slash"
        );
        let resolved = resolve_path(loc_path, PathRules::Posix)
            .unwrap_or_else(|r| panic!("Location {location:?} would be refused: {r:?}"));
        assert_eq!(
            resolved.as_str(),
            format!("{}/index.html", self.last_open),
            "Location {location:?} is not the directory {:?} that was opened",
            self.last_open
        );
        // The query is kept.
        if let Some(i) = req.target.find('?') {
            assert!(
                location.ends_with(&req.target[i..]),
                "Location {location:?} lost the query of {:?}",
                req.target
            );
        }
    }
}

/// The path part of a request target (origin or absolute form), without query or
/// fragment.
fn target_path(target: &str) -> &str {
    let path = if target.starts_with('/') {
        target
    } else {
        split_absolute(target).map_or(target, |(_, path)| path)
    };
    path.split(['?', '#']).next().unwrap_or("")
}

/// The entries a listing shows, in order (directories first, then by name), never a
/// hidden one; and how many it must say it left out (past [`MAX_SHOWN`], and unread).
fn expected_entries<'a>(listing: &Listing<'a>) -> (Vec<&'a DirEntry>, u64) {
    let mut shown: Vec<&DirEntry> = listing
        .entries
        .iter()
        .filter(|e| !e.name.starts_with('.') && !e.name.is_empty() && !e.name.contains('/'))
        .collect();
    shown.sort_by(|a, b| (!a.is_dir, &a.name).cmp(&(!b.is_dir, &b.name)));
    let left_out = (shown.len().saturating_sub(MAX_SHOWN) as u64).saturating_add(listing.unread);
    shown.truncate(MAX_SHOWN);
    (shown, left_out)
}

/// A `200` listing of directory `dir` (a `SafePath`, empty for the root) for `req`.
/// JSON when `Accept` prefers it: an array whose names and types are exactly the
/// visible entries, in order. Else HTML: every `href` percent-encoded (unreserved
/// characters, `%XX`, `/`), decoding to exactly the visible entries in order; link texts
/// and the title escaped; the "N more" line exactly when entries were left out; and the
/// page the same with the hidden entries removed and the rest in reverse order (it
/// depends on nothing of a hidden entry, nor on the order read). A `HEAD` gets no body
/// and the `Content-Length` of the `GET`.
pub fn check_listing(
    dir: &str,
    req: &ShadowRequest,
    content_type: &str,
    content_length: u64,
    body: &[u8],
    listing: &Listing<'_>,
) {
    let title = if dir.is_empty() {
        "/".to_string()
    } else {
        format!("/{dir}/")
    };
    let json = match content_type {
        "application/json" => true,
        "text/html; charset=utf-8" => false,
        other => panic!("a listing of type {other:?}"),
    };
    assert_eq!(
        json, req.accept_json,
        "a {content_type} listing for Accept preferring JSON: {}",
        req.accept_json
    );
    if req.is_head {
        assert!(body.is_empty(), "a listing body for HEAD");
        let full = if json {
            protocol::listing::json(listing)
        } else {
            protocol::listing::html(&title, listing)
        };
        assert_eq!(
            content_length,
            full.len() as u64,
            "HEAD's Content-Length differs from GET's"
        );
        return;
    }
    let (shown, left_out) = expected_entries(listing);
    if json {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
            panic!(
                "a JSON listing that does not parse ({e}): {}",
                String::from_utf8_lossy(body)
            )
        });
        let items = v.as_array().expect("a JSON listing that is not an array");
        let names: Vec<(&str, &str)> = items
            .iter()
            .map(|i| {
                (
                    i["name"].as_str().expect("a JSON entry without a name"),
                    i["type"].as_str().expect("a JSON entry without a type"),
                )
            })
            .collect();
        let expected: Vec<(&str, &str)> = shown
            .iter()
            .map(|e| (e.name.as_str(), if e.is_dir { "dir" } else { "file" }))
            .collect();
        assert!(
            names == expected,
            "JSON entries {names:?}, expected {expected:?}"
        );
        for (item, e) in items.iter().zip(&shown) {
            assert_eq!(
                item["size"].as_u64(),
                Some(e.size),
                "JSON size of {:?}",
                e.name
            );
            let modified = item["modified"].as_str().expect("JSON modified");
            assert!(
                modified.len() == 20 && modified.ends_with('Z') && modified.as_bytes()[10] == b'T',
                "JSON modified {modified:?}"
            );
        }
        return;
    }
    let page = std::str::from_utf8(body).expect("an HTML listing that is not UTF-8");
    let title_text = page
        .split_once("<title>Index of ")
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map(|(t, _)| t)
        .expect("a listing without its title");
    check_html_text(title_text, &title);
    let links: Vec<(&str, &str)> = page
        .split("<a href=\"")
        .skip(1)
        .map(|s| {
            let (href, rest) = s.split_once("\">").expect("an unterminated href");
            let text = rest.split_once("</a>").expect("an unterminated link").0;
            (href, text)
        })
        .collect();
    let rows = match links.split_first() {
        Some((("../", "../"), rest)) if !dir.is_empty() => rest,
        _ if dir.is_empty() => &links[..],
        _ => panic!("a listing of {title:?} without its ../ link first"),
    };
    assert_eq!(
        rows.len(),
        shown.len(),
        "{} links for {} visible entries",
        rows.len(),
        shown.len()
    );
    for ((href, text), e) in rows.iter().zip(&shown) {
        let slash = if e.is_dir { "/" } else { "" };
        let encoded = href
            .strip_prefix("./")
            .and_then(|h| h.strip_suffix(slash))
            .unwrap_or_else(|| panic!("href {href:?} for {:?}", e.name));
        assert!(
            percent_decode_unreserved(encoded).as_deref() == Some(e.name.as_bytes()),
            "href {href:?} is not {:?} percent-encoded (or not in order)",
            e.name
        );
        let name = text
            .strip_suffix(slash)
            .unwrap_or_else(|| panic!("link text {text:?} for {:?}", e.name));
        check_html_text(name, &e.name);
    }
    let more = format!("<p class=\"more\">{left_out} more entries not shown.</p>");
    assert_eq!(
        page.contains("class=\"more\""),
        left_out > 0,
        "{left_out} entries left out, and the page says otherwise"
    );
    if left_out > 0 {
        assert!(page.contains(&more), "the page does not say {more:?}");
    }
    // The page does not depend on hidden entries (so no hidden name, nor anything
    // derived from one, is in it), nor on the order the entries were read in.
    let visible: Vec<DirEntry> = listing
        .entries
        .iter()
        .rev()
        .filter(|e| !e.name.starts_with('.'))
        .cloned()
        .collect();
    let clean = protocol::listing::html(
        &title,
        &Listing {
            entries: &visible,
            unread: listing.unread,
        },
    );
    if clean != body {
        let at = clean.iter().zip(body).take_while(|(a, b)| a == b).count();
        let around = |p: &[u8]| {
            let start = at.saturating_sub(120);
            String::from_utf8_lossy(&p[start..p.len().min(at + 120)]).into_owned()
        };
        panic!(
            "the page changes with hidden entries or with the order of entries, at byte \
             {at}:\n  served: {:?}\n  without hidden, reversed: {:?}",
            around(body),
            around(&clean)
        );
    }
}

/// Text in HTML: no raw `<`, `>`, quote or control character, `&` only in `&amp;`,
/// `&lt;`, `&gt;`, `&quot;`, `&#39;`; unescaped it is `expected`, each control character
/// shown as one other character.
fn check_html_text(text: &str, expected: &str) {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        assert!(
            !matches!(c, '<' | '>' | '"' | '\'') && !c.is_control(),
            "raw {c:?} in HTML text {text:?}"
        );
        if c == '&' {
            let (entity, ch) = [
                ("&amp;", '&'),
                ("&lt;", '<'),
                ("&gt;", '>'),
                ("&quot;", '"'),
                ("&#39;", '\''),
            ]
            .into_iter()
            .find(|(entity, _)| rest.starts_with(entity))
            .unwrap_or_else(|| panic!("a raw & in HTML text {text:?}"));
            out.push(ch);
            rest = &rest[entity.len()..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    let (got, want): (Vec<char>, Vec<char>) = (out.chars().collect(), expected.chars().collect());
    assert!(
        got.len() == want.len() && got.iter().zip(&want).all(|(g, w)| g == w || w.is_control()),
        "HTML text {text:?} does not show {expected:?}"
    );
}

/// Decodes an href segment that may hold only unreserved characters and `%XX`; `None`
/// for any other byte (a `/`, a quote, a space, a raw non-ASCII byte) or a bad escape.
fn percent_decode_unreserved(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            c if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
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
    let mut content_type = None;
    let mut locations = Vec::new();
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
            "content-type" => {
                assert!(content_type.is_none(), "two Content-Type fields");
                content_type = Some(value.to_string());
            }
            "location" => locations.push(value.to_string()),
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
        content_type,
        locations,
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
/// Control characters other than NUL are legal in names (since issue 15: a name with a
/// newline must round-trip from a listing).
pub fn check_path(p: &str) {
    assert!(!p.is_empty(), "empty path");
    assert!(!p.starts_with('/'), "absolute path {p:?}");
    assert!(!p.contains('\0'), "NUL in path {p:?}");
    assert!(!p.contains('\\'), "backslash in path {p:?}");
    for seg in p.split('/') {
        assert!(seg != ".." && seg != ".", "dot segment in path {p:?}");
        assert!(!seg.is_empty(), "empty segment in path {p:?}");
        assert!(!seg.starts_with('.'), "hidden segment in path {p:?}");
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
    List,
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
    pub fn new(max_body: u64, dir_listing: bool) -> Self {
        let now = Now::new(0, UNIX_START);
        Harness {
            conn: Connection::new(config(max_body, dir_listing), now, [7; 16], "fuzz"),
            checker: Checker::new(MAX_REQUESTS, max_body, dir_listing),
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
            Some(Pending::List) => Awaits::List,
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
            let listing = match input {
                Input::DirListed(Ok(ref l)) => Some(l),
                _ => None,
            };
            self.checker
                .check(step, self.now, &actions, &self.shadow, listing);
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
    /// (result from `choice` and the reader, see [`file_answer`]; a choice of 0xF0 and
    /// up asks [`fake_fs`], the lowest bit saying whether index.html exists), writes the
    /// upload, lists the directory ([`dir_answer`]) or reports the answer written. With
    /// nothing awaited, hands in a stray `Written`.
    pub fn runtime(&mut self, choice: u8, r: &mut Reader<'_>) {
        match self.awaits() {
            Awaits::File if choice >= 0xf0 => {
                let result = fake_fs(&self.checker.last_open, choice & 1 == 1);
                self.step(Input::FileOpened(result))
            }
            Awaits::File => self.step(Input::FileOpened(file_answer(choice, r))),
            Awaits::Upload => self.step(Input::UploadWritten(upload_answer(choice))),
            Awaits::List => {
                let answer = dir_answer(choice, r);
                self.step(dir_input(&answer))
            }
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
/// Byte 0 picks `max_body` from [`MAX_BODIES`] (bits 0–1) and turns directory listings
/// on (bit 2). Then one opcode per step: its high nibble is how much time passes before
/// the step's input ([`Reader::time_step`]), its low nibble the input:
/// 0, 1 bytes (a length from [`Reader::chunk_len`], then that many bytes);
/// 2, 15 a canned request (next byte indexes [`CANNED`]); 3 EOF; 4 `Timeout`;
/// 5 jump to the deadline (next byte odd: 1 ms before it), then `Timeout`;
/// 6 the runtime does what is awaited (next byte the choice, see [`Harness::runtime`];
/// a stray `Written` if nothing is); 7 `FileOpened` (choice byte, expected or not);
/// 8 `UploadWritten` (choice byte, expected or not); 9 `Written`; 10 `WriteFailed`;
/// 11 `Drain`; 12 the runtime does everything awaited, the step's time before each
/// input (up to 64); 13 `Received` of nothing; 14 `DirListed` (choice byte and entries,
/// see [`dir_answer`], expected or not).
/// At the end everything awaited is done, EOF is sent, and the connection must close.
pub fn run_script(data: &[u8]) {
    script_harness(data);
}

/// Runs the script like [`run_script`] and hands back the harness (its `log` holds
/// every action), for looking at what a script does.
pub fn script_harness(data: &[u8]) -> Harness {
    let mut r = Reader::new(data);
    let flags = r.byte();
    let max_body = MAX_BODIES[usize::from(flags % 4)];
    let mut h = Harness::new(max_body, flags & 4 != 0);
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
            0 | 1 => {
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
            14 => {
                let choice = r.byte();
                let answer = dir_answer(choice, &mut r);
                h.step(dir_input(&answer));
            }
            9 => h.step(Input::Written),
            10 => h.step(Input::WriteFailed),
            11 => h.step(Input::Drain),
            _ => h.receive(&[]),
        }
    }
    h.finish(&mut r);
    h
}

/// A deterministic answer for a path (the same in both runs of `split`).
fn split_file_answer(path: &str) -> Result<FileMeta, FileError> {
    let h = path_hash(path);
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

/// A deterministic listing of a directory (the same in both runs of `split`): an error,
/// or some of [`TRICKY_NAMES`] (hidden ones too), files and directories.
fn split_dir_answer(dir: &str) -> DirAnswer {
    let h = path_hash(dir);
    match h % 8 {
        0 => Err(FileError::NotFound),
        1 => Err(FileError::Forbidden),
        2 => Err(FileError::Other),
        _ => {
            let n = (h >> 8) as usize % (TRICKY_NAMES.len() + 1);
            let entries = TRICKY_NAMES[..n]
                .iter()
                .enumerate()
                .map(|(i, name)| DirEntry {
                    name: name.to_string(),
                    is_dir: (h >> (16 + i)) & 1 == 1,
                    size: (h >> i) % 100_000,
                    mtime_secs: UNIX_START - (h >> 24) % 1_000_000,
                })
                .collect();
            Ok((entries, (h >> 56) % 3))
        }
    }
}

/// Feeds `pieces` to a fresh connection; after each piece the runtime does everything
/// awaited, the same way in every run: files opened by [`split_file_answer`],
/// directories listed by [`split_dir_answer`], uploads written, and every answer
/// reported `Written` as soon as it is handed out (so the next pipelined request is
/// read). Returns every action.
pub fn run_pieces(max_body: u64, dir_listing: bool, pieces: &[&[u8]], eof: bool) -> Vec<Action> {
    let mut h = Harness::new(max_body, dir_listing);
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
                Awaits::List => {
                    let answer = split_dir_answer(&h.checker.last_list);
                    h.step(dir_input(&answer));
                }
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

/// The `split` target. Byte 0: `max_body` (bits 0–1), whether EOF follows (bit 2) and
/// directory listings on (bit 3); byte 1: how many split points (mod 16), each a u16 (mod the data length); the rest
/// is the request bytes, fed whole and then cut at those points.
pub fn run_split(data: &[u8]) {
    let mut r = Reader::new(data);
    let flags = r.byte();
    let max_body = MAX_BODIES[usize::from(flags % 4)];
    let eof = flags & 4 != 0;
    let dir_listing = flags & 8 != 0;
    let n = usize::from(r.byte() % 16);
    let mut cuts: Vec<u16> = (0..n).map(|_| r.u16()).collect();
    let bytes = r.rest();
    let whole = run_pieces(max_body, dir_listing, &[bytes], eof);
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
    let split = run_pieces(max_body, dir_listing, &pieces, eof);
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
