//! Unix: the root directory descriptor, opening below it (the Linux fast path or the
//! [walk](super::walk)), and uploads with a never-overwriting rename (see the
//! [module doc](super)).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicBool, Ordering};

use protocol::{FileError, FileMeta};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

#[cfg(target_os = "linux")]
use super::linux;
use super::{walk, CREATE, RENAME, UPLOADS};

/// A directory descriptor used only as the base of `*at` calls: `O_PATH` on Linux (no
/// read permission needed), a plain read-only directory open elsewhere.
#[cfg(target_os = "linux")]
pub(crate) const DIR_FLAGS: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);
#[cfg(not(target_os = "linux"))]
pub(crate) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// How a file below the root is opened.
pub(super) const OPEN_READ: OFlags = OFlags::RDONLY
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY)
    // A FIFO below the root must not block the worker in open().
    .union(OFlags::NONBLOCK);

/// Opens the directory `path` as a base for `*at` calls.
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    rustix::fs::open(path, DIR_FLAGS, Mode::empty()).map_err(|e| match e {
        Errno::NOTDIR => io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        e => io::Error::from(e),
    })
}

/// The root directory descriptor, and (on Linux) which paths to take.
#[derive(Debug)]
pub(super) struct RootDir {
    dir: OwnedFd,
    /// `openat2` works here (probed once, and never with `PORTABLE_IO=1`).
    #[cfg(target_os = "linux")]
    openat2: AtomicBool,
    /// Take the portable paths (`PORTABLE_IO=1`, or the test hook).
    #[cfg(target_os = "linux")]
    portable: AtomicBool,
}

impl RootDir {
    pub(super) fn open(path: &Path) -> io::Result<RootDir> {
        let dir = open_dir(path)?;
        #[cfg(target_os = "linux")]
        {
            let portable = crate::portable_io();
            let openat2 = !portable && linux::probe_openat2(&dir);
            Ok(RootDir {
                dir,
                openat2: AtomicBool::new(openat2),
                portable: AtomicBool::new(portable),
            })
        }
        #[cfg(not(target_os = "linux"))]
        Ok(RootDir { dir })
    }

    pub(super) fn portable(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.portable.load(Ordering::Relaxed);
        #[cfg(not(target_os = "linux"))]
        true
    }

    pub(super) fn disable_openat2(&self) {
        #[cfg(target_os = "linux")]
        self.openat2.store(false, Ordering::Relaxed);
    }

    pub(super) fn force_portable(&self) {
        #[cfg(target_os = "linux")]
        self.portable.store(true, Ordering::Relaxed);
    }

    pub(super) fn open_file(&self, root: &Path, rel: &str) -> Result<(File, FileMeta), FileError> {
        let fd = self.open_fd(root, rel)?;
        let stat = rustix::fs::fstat(&fd).map_err(open_error)?;
        Ok((File::from(fd), meta_of(&stat)?))
    }

