//! The web root: opening files below it and writing uploads into `uploads/`.
//!
//! Opening is where SPEC's "nothing outside the root is ever read" is enforced for the
//! file system (the core already refused `..` and friends in the request path). On Linux
//! the file is opened with `openat2(root_fd, path, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`:
//! the kernel resolves every component, symlinks included, and refuses (`EXDEV`) anything
//! that would leave the root, in the same system call that opens it — no window between a
//! check and the open. An absolute symlink is refused by `RESOLVE_BENEATH` even when it
//! points inside the root, so that case (and kernels without `openat2`) takes the slow
//! path: canonicalize, check the result starts with the canonical root, and open the
//! canonical relative path again with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`.
//!
//! Uploads are written whole or not at all: `uploads/.tmp-NAME` (created exclusively),
//! write, `fsync`, `renameat2(RENAME_NOREPLACE)` to `uploads/NAME` (or hard link +
//! unlink where the file system lacks it), then `fsync` of the directory. Names that start
//! with `.` are never served by the core, so a temporary file is never visible.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use log::{error, warn};
use protocol::{FileError, FileMeta, SafePath, UploadError};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;

/// The directory below the root that receives uploads.
pub const UPLOADS: &str = "uploads";
/// The prefix of temporary upload files.
pub const TMP_PREFIX: &str = ".tmp-";

/// The canonical web root and a directory descriptor on it.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    dir: OwnedFd,
    openat2: AtomicBool,
}

const OPEN_READ: OFlags = OFlags::RDONLY
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY)
    // A FIFO below the root must not block the worker in open().
    .union(OFlags::NONBLOCK);
const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

