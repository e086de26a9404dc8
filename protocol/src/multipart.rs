//! A streaming `multipart/form-data` parser (RFC 7578 on RFC 2046 §5.1) for uploads
//! from the bundled page's form, browsers and `curl -F`.
//!
//! ```text
//! let boundary = boundary_of(content_type).ok_or(415)?;
//! let mut parser = Parser::new(&boundary);
//! for chunk in body { parser.feed(chunk, &mut |event| match event {
//!     Event::PartStart { name, filename, content_type } => open a temporary if a file,
//!     Event::Data(bytes) => write them,       // borrowed: copy what you keep
//!     Event::PartEnd => commit the part,
//!     Event::End => all parts are in,
//! })?; }
//! parser.finish()?;                            // at the end of the body
//! ```
//!
//! Bounded memory whatever the body: a part's header block is kept until complete, at
//! most [`MAX_PART_HEAD`] bytes; everything else is handed on as it arrives, except a
//! possible start of the next delimiter (`CRLF--boundary`), at most its length, held back
//! between calls (as a count: those bytes are the delimiter's own first bytes). The
//! delimiter is found with a Knuth–Morris–Pratt matcher, so it may be split across any
//! two calls and `Data` never contains a byte of it.
//!
//! Decisions: the preamble before the first delimiter and the epilogue after the last
//! are ignored (RFC 2046); the first delimiter may open the body without a CRLF; part
//! header lines end in CRLF (no bare LF, no folding); a part without a
//! `Content-Disposition` or a `name` gets the name `""`; `filename*=` (RFC 8187, UTF-8 or
//! ISO-8859-1) takes precedence over `filename=`; a quoted value unescapes only `\"` and
//! `\\` (a Windows path `C:\dir\a.txt` keeps its backslashes, for the caller's sanitizer
//! to take the last component); browsers' `%22` for `"` is left as sent. `filename=""`
//! (an empty file input) is `Some("")`. After an error the parser stays failed.

use crate::syntax::{is_tchar, trim_ows};
use std::fmt;

/// The largest header block of one part.
pub const MAX_PART_HEAD: usize = 8 * 1024;
/// The longest boundary accepted (RFC 2046 allows 70; some clients send more).
pub const MAX_BOUNDARY: usize = 200;

/// The boundary of a `multipart/form-data` content type; `None` for another type, a
/// missing boundary, or one that is empty, too long or not printable ASCII.
pub fn boundary_of(content_type: &[u8]) -> Option<Vec<u8>> {
    let mut parts = split_params(content_type);
    let media = trim_ows(parts.value()?);
    if !media.eq_ignore_ascii_case(b"multipart/form-data") {
        return None;
    }
    let boundary =
        parts.find_map(|(name, value)| name.eq_ignore_ascii_case(b"boundary").then_some(value))?;
    let ok = !boundary.is_empty()
        && boundary.len() <= MAX_BOUNDARY
        && boundary.iter().all(|&b| (0x20..0x7f).contains(&b))
        && !boundary.ends_with(b" ");
    ok.then_some(boundary)
}

/// What the parser found. `Data` borrows from the input (or the held-back bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    PartStart {
        /// The form field's name (`""` when absent).
        name: String,
        /// The file name as sent (not sanitized), for file parts.
        filename: Option<String>,
        /// The part's `Content-Type`, if any.
        content_type: Option<String>,
    },
    Data(&'a [u8]),
    PartEnd,
    /// The final delimiter: nothing after it is looked at.
    End,
}

/// Why a body is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultipartError {
    /// The body does not follow the syntax (what is wrong, for the log).
    Malformed(&'static str),
    /// A part's header block is over [`MAX_PART_HEAD`].
    HeadersTooLarge,
    /// The body ended before the final delimiter (`--boundary--`).
    MissingFinalBoundary,
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultipartError::Malformed(why) => write!(f, "malformed multipart body: {why}"),
            MultipartError::HeadersTooLarge => {
                write!(f, "multipart part headers over {MAX_PART_HEAD} bytes")
            }
            MultipartError::MissingFinalBoundary => {
                write!(f, "multipart body ended before its final boundary")
            }
        }
    }
}

