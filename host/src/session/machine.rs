//! The session's machine: how it moves on until it needs the runtime ([`Session::need`]),
//! and what it does with each action of the core.

use std::sync::Arc;

use log::{debug, error};
use protocol::{Action, FileError, H2Input, Input, UploadError, Wait};

use super::h2::Proto;
use super::jobs::{Job, Work};
#[cfg(feature = "tls")]
use super::TlsError;
use super::{Phase, Schedule, Session, Step};
use crate::linger::LINGER;
use crate::pace::WriteWatch;

/// An output buffer larger than this is freed once written, not kept while idle.
const KEEP_OUT: usize = 16 * 1024;
use crate::cache::Opened;
use crate::webroot::Lookup;

impl Session {
    /// An input for the core (over HTTP/2, those of the connection as a whole).
    pub(super) fn give(&mut self, input: Input<'_>) {
        if self.phase != Phase::Serving {
            return;
        }
        let now = self.now;
        if let Some(h2) = self.h2() {
            let input = match input {
                Input::Received(bytes) => H2Input::Received(bytes),
                Input::Eof => H2Input::Eof,
                Input::Timeout => H2Input::Timeout,
                Input::Drain => H2Input::Drain,
                Input::WriteFailed => H2Input::WriteFailed,
                _ => return,
            };
            return h2.server.handle(now, input);
        }
        self.conn.handle(now, input);
    }

    pub(super) fn handshaking(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(t) = &self.tls {
            return t.is_handshaking();
        }
        false
    }

    /// The answer in progress cannot be written (the client is gone or too slow, or the
    /// file or the store failed): the core hears it, the connection closes at once.
    pub(super) fn fail(&mut self, why: &str) {
        debug!("{} answer not written: {why}", self.peer());
        self.give(Input::WriteFailed);
        self.phase = Phase::Closed;
    }

    #[cfg(feature = "tls")]
    pub(super) fn tls_failed(&mut self, e: TlsError) {
        log::warn!("{} refused: {e}", self.peer());
        if self.handshaking() || matches!(e, TlsError::PlainHttp) {
            crate::ops::count(crate::ops::Count::TlsHandshakeFailures, 1);
        }
        self.body = None;
        self.phase = match e {
            TlsError::PlainHttp => {
                // Answered in plain text, as nginx does.
                self.tls = None;
                self.out.clear();
                self.at = 0;
                self.out = super::tls::plain_http_answer();
                Phase::Closing { linger: true }
            }
            // The alert (if any) is in the output.
            TlsError::Refused(_) => Phase::Closing { linger: false },
            TlsError::ClosedInHandshake => Phase::Closed,
        };
    }