impl Root {
    /// Opens the root directory `path` (it must exist and be a directory).
    pub fn new(path: impl AsRef<Path>) -> io::Result<Root> {
        let path = path.as_ref().canonicalize()?;
        let dir = rustix::fs::open(
            &path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOTDIR => io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            e => io::Error::from(e),
        })?;
        // Probe openat2 once: old kernels say ENOSYS, some sandboxes EPERM.
        let openat2 = rustix::fs::openat2(
            &dir,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            BENEATH,
        )
        .is_ok();
        if !openat2 {
            warn!("openat2 is not available: checking paths by canonicalization");
        }
        Ok(Root {
            path,
            dir,
            openat2: AtomicBool::new(openat2),
        })
    }

    /// The canonical path of the root.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a file below the root for reading and reports its size and modification
    /// time. A directory gives `is_dir: true` (and the returned handle is of no use).
    pub fn open_file(&self, path: &SafePath) -> Result<(File, FileMeta), FileError> {
        let rel = path.as_str();
        let fd = if self.openat2.load(Ordering::Relaxed) {
            match rustix::fs::openat2(&self.dir, rel, OPEN_READ, Mode::empty(), BENEATH) {
                Ok(fd) => fd,
                // An absolute symlink, or one climbing out: decide by its real target.
                Err(Errno::XDEV) => self.open_canonical(rel)?,
                Err(e) => return Err(open_error(e)),
            }
        } else {
            self.open_canonical(rel)?
        };
        let stat = rustix::fs::fstat(&fd).map_err(open_error)?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        let is_dir = kind == FileType::Directory;
        if !is_dir && kind != FileType::RegularFile {
            // FIFOs, sockets, devices: not files a web server serves.
            return Err(FileError::NotFound);
        }
        let meta = FileMeta {
            len: u64::try_from(stat.st_size).unwrap_or(0),
            mtime_secs: u64::try_from(stat.st_mtime).unwrap_or(0),
            mtime_nanos: u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
            is_dir,
        };
        Ok((File::from(fd), meta))
    }

    /// The slow path: resolve with the file system, check the result is below the
    /// root, and open that symlink-free path (still beneath the root, where the kernel
    /// can check it).
    fn open_canonical(&self, rel: &str) -> Result<OwnedFd, FileError> {
        let real = self
            .path
            .join(rel)
            .canonicalize()
            .map_err(|e| open_error(io_errno(&e)))?;
        let Ok(inner) = real.strip_prefix(&self.path) else {
            return Err(FileError::Forbidden);
        };
        let inner: &Path = if inner.as_os_str().is_empty() {
            Path::new(".")
        } else {
            inner
        };
        let res = if self.openat2.load(Ordering::Relaxed) {
            rustix::fs::openat2(
                &self.dir,
                inner,
                OPEN_READ,
                Mode::empty(),
                BENEATH | ResolveFlags::NO_SYMLINKS,
            )
        } else {
            rustix::fs::open(&real, OPEN_READ | OFlags::NOFOLLOW, Mode::empty())
        };
        res.map_err(open_error)
    }

    /// Writes `uploads/NAME` atomically and without overwriting (see the module doc).
    /// Creates `uploads/` if it is missing. Every failure is logged at `error`.
    pub fn write_upload(&self, name: &str, body: &[u8]) -> Result<(), UploadError> {
        if !is_plain_name(name) {
            error!("upload name {name:?} refused: not a plain file name");
            return Err(UploadError::Other);
        }
        let dir = self.uploads_dir().map_err(|e| {
            error!(
                "upload {name}: cannot open {}/{UPLOADS}: {e}",
                self.path.display()
            );
            UploadError::Other
        })?;
        let tmp = format!("{TMP_PREFIX}{name}");
        let result = write_new(&dir, &tmp, name, body);
        if let Err((step, e)) = &result {
            let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), AtFlags::empty());
            if *e == Errno::EXIST && *step == "rename" {
                warn!("upload {name}: a file of that name exists; not overwritten, retried");
                return Err(UploadError::AlreadyExists {
                    reseed: crate::clock::seed(),
                });
            }
            error!(
                "upload {name}: {step} failed in {}/{UPLOADS}: {}",
                self.path.display(),
                io::Error::from(*e)
            );
            return Err(UploadError::Other);
        }
        Ok(())
    }

    /// Removes `uploads/.tmp-*` left by a crash; returns how many. A missing `uploads/`
    /// is not an error.
    pub fn clean_temporaries(&self) -> io::Result<usize> {
        let dir = self.path.join(UPLOADS);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(0)
            }
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            if entry
                .file_name()
                .as_bytes()
                .starts_with(TMP_PREFIX.as_bytes())
            {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// `uploads/` as a directory descriptor, created if missing (never a symlink).
    fn uploads_dir(&self) -> io::Result<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.dir, UPLOADS, flags, Mode::empty()) {
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(&self.dir, UPLOADS, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                Ok(rustix::fs::openat(
                    &self.dir,
                    UPLOADS,
                    flags,
                    Mode::empty(),
                )?)
            }
            other => Ok(other?),
        }
    }

    /// Test hook: behave as on a kernel without `openat2`.
    #[doc(hidden)]
    pub fn disable_openat2(&self) {
        self.openat2.store(false, Ordering::Relaxed);
    }
}

/// The steps of an upload, each naming itself on failure.
fn write_new(
    dir: &OwnedFd,
    tmp: &str,
    name: &str,
    body: &[u8],
) -> Result<(), (&'static str, Errno)> {
    let fd = rustix::fs::openat(
        dir,
        tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .map_err(|e| ("create", e))?;
    let mut file = File::from(fd);
    file.write_all(body).map_err(|e| ("write", io_errno(&e)))?;
    file.sync_all().map_err(|e| ("sync", io_errno(&e)))?;
    drop(file);
    match rustix::fs::renameat_with(dir, tmp, dir, name, RenameFlags::NOREPLACE) {
        Ok(()) => {}
        // File systems without RENAME_NOREPLACE: link (fails if the name exists), unlink.
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            rustix::fs::linkat(dir, tmp, dir, name, AtFlags::empty()).map_err(|e| ("rename", e))?;
            rustix::fs::unlinkat(dir, tmp, AtFlags::empty()).map_err(|e| ("unlink", e))?;
        }
        Err(e) => return Err(("rename", e)),
    }
    rustix::fs::fsync(dir.as_fd()).map_err(|e| ("directory sync", e))?;
    Ok(())
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && Path::new(OsStr::new(name)).file_name() == Some(OsStr::new(name))
}

