//! Writing answers: response heads with the connection fields (`Keep-Alive` or
//! `Connection: close`), inline bodies, error pages, and the access log. An answer goes
//! out as one `Send` (head and inline body), maybe followed by a `SendFile`; its log
//! line is printed, and its record ([`super::record`]) made, once the runtime reports it
//! written ([`super::Input::Written`]).

use std::fmt::{self, Write as _};
use std::sync::Arc;

use log::{info, warn};

use super::gate::decorate;
use super::{Action, Connection, Request};
use crate::parse::Method;
use crate::response::{write_error, HeadWriter};
use crate::{Config, Refusal};

impl Connection {
    /// `OPTIONS`: 204 with `Allow`; a CORS preflight (`--cors`, with `Origin` and
    /// `Access-Control-Request-Method`) also gets what its origin may do. A preflight
    /// needs no credentials.
    pub(super) fn options(&mut self, req: &Request) {
        let allow = super::route::allow(&self.config, &req.head.target);
        let preflight = match (&self.config.cors, &req.head.origin, &req.head.cors_method) {
            (Some(cors), Some(origin), Some(method)) => cors.preflight(
                origin.as_bytes(),
                method.as_bytes(),
                req.head.cors_headers.as_deref().map(str::as_bytes),
                &allow.split(", ").collect::<Vec<_>>(),
                self.config.access.is_some(),
            ),
            _ => None,
        };
        self.respond(req, 204, &[], |w| {
            w.field("Allow", allow);
            for (name, value) in preflight.iter().flatten() {
                w.field(name, value);
            }
        });
    }

