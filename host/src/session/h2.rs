//! The session of an HTTP/2 connection: which protocol a connection speaks, and, for
//! HTTP/2, the glue of [`protocol::H2Server`]'s actions.
//!
//! The session decides, never the runtimes: under TLS by what ALPN chose (`h2`, offered
//! first unless `--http2 off`); in clear text by the first bytes (the 24-byte preface,
//! held while they could still be it: prior knowledge). Over HTTP/2 the session does
//! for each stream what it does for an HTTP/1.1 connection — a cache hit at once, a
//! miss, a listing, an upload, a password or a compression as a blocking job (one at a
//! time per connection; the stream it is for is remembered) — and keeps per stream what
//! it keeps per connection for HTTP/1.1 ([`StreamIo`]: the file opened, its prepared
//! compression, the upload begun, the body on its way).
//!
//! Bodies: no `sendfile` (DATA frames interleave): each stream's file is read in pieces
//! (from one frame up to 64 KiB, as the windows allow) into
//! [`protocol::H2Server::send_body`], one piece per stream per round, so streams share
//! the connection; a compressed stream is compressed piece by piece on the blocking
//! side, an object of the store read chunk by chunk. On the event loop, each 256 KiB of
//! a file is read ahead on the blocking pool first (as under TLS). Memory per stream:
//! at most one piece the windows did not take; per connection: the server's output
//! budget and one write. Every 256 KiB of bodies, the session looks at what the client
//! sent (a read with a deadline of now: window updates, new streams, resets), so one
//! download never keeps a connection from hearing its client.

mod finish;
use std::collections::BTreeMap;
use std::sync::Arc;

use log::debug;
use protocol::{Action, FileError, H2Action, H2Input, H2Server, Input, Listing, Now, UploadError};

use super::body::Body_;
use super::compress::{self, Deflate, Prep, Prepared};
use super::jobs::{Done, Job, Result_, Work};
use super::{Schedule, Session, Step};
use crate::cache::{Body, Opened};
use crate::pace::WriteWatch;
use crate::webroot::{Lookup, Upload};

/// The least and the most of a body read per piece.
const PIECE_MIN: usize = 16 << 10;
const PIECE_MAX: usize = 64 << 10;
/// Bodies sent between two looks at what the client sent.
const READ_EVERY: usize = 256 << 10;
/// On the event loop, a file is read ahead in steps of this size.
const STEP: u64 = 256 << 10;

/// Which protocol a connection speaks.
pub(super) enum Proto {
    /// Clear text with `--http2 on`: the bytes so far, all a prefix of the preface.
    Sniff(Vec<u8>),
    /// TLS: decided by ALPN when the first plaintext comes (the handshake is done).
    #[cfg(feature = "tls")]
    Alpn,
    H1,
    H2(Box<H2Mode>),
}

/// HTTP/2: the server and what the session holds per stream.
pub(super) struct H2Mode {
    pub(super) server: H2Server,
    streams: BTreeMap<u32, StreamIo>,
    /// The stream of the blocking job handed out.
    job_for: Option<u32>,
    /// Body bytes sent since the client was last read.
    since_read: usize,
}

/// What the session holds for one stream.
#[derive(Default)]
struct StreamIo {
    opened: Option<Arc<Opened>>,
    compressed: Option<Prepared>,
    upload: Option<Upload>,
    body: Option<Body_>,
    zip: Option<Zip>,
}

/// A stream's zip archive (`GET /DIR/?zip`): begun on the blocking side, then sent a
/// chunk at a time (as DATA, never chunked: the server ends the body with the last one).
struct Zip {
    /// `None` while a chunk is being made on the blocking side.
    archive: Option<Box<crate::archive::Archive>>,
    /// A chunk made but not yet sent.
    ready: Option<Vec<u8>>,
    /// The core's `SendFile` came: send.
    sending: bool,
}

/// What a round of bodies did.
enum Progress {
    Idle,
    Moved,
    Step(Step),
}

impl Session {
    /// Bytes of the client (decrypted under TLS) while serving: to the protocol the
    /// connection speaks, once that is known.
    pub(super) fn plain_in(&mut self, now: Now, bytes: &[u8]) {
        match &mut self.proto {
            Proto::H2(h2) => {
                h2.server.handle(now, H2Input::Received(bytes));
            }
            Proto::Sniff(held) => {
                held.extend_from_slice(bytes);
                let preface = protocol::H2_PREFACE;
                let n = held.len().min(preface.len());
                if held[..n] == preface[..n] {
                    if held.len() >= preface.len() {
                        let held = std::mem::take(held);
                        self.start_h2(now);
                        self.plain_in(now, &held);
                    }
                    return;
                }
                // Not HTTP/2: the core reads it all, as it came.
                let held = std::mem::take(held);
                self.proto = Proto::H1;
                self.h1_in(now, &held);
            }
            #[cfg(feature = "tls")]
            Proto::Alpn => {
                if self.tls.as_ref().is_some_and(|t| t.h2()) {
                    self.start_h2(now);
                    return self.plain_in(now, bytes);
                }
                self.proto = Proto::H1;
                self.h1_in(now, bytes);
            }
            Proto::H1 => self.h1_in(now, bytes),
        }
    }

