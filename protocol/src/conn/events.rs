//! The public vocabulary of a connection: the [`Input`]s a runtime hands in and the
//! [`Action`]s it executes, with the results they carry.

use std::sync::Arc;

use crate::listing::Listing;
use crate::target::SafePath;

/// What the runtime must do next, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the socket.
    Send(Vec<u8>),
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
    /// Close the connection. Everything before it has been reported written.
    Close,
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
    /// Any other I/O error.
    Other,
}
