//! The fake runtime's side: how it answers `OpenFile`, `ListDir` and `WriteUpload`,
//! decoded from the fuzz input (a choice byte, then more bytes for a file's metadata or
//! a directory's entries) or derived from a hash of the path; and the two [`World`]s the
//! shared driver executes actions against: [`Scripted`] (the `connection` script) and
//! [`Hashed`] (the same answers in both runs of `split`).

use std::collections::HashSet;

use protocol::listing::MAX_SHOWN;
use protocol::sim::{DirAnswer, World};
use protocol::{DirEntry, FileError, FileMeta, UploadError};

use crate::script::Reader;
use crate::UNIX_START;

/// The world of the `connection` script: each answer comes from the input. Before each
/// answer the script reads a choice byte into `choice` (see [`Scripted::open`]).
pub struct Scripted<'a> {
    /// The rest of the fuzz input (the script reads its opcodes from here too).
    pub r: Reader<'a>,
    /// The choice byte of the answer being made.
    pub choice: u8,
}

impl<'a> Scripted<'a> {
    pub fn new(r: Reader<'a>) -> Self {
        Scripted { r, choice: 0 }
    }
}

impl World for Scripted<'_> {
    /// [`file_answer`] from the choice and the input; a choice of 0xF0 and up asks
    /// [`fake_fs`] instead, its lowest bit saying whether index.html exists.
    fn open(&mut self, path: &str) -> Result<FileMeta, FileError> {
        if self.choice >= 0xf0 {
            fake_fs(path, self.choice & 1 == 1)
        } else {
            file_answer(self.choice, &mut self.r)
        }
    }

    /// [`dir_answer`] from the choice and the input.
    fn list(&mut self, _dir: &str) -> DirAnswer {
        dir_answer(self.choice, &mut self.r)
    }

    /// [`upload_answer`] from the choice.
    fn store(&mut self, _name: &str, _body: &[u8]) -> Result<(), UploadError> {
        upload_answer(self.choice)
    }

    /// Streamed uploads, by the choice: mostly done, sometimes a full disk, a missing
    /// directory, a name taken, or a failure.
    fn begin(&mut self, _target: &protocol::UploadTarget) -> Result<(), UploadError> {
        stream_answer(self.choice, true)
    }

    fn chunk(&mut self, _bytes: &[u8]) -> Result<(), UploadError> {
        stream_answer(self.choice, false)
    }

    fn commit(
        &mut self,
        _target: &protocol::UploadTarget,
        _replace: bool,
    ) -> Result<FileMeta, UploadError> {
        stream_answer(self.choice.rotate_left(3), false).map(|()| FileMeta {
            len: u64::from(self.choice),
            mtime_secs: UNIX_START,
            mtime_nanos: 0,
            is_dir: false,
        })
    }

    fn delete(&mut self, _path: &str) -> Result<(), FileError> {
        match self.choice % 4 {
            0 => Err(FileError::NotFound),
            1 => Err(FileError::Other),
            _ => Ok(()),
        }
    }

    /// Compression, by the choice: refused (saturated), streamed (when allowed), or a
    /// length.
    fn compress(&mut self, _coding: protocol::Coding, stream: bool) -> protocol::Compressed {
        match self.choice % 4 {
            0 => protocol::Compressed::Refused,
            1 if stream => protocol::Compressed::Stream,
            _ => protocol::Compressed::Len(u64::from(self.choice) + 1),
        }
    }

    /// An archive begun, or a directory missing, refused, unreadable, by the choice.
    fn archive(&mut self, _dir: &str, _user: Option<&str>) -> Result<(), FileError> {
        match self.choice % 8 {
            0 => Err(FileError::NotFound),
            1 => Err(FileError::Forbidden),
            2 => Err(FileError::Other),
            _ => Ok(()),
        }
    }

    /// Right or wrong by the choice's lowest bit (a user the rules do not name: wrong).
    fn verify(&mut self, credentials: &protocol::Credentials) -> bool {
        credentials.hash.is_some() && self.choice & 1 == 1
    }
}

/// The world of `split`: files by [`split_file_answer`], directories by
/// [`split_dir_answer`], every upload stored.
pub struct Hashed;

impl World for Hashed {
    fn open(&mut self, path: &str) -> Result<FileMeta, FileError> {
        split_file_answer(path)
    }

