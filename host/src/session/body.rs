//! A large body on its way to the client: a file sent with `sendfile` (in steps, read
//! ahead, with a yield between, under [`Schedule::EventLoop`]), a file read and encrypted
//! a chunk at a time under TLS, or an object streamed from the store.

use std::sync::Arc;

use log::error;

use super::jobs::{Job, Work};
use super::{Schedule, Session, Step};
use crate::cache::{Body, Opened};

/// A large body on its way: a file (sendfile, or read and encrypted under TLS), or an
/// object of the store.
pub(super) struct Body_ {
    pub(super) file: Arc<Opened>,
    pub(super) pos: u64,
    pub(super) end: u64,
    /// Where the current step ends ([`Schedule::EventLoop`]).
    pub(super) step_end: u64,
    pub(super) yield_due: bool,
    /// Compressed as it is sent (`Transfer-Encoding: chunked`).
    pub(super) deflate: Option<super::compress::Deflate>,
    /// An object of the store: where its reading is.
    #[cfg(feature = "s3")]
    pub(super) remote: Option<RemoteState>,
}

#[cfg(feature = "s3")]
pub(super) enum RemoteState {
    Unfetched,
    Ready(super::jobs::Remote),
    Busy,
}

/// Bytes of a large file sent per step with `sendfile` ([`Schedule::EventLoop`]).
const STEP: u64 = 1 << 20;
/// The step when the body is copied through the process (the buffered copy of
/// `PORTABLE_IO=1` and Windows, and TLS): it costs the thread several times what
/// `sendfile` does per byte, so other connections get their turn four times as often
/// (measured beside a 512 MiB download: p99 of small GETs 15–23 ms with 1 MiB steps).
const COPY_STEP: u64 = 256 << 10;
/// An object of the store is read in chunks of this size.
#[cfg(feature = "s3")]
const REMOTE_CHUNK: u64 = 64 * 1024;

impl Session {
    pub(super) fn body_sending(&self) -> bool {
        self.body.is_some() && self.at >= self.out.len()
    }

    pub(super) fn push_body_bytes(&mut self, bytes: &[u8]) {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            tls.send(bytes, &mut self.out);
            return;
        }
        self.out.extend_from_slice(bytes);
    }

    pub(super) fn start_body(&mut self, offset: u64, len: u64) {
        let Some(file) = self.opened.clone() else {
            error!("the core asked to send a file that is not open");
            return self.fail("no file");
        };
        let end = offset.saturating_add(len);
        match &file.body {
            Body::Bytes(_) => match file.bytes(offset, len) {
                // Straight from the cache into the output (the `Arc` held here keeps
                // the bytes alive; no copy of them in between).
                Ok(bytes) => self.push_body_bytes(bytes),
                Err(e) => self.fail(&e.to_string()),
            },
            Body::None => self.fail("SendFile for a directory"),
            Body::File(_) => {
                // Head and body leave in full segments (see `set_cork`).
                self.cork_pending = !self.tls_on() && crate::sendfile::zero_copy();
                self.body = Some(Body_::new(Arc::clone(&file), offset, end));
            }
            #[cfg(feature = "s3")]
            Body::Remote(..) => {
                let mut b = Body_::new(Arc::clone(&file), offset, end);
                b.remote = Some(RemoteState::Unfetched);
                self.body = Some(b);
            }
        }
    }

    pub(super) fn tls_on(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// The body's next step, once `out` is written; `None` with `self.body` still set:
    /// go round again (bytes were put in `out`).
    pub(super) fn body_step(&mut self) -> Option<Step> {
        let schedule = self.service.schedule;
        let tls = self.tls_on();
        let b = self.body.as_mut()?;
        if b.deflate.is_some() {
            return self.deflate_step();
        }
        if b.pos >= b.end {
            self.body = None;
            return None;
        }
        #[cfg(feature = "s3")]
        if let Some(state) = b.remote.take() {
            let (store, name) = match &b.file.body {
                Body::Remote(store, name) => (Arc::clone(store), name.clone()),
                _ => return Some(Step::Close),
            };
            b.remote = Some(RemoteState::Busy);
            return Some(Step::Blocking(Job(match state {
                RemoteState::Unfetched => Work::Fetch(store, name, b.pos, b.end - b.pos),
                RemoteState::Ready(r) => Work::Read(r, (b.end - b.pos).min(REMOTE_CHUNK) as usize),
                RemoteState::Busy => {
                    error!("a store job was not finished");
                    return Some(Step::Close);
                }
            })));
        }
        if b.yield_due {
            b.yield_due = false;
            return Some(Step::Yield);
        }
        if b.pos >= b.step_end {
            // A new step.
            b.step_end = match schedule {
                Schedule::Threads => b.end,
                Schedule::EventLoop => {
                    let step = if !tls && crate::sendfile::zero_copy() {
                        STEP
                    } else {
                        COPY_STEP
                    };
                    b.pos.saturating_add(step).min(b.end)
                }
            };
            // Read ahead in the blocking pool, unless the page cache holds the step
            // already: the job's two wake-ups per step cost the executor thread more
            // than the check (see BENCHMARKS.md, the big download beside small GETs).
            if schedule == Schedule::EventLoop && !b.step_cached() {
                let work = Work::Prefetch(Arc::clone(&b.file), b.pos, b.step_end - b.pos);
                return Some(Step::Blocking(Job(work)));
            }
        }
        if !tls {
            return Some(Step::SendFile);
        }
        #[cfg(feature = "tls")]
        self.encrypt_chunk();
        None
    }

    /// TLS: reads the body's next chunk and encrypts it into `out`.
    #[cfg(feature = "tls")]
    fn encrypt_chunk(&mut self) {
        let schedule = self.service.schedule;
        let Some(b) = self.body.as_mut() else { return };
        let want = (b.step_end - b.pos).min(super::tls::CHUNK as u64) as usize;
        let Body::File(f) = &b.file.body else {
            return self.fail("not a file");
        };
        let mut chunk = vec![0u8; want];
        match crate::sendfile::read_at(f, &mut chunk, b.pos) {
            Ok(0) => self.fail("the file ended before its size said"),
            Ok(n) => {
                b.pos += n as u64;
                if b.pos >= b.step_end && schedule == Schedule::EventLoop {
                    b.yield_due = true;
                }
                self.push_body_bytes(&chunk[..n]);
            }
            Err(e) => self.fail(&format!("reading the file: {e}")),
        }
    }
}

impl Body_ {
    /// Whether the page cache holds the current step of a file now.
    fn step_cached(&self) -> bool {
        match &self.file.body {
            Body::File(f) => crate::sendfile::cached(f, self.pos, self.step_end - self.pos),
            _ => false,
        }
    }

    pub(super) fn new(file: Arc<Opened>, pos: u64, end: u64) -> Body_ {
        Body_ {
            file,
            pos,
            end,
            step_end: pos,
            yield_due: false,
            deflate: None,
            #[cfg(feature = "s3")]
            remote: None,
        }
    }
}
