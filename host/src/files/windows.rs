//! Windows: std only. Canonicalize, check the prefix, open, check again — with the
//! check-then-open window the [module doc](super) describes — and a never-overwriting
//! rename by hard link.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::windows::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use protocol::{FileError, FileMeta};

use super::{CREATE, RENAME, UPLOADS};

/// `CreateFileW` opens a directory only with this flag.
const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
/// Too many levels of symbolic links.
const ERROR_CANT_RESOLVE_FILENAME: i32 = 1921;

/// Nothing is held on Windows: the root is its canonical path.
#[derive(Debug)]
pub(super) struct RootDir;

impl RootDir {
    pub(super) fn open(path: &Path) -> io::Result<RootDir> {
        if !std::fs::metadata(path)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(RootDir)
    }

    pub(super) fn portable(&self) -> bool {
        true
    }

    pub(super) fn disable_openat2(&self) {}

    pub(super) fn force_portable(&self) {}

    pub(super) fn open_file(&self, root: &Path, rel: &str) -> Result<(File, FileMeta), FileError> {
        // `root` is a verbatim `\\?\` path, where `/` is no separator: push each name.
        let mut joined = root.to_path_buf();
        for name in rel.split('/') {
            if !plain_name(name) {
                return Err(FileError::Forbidden);
            }
            joined.push(name);
        }
        let real = joined.canonicalize().map_err(open_error)?;
        if !real.starts_with(root) {
            return Err(FileError::Forbidden);
        }
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
            .open(&real)
            .map_err(open_error)?;
        // The window: what was checked is a name, what was opened a handle. Checking the
        // name again narrows it (a swap that is still in place is caught).
        if real.canonicalize().map_err(open_error)? != real {
            return Err(FileError::Forbidden);
        }
        let meta = file.metadata().map_err(open_error)?;
        let is_dir = meta.is_dir();
        if !is_dir && !meta.is_file() {
            return Err(FileError::NotFound);
        }
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        let meta = FileMeta {
            len: meta.len(),
            mtime_secs: mtime.as_secs(),
            mtime_nanos: mtime.subsec_nanos(),
            is_dir,
        };
        Ok((file, meta))
    }

    /// The names in directory `rel` below the root (`""`: the root), checked the same
    /// way as a file (with the same window).
    pub(super) fn read_names(
        &self,
        root: &Path,
        rel: &str,
        mut each: impl FnMut(&str),
    ) -> Result<(), FileError> {
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            let (_, meta) = self.open_file(root, rel)?;
            if !meta.is_dir {
                return Err(FileError::NotFound);
            }
            let mut joined = root.to_path_buf();
            for name in rel.split('/') {
                joined.push(name);
            }
            joined.canonicalize().map_err(open_error)?
        };
        for entry in std::fs::read_dir(&dir).map_err(open_error)? {
            let entry = entry.map_err(open_error)?;
            if let Some(name) = entry.file_name().to_str() {
                each(name);
            }
        }
        Ok(())
    }

    /// Removes the temporaries in `uploads/` older than `min_age`; never through a
    /// symlinked or junctioned `uploads/`.
    pub(super) fn clean_temporaries(
        &self,
        root: &Path,
        min_age: std::time::Duration,
    ) -> io::Result<usize> {
        let dir = root.join(UPLOADS);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
                return Err(io::Error::other(
                    "uploads/ is not a directory (a symlink?): nothing removed",
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        }
        let mut removed = 0;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let old_enough = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age);
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(super::TMP_PREFIX)
                && entry.file_type().is_ok_and(|t| t.is_file())
                && old_enough
            {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// `uploads/`, created if missing; never a symlink or junction (checked, then used:
    /// the same window as opening).
    pub(super) fn uploads_dir(&self, root: &Path) -> io::Result<PathBuf> {
        let dir = root.join(UPLOADS);
        match std::fs::symlink_metadata(&dir) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
        // is_dir() is false for a symlink or junction.
        if std::fs::symlink_metadata(&dir)?.is_dir() {
            Ok(dir)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ))
        }
    }

    /// The steps of an upload, each naming itself on failure.
    pub(super) fn write_new(
        &self,
        dir: &Path,
        tmp: &str,
        name: &str,
        body: &[u8],
    ) -> Result<(), (&'static str, io::Error)> {
        let tmp = dir.join(tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| (CREATE, e))?;
        file.write_all(body).map_err(|e| ("write", e))?;
        file.sync_all().map_err(|e| ("sync", e))?;
        drop(file);
        // A hard link fails (ERROR_ALREADY_EXISTS) when the name exists.
        std::fs::hard_link(&tmp, dir.join(name)).map_err(|e| (RENAME, e))?;
        std::fs::remove_file(&tmp).map_err(|e| ("unlink", e))
    }
}