    fn start_h2(&mut self, now: Now) {
        let peer = self.conn.peer().to_string();
        let config = Arc::clone(&self.service.config);
        let server = H2Server::new(config, now, crate::clock::seed(), peer);
        self.proto = Proto::H2(Box::new(H2Mode {
            server,
            streams: BTreeMap::new(),
            job_for: None,
            since_read: 0,
        }));
    }

    pub(super) fn h2(&mut self) -> Option<&mut H2Mode> {
        match &mut self.proto {
            Proto::H2(h2) => Some(h2),
            _ => None,
        }
    }

    /// Serving over HTTP/2, the output written: the server's actions, its output, the
    /// bodies; else a wait for the client. `None`: go round again.
    pub(super) fn h2_serving(&mut self) -> Option<Step> {
        let (now, eof) = (self.now, self.eof);
        let h2 = self.h2()?;
        if let Some(action) = h2.server.poll() {
            return self.h2_act(action);
        }
        if !h2.server.output().is_empty() {
            let mut bytes = Vec::new();
            h2.server.take_output(&mut bytes, now);
            self.push_out(bytes);
            return None;
        }
        if h2.since_read >= READ_EVERY && !eof {
            h2.since_read = 0;
            // A look at what the client sent meanwhile (the deadline is now).
            return Some(Step::Read(now.mono_ms));
        }
        match self.h2_bodies() {
            Progress::Step(step) => return Some(step),
            Progress::Moved => return None,
            Progress::Idle => {}
        }
        let idle = self.service.config.idle_timeout_ms;
        let h2 = self.h2()?;
        if h2.server.is_closed() {
            // As HTTP/1.1's core says it, for the same debug line per connection.
            debug!("{} connection closed", self.peer());
            self.phase = super::Phase::Closing { linger: true };
            return None;
        }
        if eof {
            // The client closed its side: what is left waits for it (a window update, a
            // request body) and can never come. Reading again would only find the end
            // of the stream again.
            debug!(
                "{} connection closed (HTTP/2: the client closed its side)",
                self.peer()
            );
            self.phase = super::Phase::Closing { linger: false };
            return None;
        }
        let until = (h2.server.deadline()).unwrap_or(now.mono_ms.saturating_add(idle));
        // Everything is written: the pace of the client is watched afresh.
        self.watch = WriteWatch::new(idle);
        Some(Step::Read(until))
    }

    fn h2_act(&mut self, action: H2Action) -> Option<Step> {
        let (id, action) = match action {
            H2Action::Done(id) => {
                let io = self.h2()?.streams.remove(&id)?;
                return io.upload.map(|u| Step::Blocking(Job(Work::Abort(u))));
            }
            H2Action::Stream(id, action) => (id, action),
        };
        // What the session holds for the stream, from its first action on.
        self.io_or_new(id)?;
        let web = Arc::clone(&self.service.web);
        let upload = |s: &mut Session| s.io_or_new(id).and_then(|io| io.upload.take());
        let work = match action {
            Action::OpenFile(path) => {
                if let Some(io) = self.io_or_new(id) {
                    io.opened = None;
                    io.compressed = None;
                }
                let notified = match self.service.schedule {
                    Schedule::EventLoop => self.fresh,
                    Schedule::Threads => web.catch_up(),
                };
                match web.open(path, notified) {
                    Lookup::Hit(result) => {
                        self.h2_opened(id, result);
                        return None;
                    }
                    Lookup::Miss(miss) => Work::Open(miss),
                }
            }
            Action::SendFile { offset, len } => {
                self.h2_start_body(id, offset, len);
                return None;
            }
            Action::ListDir(dir) => Work::List(web, dir),
            Action::WriteUpload { name, body } => Work::Upload(web, name, body),
            Action::BeginUpload { target } => Work::Begin(web, target),
            Action::WriteChunk(bytes) => match upload(self) {
                Some(upload) => Work::Chunk(web, upload, bytes),
                None => {
                    self.hand_stream(id, Input::ChunkWritten(Err(UploadError::Other)));
                    return None;
                }
            },
            Action::CommitUpload { target, replace } => match upload(self) {
                Some(upload) => Work::Commit(web, upload, target, replace),
                None => {
                    let failed = Input::UploadCommitted(Err(UploadError::Other));
                    self.hand_stream(id, failed);
                    return None;
                }
            },
            Action::AbortUpload => Work::Abort(upload(self)?),
            Action::DeleteFile(path) => Work::Delete(web, path),
            Action::Archive { dir, user, .. } => {
                Work::ArchiveChunk(self.new_archive(dir, user), false, true)
            }
            Action::Compress { coding, stream } => {
                let opened = self.io_or_new(id).and_then(|io| io.opened.clone());
                match compress::prepare(opened, coding, stream, self.conn.peer()) {
                    Prep::Ready(prepared) => {
                        let result = compress::result_of(&prepared);
                        if let Some(io) = self.io(id) {
                            io.compressed = prepared;
                        }
                        self.hand_stream(id, Input::Compressed(result));
                        return None;
                    }
                    Prep::Job(work) => work,
                }
            }
            Action::Verify(credentials) => {
                let cache = &self.service.credentials;
                let at = std::time::Instant::now();
                if cache.get(&credentials.user, &credentials.password, at) {
                    self.hand_stream(id, Input::Verified(true));
                    return None;
                }
                Work::Verify(credentials)
            }
            // The server frames these itself.
            Action::Send(_) | Action::Continue | Action::Close => return None,
        };
        self.h2()?.job_for = Some(id);
        Some(Step::Blocking(Job(work)))
    }

