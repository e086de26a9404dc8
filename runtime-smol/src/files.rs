//! File actions for the connection tasks, off the executor threads, with a small cache
//! of opened files.
//!
//! Opening (openat2 beneath the root, fstat) and writing uploads are the shared code of
//! `runtime_std::files::Root`; here they run on smol's blocking pool ([`smol::unblock`])
//! so that a slow disk stalls one connection, never an executor thread. A small regular
//! file (≤ [`SMALL`]) is read whole in the same blocking call, so sending it later
//! touches no disk either; a larger one stays an open [`File`] for `sendfile(2)`.
//!
//! Handing every open to the blocking pool costs thread wake-ups on every request:
//! measured with 2 executor threads on keep-alive small files (`wrk -c32`, index.html),
//! the server spent 19–24 µs of CPU per request and did 59–62k req/s with every open on
//! the pool (`RUNTIME_SMOL_FILE_CACHE=off`), against 8–10 µs and 92–98k req/s with the
//! cache. So what an open found is kept in [`Cache`], and reused while one
//! `fstatat` on the executor thread shows the same file (device, inode, size, mtime and
//! ctime to the nanosecond) — or, for a remembered "no such file", still no file. That
//! stat only runs for a path that was opened moments ago (its directory entries and
//! inode are in memory), a changed file is seen by the very next request, and anything
//! that does not match goes back to the blocking pool, which alone decides what is
//! beneath the root (a symlink swapped in never matches: its target is another inode).

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, MutexGuard};

use log::{error, info, warn};
use protocol::{FileError, FileMeta, SafePath, UploadError};
use runtime_std::files::Root;
use rustix::fs::{AtFlags, Mode, OFlags, Stat};
use rustix::io::Errno;

/// Files up to this size are read into memory when opened (and sent from there).
pub(crate) const SMALL: u64 = 64 * 1024;
/// The cache forgets everything when it would hold more entries or bytes than these.
const CACHE_ENTRIES: usize = 1024;
const CACHE_BYTES: usize = 16 << 20;
/// `RUNTIME_SMOL_FILE_CACHE=off` turns the cache off (to measure what it saves).
const CACHE_SWITCH: &str = "RUNTIME_SMOL_FILE_CACHE";

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
    /// The root directory for the cache's `fstatat` (None: cache off).
    dir: Option<OwnedFd>,
    cache: Mutex<Cache>,
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
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = if std::env::var_os(CACHE_SWITCH).is_some_and(|v| v == "off") {
            info!("open-file cache off ({CACHE_SWITCH}=off): every open goes to the blocking pool");
            None
        } else {
            match rustix::fs::open(root.path(), flags, Mode::empty()) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    warn!("open-file cache off: cannot open the root again: {e}");
                    None
                }
            }
        };
        Files {
            root: Arc::new(root),
            dir,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Opens `path` below the root: from the cache when the file is unchanged, else on
    /// the blocking pool.
    pub async fn open(&self, path: SafePath) -> Result<Arc<Opened>, FileError> {
        if let Some(hit) = self.cached(path.as_str()) {
            return hit;
        }
        let root = Arc::clone(&self.root);
        let key = path.as_str().to_owned();
        let (result, id) = smol::unblock(move || load(&root, &path)).await;
        if self.dir.is_some() {
            self.lock().insert(key, &result, id);
        }
        result
    }

    /// Writes an upload atomically (never overwriting) on the blocking pool.
    pub async fn write_upload(&self, name: String, body: Vec<u8>) -> Result<(), UploadError> {
        let root = Arc::clone(&self.root);
        let key = format!("{}/{name}", runtime_std::files::UPLOADS);
        let result = smol::unblock(move || root.write_upload(&name, &body)).await;
        self.lock().map.remove(&key);
        result
    }

    /// The cached answer for `rel`, if one `fstatat` shows it still holds.
    fn cached(&self, rel: &str) -> Option<Result<Arc<Opened>, FileError>> {
        let dir = self.dir.as_ref()?;
        let entry = self.lock().map.get(rel).cloned()?;
        let now = rustix::fs::statat(dir, rel, AtFlags::empty());
        match (entry, now) {
            (Entry::Found(id, opened), Ok(st)) if Identity::of(&st) == id => Some(Ok(opened)),
            (Entry::Missing, Err(Errno::NOENT)) => Some(Err(FileError::NotFound)),
            _ => None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What identifies one version of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    fn of(st: &Stat) -> Identity {
        Identity {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: st.st_size as i64,
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }
}

#[derive(Clone, Debug)]
enum Entry {
    Found(Identity, Arc<Opened>),
    Missing,
}

#[derive(Default)]
struct Cache {
    map: HashMap<String, Entry>,
    bytes: usize,
}

impl Cache {
    fn insert(
        &mut self,
        key: String,
        result: &Result<Arc<Opened>, FileError>,
        id: Option<Identity>,
    ) {
        let entry = match (result, id) {
            (Ok(opened), Some(id)) => Entry::Found(id, Arc::clone(opened)),
            (Err(FileError::NotFound), _) => Entry::Missing,
            // Refusals and errors are always asked again.
            _ => {
                self.map.remove(&key);
                return;
            }
        };
        let size = match &entry {
            Entry::Found(_, o) => match &o.body {
                Body::Bytes(b) => b.len(),
                _ => 0,
            },
            Entry::Missing => 0,
        } + key.len();
        if self.map.len() >= CACHE_ENTRIES || self.bytes + size > CACHE_BYTES {
            self.map.clear();
            self.bytes = 0;
        }
        self.bytes += size;
        self.map.insert(key, entry);
    }
}

/// Opens a file (reading it whole when it is small) and says which file it was.
fn load(root: &Root, path: &SafePath) -> (Result<Arc<Opened>, FileError>, Option<Identity>) {
    let (file, mut meta) = match root.open_file(path) {
        Ok(opened) => opened,
        Err(e) => return (Err(e), None),
    };
    let id = rustix::fs::fstat(&file).ok().map(|st| Identity::of(&st));
    let body = if meta.is_dir {
        Body::None
    } else if meta.len <= SMALL {
        match read_all(&file, meta.len) {
            Ok(bytes) => {
                // A file that changed size since fstat: its bytes as read are what we
                // send, and the cache will not match it again.
                meta.len = bytes.len() as u64;
                Body::Bytes(bytes)
            }
            Err(e) => {
                error!("could not read {}: {e}", path.as_str());
                return (Err(FileError::Other), None);
            }
        }
    } else {
        Body::File(file)
    };
    (Ok(Arc::new(Opened { meta, body })), id)
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
