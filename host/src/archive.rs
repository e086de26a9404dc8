//! `GET /DIR/?zip` (SPEC "Compression and archives"): a zip archive of a directory tree,
//! produced as a stream of chunks in bounded memory, whatever the size of the tree or of
//! its files.
//!
//! ```text
//! let mut zip = Archive::new(tree, dir, Box::new(move |path| may_read(path)));
//! while let Some(bytes) = zip.next_chunk(256 << 10)? { send(bytes) }   // where blocking is allowed
//! ```
//!
//! **What goes in.** A depth-first walk of `dir`, each directory's names in byte order,
//! directories entered only when the walk reaches them. Through the [`Tree`] (the web
//! root's own door, [`Root::list_dir`] and [`Root::open_file`]): hidden names are never
//! listed, and a symlink counts as what it points to, so one that leaves the root (or
//! leads nowhere) is left out, while one inside the root is archived as its target. A
//! directory reached again through a symlink to itself or to a directory above it is
//! left out (Unix: by device and inode; elsewhere the depth limit cuts the loop). Each
//! entry's root-relative path (`docs/a/b.html`, as [`SafePath::as_str`]) is first offered
//! to `may_read`: what it refuses is left out, a directory with everything below it
//! (reading a directory's names is reading it). Directories are entries of their own
//! (`a/`, `a/b/`, so empty ones survive), files are named by their path relative to
//! `dir`, always as UTF-8 (flag bit 11). An entry is also left out when it cannot be
//! opened or its directory listed (gone since its parent was listed, an I/O error), when
//! the first read of a file fails (nothing of it has been written yet), and past
//! [`MAX_DEPTH`] directory levels. A directory holding more than
//! [`protocol::MAX_LISTED`] names has only that many archived, as its listing page shows
//! only that many; that, the depth limit and [`MAX_CENTRAL`] mark the archive
//! incomplete: it still ends properly, with a comment that says so.
//!
//! **How.** Files with a compressible type (by extension: HTML, CSS, JavaScript, JSON,
//! SVG, XML, text, Markdown, WebAssembly, source code…) are deflated (raw deflate,
//! [`LEVEL`]), others stored. Each file is streamed: a local header with flag bit 3
//! (sizes and CRC-32 follow the data), its data, then a data descriptor with the CRC-32
//! and the sizes; the central directory and the end records come last. ZIP64 where the
//! sizes, offsets or the entry count need it: the rule, per entry and per archive, is in
//! `archive/zip.rs`.
//!
//! **A file that changes while it is read** is never in the archive torn. Its size and
//! modification time (and on Unix its inode change time, which no writer can set back)
//! are taken when it is opened and again when its last byte has been read; it is read up
//! to its size at open and one byte more. If anything differs, it turned out shorter, it
//! has that one more byte, or a read failed, its bytes are already in the stream, so it
//! is left out of the **central directory**: the readers that list and extract through
//! the central directory (tried: Python's `zipfile`, Info-ZIP's `unzip`, Java's
//! `ZipFile`, libarchive's `bsdtar` on a file; by design also 7-Zip and Go) do not see it,
//! and the rest of the archive tests OK (its bytes are a gap between two entries). A
//! reader that walks the local headers instead (a streaming reader) does meet it, and
//! its data descriptor then carries the complement of the true CRC-32, so that the
//! reader reports a CRC error for it rather than taking torn bytes silently (`bsdtar`
//! from a pipe: "ZIP bad CRC", exit status 1; Java's `ZipInputStream`: "invalid entry
//! CRC", and it stops there). The server logs a warning naming it. Not caught: a change
//! that keeps the size and lands within the file system's timestamp granularity of the
//! previous write (the time stamps would not differ). A file replaced by a rename while
//! it is read is not a change: the old file is read whole, through the handle opened.
//!
//! Streaming readers and stored entries: a stored entry has its sizes in a data
//! descriptor too (there is no other way without reading the file twice), which
//! libarchive's streaming reader handles (it finds the descriptor) but Java's
//! `ZipInputStream` refuses ("only DEFLATED entries can have EXT descriptor"; Java's
//! `ZipFile` reads the whole archive). Deflated entries stream in both.
//!
//! **Memory**, per archive: one read buffer ([`READ_BUF`]) and one deflate state (zlib-rs,
//! 32 KiB window: about 300 KiB), both made on first use and reused for every entry; the
//! chunk being returned (about `max`); the walk's stack of directory listings (the names
//! of each directory on the current path, each at most [`protocol::MAX_LISTED`], at most
//! [`MAX_DEPTH`] of them); and the central directory, kept until the end as the bytes
//! it will be sent as: 55 bytes per entry plus its name (plus 28 for an entry that needs
//! ZIP64 fields), so about 5 MB for 65,535 entries with 25-byte names. It is capped at
//! [`MAX_CENTRAL`] (some 400,000 entries): past that the walk stops and the archive ends
//! there, marked incomplete.

