//! The archive against real directory trees in temporary directories, read back by
//! Python's `zipfile` and Info-ZIP's `unzip -t` (both must be installed).

use super::*;
use crate::files::Root;
#[cfg(unix)]
use protocol::{DirEntry, FileError};
use sha2::{Digest, Sha256};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use std::time::{SystemTime, UNIX_EPOCH};

const CHUNK: usize = 256 << 10;

fn tree(path: &Path) -> Arc<dyn Tree> {
    Arc::new(Root::new(path).expect("root"))
}

fn dir_path(dir: &str) -> SafePath {
    if dir.is_empty() {
        SafePath::root()
    } else {
        SafePath::from_request_path(&format!("/{dir}")).expect("safe path")
    }
}

fn everything() -> Box<dyn Fn(&str) -> bool + Send> {
    Box::new(|_| true)
}

/// The whole archive, in chunks of about `max` bytes (checked).
fn drain(zip: &mut Archive, max: usize) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(chunk) = zip.next_chunk(max).expect("chunk") {
        assert!(!chunk.is_empty());
        assert!(chunk.len() <= max + 1024, "{} bytes for {max}", chunk.len());
        all.extend_from_slice(&chunk);
    }
    assert_eq!(zip.next_chunk(max).expect("after the end"), None);
    all
}

fn archive_of(tree: Arc<dyn Tree>, dir: &str, max: usize) -> Vec<u8> {
    drain(&mut Archive::new(tree, dir_path(dir), everything()), max)
}

/// A file to hand the readers (chunks of zeros are skipped over: the big archives stay
/// sparse on disk).
fn save(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.zip");
    std::fs::write(&path, bytes).expect("write");
    (dir, path)
}

/// What Python's `zipfile` reads from the archive at `path`, after `testzip()`: each
/// entry of the central directory, in its order, read to its end (which checks its
/// CRC-32 too).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    name: String,
    is_dir: bool,
    size: u64,
    method: u16,
    sha256: String,
    /// The CRC-32 of the central directory (checked against the bytes by `zipfile`).
    crc: u32,
    date_time: String,
}

const PYTHON_READER: &str = r#"
import hashlib, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    if sys.argv[2] == "testzip":
        bad = z.testzip()
        if bad is not None:
            sys.exit("testzip: bad entry %r" % bad)
    # Reading an entry to its end checks its CRC-32 too (BadZipFile otherwise).
    for i in z.infolist():
        h = hashlib.sha256()
        n = 0
        with z.open(i) as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                n += len(b)
                h.update(b)
        assert n == i.file_size, (i.filename, n, i.file_size)
        print(i.filename.encode().hex(), "d" if i.is_dir() else "f", i.file_size,
              i.compress_type, h.hexdigest(), i.CRC, "-".join(map(str, i.date_time)),
              sep="\t")
"#;

fn python_reads(path: &Path) -> Vec<Seen> {
    python_reads_with(path, true)
}

/// As [`python_reads`], `testzip()` first or not (it reads every entry once more).
fn python_reads_with(path: &Path, testzip: bool) -> Vec<Seen> {
    let run = Command::new("python3")
        .arg("-c")
        .arg(PYTHON_READER)
        .arg(path)
        .arg(if testzip { "testzip" } else { "read" })
        .output()
        .expect("python3 is installed");
    assert!(
        run.status.success(),
        "zipfile refused the archive: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8(run.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let hex = f[0];
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            Seen {
                name: String::from_utf8(bytes).expect("utf-8 name"),
                is_dir: f[1] == "d",
                size: f[2].parse().expect("size"),
                method: f[3].parse().expect("method"),
                sha256: f[4].to_string(),
                crc: f[5].parse().expect("crc"),
                date_time: f[6].to_string(),
            }
        })
        .collect()
}

/// `unzip -t` finds no error.
fn unzip_tests_ok(path: &Path) {
    unzip_tests_ok_only(path, &[]);
}

