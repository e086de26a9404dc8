//! What the driver keeps of the actions it sees ([`Record`]): nothing, the actions
//! themselves, or [`Out`] values easy to assert on, each response parsed and its `Date`
//! checked against the simulated clock.

use std::time::{Duration, UNIX_EPOCH};

use crate::{Action, Now};

/// What the driver keeps of the actions it sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// Nothing: the driver allocates nothing of its own per request (a benchmark).
    Nothing,
    /// Every action as handed out, in `Driver::log` (compared byte for byte).
    Actions,
    /// [`Out`] values in `Driver::out`: each `Send` parsed into its responses, and every
    /// `Date` checked against the clock.
    Out,
}

/// What came out of the connection, simplified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    Resp(Resp),
    Continue,
    Open(String),
    SendFile {
        offset: u64,
        len: u64,
    },
    Write(String),
    List(String),
    /// A password of this user to verify.
    Verify(String),
    /// A streamed upload: begun (its target), a chunk (its length), committed (where,
    /// and whether replacing), aborted; a file deleted.
    Begin(String),
    Chunk(usize),
    Commit(String, bool),
    Abort,
    Delete(String),
    /// Compress the opened file with this coding.
    Compress(&'static str),
    /// Archive this directory (for this user).
    Archive(String, Option<String>),
    Close,
}

/// A response, parsed from a `Send`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body sent inline (empty when a `SendFile` follows, or for `HEAD`).
    pub body: Vec<u8>,
}

impl Resp {
    /// The first field of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
}

/// Appends the [`Out`] values of one action handed out at `now`.
pub(super) fn record(out: &mut Vec<Out>, action: &Action, now: Now) {
    match action {
        Action::Send(bytes) => parse_sent(out, bytes, now),
        Action::Continue => out.push(Out::Continue),
        Action::OpenFile(p) => out.push(Out::Open(p.as_str().to_string())),
        Action::ListDir(p) => out.push(Out::List(p.as_str().to_string())),
        Action::SendFile { offset, len } => out.push(Out::SendFile {
            offset: *offset,
            len: *len,
        }),
        Action::WriteUpload { name, .. } => out.push(Out::Write(name.clone())),
        Action::Verify(c) => out.push(Out::Verify(c.user.clone())),
        Action::BeginUpload { target } => out.push(Out::Begin(target_name(target))),
        Action::WriteChunk(bytes) => out.push(Out::Chunk(bytes.len())),
        Action::CommitUpload { target, replace } => {
            out.push(Out::Commit(target_name(target), *replace))
        }
        Action::AbortUpload => out.push(Out::Abort),
        Action::DeleteFile(p) => out.push(Out::Delete(p.as_str().to_string())),
        Action::Compress { coding, .. } => out.push(Out::Compress(coding.token())),
        Action::Archive { dir, user, .. } => {
            out.push(Out::Archive(dir.as_str().to_string(), user.clone()))
        }
        Action::Close => out.push(Out::Close),
    }
}

/// A streamed upload's target as a path below the root.
fn target_name(target: &crate::UploadTarget) -> String {
    match target {
        crate::UploadTarget::Path(p) => p.as_str().to_string(),
        crate::UploadTarget::Uploads(name) => format!("uploads/{name}"),
    }
}

/// Splits a `Send` into its responses (a `Send` may hold a head and an inline body).
fn parse_sent(out: &mut Vec<Out>, mut bytes: &[u8], now: Now) {
    while !bytes.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut headers);
        let n = match r.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!(
                "unparseable response {other:?}: {:?}",
                String::from_utf8_lossy(bytes)
            ),
        };
        let status = r.code.unwrap_or(0);
        assert!(
            status >= 200,
            "a {status} in a Send (the interim answer is Action::Continue)"
        );
        let headers: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        bytes = &bytes[n..];
        if let Some((_, date)) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("date")) {
            let sent = httpdate::parse_http_date(date).expect("a valid Date");
            let made = UNIX_EPOCH + Duration::from_secs(now.unix_secs);
            assert_eq!(sent, made, "Date is not the time the answer was made");
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().expect("numeric content-length"))
            .unwrap_or(0);
        // A body is inline when the bytes are here; else a SendFile follows (or HEAD).
        let take = if bytes.len() >= len { len } else { 0 };
        let body = bytes[..take].to_vec();
        bytes = &bytes[take..];
        out.push(Out::Resp(Resp {
            status,
            headers,
            body,
        }));
    }
}
