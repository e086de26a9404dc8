//! The web root: opening files below it and writing uploads into `uploads/`.
//!
//! Opening is where SPEC's "nothing outside the root is ever read" is enforced for the
//! file system (the core already refused `..`, hidden names and friends in the request
//! path, so a [`SafePath`] is plain `/`-separated names). What each platform does:
//!
//! - **Linux** (the fast path): `openat2(root_fd, path, RESOLVE_BENEATH |
//!   RESOLVE_NO_MAGICLINKS)`: the kernel resolves every component, symlinks included, and
//!   refuses (`EXDEV`) anything that would leave the root, in the same system call that
//!   opens it — no window between a check and the open. An absolute symlink (refused by
//!   `RESOLVE_BENEATH` even when it points inside the root), one that leaves the root,
//!   and `EAGAIN` three times in a row (the kernel's answer when any rename on the system
//!   races a lookup through `..`) are decided by the walk below; so is everything on a
//!   kernel without `openat2` (probed once).
//! - **Every other Unix** (macOS, FreeBSD, …), **and Linux with `PORTABLE_IO=1`**: the
//!   walk (`files/walk.rs`): from the held root directory descriptor, one `openat(dir, name,
//!   O_NOFOLLOW | …)` per component, keeping its own stack of directory descriptors.
//!   A symlink is never followed by the kernel: it is read (`readlinkat`) and its target
//!   spliced into the components still to walk; `..` pops the walk's own stack, so a
//!   concurrent rename cannot carry the walk out of the root (no window between check and
//!   open either). An absolute target is walked from `/` by the canonical root's own
//!   names, which must lead back into the root; anything else that leaves the root is
//!   `Forbidden`, as are more than 40 symlinks. No `openat2` is ever called.
//! - **Windows**: std only: canonicalize the joined path, require the canonical root as
//!   its prefix, open it, canonicalize again and compare. Unlike the Unix walk this has a
//!   **check-then-open window**: a directory below the root replaced by a junction or
//!   symlink between the check and the open would be followed (the second check narrows
//!   the window, but it checks the name again, not the handle). Reserved device names,
//!   `:` (alternate streams), trailing dots and spaces and 8.3 short names are refused
//!   first (the core refuses them too, with its Windows rules).
//!
//! The final component is opened read-only, non-blocking (a FIFO below the root must not
//! block a worker in `open`), and only regular files and directories are served (anything
//! else is "not found").
//!
//! Uploads are written whole or not at all, and never overwrite: `uploads/.tmp-NAME`
//! (created exclusively), write, `fsync`, then a rename that refuses an existing name:
//!
//! - Linux: `renameat2(RENAME_NOREPLACE)` (hard link + unlink where the file system lacks
//!   it);
//! - macOS: `renameatx_np(RENAME_EXCL)` (the same fallback);
//! - FreeBSD and other Unix, and Linux with `PORTABLE_IO=1`: `linkat` (which fails with
//!   `EEXIST` when the name exists) then `unlinkat` of the temporary — no `renameat2`;
//! - Windows: `std::fs::hard_link` (fails when the name exists), then the temporary is
//!   removed.
//!
//! On Unix the directory is then `fsync`ed. Names that start with `.` are never served by
//! the core, so a temporary file is never visible.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use log::{error, warn};
use protocol::{DirEntry, FileError, FileMeta, SafePath, UploadError};

#[cfg(target_os = "linux")]
mod linux;
mod stream;
#[cfg(unix)]
mod unix;
#[cfg(unix)]
mod walk;
#[cfg(windows)]
mod windows;

pub use stream::{split_target, UploadFile};

#[cfg(unix)]
use unix as sys;
#[cfg(windows)]
use windows as sys;

#[cfg(unix)]
pub(crate) use unix::open_dir;

/// The directory below the root that receives uploads.
pub const UPLOADS: &str = "uploads";
/// The prefix of temporary upload files.
pub const TMP_PREFIX: &str = ".tmp-";
/// On Windows (no advisory locks through std), how old a temporary must be before the
/// start-up clean-up removes it: an upload is written and renamed within a request.
#[cfg_attr(not(windows), allow(dead_code))]
pub const STALE: std::time::Duration = std::time::Duration::from_secs(600);

