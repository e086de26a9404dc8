//! A small cache of opened files, shared by both runtimes.
//!
//! What an open found (the metadata, and the bytes of a small file) is kept, and reused
//! while one `fstatat` shows the same file: device, inode, size, mtime and ctime to the
//! nanosecond — or, for a remembered "no such file", still no file. A changed file is
//! seen by the very next request, and anything that does not match goes back to
//! [`Root::open_file`], which alone decides what is beneath the root (a symlink swapped
//! in never matches: its target is another inode). A hit costs one `fstatat` instead of
//! `openat2` (or the portable walk), `fstat`, `pread` and `close`.
//!
//! On Windows the check is one `std::fs::metadata` of the joined path, and a version is
//! its size, last-write and creation times and attributes (std gives no file index on
//! stable): a file swapped for another with all four equal would still be answered from
//! the cache — with the bytes of the file that was opened below the root, never with the
//! other's.
//!
//! On Linux the cache's watch is on for both runtimes ([`FileCache::watch_changes`], see
//! `cache/watch.rs`): runtime-smol's reactors read its notifications before the requests
//! that came after them (`fresh` reads), runtime-std's workers read what is queued before
//! each open ([`FileCache::catch_up`]). An entry then stays good without any system call
//! until an inotify event near it, and one `fstatat` confirms it again after one.
//!
//! runtime-smol measured what it saves: with every open on the blocking pool, 19–24 µs
//! of server CPU per keep-alive small-file request; with the cache, 8–10 µs.

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{error, info, warn};
use protocol::{FileError, FileMeta, SafePath};

use crate::files::Root;
use crate::limits::CACHE_ENTRIES;

#[cfg(target_os = "linux")]
mod watch;

/// Files up to this size are read into memory when opened (and sent from there).
pub const SMALL: u64 = 64 * 1024;
/// The cache holds at most [`CACHE_ENTRIES`] entries and this many bytes, and open
/// descriptors of large files up to a quarter of the process's descriptor limit (see
/// [`crate::limits::fd_budget`]); past a bound it forgets the entries unused longest.
const CACHE_BYTES: usize = 16 << 20;
/// An entry unused this long is forgotten (its descriptor closed) at the next miss.
const IDLE_EXPIRY: Duration = Duration::from_secs(60);
/// A file modified less than this long ago is not cached: timestamps are coarse on many
/// file systems, so a second edit within the same tick could look unchanged.
const FRESH: u64 = 2;
/// `FILE_CACHE=off` in the environment turns the cache off (to measure what it saves).
const CACHE_SWITCH: &str = "FILE_CACHE";

/// An opened file: what the core needs to know, and where its bytes are.
#[derive(Debug)]
pub struct Opened {
    pub meta: FileMeta,
    pub body: Body,
    /// Its compressed variants (`--compress`), made on demand: they live as long as
    /// this version of the file is the one the cache serves.
    pub variants: crate::compress::Variants,
}

#[derive(Debug)]
pub enum Body {
    /// The whole file, read when it was opened.
    Bytes(Vec<u8>),
    /// A large file, streamed with sendfile.
    File(File),
    /// A directory (the core answers 404 or tries another name).
    None,
    /// An upload held in an object store (`--upload-store s3://`): streamed from it.
    #[cfg(feature = "s3")]
    Remote(Arc<crate::store::S3Store>, String),
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
    /// The root, to check a path's version against (None: cache off).
    dir: Option<sys::Dir>,
    cache: Mutex<Cache>,
    /// Change notification, once a runtime turned it on (`None` inside: inotify could
    /// not be had, said once).
    #[cfg(target_os = "linux")]
    watch: std::sync::OnceLock<Option<watch::Watch>>,
}

impl FileCache {
    /// A cache for `root` (off when `FILE_CACHE=off`, or when the root cannot be opened
    /// a second time).
    pub fn new(root: &Root) -> FileCache {
        let dir = if std::env::var_os(CACHE_SWITCH).is_some_and(|v| v == "off") {
            info!("open-file cache off ({CACHE_SWITCH}=off)");
            None
        } else {
            match sys::Dir::open(root.path()) {
                Ok(dir) => Some(dir),
                Err(e) => {
                    warn!("open-file cache off: cannot open the root again: {e}");
                    None
                }
            }
        };
        FileCache {
            dir,
            cache: Mutex::new(Cache::new(crate::limits::fd_budget(CACHE_ENTRIES))),
            #[cfg(target_os = "linux")]
            watch: std::sync::OnceLock::new(),
        }
    }

