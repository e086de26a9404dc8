//! The world outside the connection, as the simulated runtime sees it: a file system,
//! directory listings and an upload store supplied by the caller ([`World`]), the
//! answers it gives ([`Answer`]), and a ready-made world of tables ([`Tables`]).

use std::collections::{BTreeMap, VecDeque};

use crate::{
    Credentials, DirEntry, FileError, FileMeta, Input, Listing, UploadError, UploadTarget,
};

/// What a directory read gave: the entries and how many more were not read, or why it
/// failed. Owned, so that a world may make it up on the spot.
pub type DirAnswer = Result<(Vec<DirEntry>, u64), FileError>;

/// The file system, the directories and the upload store the simulated runtime works
/// against: the driver calls one method for each action it executes and hands the
/// result to the connection. Implement it with tables (a test, [`Tables`]), a script (a
/// fuzz target decoding its input), or a constant answer (a benchmark).
pub trait World {
    /// Opens the file at `path` (a [`crate::SafePath`] below the root) for
    /// [`crate::Action::OpenFile`].
    fn open(&mut self, path: &str) -> Result<FileMeta, FileError>;
    /// Reads the directory `dir` (empty: the root) for [`crate::Action::ListDir`].
    fn list(&mut self, dir: &str) -> DirAnswer;
    /// Stores an upload as `uploads/NAME` for [`crate::Action::WriteUpload`].
    fn store(&mut self, name: &str, body: &[u8]) -> Result<(), UploadError>;
    /// Begins a streamed upload to `target` ([`crate::Action::BeginUpload`]).
    fn begin(&mut self, target: &UploadTarget) -> Result<(), UploadError> {
        let _ = target;
        Ok(())
    }
    /// Appends a chunk to the upload begun ([`crate::Action::WriteChunk`]).
    fn chunk(&mut self, bytes: &[u8]) -> Result<(), UploadError> {
        let _ = bytes;
        Ok(())
    }
    /// Commits the upload begun as `target` ([`crate::Action::CommitUpload`]).
    fn commit(&mut self, target: &UploadTarget, replace: bool) -> Result<FileMeta, UploadError> {
        let _ = (target, replace);
        Ok(FileMeta::default())
    }
    /// Drops the upload begun ([`crate::Action::AbortUpload`]).
    fn abort(&mut self) {}
    /// Deletes a file ([`crate::Action::DeleteFile`]).
    fn delete(&mut self, path: &str) -> Result<(), FileError> {
        let _ = path;
        Ok(())
    }
    /// Compresses the opened file ([`crate::Action::Compress`]): by default, to 100
    /// bytes.
    fn compress(&mut self, coding: crate::Coding, stream: bool) -> crate::Compressed {
        let _ = (coding, stream);
        crate::Compressed::Len(100)
    }
    /// Begins the archive of a directory ([`crate::Action::Archive`]): by default, a
    /// directory that is in the world's `dirs` (or the root) can be archived.
    fn archive(&mut self, dir: &str, user: Option<&str>) -> Result<(), FileError> {
        let _ = (dir, user);
        Ok(())
    }
    /// Verifies a password for [`crate::Action::Verify`] (by default: never right).
    fn verify(&mut self, credentials: &Credentials) -> bool {
        let _ = credentials;
        false
    }
}

/// What the runtime hands back for an action it owed (see [`super::Driver::answer`]):
/// owned, so that it outlives the world that gave it; [`Answer::input`] borrows it as
/// the [`Input`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    File(Result<FileMeta, FileError>),
    List(DirAnswer),
    Upload(Result<(), UploadError>),
    Verified(bool),
    Begun(Result<(), UploadError>),
    ChunkWritten(Result<(), UploadError>),
    Committed(Result<FileMeta, UploadError>),
    Deleted(Result<(), FileError>),
    Compressed(crate::Compressed),
    Archived(Result<(), FileError>),
    Written,
}

