//! Validators and conditional requests (RFC 9110 §8.8, §13) and single byte ranges
//! (RFC 9110 §14) for file responses.

use crate::parse::RequestHead;
use crate::response::parse_http_date;

/// Writes the strong entity tag of a file: its size and modification time in hex.
pub fn write_etag(out: &mut String, len: u64, mtime_secs: u64, mtime_nanos: u32) {
    use std::fmt::Write;
    let _ = write!(out, "\"{len:x}-{mtime_secs:x}.{mtime_nanos:x}\"");
}

/// The outcome of the preconditions of a GET or HEAD (RFC 9110 §13.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Go on: answer the request (a range may still apply).
    Proceed,
    /// `304 Not Modified`.
    NotModified,
    /// `412 Precondition Failed`.
    Failed,
}

/// RFC 9110 §13.2.2 in its order: `If-Match` (strong comparison), else
/// `If-Unmodified-Since`; then `If-None-Match` (weak comparison), else
/// `If-Modified-Since`. `modified` is the file's modification time already clamped to
/// the response's `Date` (§8.8.2.1), so every date validator sees the same value.
pub fn evaluate(head: &RequestHead, etag: &str, modified: u64) -> Precondition {
    if let Some(im) = head.if_match.as_deref() {
        let im = im.trim();
        if im != "*" && !split_tags(im).any(|t| !t.starts_with("W/") && t == etag) {
            return Precondition::Failed;
        }
    } else if let Some(ius) = head
        .if_unmodified_since
        .as_deref()
        .and_then(parse_http_date)
    {
        if modified > ius {
            return Precondition::Failed;
        }
    }
    if let Some(inm) = &head.if_none_match {
        let inm = inm.trim();
        let ours = opaque(etag);
        if inm == "*" || split_tags(inm).any(|t| opaque(t) == ours) {
            return Precondition::NotModified;
        }
    } else if let Some(ims) = head.if_modified_since.as_deref().and_then(parse_http_date) {
        if modified <= ims {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// What the preconditions of a write (`PUT`, `DELETE`) allow, given the target's
/// current entity tag (`None`: no file there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WritePrecondition {
    /// No file there: create it.
    Create,
    /// A file there, and the request may replace (or delete) it.
    Replace,
    /// `412 Precondition Failed`.
    Failed,
    /// `428 Precondition Required`: a `PUT` over an existing file says nothing of it, and
    /// would silently destroy it.
    Required,
}

/// RFC 9110 §13.1.1 and §13.1.2 for a write: `If-Match` (strong comparison; `*` needs a
/// file), `If-None-Match` (`*`: only if there is none). `require_match`: replacing an
/// existing file needs `If-Match` (SPEC: a `PUT` without it is 428).
pub fn for_write(
    head: &RequestHead,
    current: Option<&str>,
    require_match: bool,
) -> WritePrecondition {
    if let Some(im) = head.if_match.as_deref() {
        let im = im.trim();
        let matched = current.is_some_and(|tag| {
            im == "*" || split_tags(im).any(|t| !t.starts_with("W/") && t == tag)
        });
        if !matched {
            return WritePrecondition::Failed;
        }
    }
    if let (Some(inm), Some(tag)) = (head.if_none_match.as_deref(), current) {
        let inm = inm.trim();
        if inm == "*" || split_tags(inm).any(|t| opaque(t) == opaque(tag)) {
            return WritePrecondition::Failed;
        }
    }
    match current {
        None => WritePrecondition::Create,
        Some(_) if require_match && head.if_match.is_none() => WritePrecondition::Required,
        Some(_) => WritePrecondition::Replace,
    }
}

/// An entity tag without its weakness prefix, for weak comparison.
fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

fn split_tags(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|t| !t.is_empty())
}

/// What a `Range` header asks of a file of a given length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    /// The whole file (no `Range`, one we ignore, or several ranges: see the README).
    Full,
    /// `206` with these bytes.
    Partial { start: u64, len: u64 },
    /// `416` with `Content-Range: bytes */LEN`.
    Unsatisfiable,
}

/// Evaluates `Range` and `If-Range` for a file of `len` bytes. A date in `If-Range`
/// matches only a strong `Last-Modified`: one at least a second before `Date`
/// (`date_is_strong`, RFC 9110 §8.8.2.2).
pub fn range(
    head: &RequestHead,
    etag: &str,
    last_modified: &str,
    date_is_strong: bool,
    len: u64,
) -> RangeAnswer {
    let Some(spec) = head.range.as_deref() else {
        return RangeAnswer::Full;
    };
    if let Some(cond) = head.if_range.as_deref().map(str::trim) {
        // Strong comparison for a tag (a weak tag never matches); exact for a date.
        let matches = if cond.starts_with('"') {
            cond == etag
        } else if cond.starts_with("W/") {
            false
        } else {
            date_is_strong && cond == last_modified
        };
        if !matches {
            return RangeAnswer::Full;
        }
    }
    parse_range(spec, len)
}

/// Parses `bytes=a-b`, `bytes=a-`, `bytes=-n`. Malformed or multiple ranges: `Full`.
pub fn parse_range(spec: &str, len: u64) -> RangeAnswer {
    let spec = spec.trim();
    let Some((unit, set)) = spec.split_once('=') else {
        return RangeAnswer::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => RangeAnswer::Full,
        (true, false) => {
            let Some(n) = num(last) else {
                return RangeAnswer::Full;
            };
            if n == 0 || len == 0 {
                return RangeAnswer::Unsatisfiable;
            }
            let n = n.min(len);
            RangeAnswer::Partial {
                start: len - n,
                len: n,
            }
        }
        (false, open_end) => {
            let Some(a) = num(first) else {
                return RangeAnswer::Full;
            };
            let b = if open_end {
                u64::MAX
            } else {
                match num(last) {
                    Some(b) if b >= a => b,
                    _ => return RangeAnswer::Full,
                }
            };
            if a >= len {
                return RangeAnswer::Unsatisfiable;
            }
            let end = b.min(len - 1);
            RangeAnswer::Partial {
                start: a,
                len: end - a + 1,
            }
        }
    }
}