    /// Turns change notification on (Linux, with the cache on, not with `PORTABLE_IO=1`)
    /// and returns the descriptor that turns readable when something changed. The caller
    /// promises to call [`FileCache::changed`] when it does, before it serves a request
    /// that arrived after the change (and to say which requests it cannot promise that
    /// for: `notified` in [`FileCache::cached`]).
    #[cfg(target_os = "linux")]
    pub fn watch_changes(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        if self.dir.is_none() || crate::portable_io() {
            return None;
        }
        self.watch
            .get_or_init(|| match watch::Watch::new() {
                Ok(w) => Some(w),
                Err(e) => {
                    warn!("no change notification for the open-file cache (inotify: {e}); every hit is checked with fstatat");
                    None
                }
            })
            .as_ref()
            .map(watch::Watch::fd)
    }

    /// The change notification, if a runtime turned it on and it works.
    #[cfg(target_os = "linux")]
    fn watch(&self) -> Option<&watch::Watch> {
        self.watch.get().and_then(Option::as_ref)
    }

    /// The watch descriptor turned readable: every entry is confirmed again.
    pub fn changed(&self) {
        #[cfg(target_os = "linux")]
        if let Some(w) = self.watch() {
            w.changed();
        }
    }

    /// For a runtime with no reactor (runtime-std's workers), after a request arrived:
    /// reads the change notifications queued so far; `true` when the request may then
    /// be looked up with `notified` (see [`FileCache::cached`] and `Watch::catch_up`).
    /// `false` without change notification.
    pub fn catch_up(&self) -> bool {
        #[cfg(target_os = "linux")]
        if let Some(w) = self.watch() {
            return w.catch_up();
        }
        false
    }

    /// The generation of change notification now (`None`: no notification).
    fn generation(&self) -> Option<u64> {
        #[cfg(target_os = "linux")]
        return self.watch().map(watch::Watch::generation);
        #[cfg(not(target_os = "linux"))]
        None
    }

    /// The cached answer for `rel`, if it still holds: with no system call when change
    /// notification is on, nothing changed since the entry was last confirmed, and the
    /// runtime read every notification that came before this request (`notified`);
    /// else if one `fstatat` shows the file unchanged.
    pub fn cached(&self, rel: &str, notified: bool) -> Option<Result<Arc<Opened>, FileError>> {
        let found = self.lookup(rel, notified);
        let count = match found {
            Some(_) => crate::ops::Count::CacheHits,
            None => crate::ops::Count::CacheMisses,
        };
        crate::ops::count(count, 1);
        found
    }

    /// [`FileCache::cached`], uncounted.
    fn lookup(&self, rel: &str, notified: bool) -> Option<Result<Arc<Opened>, FileError>> {
        let dir = self.dir.as_ref()?;
        // Read before the check: a change during it moves the generation past this.
        let generation = self.generation();
        let (entry, confirmed) = {
            let mut cache = self.lock();
            let slot = cache.map.get_mut(rel)?;
            slot.used = Instant::now();
            (slot.entry.clone(), slot.confirmed)
        };
        if let Entry::Found(_, opened) = &entry {
            if notified && generation.is_some() && confirmed == generation {
                return Some(Ok(Arc::clone(opened)));
            }
        }
        match (entry, dir.identity(rel)) {
            (Entry::Found(id, opened), Now::Is(now)) if now == id => {
                if generation.is_some() && confirmed != generation {
                    self.lock().confirm(rel, &opened, generation);
                }
                Some(Ok(opened))
            }
            (Entry::Missing, Now::Missing) => Some(Err(FileError::NotFound)),
            _ => None,
        }
    }

