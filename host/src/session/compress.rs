//! The session's side of compression on the fly (see [`crate::compress`]): preparing a
//! compressed answer when the core asks ([`protocol::Action::Compress`]), and sending
//! it when the core's `SendFile` comes: the kept bytes, or the file compressed a piece
//! at a time on the blocking side and framed in chunks.

use std::io;
use std::sync::Arc;

use log::debug;
use protocol::{Coding, Compressed, Input};

use super::body::Body_;
use super::jobs::{Job, Work};
use super::{Session, Step};
use crate::cache::{Body, Opened};
use crate::compress::{self, Busy, Effort, Encoder};

/// A compressed answer, prepared.
pub(super) enum Prepared {
    /// Compressed whole (kept beside the file, or made for this answer).
    Bytes(Arc<[u8]>),
    /// To be compressed as it is sent.
    Stream(Coding),
}

/// Where a streamed compression is.
pub(super) enum Deflate {
    Idle(Box<Encoder>),
    /// Its piece is being compressed on the blocking side.
    Busy,
}

impl Session {
    /// [`protocol::Action::Compress`]: the kept variant, a job to make it, a stream, or
    /// (saturated, too large to go unchunked, not a local file, built without the
    /// feature) a refusal: the identity answer.
    pub(super) fn compress(&mut self, coding: Coding, stream: bool) -> Option<Step> {
        match prepare(self.opened.clone(), coding, stream, self.peer()) {
            Prep::Ready(prepared) => self.compressed_answer(prepared),
            Prep::Job(work) => Some(Step::Blocking(Job(work))),
        }
    }

    fn compressed_answer(&mut self, prepared: Option<Prepared>) -> Option<Step> {
        let result = result_of(&prepared);
        self.compressed = prepared;
        self.conn.handle(self.now, Input::Compressed(result));
        None
    }

    /// A job compressed the file whole.
    pub(super) fn compressed_whole(&mut self, result: io::Result<Arc<[u8]>>) {
        let prepared = match result {
            Ok(bytes) => Some(Prepared::Bytes(bytes)),
            Err(e) => {
                debug!("{} not compressed: {e}", self.peer());
                None
            }
        };
        self.compressed_answer(prepared);
    }

    /// The core's `SendFile` of a compressed answer.
    pub(super) fn start_compressed(&mut self, prepared: Prepared, len: u64) {
        match prepared {
            Prepared::Bytes(bytes) => self.push_body_bytes(&bytes),
            Prepared::Stream(coding) => {
                match (self.opened.clone(), Encoder::new(coding, Effort::Stream)) {
                    (Some(file), Ok(encoder)) => {
                        self.streamed = 0;
                        let mut body = Body_::new(file, 0, len);
                        body.deflate = Some(Deflate::Idle(Box::new(encoder)));
                        self.body = Some(body);
                    }
                    _ => self.fail("the compressed stream could not start"),
                }
            }
        }
    }

    /// The next step of a streamed compression: a piece to compress, or the end.
    pub(super) fn deflate_step(&mut self) -> Option<Step> {
        let b = self.body.as_mut()?;
        match b.deflate.take() {
            Some(Deflate::Idle(encoder)) if b.pos >= b.end => {
                self.body = None;
                let mut out = Vec::new();
                match encoder.finish() {
                    Ok(tail) => {
                        self.streamed += tail.len() as u64;
                        if !tail.is_empty() {
                            compress::frame_chunk(&tail, &mut out);
                        }
                        out.extend_from_slice(compress::LAST_CHUNK);
                        self.push_body_bytes(&out);
                        None
                    }
                    Err(e) => {
                        self.fail(&format!("compressing: {e}"));
                        None
                    }
                }
            }
            Some(Deflate::Idle(encoder)) => {
                b.deflate = Some(Deflate::Busy);
                let want = (b.end - b.pos).min(compress::STREAM_CHUNK as u64) as usize;
                let work = Work::Deflate(Arc::clone(&b.file), encoder, b.pos, want);
                Some(Step::Blocking(Job(work)))
            }
            Some(Deflate::Busy) | None => {
                log::error!("a compression job was not finished");
                Some(Step::Close)
            }
        }
    }