    fn list(&mut self, dir: &str) -> DirAnswer {
        split_dir_answer(dir)
    }

    fn store(&mut self, _name: &str, _body: &[u8]) -> Result<(), UploadError> {
        Ok(())
    }

    /// Right when the password is the user's name (the same bytes, whole or split,
    /// get the same answer).
    fn verify(&mut self, credentials: &protocol::Credentials) -> bool {
        credentials.hash.is_some() && credentials.password == credentials.user
    }
}

/// How the fake runtime answers an `OpenFile`, from one choice byte (and more bytes for
/// the file's metadata).
pub fn file_answer(choice: u8, r: &mut Reader<'_>) -> Result<FileMeta, FileError> {
    match choice % 8 {
        0..=3 => {
            let len = match r.byte() % 4 {
                0 => 0,
                1 => u64::from(r.byte()),
                2 => u64::from(r.u16()),
                _ => r.u64(),
            };
            let m = r.byte();
            let mtime_secs = match m % 4 {
                0 => 1_600_000_000,
                1 => UNIX_START + u64::from(r.u16()),
                2 => r.u64(),
                _ => 0,
            };
            Ok(FileMeta {
                len,
                mtime_secs,
                mtime_nanos: u32::from(m >> 2) * 7_654_321 % 1_000_000_000,
                is_dir: false,
            })
        }
        4 => Ok(FileMeta {
            is_dir: true,
            ..FileMeta::default()
        }),
        5 => Err(FileError::NotFound),
        6 => Err(FileError::Forbidden),
        _ if choice & 0x10 != 0 => Err(FileError::Unavailable),
        _ => Err(FileError::Other),
    }
}

/// An FNV-1a hash of a path: the fake file systems answer the same path the same way.
fn path_hash(path: &str) -> u64 {
    path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A small fake file system that answers by the path: a name without a dot is a
/// directory, `index.html` is missing unless `index` (so directories get listed), any
/// other name is a file whose size and date come from the path.
pub fn fake_fs(path: &str, index: bool) -> Result<FileMeta, FileError> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let h = path_hash(path);
    if name == "index.html" && !index {
        Err(FileError::NotFound)
    } else if !name.contains('.') {
        Ok(FileMeta {
            len: 4096,
            mtime_secs: UNIX_START - h % 1_000_000,
            mtime_nanos: 0,
            is_dir: true,
        })
    } else {
        Ok(FileMeta {
            len: (h >> 8) % 5000,
            mtime_secs: 1_600_000_000 + (h >> 20) % 100_000,
            mtime_nanos: (h >> 40) as u32 % 1_000_000_000,
            is_dir: false,
        })
    }
}

/// Names that are hard to put in a page, a link or JSON, and hidden ones.
pub const TRICKY_NAMES: &[&str] = &[
    "a b#c?d%e\"f'g<h>&i.txt",
    "caf\u{e9}.txt",
    "new\nline.txt",
    "<script>alert(1)</script>",
    "&amp;&#39;&lt;",
    "%2e%2e",
    "%00%2F",
    "..",
    ".",
    ".git",
    ".hidden",
    ".<b>&\"",
    "-",
    "~",
    "index.html",
    "\u{202e}gnp.exe",
    "c1\u{85}ctl\u{9b}",
    "del\u{7f}",
    "tab\tcr\rlf\n",
    "\u{65e5}\u{672c}\u{8a9e}",
    "\u{1f511} key",
    "line\u{2028}sep",
    "\"onmouseover=\"x",
    "javascript:alert(1)",
    "?query",
    "#frag",
    "100%",
    "a+b=c;d,e",
    "trailing space ",
    " leading",
    "back\\slash",
    "\u{fffd}\u{feff}bom",
    "</a></td></tr>",
    "\u{1}\u{1f}",
];