    /// Remembers what [`load`] found for `rel`; with change notification on, watches
    /// the file and its directories first, then confirms the entry with one `fstatat`.
    pub fn remember(&self, rel: String, loaded: &Loaded) {
        let Some(dir) = &self.dir else { return };
        let generation = self.generation();
        let confirmed = match (&loaded.0, loaded.1, generation) {
            #[cfg(target_os = "linux")]
            (Ok(_), Some(id), Some(_)) => {
                let covered = self.watch().is_some_and(|w| w.cover(dir.fd(), &rel));
                let unchanged = matches!(dir.identity(&rel), Now::Is(now) if now == id);
                if covered && unchanged {
                    generation
                } else {
                    None
                }
            }
            _ => {
                let _ = dir;
                None
            }
        };
        self.lock().insert(rel, &loaded.0, loaded.1, confirmed);
    }

    /// Forgets `rel` (a file this server just wrote).
    pub fn forget(&self, rel: &str) {
        self.lock().remove(rel);
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What [`load`] found, and which version of the file it was.
pub struct Loaded(pub Result<Arc<Opened>, FileError>, Option<Identity>);

pub use sys::Identity;

/// What a path names now.
enum Now {
    Is(Identity),
    Missing,
    Unknown,
}

#[derive(Clone, Debug)]
enum Entry {
    Found(Identity, Arc<Opened>),
    Missing,
}

struct Slot {
    entry: Entry,
    /// Bytes of memory it holds (its key, and a small file's bytes).
    bytes: usize,
    /// It holds an open descriptor (a large file).
    fd: bool,
    used: Instant,
    /// The notification generation at which the entry was last confirmed, when it is
    /// covered by watches (see `cache/watch.rs`).
    confirmed: Option<u64>,
}

struct Cache {
    map: HashMap<String, Slot>,
    bytes: usize,
    fds: usize,
    fd_budget: usize,
}

impl Cache {
    fn new(fd_budget: usize) -> Cache {
        Cache {
            map: HashMap::new(),
            bytes: 0,
            fds: 0,
            fd_budget,
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(slot) = self.map.remove(key) {
            self.bytes -= slot.bytes;
            self.fds -= usize::from(slot.fd);
        }
    }

    /// The entry of `key`, if it still holds `opened`, was confirmed at `generation`.
    fn confirm(&mut self, key: &str, opened: &Arc<Opened>, generation: Option<u64>) {
        if let Some(slot) = self.map.get_mut(key) {
            if matches!(&slot.entry, Entry::Found(_, o) if Arc::ptr_eq(o, opened)) {
                slot.confirmed = generation;
            }
        }
    }

    fn insert(
        &mut self,
        key: String,
        result: &Result<Arc<Opened>, FileError>,
        id: Option<Identity>,
        confirmed: Option<u64>,
    ) {
        self.remove(&key);
        let entry = match (result, id) {
            // A file changed in the last seconds is asked again (coarse timestamps).
            (Ok(opened), Some(_)) if fresh(opened.meta.mtime_secs) => return,
            (Ok(opened), Some(id)) => Entry::Found(id, Arc::clone(opened)),
            (Err(FileError::NotFound), _) => Entry::Missing,
            // Refusals and errors are always asked again.
            _ => return,
        };
        let (bytes, fd) = match &entry {
            Entry::Found(_, o) => match &o.body {
                Body::Bytes(b) => (b.len(), false),
                Body::File(_) => (0, true),
                _ => (0, false),
            },
            Entry::Missing => (0, false),
        };
        let bytes = bytes + key.len();
        let now = Instant::now();
        self.expire(now, bytes, usize::from(fd));
        if bytes > CACHE_BYTES / 4 || (fd && self.fds >= self.fd_budget) {
            return;
        }
        self.bytes += bytes;
        self.fds += usize::from(fd);
        self.map.insert(
            key,
            Slot {
                entry,
                bytes,
                fd,
                used: now,
                confirmed,
            },
        );
    }

    /// Forgets idle entries, then the least recently used until `bytes` and `fds` more
    /// fit within the bounds.
    fn expire(&mut self, now: Instant, bytes: usize, fds: usize) {
        let idle: Vec<String> = self
            .map
            .iter()
            .filter(|(_, s)| now.duration_since(s.used) >= IDLE_EXPIRY)
            .map(|(k, _)| k.clone())
            .collect();
        for key in idle {
            self.remove(&key);
        }
        let over = |c: &Cache| {
            c.map.len() >= CACHE_ENTRIES
                || c.bytes + bytes > CACHE_BYTES
                || (fds > 0 && c.fds + fds > c.fd_budget)
        };
        if !over(self) {
            return;
        }
        let mut by_age: Vec<(Instant, String)> =
            self.map.iter().map(|(k, s)| (s.used, k.clone())).collect();
        by_age.sort_unstable();
        for (_, key) in by_age {
            if !over(self) {
                break;
            }
            self.remove(&key);
        }
    }
}

/// Whether a file modified at `mtime_secs` changed within the last [`FRESH`] seconds.
fn fresh(mtime_secs: u64) -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    mtime_secs.saturating_add(FRESH) > now
}

/// Opens a file (reading it whole when it is small) and says which file it was.
pub fn load(root: &Root, path: &SafePath) -> Loaded {
    let (file, mut meta) = match root.open_file(path) {
        Ok(opened) => opened,
        Err(e) => return Loaded(Err(e), None),
    };
    let id = sys::identity_of(&file);
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
    let variants = Default::default();
    Loaded(
        Ok(Arc::new(Opened {
            meta,
            body,
            variants,
        })),
        id,
    )
}

/// Reads up to `len` bytes from the start of `file` (fewer if it is shorter now).
fn read_all(file: &File, len: u64) -> std::io::Result<Vec<u8>> {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let mut bytes = vec![0; len];
    let mut done = 0;
    while done < len {
        match sys::read_at(file, &mut bytes[done..], done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(done);
    Ok(bytes)
}

#[cfg(unix)]
mod sys {
    use std::fs::File;
    use std::os::fd::OwnedFd;
    use std::path::Path;

    use rustix::fs::{AtFlags, Stat};
    use rustix::io::Errno;

    use super::Now;

    /// The root directory for `fstatat`.
    pub(super) struct Dir(OwnedFd);

    impl Dir {
        pub(super) fn open(root: &Path) -> std::io::Result<Dir> {
            crate::files::open_dir(root).map(Dir)
        }

        #[cfg(target_os = "linux")]
        pub(super) fn fd(&self) -> &OwnedFd {
            &self.0
        }

        pub(super) fn identity(&self, rel: &str) -> Now {
            match rustix::fs::statat(&self.0, rel, AtFlags::empty()) {
                Ok(st) => Now::Is(Identity::of(&st)),
                Err(Errno::NOENT) => Now::Missing,
                Err(_) => Now::Unknown,
            }
        }
    }

    /// What identifies one version of one file: device, inode, size, mtime and ctime (to
    /// the nanosecond).
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

    pub(super) fn identity_of(file: &File) -> Option<Identity> {
        rustix::fs::fstat(file).ok().map(|st| Identity::of(&st))
    }

    pub(super) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(file, buf, offset)
    }
}

#[cfg(windows)]
mod sys {
    use std::fs::{File, Metadata};
    use std::io::ErrorKind;
    use std::os::windows::fs::MetadataExt;
    use std::path::{Path, PathBuf};

    use super::Now;

    /// The canonical root, to join a path to.
    pub(super) struct Dir(PathBuf);

    impl Dir {
        pub(super) fn open(root: &Path) -> std::io::Result<Dir> {
            Ok(Dir(root.to_path_buf()))
        }

        pub(super) fn identity(&self, rel: &str) -> Now {
            // A verbatim root: `/` is no separator there.
            let mut path = self.0.clone();
            path.extend(rel.split('/'));
            match std::fs::metadata(&path) {
                Ok(m) => Now::Is(Identity::of(&m)),
                Err(e) if e.kind() == ErrorKind::NotFound => Now::Missing,
                Err(_) => Now::Unknown,
            }
        }
    }

    /// What identifies one version of one file: size, last-write and creation times,
    /// attributes.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Identity {
        size: u64,
        written: u64,
        created: u64,
        attributes: u32,
    }

    impl Identity {
        fn of(m: &Metadata) -> Identity {
            Identity {
                size: m.file_size(),
                written: m.last_write_time(),
                created: m.creation_time(),
                attributes: m.file_attributes(),
            }
        }
    }

    pub(super) fn identity_of(file: &File) -> Option<Identity> {
        file.metadata().ok().map(|m| Identity::of(&m))
    }

    pub(super) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        std::os::windows::fs::FileExt::seek_read(file, buf, offset)
    }
}
