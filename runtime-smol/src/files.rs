//! File actions for the connection tasks, off the executor threads: the one door of
//! `host::webroot`, with a cache miss and every upload write run on smol's blocking pool
//! ([`smol::unblock`]) so that a slow disk stalls one connection, never an executor
//! thread. A cache hit is done on the executor thread: no system call while the cache's
//! change notification says nothing changed, else one `fstatat`.

use std::sync::Arc;

use host::webroot::{Lookup, WebRoot};
use protocol::{FileError, SafePath, UploadError};

pub(crate) use host::cache::{Body, Opened};

/// Opens `path` below the root: from the cache when the file is unchanged, else on the
/// blocking pool. `notified`: see `WebRoot::open`.
pub(crate) async fn open(
    web: &Arc<WebRoot>,
    path: SafePath,
    notified: bool,
) -> Result<Arc<Opened>, FileError> {
    match web.open(path, notified) {
        Lookup::Hit(result) => result,
        Lookup::Miss(miss) => smol::unblock(move || miss.load()).await,
    }
}

/// Writes an upload atomically (never overwriting) on the blocking pool.
pub(crate) async fn write_upload(
    web: &Arc<WebRoot>,
    name: String,
    body: Arc<Vec<u8>>,
) -> Result<(), UploadError> {
    let web = Arc::clone(web);
    smol::unblock(move || web.write_upload(&name, &body)).await
}