/// The canonical web root (and, on Unix, a directory descriptor on it).
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    sys: sys::RootDir,
}

impl Root {
    /// Opens the root directory `path` (it must exist and be a directory).
    pub fn new(path: impl AsRef<Path>) -> io::Result<Root> {
        let path = path.as_ref().canonicalize()?;
        let sys = sys::RootDir::open(&path)?;
        Ok(Root { path, sys })
    }

    /// The canonical path of the root.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a file below the root for reading and reports its size and modification
    /// time. A directory gives `is_dir: true` (and the returned handle is of no use).
    pub fn open_file(&self, path: &SafePath) -> Result<(File, FileMeta), FileError> {
        self.sys.open_file(&self.path, path.as_str())
    }

    /// Lists directory `dir` below the root (`SafePath::root()`: the root itself) for
    /// `--dir-listing`: each visible entry with what it is, opened through the same
    /// door as a file, so a symlink counts as its target and one that leads out of the
    /// root (or nowhere) is left out. At most [`protocol::MAX_LISTED`] entries; the
    /// second value counts the names past that. Blocks on the disk.
    pub fn list_dir(&self, dir: &SafePath) -> Result<(Vec<DirEntry>, u64), FileError> {
        let mut names = Vec::new();
        let mut unread = 0u64;
        self.sys.read_names(&self.path, dir.as_str(), |name| {
            if names.len() < protocol::MAX_LISTED {
                names.push(name.to_string());
            } else {
                unread += 1;
            }
        })?;
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            // Hidden names are never listed (the core drops them too): not even opened.
            let Some(path) = dir.join(&name) else {
                continue;
            };
            if let Ok((_, meta)) = self.open_file(&path) {
                entries.push(DirEntry {
                    name,
                    is_dir: meta.is_dir,
                    size: if meta.is_dir { 0 } else { meta.len },
                    mtime_secs: meta.mtime_secs,
                });
            }
        }
        Ok((entries, unread))
    }

    /// Writes `uploads/NAME` atomically and without overwriting (see the module doc).
    /// Creates `uploads/` if it is missing. Every failure is logged at `error`.
    pub fn write_upload(&self, name: &str, body: &[u8]) -> Result<(), UploadError> {
        if !is_plain_name(name) {
            error!("upload name {name:?} refused: not a plain file name");
            return Err(UploadError::Other);
        }
        let dir = self.sys.uploads_dir(&self.path).map_err(|e| {
            error!(
                "upload {name}: cannot open {}/{UPLOADS}: {e}",
                self.path.display()
            );
            UploadError::Other
        })?;
        let tmp = format!("{TMP_PREFIX}{name}");
        if let Err((step, e)) = self.sys.write_new(&dir, &tmp, name, body) {
            // The temporary is ours to remove only if we created it: an exclusive create
            // that failed found another writer's (same name, at the same moment).
            if step != CREATE {
                sys::remove_temporary(&dir, &tmp);
            }
            if matches!(step, CREATE | RENAME) && e.kind() == io::ErrorKind::AlreadyExists {
                warn!("upload {name}: a file of that name exists or is being written; not overwritten, retried");
                return Err(UploadError::AlreadyExists {
                    reseed: crate::clock::seed(),
                });
            }
            error!(
                "upload {name}: {step} failed in {}/{UPLOADS}: {e}",
                self.path.display()
            );
            if matches!(
                e.kind(),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
            ) {
                return Err(UploadError::NoSpace);
            }
            return Err(UploadError::Other);
        }
        Ok(())
    }

    /// Removes `uploads/.tmp-*` left by a crash; returns how many. Never one that a
    /// live server process is writing (on Unix each is locked by its writer until it is
    /// renamed; on Windows, only those older than [`STALE`]), and never through a
    /// symlinked `uploads/`. A missing `uploads/` is not an error.
    pub fn clean_temporaries(&self) -> io::Result<usize> {
        #[cfg(unix)]
        return self.sys.clean_temporaries();
        #[cfg(windows)]
        return self.sys.clean_temporaries(&self.path, STALE);
    }

    /// Test hook: behave as on a kernel without `openat2` (Linux; elsewhere there is no
    /// `openat2` to disable, and this does nothing).
    #[doc(hidden)]
    pub fn disable_openat2(&self) {
        self.sys.disable_openat2();
    }

    /// Test hook: take the portable paths (the walk below the root, link + unlink for
    /// uploads) as with `PORTABLE_IO=1` (Linux; elsewhere they are the only paths).
    #[doc(hidden)]
    pub fn force_portable(&self) {
        self.sys.force_portable();
    }

    /// Whether this root takes the portable paths ([`crate::portable_io`], or
    /// [`Root::force_portable`]).
    pub fn portable(&self) -> bool {
        self.sys.portable()
    }
}

