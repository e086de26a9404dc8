//! The one door both runtimes use for the web root: open a file below it (the open-file
//! cache decides hit or miss inside; a miss is work that may block on the disk, which
//! the runtime runs where it likes), write an upload (atomically, never overwriting, and
//! the cache forgets the name), and clean up what a crash left.

use std::sync::Arc;

use log::{error, warn};
use protocol::{DirEntry, FileError, SafePath, UploadError};

use crate::cache::{load, FileCache, Opened};
use crate::files::{Root, UPLOADS};

/// The web root, its open-file cache, where uploads are kept, and the policies on top.
pub struct WebRoot {
    root: Root,
    cache: FileCache,
    /// Uploads in an object store (`--upload-store s3://`); `None`: in `uploads/`.
    #[cfg(feature = "s3")]
    s3: Option<Arc<crate::store::S3Store>>,
}

/// A streamed upload in progress (dropped before its commit: nothing is left): a
/// temporary file beside its target, or (`--upload-store s3://`, a file of `uploads/`)
/// an upload into the object store.
#[derive(Debug)]
pub enum Upload {
    File(crate::files::UploadFile),
    #[cfg(feature = "s3")]
    Store(Box<crate::store::S3Upload>),
}

/// What [`WebRoot::open`] found.
pub enum Lookup {
    /// The cache answered (one `fstatat`, or on Windows one metadata call, showed the
    /// file unchanged, or still missing).
    Hit(Result<Arc<Opened>, FileError>),
    /// The file must be opened (and a small one read): call [`Miss::load`], on a thread
    /// that may block.
    Miss(Miss),
}

/// A cache miss to resolve: opening below the root, then remembering the result.
pub struct Miss {
    web: Arc<WebRoot>,
    path: SafePath,
}

impl Miss {
    /// Opens the file (may block on the disk) and lets the cache remember it.
    pub fn load(self) -> Result<Arc<Opened>, FileError> {
        #[cfg(feature = "s3")]
        if let Some((store, name)) = self.web.remote(&self.path) {
            // Read from the store each time (another instance may have written it).
            let meta = store.head(name)?;
            let body = crate::cache::Body::Remote(Arc::clone(store), name.to_string());
            return Ok(Arc::new(Opened {
                meta,
                body,
                variants: Default::default(),
            }));
        }
        let loaded = load(&self.web.root, &self.path);
        self.web
            .cache
            .remember(self.path.as_str().to_owned(), &loaded);
        loaded.0
    }
}

impl WebRoot {
    /// The web root `root`, with its cache (off with `FILE_CACHE=off`).
    pub fn new(root: Root) -> Arc<WebRoot> {
        let cache = FileCache::new(&root);
        Arc::new(WebRoot {
            root,
            cache,
            #[cfg(feature = "s3")]
            s3: None,
        })
    }

    /// The web root with uploads kept in `store`.
    #[cfg(feature = "s3")]
    pub fn with_store(root: Root, store: crate::store::UploadStore) -> Arc<WebRoot> {
        let cache = FileCache::new(&root);
        let s3 = match store {
            crate::store::UploadStore::S3(s) => Some(Arc::new(*s)),
            crate::store::UploadStore::Dir => None,
        };
        Arc::new(WebRoot { root, cache, s3 })
    }

