//! The work a session hands to a thread that may block ([`super::Need::Blocking`]):
//! opening a file the cache does not hold, reading a directory, writing an upload,
//! reading a large file's next megabyte into the page cache, verifying a password,
//! compressing a file (whole, or its next piece), and
//! the object store's requests. A runtime runs [`Job::run`] where blocking is allowed (a runtime-std worker,
//! inside a blocking section; runtime-smol's blocking pool) and hands the [`Done`] back
//! with [`super::Session::finish`]. A job owns everything it needs (`Send + 'static`).

use std::sync::Arc;

use protocol::{DirEntry, FileError, FileMeta, SafePath, UploadError, UploadTarget};

use crate::cache::{Body, Opened};
use crate::webroot::{Miss, Upload, WebRoot};

/// Work that may block; see the module documentation.
pub struct Job(pub(super) Work);

pub(super) enum Work {
    Open(Miss),
    List(Arc<WebRoot>, SafePath),
    Upload(Arc<WebRoot>, String, Arc<Vec<u8>>),
    Prefetch(Arc<Opened>, u64, u64),
    Verify(protocol::Credentials),
    Begin(Arc<WebRoot>, UploadTarget),
    Chunk(Arc<WebRoot>, Upload, Vec<u8>),
    Commit(Arc<WebRoot>, Upload, UploadTarget, bool),
    Abort(Upload),
    Delete(Arc<WebRoot>, SafePath),
    Compress(Arc<Opened>, protocol::Coding, crate::compress::Busy),
    /// The archive's next chunk (`chunked`, and whether it is the first).
    ArchiveChunk(Box<crate::archive::Archive>, bool, bool),
    Deflate(Arc<Opened>, Box<crate::compress::Encoder>, u64, usize),
    #[cfg(feature = "s3")]
    Fetch(Arc<crate::store::S3Store>, String, u64, u64),
    #[cfg(feature = "s3")]
    Read(Remote, usize),
}

/// An object being read from the store.
#[cfg(feature = "s3")]
pub struct Remote(pub(super) Box<dyn std::io::Read + Send>);

/// What a [`Job`] found.
pub struct Done(pub(super) Result_);

pub(super) enum Result_ {
    Opened(Result<Arc<Opened>, FileError>),
    Listed(Result<(Vec<DirEntry>, u64), FileError>),
    Uploaded(Result<(), UploadError>),
    Prefetched,
    Verified(protocol::Credentials, bool),
    Begun(Result<Upload, UploadError>),
    Written(Upload, Result<(), UploadError>),
    Committed(Result<FileMeta, UploadError>, Option<Upload>),
    Aborted,
    Deleted(Result<(), FileError>),
    Compressed(std::io::Result<Arc<[u8]>>),
    ArchiveChunk(
        Box<crate::archive::Archive>,
        bool,
        bool,
        std::io::Result<Option<Vec<u8>>>,
    ),
    /// The encoder back, and how many bytes of the file it read and what they gave.
    Deflated(
        Box<crate::compress::Encoder>,
        std::io::Result<(usize, Vec<u8>)>,
    ),
    #[cfg(feature = "s3")]
    Fetched(std::io::Result<Remote>),
    #[cfg(feature = "s3")]
    Chunk(Remote, std::io::Result<Vec<u8>>),
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({})", self.kind())
    }
}

impl Job {
    /// Does the work (may block on the disk or the network).
    pub fn run(self) -> Done {
        Done(match self.0 {
            Work::Open(miss) => Result_::Opened(miss.load()),
            Work::List(web, dir) => Result_::Listed(web.list_dir(&dir)),
            Work::Upload(web, name, body) => Result_::Uploaded(web.write_upload(&name, &body)),
            Work::Prefetch(file, offset, len) => {
                if let Body::File(f) = &file.body {
                    crate::sendfile::prefetch(f, offset, len);
                }
                Result_::Prefetched
            }
            Work::Verify(c) => {
                // An unknown user costs as much as a wrong password.
                let started = std::time::Instant::now();
                let ok = match &c.hash {
                    Some(phc) => crate::auth::verify(phc, &c.password),
                    None => crate::auth::verify_dummy(&c.password),
                };
                log::debug!(
                    "password of user {:?} verified in {} ms: {}",
                    c.user.escape_debug().to_string(),
                    started.elapsed().as_millis(),
                    if ok { "right" } else { "wrong" }
                );
                Result_::Verified(c, ok)
            }
            Work::Begin(web, target) => Result_::Begun(web.begin_upload(&target)),
            Work::Chunk(web, mut upload, bytes) => {
                let r = web.write_chunk(&mut upload, &bytes);
                Result_::Written(upload, r)
            }
            Work::Commit(web, upload, target, replace) => {
                match web.commit_upload(upload, &target, replace) {
                    Ok(meta) => Result_::Committed(Ok(meta), None),
                    Err((e, back)) => Result_::Committed(Err(e), back),
                }
            }
            Work::Abort(upload) => {
                drop(upload);
                Result_::Aborted
            }
            Work::Delete(web, path) => Result_::Deleted(web.delete_file(&path)),
            Work::Compress(file, coding, busy) => {
                let result = super::compress::whole(&file, coding);
                drop(busy);
                Result_::Compressed(result)
            }
            Work::ArchiveChunk(mut archive, chunked, first) => {
                let result = super::archive::next_chunk(&mut archive);
                Result_::ArchiveChunk(archive, chunked, first, result)
            }
            Work::Deflate(file, mut encoder, offset, want) => {
                let result = super::compress::next_piece(&file, &mut encoder, offset, want);
                Result_::Deflated(encoder, result)
            }
            #[cfg(feature = "s3")]
            Work::Fetch(store, name, offset, len) => {
                Result_::Fetched(store.get(&name, offset, len).map(Remote))
            }
            #[cfg(feature = "s3")]
            Work::Read(mut remote, want) => {
                let mut chunk = vec![0u8; want];
                let read = read_some(&mut *remote.0, &mut chunk).map(|n| {
                    chunk.truncate(n);
                    chunk
                });
                Result_::Chunk(remote, read)
            }
        })
    }

    /// A short name for logs and tests.
    pub fn kind(&self) -> &'static str {
        match self.0 {
            Work::Open(_) => "open",
            Work::List(..) => "list",
            Work::Upload(..) => "upload",
            Work::Prefetch(..) => "prefetch",
            Work::Verify(..) => "verify",
            Work::Begin(..) => "begin",
            Work::Chunk(..) => "chunk",
            Work::Commit(..) => "commit",
            Work::Abort(..) => "abort",
            Work::Delete(..) => "delete",
            Work::Compress(..) => "compress",
            Work::ArchiveChunk(..) => "archive",
            Work::Deflate(..) => "deflate",
            #[cfg(feature = "s3")]
            Work::Fetch(..) => "fetch",
            #[cfg(feature = "s3")]
            Work::Read(..) => "read",
        }
    }
}

/// One read that retries an interruption; `Ok(0)`: the end.
#[cfg(feature = "s3")]
fn read_some(reader: &mut dyn std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