    /// A piece of the file compressed.
    pub(super) fn deflated(&mut self, encoder: Box<Encoder>, result: io::Result<(usize, Vec<u8>)>) {
        match result {
            Ok((0, _)) => self.fail("the file ended before its size said"),
            Ok((n, bytes)) => {
                let Some(b) = self.body.as_mut() else { return };
                b.pos += n as u64;
                b.deflate = Some(Deflate::Idle(encoder));
                self.streamed += bytes.len() as u64;
                if !bytes.is_empty() {
                    let mut out = Vec::with_capacity(bytes.len() + 16);
                    compress::frame_chunk(&bytes, &mut out);
                    self.push_body_bytes(&out);
                }
            }
            Err(e) => self.fail(&format!("compressing the file: {e}")),
        }
    }
}

/// What a `Compress` action comes to: prepared at once, or a job that compresses the
/// file whole (its result: [`super::jobs::Result_::Compressed`]).
pub(super) enum Prep {
    Ready(Option<Prepared>),
    Job(Work),
}

/// Prepares the compression of `file` (the file opened for the answer): the kept
/// variant, a job to make it, a stream, or (saturated, too large to go unchunked, not a
/// local file, built without the feature) `Ready(None)`: the identity answer.
pub(super) fn prepare(file: Option<Arc<Opened>>, coding: Coding, stream: bool, peer: &str) -> Prep {
    let Some(file) = file.filter(|_| cfg!(feature = "compress")) else {
        return Prep::Ready(None);
    };
    if let Some(kept) = file.variants.get(coding) {
        return Prep::Ready(Some(Prepared::Bytes(kept)));
    }
    let whole = file.meta.len <= compress::WHOLE;
    match (&file.body, Busy::take()) {
        (_, None) => {
            debug!("{peer} compression saturated: sent as it is");
            Prep::Ready(None)
        }
        (Body::Bytes(_) | Body::File(_), Some(busy)) if whole => {
            Prep::Job(Work::Compress(file, coding, busy))
        }
        (Body::File(_), Some(_)) if stream => Prep::Ready(Some(Prepared::Stream(coding))),
        _ => Prep::Ready(None),
    }
}

/// What the core hears of a prepared compression.
pub(super) fn result_of(prepared: &Option<Prepared>) -> Compressed {
    match prepared {
        Some(Prepared::Bytes(b)) => Compressed::Len(b.len() as u64),
        Some(Prepared::Stream(_)) => Compressed::Stream,
        None => Compressed::Refused,
    }
}

/// Compresses an opened file whole (a job), and keeps the result beside it.
pub(super) fn whole(file: &Opened, coding: Coding) -> io::Result<Arc<[u8]>> {
    let compressed = match &file.body {
        Body::Bytes(bytes) => compress::compress(coding, bytes, Effort::Kept)?,
        Body::File(f) => {
            let mut data = vec![0u8; file.meta.len as usize];
            read_full(f, &mut data, 0)?;
            compress::compress(coding, &data, Effort::Kept)?
        }
        _ => return Err(io::Error::other("not a local file")),
    };
    let compressed: Arc<[u8]> = Arc::from(compressed);
    file.variants.keep(coding, &compressed);
    Ok(compressed)
}

/// Reads `want` bytes of the file from `offset` and compresses them (a job).
pub(super) fn next_piece(
    file: &Opened,
    encoder: &mut Encoder,
    offset: u64,
    want: usize,
) -> io::Result<(usize, Vec<u8>)> {
    let Body::File(f) = &file.body else {
        return Err(io::Error::other("not a local file"));
    };
    let mut data = vec![0u8; want];
    let n = read_full(f, &mut data, offset)?;
    let out = encoder.feed(&data[..n])?;
    Ok((n, out))
}

/// Reads until `buf` is full or the file ends; how many bytes were read.
fn read_full(f: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match crate::sendfile::read_at(f, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if done < buf.len() && offset == 0 {
        return Err(io::Error::other("the file is shorter than its size said"));
    }
    Ok(done)
}