    /// For a path under `uploads/` when uploads live in an object store: the store and
    /// the object's name.
    #[cfg(feature = "s3")]
    fn remote<'p>(&self, path: &'p SafePath) -> Option<(&Arc<crate::store::S3Store>, &'p str)> {
        let store = self.s3.as_ref()?;
        let name = path.as_str().strip_prefix(UPLOADS)?.strip_prefix('/')?;
        (!name.contains('/')).then_some((store, name))
    }

    /// The root itself (its canonical path, for logs).
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Looks `path` up: a hit is answered at once; a miss is handed back to be loaded.
    /// `notified`: the runtime read every change notification that came before this
    /// request (see [`FileCache::cached`]).
    pub fn open(self: &Arc<Self>, path: SafePath, notified: bool) -> Lookup {
        #[cfg(feature = "s3")]
        if self.remote(&path).is_some() {
            // An object store is asked on the thread that may block, and never cached.
            return Lookup::Miss(Miss {
                web: Arc::clone(self),
                path,
            });
        }
        match self.cache.cached(path.as_str(), notified) {
            Some(hit) => Lookup::Hit(hit),
            None => Lookup::Miss(Miss {
                web: Arc::clone(self),
                path,
            }),
        }
    }

    /// Opens `path` on this thread, blocking on a miss (for runtime-std's workers): the
    /// change notifications queued so far are read first ([`FileCache::catch_up`]), so
    /// that a hit nothing changed needs no `fstatat`.
    pub fn open_blocking(self: &Arc<Self>, path: SafePath) -> Result<Arc<Opened>, FileError> {
        let notified = self.cache.catch_up();
        match self.open(path, notified) {
            Lookup::Hit(result) => result,
            Lookup::Miss(miss) => miss.load(),
        }
    }

    /// For a runtime with no reactor to read the cache's change notifications (runtime-std):
    /// reads those queued so far; `true` when a lookup may then be `notified` (see
    /// [`FileCache::catch_up`]).
    pub fn catch_up(&self) -> bool {
        self.cache.catch_up()
    }

    /// Turns the cache's change notification on (Linux): the descriptor to watch, and
    /// call [`WebRoot::changed`] on. See [`FileCache::watch_changes`].
    #[cfg(target_os = "linux")]
    pub fn watch_changes(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.cache.watch_changes()
    }

    /// The descriptor from [`WebRoot::watch_changes`] turned readable.
    pub fn changed(&self) {
        self.cache.changed();
    }

    /// Lists a directory for `--dir-listing` (blocks on the disk: run it where that is
    /// allowed). See [`Root::list_dir`].
    pub fn list_dir(&self, dir: &SafePath) -> Result<(Vec<DirEntry>, u64), FileError> {
        self.root.list_dir(dir)
    }

    /// Writes `uploads/NAME` (blocks on the disk: `fsync`), and makes sure the next
    /// request for it is not answered from the cache.
    pub fn write_upload(&self, name: &str, body: &[u8]) -> Result<(), UploadError> {
        #[cfg(feature = "s3")]
        if let Some(store) = &self.s3 {
            return store.put(name, body);
        }
        let result = self.root.write_upload(name, body);
        self.cache.forget(&format!("{UPLOADS}/{name}"));
        result
    }

    /// The object store's name for an upload target in `uploads/`, when uploads live in
    /// one.
    #[cfg(feature = "s3")]
    fn remote_target<'t>(
        &self,
        target: &'t protocol::UploadTarget,
    ) -> Option<(&Arc<crate::store::S3Store>, &'t str)> {
        let store = self.s3.as_ref()?;
        let name = match target {
            protocol::UploadTarget::Uploads(name) => name.as_str(),
            protocol::UploadTarget::Path(p) => {
                p.as_str().strip_prefix(UPLOADS)?.strip_prefix('/')?
            }
        };
        (!name.contains('/')).then_some((store, name))
    }

    /// Begins a streamed upload (a `PUT`, a file of a form); blocks on the disk.
    pub fn begin_upload(&self, target: &protocol::UploadTarget) -> Result<Upload, UploadError> {
        #[cfg(feature = "s3")]
        if let Some((store, name)) = self.remote_target(target) {
            return Ok(Upload::Store(Box::new(crate::store::S3Upload::begin(
                Arc::clone(store),
                name,
            ))));
        }
        Ok(Upload::File(self.root.begin_upload(target)?))
    }

    /// Appends a chunk to an upload; blocks on the disk (or the network).
    pub fn write_chunk(&self, upload: &mut Upload, bytes: &[u8]) -> Result<(), UploadError> {
        match upload {
            Upload::File(file) => file.write(bytes),
            #[cfg(feature = "s3")]
            Upload::Store(s) => s.write(bytes),
        }
    }

    /// Commits an upload as `target` (see [`crate::files::UploadFile::commit`]), and
    /// makes sure the next request for it is not answered from the cache.
    pub fn commit_upload(
        &self,
        upload: Upload,
        target: &protocol::UploadTarget,
        replace: bool,
    ) -> Result<protocol::FileMeta, (UploadError, Option<Upload>)> {
        let (_, name) = crate::files::split_target(target);
        match upload {
            Upload::File(file) => {
                let path = file.path_of(name);
                let result = file
                    .commit(&self.root, name, replace)
                    .map_err(|(e, back)| (e, back.map(Upload::File)));
                self.cache.forget(&path);
                result
            }
            #[cfg(feature = "s3")]
            Upload::Store(s) => s
                .commit(name, replace)
                .map_err(|(e, back)| (e, back.map(Upload::Store))),
        }
    }

    /// Deletes a file below the root; blocks on the disk.
    pub fn delete_file(&self, path: &SafePath) -> Result<(), FileError> {
        #[cfg(feature = "s3")]
        if let Some((store, name)) = self.remote(path) {
            return store.delete(name).map_err(|e| match e {
                UploadError::Unavailable => FileError::Unavailable,
                _ => FileError::Other,
            });
        }
        let result = self.root.delete_file(path);
        self.cache.forget(path.as_str());
        result
    }

    /// Removes what a crash left in `uploads/`, and says so in the log.
    pub fn clean_up(&self) {
        match self.root.clean_temporaries() {
            Ok(0) => {}
            Ok(n) => warn!("removed {n} unfinished upload(s) left in uploads/ by an earlier run"),
            Err(e) => error!(
                "could not remove unfinished uploads in {}/{UPLOADS}: {e}",
                self.root.path().display()
            ),
        }
    }
}