    /// The names in directory `rel` below the root (`""`: the root), read through a
    /// descriptor opened the same safe way as a file; not `.` or `..`, UTF-8 only.
    pub(super) fn read_names(
        &self,
        root: &Path,
        rel: &str,
        mut each: impl FnMut(&str),
    ) -> Result<(), FileError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = if rel.is_empty() {
            rustix::fs::openat(&self.dir, ".", flags, Mode::empty()).map_err(open_error)?
        } else {
            self.open_fd(root, rel)?
        };
        if !meta_of(&rustix::fs::fstat(&fd).map_err(open_error)?)?.is_dir {
            return Err(FileError::NotFound);
        }
        let dir = rustix::fs::Dir::read_from(&fd).map_err(open_error)?;
        for entry in dir {
            let entry = entry.map_err(open_error)?;
            if let Ok(name) = entry.file_name().to_str() {
                if name != "." && name != ".." {
                    each(name);
                }
            }
        }
        Ok(())
    }

    fn open_fd(&self, root: &Path, rel: &str) -> Result<OwnedFd, FileError> {
        #[cfg(target_os = "linux")]
        if !self.portable() && self.openat2.load(Ordering::Relaxed) {
            match linux::open(&self.dir, rel) {
                Ok(fd) => return Ok(fd),
                // An absolute or escaping symlink, or openat2 kept saying EAGAIN (renames
                // elsewhere on the system while it resolved `..`): the walk decides.
                Err(linux::Fallback::Walk) => {}
                Err(linux::Fallback::Refused(e)) => return Err(e),
            }
        }
        // The portable path, and Linux's when openat2 is missing or busy: the walk never
        // lets the kernel resolve a symlink or `..`, so no check-then-open window.
        walk::open_beneath(self.dir.as_fd(), root, rel, OPEN_READ)
    }

    /// `uploads/` as a directory descriptor, created if missing (never a symlink).
    pub(super) fn uploads_dir(&self, _root: &Path) -> io::Result<OwnedFd> {
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

    /// The steps of an upload, each naming itself on failure.
    pub(super) fn write_new(
        &self,
        dir: &OwnedFd,
        tmp: &str,
        name: &str,
        body: &[u8],
    ) -> Result<(), (&'static str, io::Error)> {
        let fd = rustix::fs::openat(
            dir,
            tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| (CREATE, e.into()))?;
        // Held until the file is renamed and closed: the start-up clean-up of another
        // server process on the same root leaves a locked temporary alone.
        let _ = rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive);
        let mut file = File::from(fd);
        file.write_all(body).map_err(|e| ("write", e))?;
        file.sync_all().map_err(|e| ("sync", e))?;
        drop(file);
        self.rename_noreplace(dir, tmp, name)
            .map_err(|(step, e)| (step, e.into()))?;
        // The upload is saved under its name now: a failed directory sync must not make
        // the client post it again (a second copy). It is logged, and the 201 goes out.
        if let Err(e) = rustix::fs::fsync(dir.as_fd()) {
            log::error!("upload {name}: saved, but syncing uploads/ failed: {e}");
        }
        Ok(())
    }

    /// Removes the temporaries in `uploads/` that no live process is writing: each is
    /// locked by its writer until renamed, so one whose exclusive lock can be taken is a
    /// crash's leftover (a writer dies, its lock goes). Through a descriptor of
    /// `uploads/` opened without following a symlink; returns how many.
    pub(super) fn clean_temporaries(&self) -> io::Result<usize> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let dir = match rustix::fs::openat(&self.dir, UPLOADS, flags, Mode::empty()) {
            Ok(dir) => dir,
            Err(Errno::NOENT) => return Ok(0),
            Err(Errno::LOOP | Errno::NOTDIR | Errno::MLINK) => {
                return Err(io::Error::other(
                    "uploads/ is not a directory (a symlink?): nothing removed",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let mut removed = 0;
        let names: Vec<std::ffi::CString> = rustix::fs::Dir::read_from(&dir)?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.to_bytes().starts_with(super::TMP_PREFIX.as_bytes()))
            .collect();
        let open = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        for name in names {
            let Ok(fd) = rustix::fs::openat(&dir, name.as_c_str(), open, Mode::empty()) else {
                continue;
            };
            let is_file = rustix::fs::fstat(&fd)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile);
            let unused =
                rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                    .is_ok();
            if is_file && unused {
                match rustix::fs::unlinkat(&dir, name.as_c_str(), AtFlags::empty()) {
                    Ok(()) => removed += 1,
                    // Renamed by its writer meanwhile: not a temporary any more.
                    Err(Errno::NOENT) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(removed)
    }

    /// A directory below the root (`""`: the root itself) for `*at` calls that create,
    /// rename and sync: opened the same safe way as a file.
    pub(super) fn open_dir_beneath(
        &self,
        root: &Path,
        rel: &str,
    ) -> Result<OwnedFd, protocol::UploadError> {
        let dir_only = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        if rel.is_empty() {
            return rustix::fs::openat(&self.dir, ".", dir_only, Mode::empty())
                .map_err(|_| protocol::UploadError::Other);
        }
        let fd = self
            .open_fd(root, rel)
            .map_err(|_| protocol::UploadError::NoParent)?;
        match rustix::fs::fstat(&fd) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => Ok(fd),
            _ => Err(protocol::UploadError::NoParent),
        }
    }

    /// A new temporary in `dir`, created exclusively and locked until it is renamed.
    pub(super) fn create_temporary(&self, dir: &OwnedFd, tmp: &str) -> io::Result<File> {
        let fd = rustix::fs::openat(
            dir,
            tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )?;
        let _ = rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive);
        Ok(File::from(fd))
    }

    /// Gives the temporary `tmp` its name: never over an existing file unless `replace`
    /// (an `AlreadyExists` error then).
    pub(super) fn rename_upload(
        &self,
        dir: &OwnedFd,
        tmp: &str,
        name: &str,
        replace: bool,
    ) -> io::Result<()> {
        if replace {
            return Ok(rustix::fs::renameat(dir, tmp, dir, name)?);
        }
        self.rename_noreplace(dir, tmp, name)
            .map_err(|(_, e)| io::Error::from(e))
    }

    /// Syncs a directory after a rename in it (a failure is logged: the file is saved).
    pub(super) fn sync_dir(&self, dir: &OwnedFd, rel: &str) {
        if let Err(e) = rustix::fs::fsync(dir) {
            log::error!("an upload was saved in {rel}/, but syncing the directory failed: {e}");
        }
    }

    /// Removes the file `name` in `dir` (never a directory).
    pub(super) fn remove_file(&self, dir: &OwnedFd, name: &str) -> Result<(), FileError> {
        match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) => Ok(()),
            Err(Errno::NOENT) => Err(FileError::NotFound),
            Err(Errno::ISDIR | Errno::PERM | Errno::ACCESS) => Err(FileError::Forbidden),
            Err(_) => Err(FileError::Other),
        }
    }

    /// Renames `tmp` to `name` in `dir`, failing with `EEXIST` if `name` exists.
    fn rename_noreplace(
        &self,
        dir: &OwnedFd,
        tmp: &str,
        name: &str,
    ) -> Result<(), (&'static str, Errno)> {
        #[cfg(target_os = "linux")]
        if !self.portable() {
            use rustix::fs::RenameFlags;
            match rustix::fs::renameat_with(dir, tmp, dir, name, RenameFlags::NOREPLACE) {
                Ok(()) => return Ok(()),
                // File systems without RENAME_NOREPLACE: link + unlink below.
                Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
                Err(e) => return Err((RENAME, e)),
            }
        }
        // renameatx_np(RENAME_EXCL) on macOS and the other Apple systems.
        #[cfg(target_vendor = "apple")]
        {
            use rustix::fs::RenameFlags;
            match rustix::fs::renameat_with(dir, tmp, dir, name, RenameFlags::NOREPLACE) {
                Ok(()) => return Ok(()),
                // File systems without RENAME_EXCL: link + unlink below.
                Err(Errno::NOTSUP | Errno::OPNOTSUPP | Errno::INVAL | Errno::NOSYS) => {}
                Err(e) => return Err((RENAME, e)),
            }
        }
        link_then_unlink(dir, tmp, name)
    }
}