impl Answer {
    /// The input that reports this answer.
    pub fn input(&self) -> Input<'_> {
        match self {
            Answer::File(r) => Input::FileOpened(*r),
            Answer::List(r) => dir_listed(r),
            Answer::Upload(r) => Input::UploadWritten(*r),
            Answer::Verified(ok) => Input::Verified(*ok),
            Answer::Begun(r) => Input::UploadBegun(*r),
            Answer::ChunkWritten(r) => Input::ChunkWritten(*r),
            Answer::Committed(r) => Input::UploadCommitted(*r),
            Answer::Deleted(r) => Input::Deleted(*r),
            Answer::Compressed(r) => Input::Compressed(*r),
            Answer::Archived(r) => Input::Archived(*r),
            Answer::Written => Input::Written,
        }
    }
}

/// The [`Input::DirListed`] for a directory read.
pub fn dir_listed(answer: &DirAnswer) -> Input<'_> {
    Input::DirListed(match answer {
        Ok((entries, unread)) => Ok(Listing {
            entries,
            unread: *unread,
        }),
        Err(e) => Err(*e),
    })
}

/// A world of tables: files and directories by path (a path not in the table is
/// `NotFound`), and upload results in order (`upload_queue` first, then
/// `upload_result`). Every upload is kept in `uploads`, whatever its result.
#[derive(Clone, Debug)]
pub struct Tables {
    pub files: BTreeMap<String, Result<FileMeta, FileError>>,
    /// Directories a `ListDir` reads: their entries, and how many more were not read.
    pub dirs: BTreeMap<String, DirAnswer>,
    pub upload_result: Result<(), UploadError>,
    /// Results for the next uploads, in order, before `upload_result` applies.
    pub upload_queue: VecDeque<Result<(), UploadError>>,
    /// Every upload the connection asked for: its name and body.
    pub uploads: Vec<(String, Vec<u8>)>,
    /// The right password of each user (a user not here, or whose credentials come
    /// without a hash, fails), and every verification asked for.
    pub passwords: BTreeMap<String, String>,
    pub verified: Vec<String>,
    /// Streamed uploads: the one begun (its target and bytes so far), the files
    /// committed (by path below the root: `uploads/NAME` for a form's), the aborted ones,
    /// the deleted ones, and results to give instead of success (in order).
    pub streaming: Option<(UploadTarget, Vec<u8>)>,
    pub committed: BTreeMap<String, Vec<u8>>,
    pub aborted: u32,
    pub deleted: Vec<String>,
    pub stream_results: VecDeque<Result<(), UploadError>>,
    /// What a `Compress` gives (by default a length of 100), and every coding asked for.
    pub compressed: crate::Compressed,
    pub compressions: Vec<crate::Coding>,
    /// Every archive asked for: the directory and the user.
    pub archived: Vec<(String, Option<String>)>,
}

impl Default for Tables {
    fn default() -> Self {
        Tables {
            files: BTreeMap::new(),
            dirs: BTreeMap::new(),
            upload_result: Ok(()),
            upload_queue: VecDeque::new(),
            uploads: Vec::new(),
            passwords: BTreeMap::new(),
            verified: Vec::new(),
            streaming: None,
            committed: BTreeMap::new(),
            aborted: 0,
            deleted: Vec::new(),
            stream_results: VecDeque::new(),
            compressed: crate::Compressed::Len(100),
            compressions: Vec::new(),
            archived: Vec::new(),
        }
    }
}

impl Tables {
    /// A file of `len` bytes modified at `mtime_secs`.
    pub fn file(len: u64, mtime_secs: u64) -> Result<FileMeta, FileError> {
        Ok(FileMeta {
            len,
            mtime_secs,
            mtime_nanos: 0,
            is_dir: false,
        })
    }

