//! The public vocabulary of a connection: the [`Input`]s a runtime hands in and the
//! [`Action`]s it executes, with the results they carry.

use std::sync::Arc;

use crate::encoding::Coding;
use crate::listing::Listing;
use crate::target::SafePath;

/// What the runtime must do next, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the socket.
    Send(Vec<u8>),
    /// Write the interim answer `100 Continue` ([`crate::CONTINUE`] in HTTP/1.1): the
    /// client waits for it before it sends the body. Reported by [`Input::Written`] like
    /// an answer, but the request goes on.
    Continue,
    /// Open this file below the root (checking that it resolves under the root), then
    /// report [`Input::FileOpened`].
    OpenFile(SafePath),
    /// Stream `len` bytes of the opened file, from `offset`, to the socket.
    SendFile { offset: u64, len: u64 },
    /// Read the directory (below the root; `SafePath::root()` is the root itself) for a
    /// listing, then report [`Input::DirListed`]. Only with `--dir-listing`. Leave out
    /// entries that are symlinks leading out of the root (or nowhere).
    ListDir(SafePath),
    /// Create `uploads/NAME` with these bytes, atomically and never overwriting, then
    /// report [`Input::UploadWritten`].
    /// The body is shared with the core until the result comes back (a name that
    /// exists already is retried under a new one).
    WriteUpload { name: String, body: Arc<Vec<u8>> },
    /// Begin a streamed upload to `target`: create a temporary file beside it (in the
    /// same directory, so that the final rename is atomic), then report
    /// [`Input::UploadBegun`]. At most one upload is begun at a time.
    BeginUpload { target: UploadTarget },
    /// Append these bytes to the upload begun, then report [`Input::ChunkWritten`]. The
    /// core reads no more of the body until then (back-pressure).
    WriteChunk(Vec<u8>),
    /// Sync the upload begun and give it its name: `target` (a multipart part may be
    /// renamed on a clash), never overwriting unless `replace` (a precondition allowed
    /// it); then report [`Input::UploadCommitted`].
    CommitUpload { target: UploadTarget, replace: bool },
    /// Remove the upload begun (its temporary). Nothing is reported.
    AbortUpload,
    /// Delete the file at this path below the root, then report [`Input::Deleted`].
    DeleteFile(SafePath),
    /// Compress the opened file with `coding` for its answer, then report
    /// [`Input::Compressed`]: its compressed length (from a cache of small files, or by
    /// compressing it where blocking is allowed), or, for a large file and when
    /// `stream` allows, no length: it is compressed as it is sent, in chunks (the core
    /// frames the answer with `Transfer-Encoding: chunked`). A refusal (the compressing
    /// side is saturated, or anything failed) means: send it as it is. The next
    /// `SendFile` sends what was prepared.
    Compress { coding: Coding, stream: bool },
    /// Begin the zip archive of the directory `dir` (`GET /DIR/?zip`), leaving out what
    /// `user` may not read under the rules of [`crate::Config::access`], then report
    /// [`Input::Archived`]: whether the directory could be read. The next `SendFile`
    /// (its length `u64::MAX`: unknown) sends the archive to its end, framed in chunks
    /// when `chunked` (HTTP/1.1), else as it is (the connection closes after it).
    Archive {
        dir: SafePath,
        user: Option<String>,
        chunked: bool,
    },
    /// Verify a password (`--auth`), then report [`Input::Verified`]. It costs tens of
    /// milliseconds of CPU: never on an event-loop thread.
    Verify(Credentials),
    /// Close the connection. Everything before it has been reported written.
    Close,
}

/// Where a streamed upload goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadTarget {
    /// A path below the root (`PUT`).
    Path(SafePath),
    /// A plain file name in the uploads directory (a file of a multipart form).
    Uploads(String),
}

/// Credentials to verify ([`Action::Verify`]). `hash` is the PHC string of `user` in the
/// rules in force, `None` for a user no rule names (verify against a dummy hash then, so
/// that the answer takes as long); `generation` is the rules' (a result remembered from
/// an older generation is not to be trusted). `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    pub hash: Option<String>,
    pub generation: u64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("known", &self.hash.is_some())
            .field("generation", &self.generation)
            .finish()
    }
}