/// `unzip -t` finds no error in these entries (all of them: `&[]`).
fn unzip_tests_ok_only(path: &Path, names: &[&str]) {
    let run = Command::new("unzip")
        .arg("-t")
        .arg(path)
        .args(names)
        .output()
        .expect("unzip is installed (apt-get install unzip)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.contains("No errors detected"),
        "unzip -t: {:?}\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What an entry should be: a directory (`None`) or a file with these bytes.
fn expect(name: &str, content: Option<&[u8]>) -> (String, Option<Vec<u8>>) {
    (name.to_string(), content.map(<[u8]>::to_vec))
}

/// Python read exactly these entries, in this order, with these bytes; compressible
/// files (by extension, not empty) deflated, others stored.
fn check_entries(seen: &[Seen], expected: &[(String, Option<Vec<u8>>)]) {
    let names: Vec<&str> = seen.iter().map(|s| s.name.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, want);
    for (s, (name, content)) in seen.iter().zip(expected) {
        match content {
            None => {
                assert!(s.is_dir && name.ends_with('/') && s.size == 0, "{s:?}");
            }
            Some(bytes) => {
                assert!(!s.is_dir, "{s:?}");
                assert_eq!(s.size, bytes.len() as u64, "{name}");
                assert_eq!(s.sha256, sha256(bytes), "{name}");
                let deflated = !bytes.is_empty() && compressible(name);
                assert_eq!(s.method, if deflated { 8 } else { 0 }, "{name}");
            }
        }
    }
}

/// Bytes that do not compress (a xorshift stream).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

struct Fixture {
    _base: tempfile::TempDir,
    root: PathBuf,
    html: Vec<u8>,
    png: Vec<u8>,
}

/// `base/www` with files of both kinds, an empty directory, hidden names, a non-ASCII
/// name, and (Unix) symlinks: out of the root (file, directory, absolute), in it (a file,
/// a directory), and a loop back to the root. `base/outside.txt` must never be read.
fn fixture() -> Fixture {
    let base = tempfile::tempdir().expect("tempdir");
    let base_path = base.path().canonicalize().expect("canonical");
    let root = base_path.join("www");
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    std::fs::create_dir_all(root.join("e")).expect("mkdir");
    std::fs::create_dir_all(root.join(".git")).expect("mkdir");
    std::fs::write(base_path.join("outside.txt"), "SECRET").expect("write");
    let html = "<p>hello, archive</p>\n".repeat(3000).into_bytes();
    let png = noise(300_000, 0x9e37_79b9_7f4a_7c15);
    std::fs::write(root.join("a.html"), &html).expect("write");
    std::fs::write(root.join("b.png"), &png).expect("write");
    std::fs::write(root.join("empty.txt"), "").expect("write");
    std::fs::write(root.join("with space.txt"), "spaced").expect("write");
    std::fs::write(root.join("ünï 文字.md"), "# hi\n").expect("write");
    std::fs::write(root.join("sub/c.json"), "{\"c\":1}").expect("write");
    std::fs::write(root.join("sub/deeper/d.css"), "p{}").expect("write");
    std::fs::write(root.join(".secret.txt"), "hidden").expect("write");
    std::fs::write(root.join(".git/config"), "hidden").expect("write");
    std::fs::write(root.join("sub/.hidden"), "hidden").expect("write");
    // A known modification time: 2024-02-29 13:45:31 UTC.
    let when = UNIX_EPOCH + Duration::from_secs(1_709_214_331);
    File::options()
        .write(true)
        .open(root.join("a.html"))
        .expect("open")
        .set_modified(when)
        .expect("set mtime");
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink("../outside.txt", root.join("out-file")).expect("symlink");
        symlink("..", root.join("out-dir")).expect("symlink");
        symlink(base_path.join("outside.txt"), root.join("abs-out")).expect("symlink");
        symlink("a.html", root.join("in-link.html")).expect("symlink");
        symlink("sub/deeper", root.join("link-dir")).expect("symlink");
        symlink("..", root.join("sub/up")).expect("symlink");
    }
    Fixture {
        _base: base,
        root,
        html,
        png,
    }
}

fn fixture_entries(fx: &Fixture) -> Vec<(String, Option<Vec<u8>>)> {
    let mut all = vec![
        expect("a.html", Some(&fx.html)),
        expect("b.png", Some(&fx.png)),
        expect("e/", None),
        expect("empty.txt", Some(b"")),
    ];
    if cfg!(unix) {
        all.extend([
            expect("in-link.html", Some(&fx.html)),
            expect("link-dir/", None),
            expect("link-dir/d.css", Some(b"p{}")),
        ]);
    }
    all.extend([
        expect("sub/", None),
        expect("sub/c.json", Some(b"{\"c\":1}")),
        expect("sub/deeper/", None),
        expect("sub/deeper/d.css", Some(b"p{}")),
        // sub/up -> .. is the root again: left out.
        expect("with space.txt", Some(b"spaced")),
        expect("ünï 文字.md", Some(b"# hi\n")),
    ]);
    all
}

#[test]
fn the_archive_is_the_tree() {
    let fx = fixture();
    let bytes = archive_of(tree(&fx.root), "", CHUNK);
    assert!(
        !bytes.windows(6).any(|w| w == b"SECRET"),
        "read outside the root"
    );
    assert!(!bytes.windows(6).any(|w| w == b"hidden"), "a hidden file");
    let (_dir, path) = save(&bytes);
    let seen = python_reads(&path);
    check_entries(&seen, &fixture_entries(&fx));
    assert_eq!(seen[0].date_time, "2024-2-29-13-45-30");
    unzip_tests_ok(&path);
    // Listed by unzip with the UTF-8 name, and extracted with its bytes.
    let out = tempfile::tempdir().expect("tempdir");
    let run = Command::new("unzip")
        .arg("-q")
        .arg(&path)
        .arg("-d")
        .arg(out.path())
        .status()
        .expect("unzip");
    assert!(run.success());
    assert_eq!(
        std::fs::read(out.path().join("ünï 文字.md")).expect("extracted"),
        b"# hi\n"
    );
    assert_eq!(
        std::fs::read(out.path().join("a.html")).expect("extracted"),
        fx.html
    );
    assert!(out.path().join("e").is_dir());
}

/// The bytes do not depend on how they are asked for, down to one byte at a time.
#[test]
fn the_chunk_size_changes_nothing() {
    let fx = fixture();
    let whole = archive_of(tree(&fx.root), "", CHUNK);
    for max in [1, 7, 100, 4096, 65_536 + 3, 10 << 20] {
        assert_eq!(
            archive_of(tree(&fx.root), "", max),
            whole,
            "chunks of {max}"
        );
    }
}

#[test]
fn a_subdirectory_and_what_may_not_be_read() {
    let fx = fixture();
    // `dir` is `sub`: names relative to it; may_read is asked with root-relative paths.
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&asked);
    let mut zip = Archive::new(
        tree(&fx.root),
        dir_path("sub"),
        Box::new(move |path: &str| {
            log.lock().expect("lock").push(path.to_string());
            path != "sub/c.json"
        }),
    );
    let (_dir, path) = save(&drain(&mut zip, CHUNK));
    let mut want = vec![
        expect("deeper/", None),
        expect("deeper/d.css", Some(b"p{}")),
    ];
    if cfg!(unix) {
        // sub/up -> .. is the root: not a directory above `sub` in the archive, so it is
        // archived as what it points to, until the walk meets `sub` again (a loop).
        want.push(expect("up/", None));
        want.extend(
            fixture_entries(&fx)
                .into_iter()
                .filter(|(n, _)| !n.starts_with("sub/"))
                .map(|(n, c)| (format!("up/{n}"), c)),
        );
    }
    check_entries(&python_reads(&path), &want);
    unzip_tests_ok(&path);
    let asked = asked.lock().expect("lock").clone();
    assert!(asked.iter().all(|p| p.starts_with("sub/")), "{asked:?}");
    for path in ["sub/c.json", "sub/deeper", "sub/deeper/d.css"] {
        assert!(asked.iter().any(|p| p == path), "{path}: {asked:?}");
    }
    if cfg!(unix) {
        assert!(asked.iter().any(|p| p == "sub/up/a.html"), "{asked:?}");
    }

    // A refused directory takes everything below it along.
    let mut zip = Archive::new(
        tree(&fx.root),
        SafePath::root(),
        Box::new(|path: &str| !matches!(path, "sub" | "a.html" | "b.png")),
    );
    let bytes = drain(&mut zip, CHUNK);
    let (_dir, path) = save(&bytes);
    let names: Vec<String> = python_reads(&path).into_iter().map(|s| s.name).collect();
    let mut want: Vec<String> = fixture_entries(&fx)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !n.starts_with("sub/") && n != "a.html" && n != "b.png")
        .collect();
    want.sort();
    let mut got = names.clone();
    got.sort();
    assert_eq!(got, want);
    assert!(!bytes.windows(10).any(|w| w == b"sub/c.json"));
}