    /// A directory modified at `mtime_secs`.
    pub fn dir(mtime_secs: u64) -> Result<FileMeta, FileError> {
        Ok(FileMeta {
            len: 4096,
            mtime_secs,
            mtime_nanos: 0,
            is_dir: true,
        })
    }
}

impl World for Tables {
    fn open(&mut self, path: &str) -> Result<FileMeta, FileError> {
        self.files
            .get(path)
            .copied()
            .unwrap_or(Err(FileError::NotFound))
    }

    fn list(&mut self, dir: &str) -> DirAnswer {
        self.dirs
            .get(dir)
            .cloned()
            .unwrap_or(Err(FileError::NotFound))
    }

    fn store(&mut self, name: &str, body: &[u8]) -> Result<(), UploadError> {
        self.uploads.push((name.to_string(), body.to_vec()));
        self.upload_queue.pop_front().unwrap_or(self.upload_result)
    }

    fn verify(&mut self, c: &Credentials) -> bool {
        self.verified.push(c.user.clone());
        c.hash.is_some() && self.passwords.get(&c.user) == Some(&c.password)
    }

    fn begin(&mut self, target: &UploadTarget) -> Result<(), UploadError> {
        self.stream_results.pop_front().unwrap_or(Ok(()))?;
        if let UploadTarget::Path(p) = target {
            let parent = p.as_str().rsplit_once('/').map_or("", |(d, _)| d);
            if !parent.is_empty() && !matches!(self.files.get(parent), Some(Ok(m)) if m.is_dir) {
                return Err(UploadError::NoParent);
            }
        }
        self.streaming = Some((target.clone(), Vec::new()));
        Ok(())
    }

    fn chunk(&mut self, bytes: &[u8]) -> Result<(), UploadError> {
        self.stream_results.pop_front().unwrap_or(Ok(()))?;
        match &mut self.streaming {
            Some((_, data)) => {
                data.extend_from_slice(bytes);
                Ok(())
            }
            None => Err(UploadError::Other),
        }
    }

    fn commit(&mut self, target: &UploadTarget, replace: bool) -> Result<FileMeta, UploadError> {
        self.stream_results.pop_front().unwrap_or(Ok(()))?;
        let path = match target {
            UploadTarget::Path(p) => p.as_str().to_string(),
            UploadTarget::Uploads(name) => format!("uploads/{name}"),
        };
        if !replace && (self.files.contains_key(&path) || self.committed.contains_key(&path)) {
            return Err(UploadError::AlreadyExists { reseed: [7; 16] });
        }
        let (_, data) = self.streaming.take().ok_or(UploadError::Other)?;
        let meta = FileMeta {
            len: data.len() as u64,
            mtime_secs: 1_900_000_000,
            mtime_nanos: 0,
            is_dir: false,
        };
        self.files.insert(path.clone(), Ok(meta));
        self.committed.insert(path, data);
        Ok(meta)
    }

    fn compress(&mut self, coding: crate::Coding, _stream: bool) -> crate::Compressed {
        self.compressions.push(coding);
        self.compressed
    }

    /// The root, a directory of `files` or one of `dirs` can be archived; an error of
    /// `files` is that error; anything else is missing.
    fn archive(&mut self, dir: &str, user: Option<&str>) -> Result<(), FileError> {
        self.archived
            .push((dir.to_string(), user.map(str::to_string)));
        match self.files.get(dir) {
            _ if dir.is_empty() || self.dirs.contains_key(dir) => Ok(()),
            Some(Ok(m)) if m.is_dir => Ok(()),
            Some(Err(e)) => Err(*e),
            _ => Err(FileError::NotFound),
        }
    }

    fn abort(&mut self) {
        self.aborted += 1;
        self.streaming = None;
    }

    fn delete(&mut self, path: &str) -> Result<(), FileError> {
        self.deleted.push(path.to_string());
        match self.files.remove(path) {
            Some(_) => Ok(()),
            None => Err(FileError::NotFound),
        }
    }
}