/// What the connection waits for once [`Connection::poll`] is empty
/// ([`Connection::wait`]).
///
/// [`Connection::poll`]: super::Connection::poll
/// [`Connection::wait`]: super::Connection::wait
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Bytes from the client ([`Input::Received`] or [`Input::Eof`]) until `until` (on
    /// the clock of [`crate::Now::mono_ms`]); then hand in [`Input::Timeout`]. `idle`:
    /// between requests (every answer written, nothing of a next request received), so
    /// closing it loses nothing.
    Read { until: u64, idle: bool },
    /// The runtime owes the connection a result: of the action handed out last (a file,
    /// a listing, an upload), or [`Input::Written`] / [`Input::WriteFailed`] for what was
    /// sent. No deadline: the runtime bounds its own work.
    Runtime,
    /// Closed: nothing more will come.
    Closed,
}

/// What happened, as the runtime tells the core: every input comes with the time
/// ([`Connection::handle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// Bytes read from the socket.
    Received(&'a [u8]),
    /// The client closed its sending side: what is complete is answered, then `Close`.
    Eof,
    /// The result of the last [`Action::OpenFile`].
    FileOpened(Result<FileMeta, FileError>),
    /// The result of the last [`Action::WriteUpload`].
    UploadWritten(Result<(), UploadError>),
    /// The result of the last [`Action::BeginUpload`].
    UploadBegun(Result<(), UploadError>),
    /// The result of the last [`Action::WriteChunk`].
    ChunkWritten(Result<(), UploadError>),
    /// The result of the last [`Action::CommitUpload`]: the file as it now is (for its
    /// `ETag`).
    UploadCommitted(Result<FileMeta, UploadError>),
    /// The result of the last [`Action::DeleteFile`].
    Deleted(Result<(), FileError>),
    /// The result of the last [`Action::Compress`].
    Compressed(Compressed),
    /// The result of the last [`Action::Archive`]: the directory could be read (or why
    /// not).
    Archived(Result<(), FileError>),
    /// The result of the last [`Action::Verify`]: whether the password was right.
    Verified(bool),
    /// The result of the last [`Action::ListDir`]: the entries read (at most
    /// [`crate::MAX_LISTED`]) and how many more there were.
    DirListed(Result<Listing<'a>, FileError>),
    /// Every `Send` and `SendFile` handed out so far has been written to the socket.
    /// The next request is read, and the idle and head deadlines run, from now.
    Written,
    /// Writing them failed (the peer reset, or stopped reading): the access log says so
    /// and the connection closes.
    WriteFailed,
    /// The time from [`Connection::deadline`] has come (an early call does nothing).
    Timeout,
    /// The server is shutting down: an idle connection closes now; a request in progress
    /// is answered with `Connection: close`.
    Drain,
}

/// What the runtime learned about an opened file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FileMeta {
    pub len: u64,
    pub mtime_secs: u64,
    pub mtime_nanos: u32,
    pub is_dir: bool,
}

/// Why a file could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileError {
    /// No such file.
    NotFound,
    /// It resolves outside the root (a symlink), or the permissions refuse it.
    Forbidden,
    /// Where it is kept is down or timed out (an object store): the client may try
    /// again; `503` with `Retry-After`, as for [`UploadError::Unavailable`].
    Unavailable,
    /// Any other I/O error.
    Other,
}

/// Why an upload could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadError {
    /// A file of that name exists already (never overwritten). The runtime hands over 16
    /// new random bytes, and the core tries again under a new name (a few times).
    AlreadyExists { reseed: [u8; 16] },
    /// The store is down or timed out (an object store): nothing was saved, and the
    /// client may try again; `503` with `Retry-After`.
    Unavailable,
    /// The disk is full or a quota is exceeded: `507`; nothing partial is left.
    NoSpace,
    /// The directory the file would go in does not exist (or is not a directory): `409`.
    NoParent,
    /// Any other I/O error.
    Other,
}

/// What the runtime made of an [`Action::Compress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compressed {
    /// Compressed whole: this many bytes.
    Len(u64),
    /// To be compressed as it is sent (no length: chunked framing).
    Stream,
    /// Not compressed (the compressing side is saturated, or anything failed): the
    /// identity answer goes out.
    Refused,
}