    fn io_or_new(&mut self, id: u32) -> Option<&mut StreamIo> {
        Some(self.h2()?.streams.entry(id).or_default())
    }

    fn hand_stream(&mut self, id: u32, input: Input<'_>) {
        let now = self.now;
        if let Some(h2) = self.h2() {
            h2.server.handle(now, H2Input::Stream(id, input));
        }
    }

    fn io(&mut self, id: u32) -> Option<&mut StreamIo> {
        self.h2()?.streams.get_mut(&id)
    }

    fn h2_opened(&mut self, id: u32, result: Result<Arc<Opened>, FileError>) {
        let io = self.io(id);
        let result = result.map(|file| {
            let meta = file.meta;
            if let Some(io) = io.filter(|_| !meta.is_dir) {
                io.opened = Some(file);
            }
            meta
        });
        self.hand_stream(id, Input::FileOpened(result));
    }

    /// A stream's `SendFile`: its body from the prepared compression or the file.
    fn h2_start_body(&mut self, id: u32, offset: u64, len: u64) {
        let (file, compressed) = match self.io(id) {
            Some(io) => {
                if let Some(zip) = &mut io.zip {
                    zip.sending = true;
                    return;
                }
                (io.opened.clone(), io.compressed.take())
            }
            None => return,
        };
        let Some(file) = file else {
            log::error!("the core asked to send a file that is not open");
            return self.hand_stream(id, Input::WriteFailed);
        };
        let end = offset.saturating_add(len);
        let body = match compressed {
            Some(Prepared::Bytes(bytes)) => return self.send_piece(id, &bytes, true),
            Some(Prepared::Stream(coding)) => {
                let effort = crate::compress::Effort::Stream;
                let Ok(encoder) = crate::compress::Encoder::new(coding, effort) else {
                    return self.hand_stream(id, Input::WriteFailed);
                };
                let mut body = Body_::new(file, 0, len);
                body.deflate = Some(Deflate::Idle(Box::new(encoder)));
                body
            }
            None => match &file.body {
                Body::Bytes(_) => {
                    return match file.bytes(offset, len) {
                        Ok(bytes) => self.send_piece(id, bytes, true),
                        Err(_) => self.hand_stream(id, Input::WriteFailed),
                    };
                }
                Body::None => return self.hand_stream(id, Input::WriteFailed),
                Body::File(_) => Body_::new(Arc::clone(&file), offset, end),
                #[cfg(feature = "s3")]
                Body::Remote(..) => {
                    let mut b = Body_::new(Arc::clone(&file), offset, end);
                    b.remote = Some(super::body::RemoteState::Unfetched);
                    b
                }
            },
        };
        if let Some(io) = self.io(id) {
            io.body = Some(body);
        }
    }

    fn send_piece(&mut self, id: u32, bytes: &[u8], last: bool) {
        let now = self.now;
        if let Some(h2) = self.h2() {
            h2.since_read += bytes.len();
            h2.server.send_body(now, id, bytes, last);
        }
    }

