//! File actions for the connection tasks, off the executor threads.
//!
//! Opening (openat2 beneath the root, fstat) and writing uploads are the shared code of
//! `runtime_std::files::Root`; here they run on smol's blocking pool ([`smol::unblock`])
//! so that a slow disk stalls one connection, never an executor thread. A small regular
//! file (≤ [`SMALL`]) is read whole in the same blocking call, so sending it later touches
//! no disk either; a larger one stays an open [`File`] for `sendfile(2)`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use log::error;
use protocol::{FileError, FileMeta, SafePath, UploadError};
use runtime_std::files::Root;

/// Files up to this size are read into memory when opened (and sent from there).
pub(crate) const SMALL: u64 = 64 * 1024;

/// An opened file: what the core needs to know, and where its bytes are.
#[derive(Debug)]
pub(crate) struct Opened {
    pub meta: FileMeta,
    pub body: Body,
}

#[derive(Debug)]
pub(crate) enum Body {
    /// The whole file, read when it was opened.
    Bytes(Vec<u8>),
    /// A large file, streamed with sendfile.
    File(File),
    /// A directory (the core answers 404 or tries another name).
    None,
}

/// The web root as the connection tasks use it.
pub(crate) struct Files {
    root: Arc<Root>,
}

impl Files {
    pub fn new(root: Root) -> Files {
        if let Err(e) = root.clean_temporaries() {
            error!(
                "could not remove stale temporary uploads in {}: {e}",
                root.path().display()
            );
        }
        Files {
            root: Arc::new(root),
        }
    }

    /// Opens `path` below the root on the blocking pool.
    pub async fn open(&self, path: SafePath) -> Result<Arc<Opened>, FileError> {
        let root = Arc::clone(&self.root);
        smol::unblock(move || load(&root, &path)).await
    }

    /// Writes an upload atomically (never overwriting) on the blocking pool.
    pub async fn write_upload(&self, name: String, body: Vec<u8>) -> Result<(), UploadError> {
        let root = Arc::clone(&self.root);
        smol::unblock(move || root.write_upload(&name, &body)).await
    }
}

/// Opens a file; reads it whole when it is small.
fn load(root: &Root, path: &SafePath) -> Result<Arc<Opened>, FileError> {
    let (file, mut meta) = root.open_file(path)?;
    let body = if meta.is_dir {
        Body::None
    } else if meta.len <= SMALL {
        let bytes = read_all(&file, meta.len).map_err(|e| {
            error!("could not read {}: {e}", path.as_str());
            FileError::Other
        })?;
        // A file that changed size since fstat: its bytes as read are what we send.
        meta.len = bytes.len() as u64;
        Body::Bytes(bytes)
    } else {
        Body::File(file)
    };
    Ok(Arc::new(Opened { meta, body }))
}

/// Reads up to `len` bytes from the start of `file` (fewer if it is shorter now).
fn read_all(file: &File, len: u64) -> std::io::Result<Vec<u8>> {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let mut bytes = vec![0; len];
    let mut done = 0;
    while done < len {
        match file.read_at(&mut bytes[done..], done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(done);
    Ok(bytes)
}