#[test]
fn an_empty_directory_is_an_empty_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("nothing")).expect("mkdir");
    let bytes = archive_of(tree(dir.path()), "nothing", CHUNK);
    assert_eq!(bytes.len(), 22, "the end record alone");
    let (_dir, path) = save(&bytes);
    assert!(python_reads(&path).is_empty());
}

/// A missing or non-directory `dir` fails on the first call, before any byte.
#[test]
fn a_missing_directory_fails_first() {
    let fx = fixture();
    for dir in ["missing", "a.html"] {
        let mut zip = Archive::new(tree(&fx.root), dir_path(dir), everything());
        let e = zip.next_chunk(CHUNK).expect_err(dir);
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{dir}");
        assert_eq!(zip.next_chunk(CHUNK).expect("after"), None);
    }
}

/// Errors of a listing or of a file's first read leave those entries out, and nothing
/// of them is written.
#[cfg(unix)]
#[test]
fn errors_leave_entries_out() {
    struct Faulty(Root);
    impl Tree for Faulty {
        fn list(&self, dir: &SafePath) -> Result<(Vec<DirEntry>, u64), FileError> {
            if dir.as_str() == "sub/deeper" {
                return Err(FileError::Other);
            }
            self.0.list(dir)
        }
        fn open(&self, path: &SafePath) -> Result<(File, FileMeta), FileError> {
            let (file, meta) = self.0.open(path)?;
            if path.as_str() == "a.html" {
                // A handle whose first read fails (EISDIR), passed off as a file.
                let (dir, _) = self.0.open(&dir_path("e"))?;
                return Ok((
                    dir,
                    FileMeta {
                        is_dir: false,
                        ..meta
                    },
                ));
            }
            Ok((file, meta))
        }
    }
    let fx = fixture();
    let bytes = archive_of(
        Arc::new(Faulty(Root::new(&fx.root).expect("root"))),
        "",
        CHUNK,
    );
    assert!(!bytes.windows(6).any(|w| w == b"a.html"));
    assert!(!bytes.windows(11).any(|w| w == b"sub/deeper/"));
    let (_dir, path) = save(&bytes);
    let want: Vec<_> = fixture_entries(&fx)
        .into_iter()
        .filter(|(n, _)| n != "a.html" && !n.starts_with("sub/deeper/"))
        .collect();
    check_entries(&python_reads(&path), &want);
    unzip_tests_ok(&path);
}