    /// Appends bytes of an answer to the output (encrypted under TLS).
    pub(super) fn push_out(&mut self, bytes: Vec<u8>) {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            tls.send(&bytes, &mut self.out);
            self.conn.recycle(bytes);
            return;
        }
        if self.out.is_empty() {
            self.out = bytes;
            self.at = 0;
        } else {
            self.out.extend_from_slice(&bytes);
            self.conn.recycle(bytes);
        }
    }

    pub(super) fn file_opened(&mut self, result: Result<Arc<Opened>, FileError>) {
        let result = result.map(|file| {
            let meta = file.meta;
            if !meta.is_dir {
                self.opened = Some(file);
            }
            meta
        });
        self.conn.handle(self.now, Input::FileOpened(result));
    }

    /// Hands the records of the answers written to `--metrics` and `--access-log`.
    pub(super) fn account(&mut self) {
        if !self.service.config.records {
            return;
        }
        while let Some(record) = self.conn.take_record() {
            let streamed = std::mem::take(&mut self.streamed);
            self.service
                .ops
                .request(record, self.peer_ip, self.tls_on, streamed);
        }
        // HTTP/2: each stream's record (its body bytes counted by the server). The
        // fields are borrowed apart: no `Arc` is cloned here, which runs on every turn of
        // `advance` (a shared count's cache line, bounced between the threads).
        if let Proto::H2(h2) = &mut self.proto {
            while let Some(record) = h2.server.take_record() {
                self.service
                    .ops
                    .request(record, self.peer_ip, self.tls_on, 0);
            }
        }
    }

    /// Moves the session on until it needs the runtime.
    pub(super) fn advance(&mut self) -> Step {
        loop {
            self.account();
            if self.phase == Phase::Closed {
                return Step::Close;
            }
            if let Some(until) = self.blocked {
                return Step::Writable(until);
            }
            // Every action the core queued first: an answer's head and body are queued
            // together, and go out together.
            if let Some(action) = self.conn.poll() {
                if let Some(step) = self.act(action) {
                    return step;
                }
                continue;
            }
            if self.cork_pending {
                self.cork_pending = false;
                self.corked = true;
                return Step::Cork(true);
            }
            if self.at < self.out.len() {
                return Step::Write;
            }
            self.written_out();
            if let Some(step) = self.body_step() {
                return step;
            }
            match self.archive_step() {
                Some(Step::Write) => continue,
                Some(step) => return step,
                None => {}
            }
            if self.body.is_some() {
                continue;
            }
            if self.corked {
                self.corked = false;
                return Step::Cork(false);
            }
            if self.answer {
                self.answer = false;
                self.opened = None;
                self.compressed = None;
                self.zip = None;
                self.watch = WriteWatch::new(self.service.config.idle_timeout_ms);
                self.conn.handle(self.now, Input::Written);
                self.just_answered = true;
                continue;
            }
            match self.phase {
                Phase::Refusing if self.handshaking() => {
                    return Step::Read(self.handshake_until.unwrap_or(self.now.mono_ms));
                }
                Phase::Refusing => match self.refusing() {
                    Some(step) => return step,
                    None => continue,
                },
                Phase::Closing { linger } => {
                    #[cfg(feature = "tls")]
                    if let Some(mut tls) = self.tls.take() {
                        // `close_notify`, written before the socket closes.
                        tls.close(&mut self.out);
                        continue;
                    }
                    // HTTP/2 lingers even when shutting down: its client keeps sending
                    // (window updates) while it reads the last DATA and the GOAWAY, and
                    // a close with those unread would reset the connection under them.
                    let h2 = matches!(self.proto, super::h2::Proto::H2(_));
                    if linger && !self.eof && (!self.drained || h2) {
                        let until = self.now.mono_ms.saturating_add(LINGER.as_millis() as u64);
                        self.phase = Phase::Lingering { until, dropped: 0 };
                        return Step::Shutdown;
                    }
                    self.phase = Phase::Closed;
                    return Step::Close;
                }
                Phase::Lingering { until, .. } => return Step::Read(until),
                Phase::Closed => return Step::Close,
                Phase::Serving => {}
            }
            if matches!(self.proto, super::h2::Proto::H2(_)) {
                match self.h2_serving() {
                    Some(step) => return step,
                    None => continue,
                }
            }
            match self.conn.wait() {
                Wait::Read { mut until, .. } => {
                    if let Some(grace) = self.grace {
                        if self.now.mono_ms >= grace {
                            // No request came within the drain's grace: close it now.
                            self.grace = None;
                            self.give(Input::Drain);
                            continue;
                        }
                        until = until.min(grace);
                    }
                    if self.handshaking() {
                        until = until.min(self.handshake_until.unwrap_or(until));
                    }
                    return Step::Read(until);
                }
                Wait::Closed => self.phase = Phase::Closing { linger: false },
                Wait::Runtime => {
                    error!("the core waits for the runtime, which owes it nothing; closing");
                    self.phase = Phase::Closed;
                }
            }
        }
    }

    /// Everything in `out` is written: empty it (a small buffer goes back to the core).
    pub(super) fn written_out(&mut self) {
        if self.out.is_empty() {
            return;
        }
        self.at = 0;
        if self.out.capacity() > KEEP_OUT {
            self.out = Vec::new();
        } else {
            let out = std::mem::take(&mut self.out);
            self.conn.recycle(out);
        }
    }

    /// One action of the core; a step when it needs the runtime.
    pub(super) fn act(&mut self, action: Action) -> Option<Step> {
        let web = &self.service.web;
        match action {
            Action::Send(bytes) => {
                self.answer = true;
                self.push_out(bytes);
            }
            Action::Continue => {
                self.answer = true;
                self.push_out(protocol::CONTINUE.to_vec());
            }
            Action::OpenFile(path) => {
                self.opened = None;
                self.compressed = None;
                let notified = match self.service.schedule {
                    Schedule::EventLoop => self.fresh,
                    // runtime-std's poller may have read them before this request
                    // (`fresh`, with epoll); else the worker reads them now.
                    Schedule::Threads => self.fresh || web.catch_up(),
                };
                match web.open(path, notified) {
                    Lookup::Hit(result) => self.file_opened(result),
                    Lookup::Miss(miss) => return Some(Step::Blocking(Job(Work::Open(miss)))),
                }
            }
            Action::SendFile { offset, len } => match self.compressed.take() {
                Some(prepared) => self.start_compressed(prepared, len),
                None if self.zip.is_some() => self.start_archive(),
                None => self.start_body(offset, len),
            },
            Action::ListDir(dir) => {
                return Some(Step::Blocking(Job(Work::List(Arc::clone(web), dir))));
            }
            Action::WriteUpload { name, body } => {
                return Some(Step::Blocking(Job(Work::Upload(
                    Arc::clone(web),
                    name,
                    body,
                ))));
            }
            Action::BeginUpload { target } => {
                return Some(Step::Blocking(Job(Work::Begin(Arc::clone(web), target))));
            }
            Action::WriteChunk(bytes) => match self.upload.take() {
                Some(upload) => {
                    return Some(Step::Blocking(Job(Work::Chunk(
                        Arc::clone(web),
                        upload,
                        bytes,
                    ))))
                }
                None => self
                    .conn
                    .handle(self.now, Input::ChunkWritten(Err(UploadError::Other))),
            },
            Action::CommitUpload { target, replace } => match self.upload.take() {
                Some(upload) => {
                    let work = Work::Commit(Arc::clone(web), upload, target, replace);
                    return Some(Step::Blocking(Job(work)));
                }
                None => {
                    let failed = Input::UploadCommitted(Err(UploadError::Other));
                    self.conn.handle(self.now, failed);
                }
            },
            Action::AbortUpload => {
                if let Some(upload) = self.upload.take() {
                    return Some(Step::Blocking(Job(Work::Abort(upload))));
                }
            }
            Action::DeleteFile(path) => {
                return Some(Step::Blocking(Job(Work::Delete(Arc::clone(web), path))));
            }
            Action::Compress { coding, stream } => return self.compress(coding, stream),
            Action::Archive { dir, user, chunked } => {
                return Some(self.begin_archive(dir, user, chunked))
            }
            Action::Verify(credentials) => {
                // A credential verified lately is remembered (keyed by a salted hash).
                let cache = &self.service.credentials;
                let now = std::time::Instant::now();
                if cache.get(&credentials.user, &credentials.password, now) {
                    self.conn.handle(self.now, Input::Verified(true));
                } else {
                    return Some(Step::Blocking(Job(Work::Verify(credentials))));
                }
            }
            Action::Close => {
                let linger = self.just_answered;
                self.phase = Phase::Closing { linger };
            }
        }
        None
    }
}