    /// One piece of each stream's body the windows take; or the job a body needs.
    fn h2_bodies(&mut self) -> Progress {
        let now = self.now;
        let schedule = self.service.schedule;
        let Some(h2) = self.h2() else {
            return Progress::Idle;
        };
        let mut progress = Progress::Idle;
        let ids: Vec<u32> = (h2.streams.iter())
            .filter(|(_, io)| io.body.is_some() || io.zip.as_ref().is_some_and(|z| z.sending))
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            let Some(room) = h2.server.body_room(id) else {
                continue;
            };
            if let Some(zip) = h2.streams.get_mut(&id).and_then(|io| io.zip.as_mut()) {
                // An archive: its chunk made goes (the windows take it as they open),
                // else the next one is made.
                if let Some(chunk) = zip.ready.take() {
                    h2.since_read += chunk.len();
                    h2.server.send_body(now, id, &chunk, false);
                    progress = Progress::Moved;
                    continue;
                }
                let Some(archive) = zip.archive.take() else {
                    continue;
                };
                h2.job_for = Some(id);
                let work = Work::ArchiveChunk(archive, false, false);
                return Progress::Step(Step::Blocking(Job(work)));
            }
            let Some(b) = h2.streams.get_mut(&id).and_then(|io| io.body.as_mut()) else {
                continue;
            };
            let want = (room.clamp(PIECE_MIN, PIECE_MAX) as u64).min(b.end - b.pos) as usize;
            if b.deflate.is_some() {
                match b.deflate.take() {
                    Some(Deflate::Idle(encoder)) if b.pos >= b.end => {
                        if let Some(io) = h2.streams.get_mut(&id) {
                            io.body = None;
                        }
                        match encoder.finish() {
                            Ok(tail) => h2.server.send_body(now, id, &tail, true),
                            Err(_) => {
                                let failed = H2Input::Stream(id, Input::WriteFailed);
                                h2.server.handle(now, failed);
                            }
                        }
                        progress = Progress::Moved;
                        continue;
                    }
                    Some(Deflate::Idle(encoder)) => {
                        b.deflate = Some(Deflate::Busy);
                        let want = (b.end - b.pos).min(crate::compress::STREAM_CHUNK as u64);
                        let work =
                            Work::Deflate(Arc::clone(&b.file), encoder, b.pos, want as usize);
                        h2.job_for = Some(id);
                        return Progress::Step(Step::Blocking(Job(work)));
                    }
                    other => {
                        b.deflate = other;
                        continue;
                    }
                }
            }
            #[cfg(feature = "s3")]
            if let Some(state) = b.remote.take() {
                use super::body::RemoteState;
                let Body::Remote(store, name) = &b.file.body else {
                    continue;
                };
                let work = match state {
                    RemoteState::Unfetched => {
                        Work::Fetch(Arc::clone(store), name.clone(), b.pos, b.end - b.pos)
                    }
                    RemoteState::Ready(r) => Work::Read(r, want.max(1)),
                    RemoteState::Busy => {
                        b.remote = Some(RemoteState::Busy);
                        continue;
                    }
                };
                b.remote = Some(RemoteState::Busy);
                h2.job_for = Some(id);
                return Progress::Step(Step::Blocking(Job(work)));
            }
            let Body::File(f) = &b.file.body else {
                continue;
            };
            if schedule == Schedule::EventLoop && b.pos >= b.step_end {
                // Read ahead on the blocking pool: the event loop then reads from memory.
                b.step_end = b.pos.saturating_add(STEP).min(b.end);
                let work = Work::Prefetch(Arc::clone(&b.file), b.pos, b.step_end - b.pos);
                h2.job_for = Some(id);
                return Progress::Step(Step::Blocking(Job(work)));
            }
            let want = match schedule {
                Schedule::EventLoop => want.min((b.step_end - b.pos) as usize),
                Schedule::Threads => want,
            };
            let mut piece = vec![0u8; want];
            let read = crate::sendfile::read_at(f, &mut piece, b.pos);
            match read {
                Ok(n) if n > 0 || want == 0 => {
                    b.pos += n as u64;
                    let last = b.pos >= b.end;
                    h2.since_read += n;
                    if last {
                        if let Some(io) = h2.streams.get_mut(&id) {
                            io.body = None;
                        }
                    }
                    h2.server.send_body(now, id, &piece[..n], last);
                }
                Ok(_) | Err(_) => {
                    debug!(
                        "{} stream {id}: the file could not be read",
                        h2.server.peer()
                    );
                    if let Some(io) = h2.streams.get_mut(&id) {
                        io.body = None;
                    }
                    h2.server
                        .handle(now, H2Input::Stream(id, Input::WriteFailed));
                }
            }
            progress = Progress::Moved;
        }
        progress
    }
}