mod tree;
mod zip;

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;

use flate2::{Compress, Compression, FlushCompress, Status};
use log::{debug, warn};
use protocol::{FileMeta, SafePath};

pub(crate) use tree::Tree;
use tree::{compressible, dir_id, io_error, sorted_names, Stamp};
use zip::{Entry, Written, DEFLATED, MAX32, STORED};

/// The read buffer: one per archive.
pub(crate) const READ_BUF: usize = 128 << 10;
/// The deepest directory level archived below `dir` (deeper ones are left out, and the
/// archive is marked incomplete).
pub(crate) const MAX_DEPTH: usize = 64;
/// The most bytes of central directory kept (see the module doc).
pub(crate) const MAX_CENTRAL: usize = 32 << 20;
/// The deflate level. Measured on this project's own sources with zlib-rs (one core,
/// reading and CRC-32 included): level 1 at 198 MB/s makes 42.5% of the size, 3 at
/// 117 MB/s 30.3%, 6 (zlib's default) at 63 MB/s 28.8%. Level 3 keeps up with a gigabit
/// link for 5% more bytes than 6.
pub(crate) const LEVEL: u32 = 3;

/// The comment an incomplete archive ends with (Info-ZIP's `unzip` prints it).
const INCOMPLETE: &str = "incomplete: part of the directory tree was not archived \
    (too many names in a directory, too deep, or too many entries)";

/// A zip archive of one directory tree, produced chunk by chunk (see the module doc).
pub(crate) struct Archive {
    tree: Arc<dyn Tree>,
    may_read: Box<dyn Fn(&str) -> bool + Send>,
    top: SafePath,
    state: State,
    /// The directories on the walk's current path, innermost last.
    stack: Vec<Level>,
    /// The bytes returned by earlier chunks.
    produced: u64,
    /// The central directory so far, then with its end records while it is sent.
    central: Vec<u8>,
    entries: u64,
    incomplete: bool,
    /// The read buffer ([`READ_BUF`]), made for the first file.
    buf: Vec<u8>,
    /// The deflate state, made for the first deflated file, reset for each.
    deflater: Option<Compress>,
}

enum State {
    /// Nothing produced yet: the top directory is listed first.
    Start,
    /// Between entries.
    Walk,
    /// Inside a file's data.
    File(Box<Reading>),
    /// Sending the central directory and the end records, from this byte on.
    Central(usize),
    Done,
}

/// One directory on the walk's path.
struct Level {
    /// Its path below the root.
    dir: SafePath,
    /// Its name in the archive with a trailing `/` (empty for `dir` itself).
    prefix: String,
    /// Its names not walked yet.
    names: std::vec::IntoIter<String>,
    /// Device and inode (Unix), to tell a symlink loop.
    id: Option<(u64, u64)>,
}

/// A file being read into the archive.
struct Reading {
    file: File,
    entry: Entry,
    /// Where its local header starts.
    offset: u64,
    /// What it was at open.
    stamp: Stamp,
    crc: crc32fast::Hasher,
    /// Bytes read (the uncompressed size) and written (the compressed size).
    read: u64,
    written: u64,
    /// The unconsumed part of the read buffer.
    pos: usize,
    filled: usize,
    eof: bool,
    /// Why it must be left out of the central directory (it changed, a read failed).
    torn: Option<String>,
}