impl std::error::Error for MultipartError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Looking for the first delimiter, ignoring what comes before.
    Preamble,
    /// Just after a delimiter: `--`, or transport padding and CRLF.
    AfterDelimiter,
    CloseDash,
    Padding,
    NeedLf,
    Headers,
    Body,
    Done,
}

/// The push parser: feed it the body in pieces of any size.
#[derive(Clone, Debug)]
pub struct Parser {
    /// `CRLF--boundary`, and its KMP failure function.
    pattern: Vec<u8>,
    fail: Vec<usize>,
    /// How many bytes of `pattern` the end of the input so far matches.
    matched: usize,
    state: State,
    head: Vec<u8>,
    error: Option<MultipartError>,
}

impl Parser {
    /// A parser for the body of a request whose boundary is `boundary` (see
    /// [`boundary_of`]).
    pub fn new(boundary: &[u8]) -> Parser {
        let mut pattern = b"\r\n--".to_vec();
        pattern.extend_from_slice(boundary);
        let mut fail = vec![0; pattern.len() + 1];
        let mut j = 0;
        for i in 1..pattern.len() {
            while j > 0 && pattern[i] != pattern[j] {
                j = fail[j];
            }
            if pattern[i] == pattern[j] {
                j += 1;
            }
            fail[i + 1] = j;
        }
        Parser {
            pattern,
            fail,
            // The body may open with the delimiter itself: count the CRLF as seen.
            matched: 2,
            state: State::Preamble,
            head: Vec::new(),
            error: None,
        }
    }

    /// Parses the next piece of the body, handing each event to `out`.
    pub fn feed<F>(&mut self, input: &[u8], out: &mut F) -> Result<(), MultipartError>
    where
        F: FnMut(Event<'_>),
    {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let result = self.run(input, out);
        if let Err(e) = &result {
            self.error = Some(e.clone());
        }
        result
    }

    /// The body is over: an error unless the final delimiter was seen.
    pub fn finish(&mut self) -> Result<(), MultipartError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.state == State::Done {
            return Ok(());
        }
        self.error = Some(MultipartError::MissingFinalBoundary);
        Err(MultipartError::MissingFinalBoundary)
    }

