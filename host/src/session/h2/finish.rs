//! How an HTTP/2 stream's blocking job ends: its result handed to the stream, a zip's next
//! chunk, a body that failed.

use super::*;

impl Session {
    /// The result of a blocking job handed out for a stream.
    pub(in crate::session) fn h2_finish(&mut self, now: Now, done: Done) {
        self.now = now;
        let Some(h2) = self.h2() else { return };
        let Some(id) = h2.job_for.take() else {
            return;
        };
        match done.0 {
            Result_::Opened(result) => self.h2_opened(id, result),
            Result_::Listed(read) => {
                let result = match &read {
                    Ok((entries, unread)) => Ok(Listing {
                        entries,
                        unread: *unread,
                    }),
                    Err(e) => Err(*e),
                };
                self.hand_stream(id, Input::DirListed(result));
            }
            Result_::Uploaded(result) => self.hand_stream(id, Input::UploadWritten(result)),
            Result_::Prefetched | Result_::Aborted => {}
            Result_::Begun(result) => {
                let result = result.map(|upload| {
                    if let Some(io) = self.io(id) {
                        io.upload = Some(upload);
                    }
                });
                self.hand_stream(id, Input::UploadBegun(result));
            }
            Result_::Written(upload, result) => {
                if let Some(io) = self.io(id) {
                    io.upload = Some(upload);
                }
                self.hand_stream(id, Input::ChunkWritten(result));
            }
            Result_::Committed(result, back) => {
                if let (Some(io), Some(back)) = (self.io(id), back) {
                    io.upload = Some(back);
                }
                self.hand_stream(id, Input::UploadCommitted(result));
            }
            Result_::Deleted(result) => self.hand_stream(id, Input::Deleted(result)),
            Result_::ArchiveChunk(archive, _, first, result) => {
                self.h2_archive_chunk(id, archive, first, result)
            }
            Result_::Compressed(result) => {
                let prepared = match result {
                    Ok(bytes) => Some(Prepared::Bytes(bytes)),
                    Err(e) => {
                        debug!("{} not compressed: {e}", self.peer());
                        None
                    }
                };
                let result = compress::result_of(&prepared);
                if let Some(io) = self.io(id) {
                    io.compressed = prepared;
                }
                self.hand_stream(id, Input::Compressed(result));
            }
            Result_::Deflated(encoder, result) => match result {
                Ok((n, bytes)) if n > 0 => {
                    let Some(b) = self.io(id).and_then(|io| io.body.as_mut()) else {
                        return;
                    };
                    b.pos += n as u64;
                    b.deflate = Some(Deflate::Idle(encoder));
                    self.send_piece(id, &bytes, false);
                }
                _ => self.h2_body_failed(id),
            },
            Result_::Verified(c, ok) => {
                let current = self.service.config.access.as_ref().map(|a| a.generation());
                if ok && current == Some(c.generation) {
                    let at = std::time::Instant::now();
                    self.service.credentials.insert(&c.user, &c.password, at);
                }
                self.hand_stream(id, Input::Verified(ok));
            }
            #[cfg(feature = "s3")]
            Result_::Fetched(result) => match result {
                Ok(remote) => {
                    if let Some(b) = self.io(id).and_then(|io| io.body.as_mut()) {
                        b.remote = Some(crate::session::body::RemoteState::Ready(remote));
                    }
                }
                Err(e) => {
                    debug!("{} stream {id}: the store: {e}", self.peer());
                    self.h2_body_failed(id);
                }
            },
            #[cfg(feature = "s3")]
            Result_::Chunk(remote, read) => match read {
                Ok(chunk) if !chunk.is_empty() => {
                    let Some(b) = self.io(id).and_then(|io| io.body.as_mut()) else {
                        return;
                    };
                    b.pos += chunk.len() as u64;
                    let last = b.pos >= b.end;
                    b.remote = Some(crate::session::body::RemoteState::Ready(remote));
                    if last {
                        if let Some(io) = self.io(id) {
                            io.body = None;
                        }
                    }
                    self.send_piece(id, &chunk, last);
                }
                _ => self.h2_body_failed(id),
            },
        }
    }

    /// A chunk of a stream's archive was made (`first`: the archive's beginning).
    pub(super) fn h2_archive_chunk(
        &mut self,
        id: u32,
        archive: Box<crate::archive::Archive>,
        first: bool,
        result: std::io::Result<Option<Vec<u8>>>,
    ) {
        if first {
            let result = match result {
                Ok(chunk) => {
                    if let Some(io) = self.io(id) {
                        io.zip = Some(Zip {
                            archive: Some(archive),
                            ready: chunk,
                            sending: false,
                        });
                    }
                    Ok(())
                }
                Err(e) => Err(crate::session::archive::begin_error(&e)),
            };
            return self.hand_stream(id, Input::Archived(result));
        }
        let Some(io) = self.io(id) else { return };
        match result {
            Ok(Some(chunk)) => {
                if let Some(zip) = &mut io.zip {
                    zip.archive = Some(archive);
                    zip.ready = Some(chunk);
                }
            }
            Ok(None) => {
                // The end.
                io.zip = None;
                self.send_piece(id, &[], true);
            }
            Err(e) => {
                io.zip = None;
                log::warn!("{} stream {id}: archive cut short: {e}", self.peer());
                self.hand_stream(id, Input::WriteFailed);
            }
        }
    }

    pub(super) fn h2_body_failed(&mut self, id: u32) {
        if let Some(io) = self.io(id) {
            io.body = None;
        }
        self.hand_stream(id, Input::WriteFailed);
    }
}