/// Characters names are built from (one input byte each).
const NAME_CHARS: &[char] = &[
    'a',
    'b',
    'Z',
    '0',
    '9',
    '.',
    '-',
    '_',
    '~',
    ' ',
    '"',
    '\'',
    '<',
    '>',
    '&',
    '#',
    '?',
    '%',
    '+',
    ';',
    '=',
    ':',
    '@',
    '!',
    '$',
    '(',
    ')',
    '*',
    ',',
    '[',
    ']',
    '{',
    '}',
    '|',
    '^',
    '`',
    '\\',
    '\n',
    '\r',
    '\t',
    '\u{1}',
    '\u{1b}',
    '\u{7f}',
    '\u{80}',
    '\u{85}',
    '\u{9f}',
    '\u{a0}',
    '\u{e9}',
    '\u{df}',
    '\u{3c3}',
    '\u{5d0}',
    '\u{65e5}',
    '\u{200b}',
    '\u{200d}',
    '\u{2028}',
    '\u{202e}',
    '\u{2400}',
    '\u{fe0f}',
    '\u{feff}',
    '\u{fffd}',
    '\u{1f511}',
    '\u{10ffff}',
];

/// One directory entry's name from the input: raw bytes (lossy UTF-8), a tricky name,
/// both, or characters from [`NAME_CHARS`]. Never empty, never with `/` or NUL (a
/// runtime reading a directory never sees such a name).
fn entry_name(kind: u8, r: &mut Reader<'_>) -> String {
    let mut name = match kind {
        0..=2 => {
            let n = usize::from(r.byte() % 40);
            String::from_utf8_lossy(r.take(n)).into_owned()
        }
        3 => TRICKY_NAMES[usize::from(r.byte()) % TRICKY_NAMES.len()].to_string(),
        4 => {
            let t = TRICKY_NAMES[usize::from(r.byte()) % TRICKY_NAMES.len()];
            let n = usize::from(r.byte() % 16);
            format!("{t}{}", String::from_utf8_lossy(r.take(n)))
        }
        _ => {
            let n = usize::from(r.byte() % 24);
            r.take(n)
                .iter()
                .map(|&b| NAME_CHARS[usize::from(b) % NAME_CHARS.len()])
                .collect()
        }
    };
    name = name.replace(['/', '\0'], "_");
    if name.is_empty() {
        name.push('_');
    }
    name
}

/// One entry from the input: a flags byte (bit 0 a directory, bit 1 hidden, bits 2–4
/// how the name is made, bits 5–6 the size, bit 7 the date), then the name's bytes.
fn dir_entry(r: &mut Reader<'_>) -> DirEntry {
    let f = r.byte();
    let mut name = entry_name((f >> 2) & 7, r);
    if f & 2 != 0 && !name.starts_with('.') {
        name.insert(0, '.');
    }
    let size = match (f >> 5) & 3 {
        0 => 0,
        1 => u64::from(r.byte()),
        2 => u64::from(r.u16()) << 10,
        _ => r.u64(),
    };
    let mtime_secs = if f & 0x80 != 0 {
        r.u64()
    } else {
        UNIX_START - u64::from(r.byte()) * 86_400
    };
    DirEntry {
        name,
        is_dir: f & 1 != 0,
        size,
        mtime_secs,
    }
}

/// Makes every name unique (a directory never holds one name twice).
fn dedupe(entries: &mut [DirEntry]) {
    let mut seen = HashSet::with_capacity(entries.len());
    for (i, e) in entries.iter_mut().enumerate() {
        while !seen.insert(e.name.clone()) {
            e.name.push_str(&format!("~{i}"));
        }
    }
}

/// How the fake runtime answers a `ListDir`, from one choice byte (and more bytes for
/// the entries): `% 8` is 5 `NotFound`, 6 `Forbidden`, 7 `Other` (`Unavailable` with
/// bit 0x10), else a listing. Its count byte `n`: [`HUGE_LISTING`], around
/// [`MAX_SHOWN`] visible entries (from 128 under to 127 over the cap, by the next byte)
/// plus hidden ones; else below 192, `n % 64` entries from the input ([`dir_entry`]);
/// else `(n - 191) * 4` entries (up to 252) made from one of them (every third a
/// directory, every fifth hidden). Then `unread`: 0, a byte, a u16 or a u32.
pub fn dir_answer(choice: u8, r: &mut Reader<'_>) -> DirAnswer {
    match choice % 8 {
        5 => return Err(FileError::NotFound),
        6 => return Err(FileError::Forbidden),
        7 if choice & 0x10 != 0 => return Err(FileError::Unavailable),
        7 => return Err(FileError::Other),
        _ => {}
    }
    let n = r.byte();
    let mut entries = match n {
        HUGE_LISTING => huge_listing(r),
        0..=191 => (0..n % 64).map(|_| dir_entry(r)).collect::<Vec<_>>(),
        _ => {
            let base = dir_entry(r);
            (0..usize::from(n - 191) * 4)
                .map(|i| DirEntry {
                    name: match i % 5 {
                        0 => format!(".{}{i}", base.name),
                        _ => format!("{}{i}", base.name),
                    },
                    is_dir: i % 3 == 0,
                    size: base.size.wrapping_add(i as u64),
                    mtime_secs: base.mtime_secs,
                })
                .collect()
        }
    };
    dedupe(&mut entries);
    let unread = match r.byte() % 4 {
        0 => 0,
        1 => u64::from(r.byte()),
        2 => u64::from(r.u16()),
        _ => u64::from(r.u16()) << 16 | u64::from(r.u16()),
    };
    Ok((entries, unread))
}

