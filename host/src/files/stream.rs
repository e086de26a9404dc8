//! Streamed uploads below the root (`PUT`, the files of a form) and deleting a file.
//!
//! An upload begins with a temporary (`.tmp-RANDOM-NAME`, created exclusively, locked
//! on Unix so that the start-up clean-up of another process leaves it alone) in the
//! directory of its target, opened beneath the root the same safe way as a file, so
//! that the final rename is atomic and stays below the root. Chunks are appended as they
//! come; the commit syncs the file, renames it (never over an existing file, unless the
//! request's precondition allowed the replace), and syncs the directory. An abort
//! removes the temporary. A full disk or quota is [`UploadError::NoSpace`] (507).
//!
//! A temporary is a hidden name: the core never serves or lists it, so nothing of an
//! upload is visible before its commit, and a crash leaves at most a hidden temporary.

use std::fs::File;
use std::io::{self, Write};

use log::error;
use protocol::{FileError, FileMeta, SafePath, UploadError, UploadTarget};

use super::{is_plain_name, Root, TMP_PREFIX, UPLOADS};

/// A streamed upload in progress: its temporary, and the directory it is in.
pub struct UploadFile {
    file: File,
    #[cfg(unix)]
    dir: std::os::fd::OwnedFd,
    #[cfg(windows)]
    dir: std::path::PathBuf,
    tmp: String,
    /// The root-relative path of the directory (for logs and the cache).
    dir_rel: String,
    /// Renamed to its name: nothing to remove when dropped.
    done: bool,
    /// Bytes written, and how far the write-behind has started writeback.
    #[cfg(target_os = "linux")]
    written: u64,
    #[cfg(target_os = "linux")]
    flushed: u64,
}

/// Linux: every this many bytes, writeback of what was written is started at once
/// (`sync_file_range`), and the range [`WAIT_BEHIND`] bytes back is waited for: the disk
/// works while the body arrives, the final `fsync` finds little left to write, and one
/// upload never holds more than `WAIT_BEHIND` in dirty pages (a slow disk slows the
/// upload, and the core's back-pressure slows the client).
#[cfg(target_os = "linux")]
const WRITE_BEHIND: u64 = 8 << 20;

/// Linux: how far behind the body the write-behind waits for the disk. Far enough that
/// a disk about as fast as the network seldom makes the upload wait (it did at one
/// range, 8 MiB: the upload then went at the disk's pace with no overlap), near enough
/// to bound the dirty pages of one upload.
#[cfg(target_os = "linux")]
const WAIT_BEHIND: u64 = 64 << 20;

impl Drop for UploadFile {
    /// An upload dropped before its commit (aborted, failed, or its connection gone)
    /// leaves nothing: its temporary is removed.
    fn drop(&mut self) {
        if !self.done {
            remove(&self.dir, &self.tmp);
        }
    }
}

#[cfg(unix)]
fn remove(dir: &std::os::fd::OwnedFd, tmp: &str) {
    let _ = rustix::fs::unlinkat(dir, tmp, rustix::fs::AtFlags::empty());
}

#[cfg(windows)]
fn remove(dir: &std::path::Path, tmp: &str) {
    let _ = std::fs::remove_file(dir.join(tmp));
}

impl std::fmt::Debug for UploadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UploadFile({}/{})", self.dir_rel, self.tmp)
    }
}

/// The directory (relative to the root) and the file name of a target.
pub fn split_target(target: &UploadTarget) -> (String, &str) {
    match target {
        UploadTarget::Path(p) => match p.as_str().rsplit_once('/') {
            Some((dir, name)) => (dir.to_string(), name),
            None => (String::new(), p.as_str()),
        },
        UploadTarget::Uploads(name) => (UPLOADS.to_string(), name.as_str()),
    }
}

/// What a failed write or sync means.
fn write_error(e: &io::Error) -> UploadError {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => UploadError::NoSpace,
        _ => UploadError::Other,
    }
}