/// The portable never-overwriting rename: a hard link fails with `EEXIST` if the name
/// exists; then the temporary name goes.
pub(super) fn link_then_unlink(
    dir: &OwnedFd,
    tmp: &str,
    name: &str,
) -> Result<(), (&'static str, Errno)> {
    rustix::fs::linkat(dir, tmp, dir, name, AtFlags::empty()).map_err(|e| (RENAME, e))?;
    rustix::fs::unlinkat(dir, tmp, AtFlags::empty()).map_err(|e| ("unlink", e))
}

/// Removes the temporary of a failed upload (best effort).
pub(super) fn remove_temporary(dir: &OwnedFd, tmp: &str) {
    let _ = rustix::fs::unlinkat(dir, tmp, AtFlags::empty());
}

/// What the core needs to know of an opened file; only regular files and directories are
/// served (FIFOs, sockets, devices are "not found").
fn meta_of(stat: &Stat) -> Result<FileMeta, FileError> {
    let kind = FileType::from_raw_mode(stat.st_mode);
    let is_dir = kind == FileType::Directory;
    if !is_dir && kind != FileType::RegularFile {
        return Err(FileError::NotFound);
    }
    Ok(FileMeta {
        len: u64::try_from(stat.st_size).unwrap_or(0),
        mtime_secs: u64::try_from(stat.st_mtime).unwrap_or(0),
        mtime_nanos: u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
        is_dir,
    })
}

pub(super) fn open_error(e: Errno) -> FileError {
    match e {
        Errno::NOENT | Errno::NOTDIR | Errno::NAMETOOLONG => FileError::NotFound,
        // EMLINK: FreeBSD's answer to O_NOFOLLOW on a symlink.
        Errno::ACCESS | Errno::PERM | Errno::XDEV | Errno::LOOP | Errno::MLINK => {
            FileError::Forbidden
        }
        _ => FileError::Other,
    }
}