/// The count byte of a huge listing (past the cap). Not 0 or 0xFF, which mutations
/// write often: a huge listing costs some 20 ms to render and check.
pub const HUGE_LISTING: u8 = 0x5a;

/// Around [`MAX_SHOWN`] visible entries (the next byte says how many: from 128 under to
/// 127 over the cap), every seventh a directory, and one hidden entry per 50.
fn huge_listing(r: &mut Reader<'_>) -> Vec<DirEntry> {
    let visible = MAX_SHOWN - 128 + usize::from(r.byte());
    let mut v = Vec::with_capacity(visible + visible / 50 + 1);
    for i in 0..visible {
        v.push(DirEntry {
            name: format!("f{i:05}"),
            is_dir: i % 7 == 0,
            size: i as u64,
            mtime_secs: UNIX_START,
        });
        if i % 50 == 0 {
            v.push(DirEntry {
                name: format!(".h{i}"),
                is_dir: false,
                size: 1,
                mtime_secs: UNIX_START,
            });
        }
    }
    v
}

/// How the fake runtime answers a `WriteUpload`.
pub fn upload_answer(choice: u8) -> Result<(), UploadError> {
    match choice % 4 {
        0 | 1 => Ok(()),
        2 => Err(UploadError::AlreadyExists {
            reseed: std::array::from_fn(|i| choice.wrapping_mul(31).wrapping_add(i as u8)),
        }),
        _ if choice & 0x10 != 0 => Err(UploadError::Unavailable),
        _ => Err(UploadError::Other),
    }
}

/// A streamed upload's step, from a choice byte.
fn stream_answer(choice: u8, begin: bool) -> Result<(), UploadError> {
    match choice % 16 {
        0 => Err(UploadError::NoSpace),
        1 if begin => Err(UploadError::NoParent),
        2 => Err(UploadError::AlreadyExists {
            reseed: [choice; 16],
        }),
        3 => Err(UploadError::Other),
        _ => Ok(()),
    }
}

/// A deterministic answer for a path (the same in both runs of `split`).
pub fn split_file_answer(path: &str) -> Result<FileMeta, FileError> {
    let h = path_hash(path);
    match h % 6 {
        0 => Err(FileError::NotFound),
        1 => Err(FileError::Forbidden),
        2 => Ok(FileMeta {
            is_dir: true,
            ..FileMeta::default()
        }),
        _ => Ok(FileMeta {
            len: (h >> 8) % 5000,
            mtime_secs: 1_600_000_000 + (h >> 20) % 100_000,
            mtime_nanos: 0,
            is_dir: false,
        }),
    }
}

/// A deterministic listing of a directory (the same in both runs of `split`): an error,
/// or some of [`TRICKY_NAMES`] (hidden ones too), files and directories.
pub fn split_dir_answer(dir: &str) -> DirAnswer {
    let h = path_hash(dir);
    match h % 8 {
        0 => Err(FileError::NotFound),
        1 => Err(FileError::Forbidden),
        2 if h & 0x100 != 0 => Err(FileError::Unavailable),
        2 => Err(FileError::Other),
        _ => {
            let n = (h >> 8) as usize % (TRICKY_NAMES.len() + 1);
            let entries = TRICKY_NAMES[..n]
                .iter()
                .enumerate()
                .map(|(i, name)| DirEntry {
                    name: name.to_string(),
                    is_dir: (h >> (16 + i)) & 1 == 1,
                    size: (h >> i) % 100_000,
                    mtime_secs: UNIX_START - (h >> 24) % 1_000_000,
                })
                .collect();
            Ok((entries, (h >> 56) % 3))
        }
    }
}