    /// Answers a request with an inline body (none for HEAD, 204, 304).
    pub(super) fn respond(
        &mut self,
        req: &Request,
        status: u16,
        body: &[u8],
        fields: impl FnOnce(&mut HeadWriter<'_>),
    ) {
        let send_body = req.head.method != Method::Head && status != 204 && status != 304;
        let inline = if send_body { body } else { &[] };
        self.emit(req, status, Some(body.len() as u64), inline, fields);
    }

    /// Queues a response head (the body follows as `SendFile`, or there is none).
    pub(super) fn respond_head(
        &mut self,
        req: &Request,
        status: u16,
        content_length: Option<u64>,
        fields: impl FnOnce(&mut HeadWriter<'_>),
    ) {
        self.emit(req, status, content_length, &[], fields);
    }

    fn emit(
        &mut self,
        req: &Request,
        status: u16,
        content_length: Option<u64>,
        body: &[u8],
        fields: impl FnOnce(&mut HeadWriter<'_>),
    ) {
        let keep = self.keeps_alive(Some(req), false);
        let mut buf = self.answer_buffer(body.len());
        let config = Arc::clone(&self.config);
        let date = self.date.get(self.now.unix_secs);
        let mut w = HeadWriter::new(&mut buf, status, &config.server_name, date);
        fields(&mut w);
        decorate(&mut w, &config, Some(&req.head), status, self.retry_after);
        if let Some(len) = content_length {
            if status != 204 && status != 304 {
                w.number("Content-Length", len);
            }
        }
        connection_fields(&mut w, &config, self.served, keep, req.head.minor);
        w.finish();
        buf.extend_from_slice(body);
        self.start_record(Some(req), status, content_length);
        self.queue(buf, keep, Some(req), status, content_length.unwrap_or(0));
    }

    /// Answers a parsed request with an error page.
    pub(super) fn refuse(&mut self, req: &Request, r: Refusal) {
        let allow = super::route::allow(&self.config, &req.head.target);
        self.refuse_with(req, r, |w| {
            if r.status == 405 {
                w.field("Allow", allow);
            }
            if r.status == 503 {
                w.field("Retry-After", "1");
            }
        });
    }

    /// An error page with extra fields (`Content-Range` for 416, validators for 412).
    pub(super) fn refuse_with(
        &mut self,
        req: &Request,
        r: Refusal,
        fields: impl FnOnce(&mut HeadWriter<'_>),
    ) {
        if !matches!(r.status, 301 | 404 | 405 | 412 | 415 | 416 | 500) {
            warn!("{} refused ({}): {}", self.peer, r.status, r.reason);
        }
        let head_only = req.head.method == Method::Head;
        self.error(Some(req), r, head_only, fields);
    }

    /// Answers bytes that never became a request head, and closes. A `HEAD` gets the
    /// head alone, as it would for any other answer.
    pub(super) fn refuse_unparsed(&mut self, r: Refusal) {
        warn!("{} refused ({}): {}", self.peer, r.status, r.reason);
        // The request line starts after the empty lines the parser skips (CRLF pairs
        // only, so the answer does not depend on how the bytes arrived).
        let mut buf = &self.input[self.pos..];
        while let Some(rest) = buf.strip_prefix(b"\r\n") {
            buf = rest;
        }
        let head_only = buf.starts_with(b"HEAD ");
        self.error(None, Refusal { close: true, ..r }, head_only, |_| {});
    }

    fn error(
        &mut self,
        req: Option<&Request>,
        r: Refusal,
        head_only: bool,
        fields: impl FnOnce(&mut HeadWriter<'_>),
    ) {
        let keep = self.keeps_alive(req, r.close);
        let minor = req.map_or(1, |req| req.head.minor);
        let mut buf = self.answer_buffer(256);
        let config = Arc::clone(&self.config);
        let served = self.served;
        let retry_after = self.retry_after;
        let date = self.date.get(self.now.unix_secs);
        let len = write_error(
            &mut buf,
            &config.server_name,
            date,
            r.status,
            r.reason,
            head_only,
            |w| {
                fields(w);
                decorate(w, &config, req.map(|r| &*r.head), r.status, retry_after);
                connection_fields(w, &config, served, keep, minor);
            },
        );
        self.start_record(req, r.status, Some(if head_only { 0 } else { len }));
        self.queue(buf, keep, req, r.status, len);
    }

    /// Counts the answer and says whether the connection stays open after it.
    fn keeps_alive(&mut self, req: Option<&Request>, force_close: bool) -> bool {
        self.served += 1;
        !force_close
            && !self.draining
            && req.is_some_and(|r| r.head.keep_alive)
            && self.served < self.config.max_requests
    }

    fn answer_buffer(&mut self, body: usize) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.spare);
        buf.clear();
        buf.reserve(320 + body);
        buf
    }

    /// Hands the answer to the runtime and keeps its log line until it is written.
    fn queue(&mut self, buf: Vec<u8>, keep: bool, req: Option<&Request>, status: u16, len: u64) {
        self.out.push_back(Action::Send(buf));
        self.unwritten = true;
        if !keep {
            // `Close` once the answer (and its `SendFile`, queued next) is written.
            self.close_pending = true;
        }
        self.log_line.clear();
        if let (Some(req), true) = (req, log::log_enabled!(log::Level::Info)) {
            let _ = write!(
                self.log_line,
                "{} \"{} {}\" {} {}",
                self.peer,
                Clean(req.head.method.as_str()),
                Clean(&req.head.target),
                status,
                len
            );
            self.log_started_ms = req.started_ms;
        }
    }

    /// The access-log line of the answer just written (or not: `written` is false), and
    /// its record.
    pub(super) fn log_answer(&mut self, written: bool) {
        self.finish_record(written);
        if self.log_line.is_empty() {
            return;
        }
        let ms = self.now.mono_ms.saturating_sub(self.log_started_ms);
        if written {
            info!("{} {ms}ms", self.log_line);
        } else {
            info!("{} {ms}ms, write failed", self.log_line);
        }
        self.log_line.clear();
    }
}

/// `Keep-Alive: timeout=T, max=LEFT` (and `Connection: keep-alive` for HTTP/1.0), or
/// `Connection: close`.
fn connection_fields(w: &mut HeadWriter<'_>, config: &Config, served: u32, keep: bool, minor: u8) {
    if keep {
        if minor == 0 {
            w.field("Connection", "keep-alive");
        }
        w.keep_alive(
            config.idle_timeout_secs(),
            u64::from(config.max_requests.saturating_sub(served)),
        );
    } else {
        w.field("Connection", "close");
    }
}

/// Client text in a log line: printable ASCII kept, everything else escaped, cut short.
struct Clean<'a>(&'a str);

impl fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.bytes().enumerate() {
            if i == 200 {
                return f.write_str("...");
            }
            if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
                f.write_char(b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}