impl Root {
    /// Begins a streamed upload to `target`: a temporary in its directory (`uploads/` is
    /// made if missing; any other directory must exist: [`UploadError::NoParent`]).
    pub fn begin_upload(&self, target: &UploadTarget) -> Result<UploadFile, UploadError> {
        let (dir_rel, name) = split_target(target);
        if !is_plain_name(name) {
            error!("upload to {dir_rel:?}/{name:?} refused: not a plain file name");
            return Err(UploadError::Other);
        }
        let dir = match target {
            UploadTarget::Uploads(_) => self.sys.uploads_dir(self.path()).map_err(|e| {
                error!("cannot open {}/{UPLOADS}: {e}", self.path().display());
                UploadError::Other
            })?,
            UploadTarget::Path(_) => self.sys.open_dir_beneath(self.path(), &dir_rel)?,
        };
        let tmp = format!("{TMP_PREFIX}{:016x}-{name}", random_u64());
        let file = self.sys.create_temporary(&dir, &tmp).map_err(|e| {
            error!("upload to {dir_rel}/{name}: cannot create the temporary: {e}");
            write_error(&e)
        })?;
        Ok(UploadFile {
            file,
            dir,
            tmp,
            dir_rel,
            done: false,
            #[cfg(target_os = "linux")]
            written: 0,
            #[cfg(target_os = "linux")]
            flushed: 0,
        })
    }

    /// Deletes the file at `path` (not a directory).
    pub fn delete_file(&self, path: &SafePath) -> Result<(), FileError> {
        let (dir_rel, name) = match path.as_str().rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => ("", path.as_str()),
        };
        let dir = self
            .sys
            .open_dir_beneath(self.path(), dir_rel)
            .map_err(|_| FileError::NotFound)?;
        self.sys.remove_file(&dir, name)
    }
}

impl UploadFile {
    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), UploadError> {
        self.file.write_all(bytes).map_err(|e| {
            if write_error(&e) == UploadError::NoSpace {
                error!("upload into {}/: the disk is full ({e})", self.dir_rel);
            } else {
                error!("upload into {}/: write failed: {e}", self.dir_rel);
            }
            write_error(&e)
        })?;
        #[cfg(target_os = "linux")]
        {
            self.written += bytes.len() as u64;
            if self.written - self.flushed >= WRITE_BEHIND {
                self.write_behind();
            }
        }
        Ok(())
    }

    /// Starts writeback of what was written since the last call, and waits for the
    /// range [`WAIT_BEHIND`] back (see [`WRITE_BEHIND`]). Advisory: an error here is found again by
    /// the commit's `fsync`.
    #[cfg(target_os = "linux")]
    fn write_behind(&mut self) {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        let (from, to) = (self.flushed, self.written);
        // SAFETY: plain system calls on a descriptor this upload owns, with ranges in
        // bytes; they read no memory of ours.
        unsafe {
            libc::sync_file_range(
                fd,
                from as libc::off64_t,
                (to - from) as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
            if from >= WAIT_BEHIND {
                let earlier = from - WAIT_BEHIND;
                libc::sync_file_range(
                    fd,
                    earlier as libc::off64_t,
                    WRITE_BEHIND as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE
                        | libc::SYNC_FILE_RANGE_WRITE
                        | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                );
            }
        }
        self.flushed = to;
    }

    /// Syncs the file and names it `name` in its directory: never over an existing file
    /// unless `replace`. A name that is taken gives the upload back (to try another).
    pub fn commit(
        mut self,
        root: &Root,
        name: &str,
        replace: bool,
    ) -> Result<FileMeta, (UploadError, Option<UploadFile>)> {
        if !is_plain_name(name) {
            return Err((UploadError::Other, None));
        }
        if let Err(e) = self.file.sync_all() {
            error!("upload into {}/: sync failed: {e}", self.dir_rel);
            return Err((write_error(&e), None));
        }
        match root.sys.rename_upload(&self.dir, &self.tmp, name, replace) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err((
                    UploadError::AlreadyExists {
                        reseed: crate::clock::seed(),
                    },
                    Some(self),
                ))
            }
            Err(e) => {
                error!(
                    "upload into {}/: rename to {name} failed: {e}",
                    self.dir_rel
                );
                return Err((UploadError::Other, None));
            }
        }
        self.done = true;
        root.sys.sync_dir(&self.dir, &self.dir_rel);
        let meta = self
            .file
            .metadata()
            .map_err(|_| (UploadError::Other, None))?;
        Ok(meta_of(&meta))
    }

    /// The root-relative path the upload gets as `name` (for the cache).
    pub fn path_of(&self, name: &str) -> String {
        if self.dir_rel.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.dir_rel)
        }
    }
}

fn meta_of(m: &std::fs::Metadata) -> FileMeta {
    let (secs, nanos) = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or((0, 0), |d| (d.as_secs(), d.subsec_nanos()));
    FileMeta {
        len: m.len(),
        mtime_secs: secs,
        mtime_nanos: nanos,
        is_dir: false,
    }
}

/// A random number for a temporary's name (std's per-process random keys: no system
/// call).
fn random_u64() -> u64 {
    let seed = crate::clock::seed();
    u64::from_le_bytes(seed[..8].try_into().unwrap_or([0; 8]))
}
