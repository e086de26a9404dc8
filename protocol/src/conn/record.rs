//! What one answered request was, for the access log and the metrics (SPEC
//! "Operations"): a [`RequestRecord`] per answer, made when the runtime reports the
//! answer written ([`super::Input::Written`], or `WriteFailed`), and kept in the
//! connection until the runtime takes it ([`Connection::take_record`]) — no new action
//! and no round trip. Made only with [`crate::Config::records`] on; off, a request costs
//! nothing more.
//!
//! Everything in it is what the core already knows: the time on its clock (a record
//! carries no wall time: the runtime stamps it), the peer is the runtime's own, the
//! method, target and version of the head, the status and body bytes of the answer, the
//! user its access gate verified, whether credentials failed, `Referer` and
//! `User-Agent`. An HTTP/2 stream answered by the same request handling gets the same
//! record, with [`HttpVersion::Http2`].

use std::borrow::Cow;

use super::{Connection, Request};
use crate::parse::Method;

/// The records a connection keeps for a runtime that does not take them; past it, the
/// oldest is dropped (a runtime that wants them takes each after every input).
const KEPT: usize = 16;

/// The protocol a request came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HttpVersion {
    Http10,
    #[default]
    Http11,
    Http2,
}

impl HttpVersion {
    /// As in a request line: `HTTP/1.0`, `HTTP/1.1`, `HTTP/2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "HTTP/1.0",
            HttpVersion::Http11 => "HTTP/1.1",
            HttpVersion::Http2 => "HTTP/2.0",
        }
    }
}

/// One answered request (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// The method token as sent; empty when the bytes never became a request head
    /// (their `400`, `408`, `414`, `431`, …: then the target is empty too).
    pub method: Cow<'static, str>,
    /// The request target as sent (visible ASCII only: the parser refuses anything else).
    pub target: String,
    pub version: HttpVersion,
    pub status: u16,
    /// Body bytes of the answer (none for `HEAD`, `204`, `304`); `None` when the core
    /// cannot know: a body compressed as it is sent (chunked), which the runtime counts.
    pub body_bytes: Option<u64>,
    /// When the request head was complete, and when the answer was reported written, on
    /// the clock of [`crate::Now::mono_ms`].
    pub started_ms: u64,
    pub finished_ms: u64,
    /// The user whose credentials the access gate verified (`--auth`).
    pub user: Option<String>,
    /// Credentials were sent and failed (a wrong password, an unknown user, an
    /// unreadable `Authorization`): the attempts the failure limiter counts. A `401`
    /// to a request without credentials is a challenge, not a failure.
    pub auth_failed: bool,
    /// An upload (a `PUT`, a `POST /upload`), with the bytes of it written to the store
    /// (JSON: the body; streamed: the file data handed out in chunks).
    pub upload: Option<u64>,
    pub referer: Option<String>,
    pub user_agent: Option<String>,
    /// The answer was written whole (`false`: writing it failed, the connection closed).
    pub written: bool,
}

impl RequestRecord {
    /// Whether the bytes became a request head (else method and target are empty).
    pub fn parsed(&self) -> bool {
        !self.method.is_empty()
    }

    /// Milliseconds from the complete head to the answer written.
    pub fn duration_ms(&self) -> u64 {
        self.finished_ms.saturating_sub(self.started_ms)
    }
}

impl Connection {
    /// The next record of an answered request, oldest first (only with
    /// [`crate::Config::records`]). A runtime takes them after each input it hands in;
    /// the connection keeps at most a few for one that does not.
    pub fn take_record(&mut self) -> Option<RequestRecord> {
        self.records.pop_front()
    }

    /// The record of the answer just handed out (`body_bytes` as it goes on the wire),
    /// finished when it is written ([`Connection::finish_record`]).
    pub(super) fn start_record(&mut self, req: Option<&Request>, status: u16, body: Option<u64>) {
        if !self.config.records {
            return;
        }
        let record = match req {
            Some(req) => {
                let head = &req.head;
                let bodiless = head.method == Method::Head || status == 204 || status == 304;
                RequestRecord {
                    method: match &head.method {
                        Method::Other(token) => Cow::Owned(token.clone()),
                        known => Cow::Borrowed(static_method(known)),
                    },
                    target: head.target.clone(),
                    version: if head.minor == 0 {
                        HttpVersion::Http10
                    } else {
                        HttpVersion::Http11
                    },
                    status,
                    body_bytes: if bodiless { Some(0) } else { body },
                    started_ms: req.started_ms,
                    finished_ms: req.started_ms,
                    user: req.user.clone(),
                    auth_failed: req.auth_failed,
                    upload: req.upload.then_some(req.upload_bytes),
                    referer: head.referer.clone(),
                    user_agent: head.user_agent.clone(),
                    written: false,
                }
            }
            None => RequestRecord {
                method: Cow::Borrowed(""),
                target: String::new(),
                version: HttpVersion::Http11,
                status,
                body_bytes: body,
                started_ms: self.head_started_ms.unwrap_or(self.now.mono_ms),
                finished_ms: self.now.mono_ms,
                user: None,
                auth_failed: false,
                upload: None,
                referer: None,
                user_agent: None,
                written: false,
            },
        };
        self.record = Some(record);
    }

    /// The answer in flight was written (or not): its record is ready to be taken.
    pub(super) fn finish_record(&mut self, written: bool) {
        if let Some(mut record) = self.record.take() {
            record.finished_ms = self.now.mono_ms.max(record.started_ms);
            record.written = written;
            if self.records.len() >= KEPT {
                self.records.pop_front();
            }
            self.records.push_back(record);
        }
    }
}

/// The token of a method the server routes.
fn static_method(m: &Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Other(_) => "",
    }
}
