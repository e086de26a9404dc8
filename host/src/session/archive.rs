//! The session's side of `GET /DIR/?zip` ([`protocol::Action::Archive`], see
//! [`crate::archive`]): the archive is begun on the blocking side (its first chunk made,
//! so that a missing or unreadable directory is known before the answer's head), then,
//! when the core's `SendFile` comes, sent a chunk at a time, each made on the blocking
//! side and framed (chunked, HTTP/1.1) or not (HTTP/1.0, the close ends it). A client
//! that stops reading is dropped by the slow-reader rule like any other answer.

use std::io;
use std::sync::Arc;

use log::warn;
use protocol::{FileError, Input, SafePath};

use super::jobs::{Job, Work};
use super::{Session, Step};
use crate::archive::{Archive, Tree};
use crate::compress::{frame_chunk, LAST_CHUNK};

/// How much of the archive is made per step.
pub(super) const CHUNK: usize = 256 << 10;

/// An archive on its way.
pub(super) struct Zip {
    /// `None` while a chunk is being made on the blocking side.
    archive: Option<Box<Archive>>,
    /// A chunk made but not yet sent (the first one, made when the archive began).
    ready: Option<Vec<u8>>,
    chunked: bool,
    /// The core's `SendFile` came: send.
    sending: bool,
}

impl Session {
    /// [`protocol::Action::Archive`]: begins it on the blocking side.
    pub(super) fn begin_archive(
        &mut self,
        dir: SafePath,
        user: Option<String>,
        chunked: bool,
    ) -> Step {
        let archive = self.new_archive(dir, user);
        Step::Blocking(Job(Work::ArchiveChunk(archive, chunked, true)))
    }

    /// The archive of `dir`, leaving out what `user` may not read.
    pub(super) fn new_archive(&self, dir: SafePath, user: Option<String>) -> Box<Archive> {
        let tree: Arc<dyn Tree> = self.service.web.clone();
        let access = self.service.config.access.clone();
        let may_read = Box::new(move |path: &str| match &access {
            Some(ac) => ac.rules().may_read(path, user.as_deref()),
            None => true,
        });
        Box::new(Archive::new(tree, dir, may_read))
    }

    /// A chunk of the archive was made (`first`: the archive's beginning).
    pub(super) fn archive_chunk(
        &mut self,
        archive: Box<Archive>,
        chunked: bool,
        first: bool,
        result: io::Result<Option<Vec<u8>>>,
    ) {
        if first {
            let result = match result {
                Ok(chunk) => {
                    self.zip = Some(Zip {
                        archive: Some(archive),
                        ready: chunk,
                        chunked,
                        sending: false,
                    });
                    Ok(())
                }
                Err(e) => Err(begin_error(&e)),
            };
            self.conn.handle(self.now, Input::Archived(result));
            return;
        }
        let Some(zip) = self.zip.as_mut() else { return };
        match result {
            Ok(Some(chunk)) => {
                zip.archive = Some(archive);
                zip.ready = Some(chunk);
            }
            Ok(None) => {
                // The end.
                let chunked = zip.chunked;
                self.zip = None;
                if chunked {
                    self.push_body_bytes(LAST_CHUNK);
                }
            }
            Err(e) => {
                warn!("{} archive cut short: {e}", self.peer());
                self.zip = None;
                self.fail("the archive could not be made");
            }
        }
    }

    /// The core's `SendFile` of the archive.
    pub(super) fn start_archive(&mut self) {
        match self.zip.as_mut() {
            Some(zip) => zip.sending = true,
            None => self.fail("no archive to send"),
        }
    }

    /// The archive's next step once the output is written: a chunk to send, or one to
    /// make. `None`: nothing to do (no archive being sent).
    pub(super) fn archive_step(&mut self) -> Option<Step> {
        let zip = self.zip.as_mut().filter(|z| z.sending)?;
        if let Some(chunk) = zip.ready.take() {
            if !chunk.is_empty() {
                let mut out = Vec::with_capacity(chunk.len() + 16);
                if zip.chunked {
                    frame_chunk(&chunk, &mut out);
                    self.push_body_bytes(&out);
                } else {
                    self.push_body_bytes(&chunk);
                }
            }
            return Some(Step::Write);
        }
        let archive = zip.archive.take()?;
        let chunked = zip.chunked;
        Some(Step::Blocking(Job(Work::ArchiveChunk(
            archive, chunked, false,
        ))))
    }
}

/// Why an archive could not begin, for the core.
pub(super) fn begin_error(e: &io::Error) -> FileError {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => FileError::NotFound,
        io::ErrorKind::PermissionDenied => FileError::Forbidden,
        _ => FileError::Other,
    }
}

/// Makes the archive's next chunk (a job).
pub(super) fn next_chunk(archive: &mut Archive) -> io::Result<Option<Vec<u8>>> {
    archive.next_chunk(CHUNK)
}