/// Removes the temporary of a failed upload (best effort).
pub(super) fn remove_temporary(dir: &Path, tmp: &str) {
    let _ = std::fs::remove_file(dir.join(tmp));
}

/// A name Windows opens as itself: no device names (`CON`, `COM1.txt`, …), no `:`
/// (alternate data streams), no trailing dot or space (stripped by Windows), no 8.3 short
/// names (`PROGRA~1`), no wildcard or control characters.
fn plain_name(name: &str) -> bool {
    const DEVICES: [&str; 7] = ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"];
    if name.is_empty()
        || name.ends_with(['.', ' '])
        || name.contains([':', '<', '>', '"', '|', '?', '*', '\\'])
        || name.chars().any(char::is_control)
    {
        return false;
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let upper = stem.to_ascii_uppercase();
    let numbered = |prefix: &str| {
        upper.strip_prefix(prefix).is_some_and(|n| {
            matches!(
                n,
                "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³"
            )
        })
    };
    if DEVICES.contains(&upper.as_str()) || numbered("COM") || numbered("LPT") {
        return false;
    }
    !stem
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'~' && w[1].is_ascii_digit())
}

fn open_error(e: io::Error) -> FileError {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::InvalidFilename => {
            FileError::NotFound
        }
        io::ErrorKind::PermissionDenied => FileError::Forbidden,
        _ if e.raw_os_error() == Some(ERROR_CANT_RESOLVE_FILENAME) => FileError::Forbidden,
        _ => FileError::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::plain_name;

    #[test]
    fn odd_windows_names_are_refused() {
        for name in ["a.txt", "index.html", "con-tact.txt", "COM10", "a~b.txt"] {
            assert!(plain_name(name), "{name}");
        }
        for name in [
            "CON",
            "con.txt",
            "NUL ",
            "COM1",
            "lpt¹.x",
            "a.txt:stream",
            "a.",
            "a ",
            "PROGRA~1",
            "",
            "a*b",
            "CONIN$",
        ] {
            assert!(!plain_name(name), "{name}");
        }
    }
}

impl RootDir {
    /// A directory below the root (`""`: the root itself), by path: checked to be a real
    /// directory below the root (the same check-then-use window as opening).
    pub(super) fn open_dir_beneath(
        &self,
        root: &Path,
        rel: &str,
    ) -> Result<PathBuf, protocol::UploadError> {
        if rel.is_empty() {
            return Ok(root.to_path_buf());
        }
        match self.open_file(root, rel) {
            Ok((_, meta)) if meta.is_dir => Ok(root.join(rel)),
            _ => Err(protocol::UploadError::NoParent),
        }
    }

    pub(super) fn create_temporary(&self, dir: &Path, tmp: &str) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(tmp))
    }

    pub(super) fn rename_upload(
        &self,
        dir: &Path,
        tmp: &str,
        name: &str,
        replace: bool,
    ) -> io::Result<()> {
        if replace {
            return std::fs::rename(dir.join(tmp), dir.join(name));
        }
        // A hard link fails (ERROR_ALREADY_EXISTS) when the name exists.
        std::fs::hard_link(dir.join(tmp), dir.join(name))?;
        std::fs::remove_file(dir.join(tmp))
    }

    pub(super) fn sync_dir(&self, _dir: &Path, _rel: &str) {}

    pub(super) fn remove_file(&self, dir: &Path, name: &str) -> Result<(), FileError> {
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(FileError::NotFound),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(FileError::Forbidden),
            Err(_) => Err(FileError::Other),
        }
    }
}
