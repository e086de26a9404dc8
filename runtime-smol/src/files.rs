//! File actions for the connection tasks, off the executor threads.
//!
//! Opening (openat2 beneath the root, fstat, reading a small file whole) and writing
//! uploads are the shared code of `runtime_std::files::Root` and
//! `runtime_std::cache::FileCache`; a cache miss and every upload run on smol's
//! blocking pool ([`smol::unblock`]) so that a slow disk stalls one connection, never
//! an executor thread. A cache hit is one `fstatat` of a path opened moments ago (its
//! directory entries and inode are in memory), done on the executor thread.

use std::sync::Arc;

use log::{error, warn};
use protocol::{FileError, SafePath, UploadError};
use runtime_std::cache::{load, FileCache};
use runtime_std::files::Root;

pub(crate) use runtime_std::cache::{Body, Opened};

/// The web root as the connection tasks use it.
pub(crate) struct Files {
    root: Arc<Root>,
    cache: FileCache,
}

impl Files {
    pub fn new(root: Root) -> Files {
        match root.clean_temporaries() {
            Ok(0) => {}
            Ok(n) => warn!("removed {n} unfinished upload(s) left in uploads/ by an earlier run"),
            Err(e) => error!(
                "could not remove stale temporary uploads in {}: {e}",
                root.path().display()
            ),
        }
        let cache = FileCache::new(&root);
        Files {
            root: Arc::new(root),
            cache,
        }
    }

    /// Opens `path` below the root: from the cache when the file is unchanged, else on
    /// the blocking pool.
    pub async fn open(&self, path: SafePath) -> Result<Arc<Opened>, FileError> {
        if let Some(hit) = self.cache.cached(path.as_str()) {
            return hit;
        }
        let root = Arc::clone(&self.root);
        let key = path.as_str().to_owned();
        let loaded = smol::unblock(move || load(&root, &path)).await;
        self.cache.remember(key, &loaded);
        loaded.0
    }

    /// Writes an upload atomically (never overwriting) on the blocking pool.
    pub async fn write_upload(&self, name: String, body: Arc<Vec<u8>>) -> Result<(), UploadError> {
        let root = Arc::clone(&self.root);
        let key = format!("{}/{name}", runtime_std::files::UPLOADS);
        let result = smol::unblock(move || root.write_upload(&name, &body)).await;
        self.cache.forget(&key);
        result
    }
}