    /// Whether the final delimiter was seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn run<F>(&mut self, input: &[u8], out: &mut F) -> Result<(), MultipartError>
    where
        F: FnMut(Event<'_>),
    {
        use MultipartError::Malformed;
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Preamble | State::Body => {
                    let body = self.state == State::Body;
                    match self.scan(input, i, body, out) {
                        Some(end) => {
                            if body {
                                out(Event::PartEnd);
                            }
                            i = end;
                            self.state = State::AfterDelimiter;
                        }
                        None => return Ok(()),
                    }
                }
                State::Headers => {
                    let room = MAX_PART_HEAD + 1 - self.head.len();
                    let rest = &input[i..];
                    let take = rest
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(rest.len(), |p| p + 1)
                        .min(room);
                    self.head.extend_from_slice(&rest[..take]);
                    i += take;
                    if self.head.len() > MAX_PART_HEAD {
                        return Err(MultipartError::HeadersTooLarge);
                    }
                    if self.head == b"\r\n" || self.head.ends_with(b"\r\n\r\n") {
                        let event = part_start(&self.head)?;
                        out(event);
                        self.head.clear();
                        self.state = State::Body;
                    }
                }
                State::Done => return Ok(()),
                state => {
                    let b = input[i];
                    i += 1;
                    self.state = match (state, b) {
                        (State::AfterDelimiter, b'-') => State::CloseDash,
                        (State::AfterDelimiter | State::Padding, b' ' | b'\t') => State::Padding,
                        (State::AfterDelimiter | State::Padding, b'\r') => State::NeedLf,
                        (State::CloseDash, b'-') => {
                            out(Event::End);
                            State::Done
                        }
                        (State::NeedLf, b'\n') => State::Headers,
                        (State::CloseDash, _) => {
                            return Err(Malformed("a single '-' after a boundary"))
                        }
                        (State::NeedLf, _) => {
                            return Err(Malformed("CR without LF after a boundary"))
                        }
                        _ => return Err(Malformed("a boundary followed by other text")),
                    };
                }
            }
        }
        Ok(())
    }

    /// Looks for the delimiter in `input[from..]`, carrying on from `self.matched`.
    /// Returns the index just past it, or `None` when the input ran out first. With
    /// `emit`, hands on every byte that can no longer be part of a delimiter.
    fn scan<F>(&mut self, input: &[u8], from: usize, emit: bool, out: &mut F) -> Option<usize>
    where
        F: FnMut(Event<'_>),
    {
        // The stream looked at is `pattern[..carry]` (held back from earlier calls)
        // followed by `input[from..]`; the last `k` bytes of it match the pattern so far.
        let carry = self.matched;
        let mut k = carry;
        let mut i = from;
        let m = self.pattern.len();
        while i < input.len() {
            if k == 0 {
                // Fast path: nothing matched, so skip to the next CR.
                match input[i..].iter().position(|&b| b == b'\r') {
                    Some(p) => i += p,
                    None => break,
                }
            }
            let b = input[i];
            while k > 0 && self.pattern[k] != b {
                k = self.fail[k];
            }
            if self.pattern[k] == b {
                k += 1;
            }
            i += 1;
            if k == m {
                if emit {
                    self.emit(carry, &input[from..], carry + (i - from) - m, out);
                }
                self.matched = 0;
                return Some(i);
            }
        }
        if emit {
            self.emit(carry, &input[from..], carry + (input.len() - from) - k, out);
        }
        self.matched = k;
        None
    }

    /// Hands on the first `upto` bytes of `pattern[..carry]` followed by `input`.
    fn emit<F>(&self, carry: usize, input: &[u8], upto: usize, out: &mut F)
    where
        F: FnMut(Event<'_>),
    {
        let held = upto.min(carry);
        if held > 0 {
            out(Event::Data(&self.pattern[..held]));
        }
        if upto > carry {
            out(Event::Data(&input[..upto - carry]));
        }
    }
}

/// The `PartStart` of a complete header block (ending in CRLF CRLF, or a lone CRLF).
fn part_start(head: &[u8]) -> Result<Event<'static>, MultipartError> {
    use MultipartError::Malformed;
    let (mut name, mut filename, mut content_type) = (String::new(), None, None);
    let block = head.strip_suffix(b"\r\n\r\n").unwrap_or_default();
    for line in split_crlf(block) {
        if line.contains(&b'\r') || line.contains(&b'\n') {
            return Err(Malformed("a bare CR or LF in part headers"));
        }
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            return Err(Malformed("folded part header"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(Malformed("part header without a colon"))?;
        let (field, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
        if field.is_empty() || !field.iter().all(|&b| is_tchar(b)) {
            return Err(Malformed("bad part header name"));
        }
        if field.eq_ignore_ascii_case(b"content-disposition") {
            let (n, f) = disposition(value);
            name = n.unwrap_or_default();
            filename = f;
        } else if field.eq_ignore_ascii_case(b"content-type") {
            content_type = Some(String::from_utf8_lossy(value).into_owned());
        }
    }
    Ok(Event::PartStart {
        name,
        filename,
        content_type,
    })
}

fn split_crlf(block: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = (!block.is_empty()).then_some(block);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(2).position(|w| w == b"\r\n") {
            Some(p) => {
                rest = Some(&r[p + 2..]);
                Some(&r[..p])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `name` and the file name of a `Content-Disposition` value.
fn disposition(value: &[u8]) -> (Option<String>, Option<String>) {
    let (mut name, mut plain, mut extended) = (None, None, None);
    // The disposition type (`form-data`) is not checked; the iterator skips it.
    for (key, v) in split_params(value) {
        if key.eq_ignore_ascii_case(b"name") {
            name.get_or_insert_with(|| String::from_utf8_lossy(&v).into_owned());
        } else if key.eq_ignore_ascii_case(b"filename") {
            plain.get_or_insert_with(|| String::from_utf8_lossy(&v).into_owned());
        } else if key.eq_ignore_ascii_case(b"filename*") && extended.is_none() {
            extended = ext_value(&v);
        }
    }
    (name, extended.or(plain))
}

/// An RFC 8187 `ext-value`: `charset'language'percent-encoded`, UTF-8 or ISO-8859-1.
fn ext_value(v: &[u8]) -> Option<String> {
    let mut fields = v.splitn(3, |&b| b == b'\'');
    let (charset, _language, encoded) = (fields.next()?, fields.next()?, fields.next()?);
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut i = 0;
    while i < encoded.len() {
        if encoded[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            let hi = hex(*encoded.get(i + 1)?)?;
            let lo = hex(*encoded.get(i + 2)?)?;
            bytes.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            bytes.push(encoded[i]);
            i += 1;
        }
    }
    if charset.eq_ignore_ascii_case(b"utf-8") {
        String::from_utf8(bytes).ok()
    } else if charset.eq_ignore_ascii_case(b"iso-8859-1") {
        Some(bytes.iter().map(|&b| b as char).collect())
    } else {
        None
    }
}

/// The `;`-separated parts of a header value: the value itself from `value()`, then, as
/// an iterator, each parameter as `(name, value)` with a quoted value unquoted (a
/// parameter without `=` is skipped; an unterminated quote runs to the end).
fn split_params(v: &[u8]) -> SplitParams<'_> {
    SplitParams {
        rest: v,
        first: true,
    }
}

struct SplitParams<'a> {
    rest: &'a [u8],
    first: bool,
}

impl<'a> SplitParams<'a> {
    /// The value before the first `;` (only before the parameters are iterated).
    fn value(&mut self) -> Option<&'a [u8]> {
        if !self.first {
            return None;
        }
        self.first = false;
        let end = self
            .rest
            .iter()
            .position(|&b| b == b';')
            .unwrap_or(self.rest.len());
        let head = &self.rest[..end];
        self.rest = &self.rest[end..];
        Some(head)
    }
}

impl Iterator for SplitParams<'_> {
    type Item = (Vec<u8>, Vec<u8>);

    fn next(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        if self.first {
            self.value();
        }
        loop {
            let r = self.rest;
            let start = r
                .iter()
                .position(|&b| b != b';' && b != b' ' && b != b'\t')?;
            let r = &r[start..];
            let stop = r
                .iter()
                .position(|&b| b == b'=' || b == b';')
                .unwrap_or(r.len());
            let key = trim_ows(&r[..stop]).to_vec();
            if r.get(stop) != Some(&b'=') {
                self.rest = &r[stop..];
                continue; // a parameter without a value: skipped
            }
            let r = &r[stop + 1..];
            let skip = r.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
            let r = &r[skip..];
            if r.first() == Some(&b'"') {
                let mut value = Vec::new();
                let mut j = 1;
                while j < r.len() && r[j] != b'"' {
                    if r[j] == b'\\' && matches!(r.get(j + 1), Some(b'"' | b'\\')) {
                        j += 1;
                    }
                    value.push(r[j]);
                    j += 1;
                }
                self.rest = r.get(j + 1..).unwrap_or_default();
                return Some((key, value));
            }
            let end = r.iter().position(|&b| b == b';').unwrap_or(r.len());
            self.rest = &r[end..];
            return Some((key, trim_ows(&r[..end]).to_vec()));
        }
    }
}

#[cfg(test)]
#[path = "multipart_tests.rs"]
mod tests;