fn io_errno(e: &io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::IO, Errno::from_raw_os_error)
}

fn open_error(e: Errno) -> FileError {
    match e {
        Errno::NOENT | Errno::NOTDIR | Errno::NAMETOOLONG => FileError::NotFound,
        Errno::ACCESS | Errno::PERM | Errno::XDEV | Errno::LOOP => FileError::Forbidden,
        _ => FileError::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::SafePath;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    struct Fixture {
        _base: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn fixture() -> Fixture {
        let base = tempfile::tempdir().expect("tempdir");
        let root = base.path().join("www");
        let outside = base.path().join("secret.txt");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(&outside, "SECRET").expect("write");
        std::fs::write(root.join("a.txt"), "hello").expect("write");
        std::fs::write(root.join("sub/b.html"), "<p>b</p>").expect("write");
        symlink("../secret.txt", root.join("rel-out.txt")).expect("symlink");
        symlink(&outside, root.join("abs-out.txt")).expect("symlink");
        symlink(base.path(), root.join("dir-out")).expect("symlink");
        symlink("a.txt", root.join("rel-in.txt")).expect("symlink");
        symlink(root.join("sub/b.html"), root.join("abs-in.html")).expect("symlink");
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

    fn check_all(root: &Root, fx: &Fixture) {
        assert_eq!(read(root, "/a.txt").as_deref(), Ok("hello"));
        assert_eq!(read(root, "/sub/b.html").as_deref(), Ok("<p>b</p>"));
        assert_eq!(read(root, "/rel-in.txt").as_deref(), Ok("hello"));
        assert_eq!(read(root, "/abs-in.html").as_deref(), Ok("<p>b</p>"));
        assert_eq!(read(root, "/rel-out.txt"), Err(FileError::Forbidden));
        assert_eq!(read(root, "/abs-out.txt"), Err(FileError::Forbidden));
        assert_eq!(read(root, "/dir-out/secret.txt"), Err(FileError::Forbidden));
        assert_eq!(read(root, "/missing.txt"), Err(FileError::NotFound));
        assert_eq!(read(root, "/a.txt/x"), Err(FileError::NotFound));
        let (_, meta) = root.open_file(&safe("/sub")).expect("dir opens");
        assert!(meta.is_dir);
        assert!(fx.outside.exists());
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
    fn a_root_that_is_not_a_directory_fails() {
        let fx = fixture();
        assert!(Root::new(fx.root.join("a.txt")).is_err());
        assert!(Root::new(fx.root.join("nope")).is_err());
    }

    #[test]
    fn uploads_are_atomic_and_never_overwrite() {
        let fx = fixture();
        let root = Root::new(&fx.root).expect("root");
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
        let names: Vec<_> = std::fs::read_dir(fx.root.join("uploads"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["x.json"]);
        for bad in ["", ".x.json", "a/b.json", "..", "a\\b"] {
            assert_eq!(
                root.write_upload(bad, b"{}"),
                Err(UploadError::Other),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_unusable_uploads_dir_is_an_error() {
        let fx = fixture();
        std::fs::write(fx.root.join("uploads"), "not a dir").expect("write");
        let root = Root::new(&fx.root).expect("root");
        assert_eq!(root.write_upload("y.json", b"{}"), Err(UploadError::Other));
        // A symlinked uploads/ is refused too (it could point anywhere).
        std::fs::remove_file(fx.root.join("uploads")).expect("rm");
        symlink(fx.root.join("sub"), fx.root.join("uploads")).expect("symlink");
        assert_eq!(root.write_upload("y.json", b"{}"), Err(UploadError::Other));
        assert!(!fx.root.join("sub/y.json").exists());
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
}
