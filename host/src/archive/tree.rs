//! What the archive reads and how it tells a change: the [`Tree`] door (the web root's),
//! the [`Stamp`] of a file taken before and after reading it, which types are deflated.

use std::fs::File;
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use protocol::{DirEntry, FileError, FileMeta, SafePath};

use crate::files::Root;
use crate::webroot::WebRoot;

/// What the archive reads: the web root's door. `open(&SafePath::root())` opens the root
/// directory itself (its handle tells a symlink loop back to it; an error there only
/// loses that).
pub(crate) trait Tree: Send + Sync {
    /// As [`Root::list_dir`]: the visible entries of `dir` (symlinks leaving the root left
    /// out), and how many names past [`protocol::MAX_LISTED`] were not read.
    fn list(&self, dir: &SafePath) -> Result<(Vec<DirEntry>, u64), FileError>;
    /// As [`Root::open_file`]: a regular file or a directory below the root, never
    /// through a symlink that leaves it.
    fn open(&self, path: &SafePath) -> Result<(File, FileMeta), FileError>;
}

impl Tree for Root {
    fn list(&self, dir: &SafePath) -> Result<(Vec<DirEntry>, u64), FileError> {
        self.list_dir(dir)
    }

    fn open(&self, path: &SafePath) -> Result<(File, FileMeta), FileError> {
        if !path.as_str().is_empty() {
            return self.open_file(path);
        }
        // The root itself (its canonical path): only its identity is wanted.
        let file = File::open(self.path()).map_err(|_| FileError::Other)?;
        let meta = file.metadata().map_err(|_| FileError::Other)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        Ok((
            file,
            FileMeta {
                len: 0,
                mtime_secs: mtime.as_secs(),
                mtime_nanos: mtime.subsec_nanos(),
                is_dir: meta.is_dir(),
            },
        ))
    }
}

impl Tree for WebRoot {
    fn list(&self, dir: &SafePath) -> Result<(Vec<DirEntry>, u64), FileError> {
        self.root().list(dir)
    }

    fn open(&self, path: &SafePath) -> Result<(File, FileMeta), FileError> {
        self.root().open(path)
    }
}

/// What tells that a file changed: its size, modification time and (Unix) inode change
/// time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    changed: (i64, i64),
}

impl Stamp {
    pub(super) fn of(file: &File) -> io::Result<Stamp> {
        let meta = file.metadata()?;
        Ok(Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            changed: {
                use std::os::unix::fs::MetadataExt;
                (meta.ctime(), meta.ctime_nsec())
            },
        })
    }

    pub(super) fn mtime_secs(&self) -> u64 {
        self.modified
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs())
    }
}

/// The identity of an open directory, to tell a loop: device and inode on Unix.
#[cfg(unix)]
pub(super) fn dir_id(file: &File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
pub(super) fn dir_id(_: &File) -> Option<(u64, u64)> {
    None
}

/// Whether a file is worth deflating, by its extension (text and text-like formats;
/// images, archives, media and anything unknown are stored).
pub(super) fn compressible(name: &str) -> bool {
    let Some((_, ext)) = name.rsplit_once('.') else {
        return false;
    };
    const TEXT: &[&str] = &[
        "html",
        "htm",
        "xhtml",
        "css",
        "js",
        "mjs",
        "cjs",
        "tsx",
        "jsx",
        "json",
        "map",
        "webmanifest",
        "svg",
        "xml",
        "xsl",
        "rss",
        "atom",
        "txt",
        "text",
        "csv",
        "tsv",
        "md",
        "markdown",
        "rst",
        "wasm",
        "yaml",
        "yml",
        "toml",
        "ini",
        "cfg",
        "conf",
        "log",
        "sql",
        "tex",
        "rtf",
        "ps",
        "eps",
        "ics",
        "vcf",
        "srt",
        "vtt",
        "rs",
        "c",
        "h",
        "cc",
        "cpp",
        "hpp",
        "py",
        "rb",
        "go",
        "java",
        "kt",
        "swift",
        "sh",
        "bat",
        "ps1",
        "pl",
        "php",
        "lua",
        "bmp",
        "tar",
        "pdb",
        "ttf",
        "otf",
    ];
    TEXT.iter().any(|t| t.eq_ignore_ascii_case(ext))
}

pub(super) fn io_error(e: FileError) -> io::Error {
    match e {
        FileError::NotFound => io::ErrorKind::NotFound.into(),
        FileError::Forbidden => io::ErrorKind::PermissionDenied.into(),
        FileError::Other | FileError::Unavailable => io::Error::other("cannot list the directory"),
    }
}

/// The names of a listing, in byte order.
pub(super) fn sorted_names(entries: Vec<DirEntry>) -> std::vec::IntoIter<String> {
    let mut names: Vec<String> = entries.into_iter().map(|e| e.name).collect();
    names.sort_unstable();
    names.into_iter()
}
