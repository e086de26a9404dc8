//! A small cache of opened files, shared by both runtimes.
//!
//! What an open found (the metadata, and the bytes of a small file) is kept, and reused
//! while one `fstatat` shows the same file: device, inode, size, mtime and ctime to the
//! nanosecond — or, for a remembered "no such file", still no file. A changed file is
//! seen by the very next request, and anything that does not match goes back to
//! [`Root::open_file`], which alone decides what is beneath the root (a symlink swapped
//! in never matches: its target is another inode). A hit costs one `fstatat` instead of
//! `openat2`, `fstat`, `pread` and `close`.
//!
//! runtime-smol measured what it saves: with every open on the blocking pool, 19–24 µs
//! of server CPU per keep-alive small-file request; with the cache, 8–10 µs.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, MutexGuard};

use log::{error, info, warn};
use protocol::{FileError, FileMeta, SafePath};
use rustix::fs::{AtFlags, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::files::Root;

/// Files up to this size are read into memory when opened (and sent from there).
pub const SMALL: u64 = 64 * 1024;
/// The cache forgets everything when it would hold more entries or bytes than these.
const CACHE_ENTRIES: usize = 1024;
const CACHE_BYTES: usize = 16 << 20;
/// `FILE_CACHE=off` in the environment turns the cache off (to measure what it saves).
const CACHE_SWITCH: &str = "FILE_CACHE";

/// An opened file: what the core needs to know, and where its bytes are.
#[derive(Debug)]
pub struct Opened {
    pub meta: FileMeta,
    pub body: Body,
}

#[derive(Debug)]
pub enum Body {
    /// The whole file, read when it was opened.
    Bytes(Vec<u8>),
    /// A large file, streamed with sendfile.
    File(File),
    /// A directory (the core answers 404 or tries another name).
    None,
}

impl Opened {
    /// `len` bytes from `offset` of a small file read whole (an error for a large file,
    /// a directory, or a range outside what was read).
    pub fn bytes(&self, offset: u64, len: u64) -> std::io::Result<&[u8]> {
        let Body::Bytes(bytes) = &self.body else {
            return Err(std::io::Error::other("the file was not read into memory"));
        };
        usize::try_from(offset)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(start, len)| bytes.get(start..start.checked_add(len)?))
            .ok_or_else(|| std::io::Error::other("range outside the bytes read"))
    }
}

/// The cache of one web root.
pub struct FileCache {
    /// The root directory for `fstatat` (None: cache off).
    dir: Option<OwnedFd>,
    cache: Mutex<Cache>,
}

impl FileCache {
    /// A cache for `root` (off when `FILE_CACHE=off`, or when the root cannot be opened
    /// a second time).
    pub fn new(root: &Root) -> FileCache {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = if std::env::var_os(CACHE_SWITCH).is_some_and(|v| v == "off") {
            info!("open-file cache off ({CACHE_SWITCH}=off)");
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
        FileCache {
            dir,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Whether the cache is in use.
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    /// The cached answer for `rel`, if one `fstatat` shows it still holds.
    pub fn cached(&self, rel: &str) -> Option<Result<Arc<Opened>, FileError>> {
        let dir = self.dir.as_ref()?;
        let entry = self.lock().map.get(rel).cloned()?;
        let now = rustix::fs::statat(dir, rel, AtFlags::empty());
        match (entry, now) {
            (Entry::Found(id, opened), Ok(st)) if Identity::of(&st) == id => Some(Ok(opened)),
            (Entry::Missing, Err(Errno::NOENT)) => Some(Err(FileError::NotFound)),
            _ => None,
        }
    }

    /// Remembers what [`load`] found for `rel`.
    pub fn remember(&self, rel: String, loaded: &Loaded) {
        if self.dir.is_some() {
            self.lock().insert(rel, &loaded.0, loaded.1);
        }
    }

    /// Forgets `rel` (a file this server just wrote).
    pub fn forget(&self, rel: &str) {
        self.lock().map.remove(rel);
    }

    /// From the cache, or [`load`] (which may block on the disk) and remember.
    pub fn open(&self, root: &Root, path: &SafePath) -> Result<Arc<Opened>, FileError> {
        if let Some(hit) = self.cached(path.as_str()) {
            return hit;
        }
        let loaded = load(root, path);
        self.remember(path.as_str().to_owned(), &loaded);
        loaded.0
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What [`load`] found, and which version of the file it was.
pub struct Loaded(pub Result<Arc<Opened>, FileError>, Option<Identity>);

/// What identifies one version of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
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
pub fn load(root: &Root, path: &SafePath) -> Loaded {
    let (file, mut meta) = match root.open_file(path) {
        Ok(opened) => opened,
        Err(e) => return Loaded(Err(e), None),
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
                return Loaded(Err(FileError::Other), None);
            }
        }
    } else {
        Body::File(file)
    };
    Loaded(Ok(Arc::new(Opened { meta, body })), id)
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