/// How a file is changed while the archive reads it.
#[derive(Clone, Copy, Debug)]
enum Change {
    Grow,
    Shrink,
    /// The same size, other bytes (its time stamps change).
    Rewrite,
}

#[test]
fn a_file_that_changes_while_read_is_left_out() {
    for change in [Change::Grow, Change::Shrink, Change::Rewrite] {
        for name in ["moving.bin", "moving.txt"] {
            let fx = fixture();
            let file = fx.root.join(name);
            std::fs::write(&file, noise(1 << 20, 7)).expect("write");
            // An hour ago, so that a rewrite now is seen whatever the clock's grain.
            File::options()
                .write(true)
                .open(&file)
                .expect("open")
                .set_modified(SystemTime::now() - Duration::from_secs(3600))
                .expect("mtime");
            let mut zip = Archive::new(tree(&fx.root), SafePath::root(), everything());
            let mut bytes = Vec::new();
            let mut changed = false;
            while let Some(chunk) = zip.next_chunk(4096).expect("chunk") {
                bytes.extend_from_slice(&chunk);
                let inside = matches!(&zip.state, State::File(r) if r.entry.name == name);
                if inside && !changed {
                    changed = true;
                    let mut f = File::options().write(true).open(&file).expect("open");
                    match change {
                        Change::Grow => {
                            f.seek(SeekFrom::End(0)).expect("seek");
                            f.write_all(b"more").expect("append");
                        }
                        Change::Shrink => f.set_len(1000).expect("truncate"),
                        Change::Rewrite => f.write_all(&[0; 65_536]).expect("rewrite"),
                    }
                }
            }
            assert!(changed, "{change:?} {name}: never inside");
            // Its local header and data were streamed...
            assert!(bytes.windows(name.len()).any(|w| w == name.as_bytes()));
            // ...but no reader of the central directory sees it, and the rest is whole.
            let (_dir, path) = save(&bytes);
            check_entries(&python_reads(&path), &fixture_entries(&fx));
            unzip_tests_ok(&path);
            // Its descriptor carries the complement of the CRC-32 of what was sent, so
            // a streaming reader fails it: the record follows the entry's data.
            let at = bytes
                .windows(name.len())
                .position(|w| w == name.as_bytes())
                .expect("local header");
            let header = at - 30;
            let extra = u16::from_le_bytes([bytes[header + 28], bytes[header + 29]]) as usize;
            let data = at + name.len() + extra;
            let descriptor = (data..bytes.len())
                .find(|&i| bytes[i..].starts_with(&[0x50, 0x4b, 0x07, 0x08]))
                .expect("descriptor");
            let compressed = u32::from_le_bytes(
                bytes[descriptor + 8..descriptor + 12]
                    .try_into()
                    .expect("4"),
            );
            assert_eq!(compressed as usize, descriptor - data, "{change:?} {name}");
            let crc =
                u32::from_le_bytes(bytes[descriptor + 4..descriptor + 8].try_into().expect("4"));
            if name.ends_with(".bin") {
                assert_eq!(crc, !crc32fast::hash(&bytes[data..descriptor]));
            }
        }
    }
}

mod large;