impl Archive {
    /// An archive of the directory `dir` below the root of `tree`; `may_read(path)` says
    /// whether the entry at `path` (root-relative, as [`SafePath::as_str`]: `dir/a.html`)
    /// may be included. `dir` itself is not offered to it (the caller decided that). Does
    /// no I/O.
    pub(crate) fn new(
        tree: Arc<dyn Tree>,
        dir: SafePath,
        may_read: Box<dyn Fn(&str) -> bool + Send>,
    ) -> Archive {
        Archive {
            tree,
            may_read,
            top: dir,
            state: State::Start,
            stack: Vec::new(),
            produced: 0,
            central: Vec::new(),
            entries: 0,
            incomplete: false,
            buf: Vec::new(),
            deflater: None,
        }
    }

    /// The next bytes of the archive: about `max` bytes (more by at most one entry's
    /// headers), or `None` once it has all been returned. Blocks on the disk: call it
    /// where that is allowed.
    ///
    /// Fails only on the first call, when `dir` itself cannot be listed (nothing has been
    /// produced yet, so an error answer can still be sent; the error kind is `NotFound`
    /// or `PermissionDenied` as the opening found). After that every problem leaves an
    /// entry out (see the module doc) and the archive always ends properly.
    pub(crate) fn next_chunk(&mut self, max: usize) -> io::Result<Option<Vec<u8>>> {
        let max = max.max(1);
        if matches!(self.state, State::Start) {
            if let Err(e) = self.start() {
                self.state = State::Done;
                return Err(e);
            }
        }
        let mut out = Vec::with_capacity(max.min(4 << 20) + 512);
        while out.len() < max {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Start | State::Walk => {
                    self.state = State::Walk;
                    self.walk(&mut out);
                }
                State::File(mut reading) => {
                    if self.read(&mut reading, &mut out, max) {
                        self.finish_file(*reading, &mut out);
                    } else {
                        self.state = State::File(reading);
                    }
                }
                State::Central(at) => {
                    let n = (max - out.len()).min(self.central.len() - at);
                    out.extend_from_slice(&self.central[at..at + n]);
                    if at + n == self.central.len() {
                        self.central = Vec::new();
                    } else {
                        self.state = State::Central(at + n);
                    }
                }
                State::Done => break,
            }
        }
        self.produced += out.len() as u64;
        Ok((!out.is_empty()).then_some(out))
    }

    /// Where the next byte written to `out` lands in the archive.
    fn position(&self, out: &[u8]) -> u64 {
        self.produced + out.len() as u64
    }

    /// Lists the top directory.
    fn start(&mut self) -> io::Result<()> {
        let id = match self.tree.open(&self.top) {
            Ok((file, meta)) if meta.is_dir => dir_id(&file),
            Ok(_) => return Err(io::ErrorKind::NotFound.into()),
            Err(_) => None,
        };
        let (entries, unread) = self.tree.list(&self.top).map_err(io_error)?;
        self.note_unread(&self.top.clone(), unread);
        self.stack.push(Level {
            dir: self.top.clone(),
            prefix: String::new(),
            names: sorted_names(entries),
            id,
        });
        self.state = State::Walk;
        Ok(())
    }

    fn note_unread(&mut self, dir: &SafePath, unread: u64) {
        if unread > 0 {
            warn!(
                "archive of /{}: /{} has {unread} names past the {} listed; they are not archived",
                self.top.as_str(),
                dir.as_str(),
                protocol::MAX_LISTED
            );
            self.incomplete = true;
        }
    }

    /// One step of the walk: the next name of the innermost directory (written, entered,
    /// or skipped), or the end of that directory, or of the walk.
    fn walk(&mut self, out: &mut Vec<u8>) {
        let Some(level) = self.stack.last_mut() else {
            self.end(out);
            return;
        };
        let Some(name) = level.names.next() else {
            self.stack.pop();
            return;
        };
        let Some(path) = level.dir.join(&name) else {
            return;
        };
        let name = format!("{}{name}", level.prefix);
        // A directory's name gets a `/`; the format holds names of up to 65,535 bytes.
        if name.len() >= zip::MAX_NAME {
            debug!("archive: {name:?} left out: its name is too long for a zip");
            return;
        }
        if !(self.may_read)(path.as_str()) {
            return;
        }
        if self.central.len() + zip::CENTRAL_FIXED + name.len() + 1 > MAX_CENTRAL {
            warn!(
                "archive of /{}: over {} entries, the rest is not archived",
                self.top.as_str(),
                self.entries
            );
            self.incomplete = true;
            self.stack.clear();
            return;
        }
        match self.tree.open(&path) {
            Ok((file, meta)) if meta.is_dir => self.enter(path, name, &file, &meta, out),
            Ok((file, _)) => self.begin_file(name, file, out),
            Err(e) => debug!("archive: /{} left out: {e:?}", path.as_str()),
        }
    }

    /// Writes a directory's entry and enters it (or leaves it out: a loop, too deep, its
    /// listing failed).
    fn enter(
        &mut self,
        path: SafePath,
        name: String,
        file: &File,
        meta: &FileMeta,
        out: &mut Vec<u8>,
    ) {
        if self.stack.len() > MAX_DEPTH {
            warn!(
                "archive of /{}: /{} left out: deeper than {MAX_DEPTH} levels",
                self.top.as_str(),
                path.as_str()
            );
            self.incomplete = true;
            return;
        }
        let id = dir_id(file);
        if id.is_some() && self.stack.iter().any(|level| level.id == id) {
            debug!(
                "archive: /{} left out: a symlink to a directory above it",
                path.as_str()
            );
            return;
        }
        let (entries, unread) = match self.tree.list(&path) {
            Ok(listing) => listing,
            Err(e) => {
                debug!("archive: /{} left out: {e:?}", path.as_str());
                return;
            }
        };
        self.note_unread(&path, unread);
        let entry = Entry {
            name: name + "/",
            is_dir: true,
            method: STORED,
            mtime_secs: meta.mtime_secs,
            zip64: false,
        };
        let offset = self.position(out);
        zip::local_header(out, &entry);
        let written = Written {
            crc: 0,
            compressed: 0,
            size: 0,
            offset,
        };
        zip::central_header(&mut self.central, &entry, &written);
        self.entries += 1;
        self.stack.push(Level {
            dir: path,
            prefix: entry.name,
            names: sorted_names(entries),
            id,
        });
    }

    /// Reads the first bytes of a file and, if that worked, writes its local header and
    /// goes on to its data.
    fn begin_file(&mut self, name: String, file: File, out: &mut Vec<u8>) {
        let stamp = match Stamp::of(&file) {
            Ok(stamp) => stamp,
            Err(e) => {
                debug!("archive: {name:?} left out: {e}");
                return;
            }
        };
        let method = if stamp.len > 0 && compressible(&name) {
            DEFLATED
        } else {
            STORED
        };
        let entry = Entry {
            zip64: zip::needs_zip64(stamp.len, method),
            mtime_secs: stamp.mtime_secs(),
            name,
            is_dir: false,
            method,
        };
        let mut reading = Reading {
            file,
            entry,
            offset: 0,
            stamp,
            crc: crc32fast::Hasher::new(),
            read: 0,
            written: 0,
            pos: 0,
            filled: 0,
            eof: false,
            torn: None,
        };
        if self.buf.is_empty() {
            self.buf = vec![0; READ_BUF];
        }
        self.fill(&mut reading);
        if let Some(why) = reading.torn {
            // Nothing of it is written yet: it is simply not in the archive.
            debug!("archive: {:?} left out: {why}", reading.entry.name);
            return;
        }
        if method == DEFLATED {
            self.deflater
                .get_or_insert_with(|| Compress::new(Compression::new(LEVEL), false))
                .reset();
        }
        reading.offset = self.position(out);
        zip::local_header(out, &reading.entry);
        self.state = State::File(Box::new(reading));
    }

    /// Reads the next bytes of a file into the read buffer (which `r` has consumed): up
    /// to its size at open, then one probe byte that must not be there.
    fn fill(&mut self, r: &mut Reading) {
        let left = r.stamp.len - r.read;
        let want = if left > 0 {
            left.min(self.buf.len() as u64) as usize
        } else {
            1
        };
        loop {
            match r.file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    r.eof = true;
                    if left > 0 {
                        r.torn = Some(format!(
                            "it became shorter while it was read ({} of {} bytes)",
                            r.read, r.stamp.len
                        ));
                    }
                }
                Ok(_) if left == 0 => {
                    r.eof = true;
                    r.torn = Some("it grew while it was read".into());
                }
                Ok(n) => {
                    r.crc.update(&self.buf[..n]);
                    r.read += n as u64;
                    r.pos = 0;
                    r.filled = n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    r.eof = true;
                    r.torn = Some(format!("a read failed: {e}"));
                }
            }
            return;
        }
    }

    /// Writes the next bytes of a file's data into `out`, until it holds `max` bytes;
    /// `true` once all of it is written (the deflate stream finished too).
    fn read(&mut self, r: &mut Reading, out: &mut Vec<u8>, max: usize) -> bool {
        while out.len() < max {
            if r.pos == r.filled && !r.eof {
                self.fill(r);
                continue;
            }
            // Deflate is given a little room even at the end of a chunk, so that every
            // call makes progress (a chunk may exceed `max` by those few bytes).
            let room = if r.entry.method == STORED {
                max - out.len()
            } else {
                // (And at most 256 KiB at a time: `out` is zero-filled for it first.)
                (max - out.len()).clamp(64, 256 << 10)
            };
            if r.entry.method == STORED {
                if r.pos == r.filled {
                    return true;
                }
                let n = room.min(r.filled - r.pos);
                out.extend_from_slice(&self.buf[r.pos..r.pos + n]);
                r.pos += n;
                r.written += n as u64;
                continue;
            }
            let deflater = self
                .deflater
                .as_mut()
                .expect("made when a deflated entry begins");
            let flush = if r.eof && r.pos == r.filled {
                FlushCompress::Finish
            } else {
                FlushCompress::None
            };
            let start = out.len();
            out.resize(start + room, 0);
            let (before_in, before_out) = (deflater.total_in(), deflater.total_out());
            let status = deflater.compress(&self.buf[r.pos..r.filled], &mut out[start..], flush);
            let used = (deflater.total_in() - before_in) as usize;
            let made = (deflater.total_out() - before_out) as usize;
            out.truncate(start + made);
            r.pos += used;
            r.written += made as u64;
            match status {
                Ok(Status::StreamEnd) => return true,
                Ok(_) if used > 0 || made > 0 => {}
                // No progress with input or room to spare: never expected; end the entry
                // here and leave it out.
                other => {
                    r.torn = Some(format!("deflate stopped: {other:?}"));
                    return true;
                }
            }
        }
        false
    }

    /// After a file's data: its data descriptor, and its central directory header unless
    /// it changed while it was read (see the module doc).
    fn finish_file(&mut self, mut r: Reading, out: &mut Vec<u8>) {
        self.state = State::Walk;
        if r.torn.is_none() {
            match Stamp::of(&r.file) {
                Ok(now) if now == r.stamp => {}
                Ok(now) => r.torn = Some(format!("it changed while it was read ({now:?})")),
                Err(e) => r.torn = Some(format!("its metadata cannot be read again: {e}")),
            }
        }
        // Never expected (ZIP64 is decided from the size at open, with room for deflate's
        // worst case): sizes that a 4-byte descriptor cannot hold are not described.
        if !r.entry.zip64 && (r.written >= MAX32 || r.read >= MAX32) && r.torn.is_none() {
            r.torn = Some("larger than its size at open allowed for".into());
        }
        let crc = r.crc.finalize();
        let descriptor_crc = if r.torn.is_some() { !crc } else { crc };
        zip::descriptor(out, descriptor_crc, r.written, r.read, r.entry.zip64);
        match r.torn {
            Some(why) => warn!(
                "archive of /{}: {:?} left out of the archive's directory: {why}",
                self.top.as_str(),
                r.entry.name
            ),
            None => {
                let written = Written {
                    crc,
                    compressed: r.written,
                    size: r.read,
                    offset: r.offset,
                };
                zip::central_header(&mut self.central, &r.entry, &written);
                self.entries += 1;
            }
        }
    }

    /// The walk is over: the end records follow the central directory, which is sent
    /// next.
    fn end(&mut self, out: &[u8]) {
        let offset = self.position(out);
        let size = self.central.len() as u64;
        let comment = if self.incomplete { INCOMPLETE } else { "" };
        zip::end_records(&mut self.central, self.entries, offset, size, comment);
        self.state = State::Central(0);
    }
}

#[cfg(test)]
mod tests;