/// The steps of an upload whose `AlreadyExists` means "name taken": creating the
/// temporary (another writer of the same name holds it) and the final rename.
const CREATE: &str = "create";
const RENAME: &str = "rename";

fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && Path::new(OsStr::new(name)).file_name() == Some(OsStr::new(name))
}

#[cfg(test)]
mod safety_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::SafePath;
    use std::io::Read;
    #[cfg(target_os = "linux")]
    use std::sync::atomic::Ordering;

    pub(super) struct Fixture {
        pub _base: tempfile::TempDir,
        pub root: PathBuf,
        pub outside: PathBuf,
    }

    /// `base/www/{a.txt, sub/b.html}` and `base/secret.txt`, plus (on Unix) symlinks in
    /// and out. `base` is canonical (macOS's temporary directory is behind `/var`).
    pub(super) fn fixture() -> Fixture {
        let base = tempfile::tempdir().expect("tempdir");
        let base_path = base.path().canonicalize().expect("canonical");
        let root = base_path.join("www");
        let outside = base_path.join("secret.txt");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(&outside, "SECRET").expect("write");
        std::fs::write(root.join("a.txt"), "hello").expect("write");
        std::fs::write(root.join("sub/b.html"), "<p>b</p>").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            symlink("../secret.txt", root.join("rel-out.txt")).expect("symlink");
            symlink(&outside, root.join("abs-out.txt")).expect("symlink");
            symlink(&base_path, root.join("dir-out")).expect("symlink");
            symlink("a.txt", root.join("rel-in.txt")).expect("symlink");
            symlink(root.join("sub/b.html"), root.join("abs-in.html")).expect("symlink");
        }
        Fixture {
            _base: base,
            root,
            outside,
        }
    }

    fn safe(p: &str) -> SafePath {
        SafePath::from_request_path(p).expect("safe path")
    }

    fn read(root: &Root, p: &str) -> Result<String, FileError> {
        let (mut f, meta) = root.open_file(&safe(p))?;
        assert!(!meta.is_dir);
        let mut s = String::new();
        f.read_to_string(&mut s).expect("read");
        assert_eq!(s.len() as u64, meta.len);
        Ok(s)
    }

    fn check_plain(root: &Root, fx: &Fixture) {
        assert_eq!(read(root, "/a.txt").as_deref(), Ok("hello"));
        assert_eq!(read(root, "/sub/b.html").as_deref(), Ok("<p>b</p>"));
        assert_eq!(read(root, "/missing.txt"), Err(FileError::NotFound));
        assert_eq!(read(root, "/a.txt/x"), Err(FileError::NotFound));
        let (_, meta) = root.open_file(&safe("/sub")).expect("dir opens");
        assert!(meta.is_dir);
        assert!(fx.outside.exists());
    }

    #[cfg(unix)]
    fn check_all(root: &Root, fx: &Fixture) {
        check_plain(root, fx);
        assert_eq!(read(root, "/rel-in.txt").as_deref(), Ok("hello"));
        assert_eq!(read(root, "/abs-in.html").as_deref(), Ok("<p>b</p>"));
        assert_eq!(read(root, "/rel-out.txt"), Err(FileError::Forbidden));
        assert_eq!(read(root, "/abs-out.txt"), Err(FileError::Forbidden));
        assert_eq!(read(root, "/dir-out/secret.txt"), Err(FileError::Forbidden));
        assert_eq!(read(root, "/dir-out/www/a.txt").as_deref(), Ok("hello"));
    }

    #[cfg(not(unix))]
    fn check_all(root: &Root, fx: &Fixture) {
        check_plain(root, fx);
    }

    /// Issue 13 (4): `openat2(RESOLVE_BENEATH)` answers `EAGAIN` when any rename on the
    /// system races a lookup through `..` (here: a symlink `sub/up -> ..`), which was a
    /// sporadic 500. The fast path retries, then the walk answers: every open succeeds.
    #[cfg(target_os = "linux")]
    #[test]
    fn renames_elsewhere_never_fail_an_open_through_dotdot() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let fx = fixture();
        std::os::unix::fs::symlink("..", fx.root.join("sub/up")).expect("symlink");
        let root = Root::new(&fx.root).expect("root");
        let stop = Arc::new(AtomicBool::new(false));
        let renamer = {
            let stop = Arc::clone(&stop);
            let dir = fx.root.parent().expect("base").join("churn");
            std::fs::create_dir(&dir).expect("mkdir");
            std::fs::write(dir.join("x"), "x").expect("write");
            std::thread::spawn(move || {
                let mut renames = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::rename(dir.join("x"), dir.join("y"));
                    let _ = std::fs::rename(dir.join("y"), dir.join("x"));
                    renames += 2;
                }
                renames
            })
        };
        let until = std::time::Instant::now() + std::time::Duration::from_millis(800);
        let mut opens = 0;
        while std::time::Instant::now() < until {
            assert_eq!(read(&root, "/sub/up/a.txt").as_deref(), Ok("hello"));
            opens += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let renames = renamer.join().expect("renamer");
        assert!(
            opens > 100 && renames > 100,
            "{opens} opens, {renames} renames"
        );
    }

    #[test]
    fn opens_below_the_root_only() {
        let fx = fixture();
        let root = Root::new(&fx.root).expect("root");
        check_all(&root, &fx);
    }

    #[test]
    fn the_fallback_without_openat2_refuses_the_same() {
        let fx = fixture();
        let root = Root::new(&fx.root).expect("root");
        root.disable_openat2();
        check_all(&root, &fx);
    }

    #[test]
    fn the_portable_walk_refuses_the_same() {
        let fx = fixture();
        let root = Root::new(&fx.root).expect("root");
        root.force_portable();
        assert!(root.portable());
        check_all(&root, &fx);
    }

    #[test]
    fn a_root_that_is_not_a_directory_fails() {
        let fx = fixture();
        assert!(Root::new(fx.root.join("a.txt")).is_err());
        assert!(Root::new(fx.root.join("nope")).is_err());
    }

    fn uploads_never_overwrite(root: &Root, fx: &Fixture) {
        // uploads/ is created when missing.
        root.write_upload("x.json", b"{\"a\":1}").expect("written");
        assert_eq!(
            std::fs::read(fx.root.join("uploads/x.json")).expect("read"),
            b"{\"a\":1}"
        );
        assert!(matches!(
            root.write_upload("x.json", b"{}"),
            Err(UploadError::AlreadyExists { .. })
        ));
        assert_eq!(
            std::fs::read(fx.root.join("uploads/x.json")).expect("read"),
            b"{\"a\":1}"
        );
        root.write_upload("y.json", b"[]").expect("written");
        let mut names: Vec<_> = std::fs::read_dir(fx.root.join("uploads"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["x.json", "y.json"]);
        for bad in ["", ".x.json", "a/b.json", "..", "a\\b"] {
            assert_eq!(
                root.write_upload(bad, b"{}"),
                Err(UploadError::Other),
                "{bad}"
            );
        }
    }

    #[test]
    fn uploads_are_atomic_and_never_overwrite() {
        let fx = fixture();
        let root = Root::new(&fx.root).expect("root");
        uploads_never_overwrite(&root, &fx);
    }

    #[test]
    fn the_portable_rename_never_overwrites_either() {
        let fx = fixture();
        let root = Root::new(&fx.root).expect("root");
        root.force_portable();
        uploads_never_overwrite(&root, &fx);
    }

    /// Many writers race for one name with the portable rename: exactly one wins, the
    /// others are told the name exists, and the winner's bytes are whole.
    #[cfg(unix)]
    #[test]
    fn the_portable_rename_has_one_winner_under_a_race() {
        let fx = fixture();
        let root = Root::new(&fx.root).expect("root");
        root.force_portable();
        for round in 0..20 {
            let name = format!("race-{round}.json");
            let results: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8u8)
                    .map(|i| {
                        let (root, name) = (&root, &name);
                        s.spawn(move || root.write_upload(name, &[b'0' + i; 4096]))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("writer"))
                    .collect()
            });
            let won = results.iter().filter(|r| r.is_ok()).count();
            let taken = results
                .iter()
                .filter(|r| matches!(r, Err(UploadError::AlreadyExists { .. })))
                .count();
            // A loser finds either the name taken or the temporary of the same name
            // held by another writer: both are "exists", never an overwrite or a 500.
            assert_eq!((won, taken), (1, 7), "{results:?}");
            let bytes = std::fs::read(fx.root.join("uploads").join(&name)).expect("read");
            assert_eq!(bytes.len(), 4096);
            assert!(bytes.iter().all(|&b| b == bytes[0]), "torn upload");
        }
        assert_eq!(root.clean_temporaries().expect("clean"), 0);
    }

    #[cfg(unix)]
    #[test]
    fn an_unusable_uploads_dir_is_an_error() {
        use std::os::unix::fs::symlink;
        let fx = fixture();
        std::fs::write(fx.root.join("uploads"), "not a dir").expect("write");
        for portable in [false, true] {
            let root = Root::new(&fx.root).expect("root");
            if portable {
                root.force_portable();
            }
            std::fs::remove_file(fx.root.join("uploads")).expect("rm");
            std::fs::write(fx.root.join("uploads"), "not a dir").expect("write");
            assert_eq!(root.write_upload("y.json", b"{}"), Err(UploadError::Other));
            // A symlinked uploads/ is refused too (it could point anywhere).
            std::fs::remove_file(fx.root.join("uploads")).expect("rm");
            symlink(fx.root.join("sub"), fx.root.join("uploads")).expect("symlink");
            assert_eq!(root.write_upload("y.json", b"{}"), Err(UploadError::Other));
            assert!(!fx.root.join("sub/y.json").exists());
        }
    }

    #[test]
    fn stale_temporaries_are_removed() {
        let fx = fixture();
        let root = Root::new(&fx.root).expect("root");
        assert_eq!(root.clean_temporaries().expect("clean"), 0);
        std::fs::create_dir(fx.root.join("uploads")).expect("mkdir");
        std::fs::write(fx.root.join("uploads/.tmp-a.json"), "{").expect("write");
        std::fs::write(fx.root.join("uploads/b.json"), "{}").expect("write");
        assert_eq!(root.clean_temporaries().expect("clean"), 1);
        assert!(!fx.root.join("uploads/.tmp-a.json").exists());
        assert!(fx.root.join("uploads/b.json").exists());
    }

    /// Issue 13 (5): a second server started on the same root by mistake must not delete
    /// the first one's uploads in flight (their writers hold a lock), nor follow a
    /// symlinked `uploads/` to delete `.tmp-*` files wherever it points.
    #[cfg(unix)]
    #[test]
    fn the_clean_up_spares_live_uploads_and_symlinked_dirs() {
        use std::os::fd::AsFd;
        let fx = fixture();
        let root = Root::new(&fx.root).expect("root");
        std::fs::create_dir(fx.root.join("uploads")).expect("mkdir");
        let live = File::create(fx.root.join("uploads/.tmp-live.json")).expect("create");
        rustix::fs::flock(
            live.as_fd(),
            rustix::fs::FlockOperation::NonBlockingLockExclusive,
        )
        .expect("lock");
        std::fs::write(fx.root.join("uploads/.tmp-dead.json"), "{").expect("write");
        assert_eq!(root.clean_temporaries().expect("clean"), 1);
        assert!(
            fx.root.join("uploads/.tmp-live.json").exists(),
            "a live upload was deleted"
        );
        assert!(!fx.root.join("uploads/.tmp-dead.json").exists());
        drop(live);
        assert_eq!(
            root.clean_temporaries().expect("clean"),
            1,
            "its writer is gone"
        );

        let elsewhere = fx.root.parent().expect("base").join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("mkdir");
        std::fs::write(elsewhere.join(".tmp-x.json"), "{").expect("write");
        std::fs::remove_dir_all(fx.root.join("uploads")).expect("rm");
        std::os::unix::fs::symlink(&elsewhere, fx.root.join("uploads")).expect("symlink");
        assert!(root.clean_temporaries().is_err());
        assert!(
            elsewhere.join(".tmp-x.json").exists(),
            "followed the symlink"
        );
    }
}
