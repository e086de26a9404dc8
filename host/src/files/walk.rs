//! The portable way below the root on Unix: one component at a time, symlinks read and
//! never followed by the kernel.
//!
//! From the held root directory descriptor, each name is opened with `openat(dir, name,
//! O_NOFOLLOW | …)` (directories with `O_DIRECTORY`), and every directory opened on the
//! way is kept on the walk's own stack. When a name is a symlink (`ELOOP`, `EMLINK` on
//! FreeBSD, or `ENOTDIR` with `O_DIRECTORY` on Linux, then confirmed by `readlinkat`), its
//! target is read and spliced in front of the names still to walk:
//!
//! - a relative target continues from the directory holding the link;
//! - `..` pops the walk's stack — the kernel never resolves `..`, so a directory renamed
//!   elsewhere mid-walk cannot take the walk with it;
//! - an absolute target starts again from `/`, which the walk knows only by name: from
//!   above the root, the only names it follows are the canonical root's own (`/`, `srv`,
//!   `www`, …), which lead back into the held root descriptor; any other name up there is
//!   outside the root, and `Forbidden`. Popping past the root the same way: `..` from the
//!   root is one level above it, by name.
//!
//! More than [`MAX_SYMLINKS`] symlinks is `Forbidden` (a loop). Since the kernel resolves
//! neither a symlink nor `..`, there is no window between a check and the open: what a
//! concurrent rename can change is only which entry a name finds in a directory the walk
//! already holds. (A directory moved out of the root while the walk is inside it leaves
//! the walk where it was, as `openat2` does too: nothing in the request path climbs out
//! of it.)

use std::borrow::Cow;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use protocol::FileError;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::unix::open_error;

/// How many symlinks one open may expand (Linux's `MAXSYMLINKS`).
pub(super) const MAX_SYMLINKS: u32 = 40;

/// How each directory on the way is opened.
const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Opens `rel` (`/`-separated names) below `root_dir`, whose canonical path is
/// `root_path`; the last name (or the directory the walk ends in) is opened with
/// `flags | O_NOFOLLOW`.
pub(super) fn open_beneath(
    root_dir: BorrowedFd<'_>,
    root_path: &Path,
    rel: &str,
    flags: OFlags,
) -> Result<OwnedFd, FileError> {
    // As long a path as the kernel would resolve in one call, no longer.
    if rel.len() >= libc::PATH_MAX as usize {
        return Err(FileError::NotFound);
    }
    // The names still to walk, the next one last.
    let mut pending: Vec<Cow<'_, [u8]>> = rel
        .split('/')
        .rev()
        .map(|name| Cow::Borrowed(name.as_bytes()))
        .collect();
    // The directories below the root the walk is in (empty: the root itself).
    let mut stack: Vec<OwnedFd> = Vec::new();
    // How many levels above the root the walk is, by name only (0: at or below it).
    let mut above = 0;
    let root_depth = root_names(root_path).count();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        match &*name {
            b"" | b"." => continue,
            b".." => {
                if above > 0 || stack.pop().is_none() {
                    // `/..` is `/`.
                    above = (above + 1).min(root_depth);
                }
                continue;
            }
            _ => {}
        }
        if above > 0 {
            // Outside the root only its own canonical names lead back in.
            let way_in = root_names(root_path).nth(root_depth - above);
            if way_in.is_some_and(|n| n.as_encoded_bytes() == &*name) {
                above -= 1;
                continue;
            }
            return Err(FileError::Forbidden);
        }
        let here = stack.last().map_or(root_dir, |fd| fd.as_fd());
        let last = pending.is_empty();
        let open_flags = if last { flags | OFlags::NOFOLLOW } else { DIR };
        let err = match rustix::fs::openat(here, &*name, open_flags, Mode::empty()) {
            Ok(fd) if last => return Ok(fd),
            Ok(fd) => {
                stack.push(fd);
                continue;
            }
            Err(e) => e,
        };
        // O_NOFOLLOW met a symlink: ELOOP (Linux, macOS), EMLINK (FreeBSD), or ENOTDIR
        // when O_DIRECTORY is checked first (Linux). readlinkat tells.
        if !matches!(err, Errno::LOOP | Errno::MLINK | Errno::NOTDIR) {
            return Err(open_error(err));
        }
        let target = match rustix::fs::readlinkat(here, &*name, Vec::new()) {
            Ok(target) => target.into_bytes(),
            // Not a symlink (EINVAL), or no longer one: the open's own answer.
            Err(_) => return Err(open_error(err)),
        };
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(FileError::Forbidden);
        }
        if target.is_empty() {
            return Err(FileError::NotFound);
        }
        if target[0] == b'/' {
            // From `/`: above the root by all its names (0 when the root is `/`).
            stack.clear();
            above = root_depth;
        }
        pending.extend(
            target
                .split(|&b| b == b'/')
                .rev()
                .map(|n| Cow::Owned(n.to_vec())),
        );
    }
    // The walk ended on a directory (`..`, `.` or a way back in were the last names).
    if above > 0 {
        return Err(FileError::Forbidden);
    }
    let here = stack.last().map_or(root_dir, |fd| fd.as_fd());
    rustix::fs::openat(here, ".", flags | OFlags::NOFOLLOW, Mode::empty()).map_err(open_error)
}

/// The names of the canonical root, from `/` down.
fn root_names(root: &Path) -> impl Iterator<Item = &std::ffi::OsStr> {
    root.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::unix::{open_dir, OPEN_READ};
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::{symlink, MetadataExt};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    const SECRET: &[u8] = b"SECRET-walk-7c2";

    struct Tree {
        _base: tempfile::TempDir,
        base: PathBuf,
        root: PathBuf,
    }

    fn tree() -> Tree {
        let base_dir = tempfile::tempdir().expect("tempdir");
        let base = base_dir.path().canonicalize().expect("canonical");
        let root = base.join("www");
        std::fs::create_dir_all(root.join("sub/deep")).expect("mkdir");
        std::fs::create_dir_all(base.join("outside/deep")).expect("mkdir");
        std::fs::write(root.join("a.txt"), "a").expect("write");
        std::fs::write(root.join("sub/deep/c.txt"), "c").expect("write");
        std::fs::write(base.join("secret.txt"), SECRET).expect("write");
        std::fs::write(base.join("outside/deep/c.txt"), SECRET).expect("write");
        Tree {
            _base: base_dir,
            base,
            root,
        }
    }

    fn open(t: &Tree, dir: &OwnedFd, rel: &str) -> Result<Vec<u8>, FileError> {
        let fd = open_beneath(dir.as_fd(), &t.root, rel, OPEN_READ)?;
        let mut bytes = Vec::new();
        // A directory reads as an error: its (empty) bytes are good enough here.
        let _ = std::fs::File::from(fd).read_to_end(&mut bytes);
        Ok(bytes)
    }

    #[test]
    fn links_are_walked_by_name_and_never_out() {
        let t = tree();
        for (link, target) in [
            ("up", "../.."),
            ("parent", ".."),
            ("in-by-name", "../www/a.txt"),
            ("abs-in", "/PLACEHOLDER/www/sub/../a.txt"),
            ("abs-out", "/PLACEHOLDER/secret.txt"),
            ("abs-root-dotdot", "/PLACEHOLDER/www/../secret.txt"),
            ("slash", "/"),
            ("empty-ish", "./"),
            ("self", "."),
            ("chain1", "chain2"),
            ("chain2", "sub/../a.txt"),
            ("loop-a", "loop-b/x"),
            ("loop-b", "loop-a"),
        ] {
            let target = target.replace("/PLACEHOLDER", &t.base.to_string_lossy());
            symlink(target, t.root.join(link)).expect("symlink");
        }
        let dir = open_dir(&t.root).expect("root");
        let ok = |rel: &str, want: &[u8]| {
            assert_eq!(open(&t, &dir, rel).as_deref(), Ok(want), "{rel}");
        };
        ok("a.txt", b"a");
        ok("in-by-name", b"a");
        ok("abs-in", b"a");
        ok("chain1", b"a");
        ok("self/self/sub/deep/c.txt", b"c");
        ok("sub/deep/../../a.txt", b"a");
        ok("empty-ish/a.txt", b"a");
        let refused = |rel: &str| {
            assert_eq!(open(&t, &dir, rel), Err(FileError::Forbidden), "{rel}");
        };
        refused("up");
        refused("up/secret.txt");
        refused("up/outside/deep/c.txt");
        refused("abs-out");
        refused("abs-root-dotdot");
        refused("slash");
        refused("slash/etc/passwd");
        refused("loop-a");
        refused("sub/../../secret.txt");
        // Out and straight back in by the root's own names is the root.
        let name = |p: &Path| {
            p.file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_owned()
        };
        let (www, base) = (name(&t.root), name(&t.base));
        ok(&format!("parent/{www}/a.txt"), b"a");
        ok(&format!("up/{base}/{www}/a.txt"), b"a");
        ok(
            &format!("up/{base}/{www}/up/{base}/{www}/sub/deep/c.txt"),
            b"c",
        );
        refused(&format!("up/{base}/secret.txt"));
        refused(&format!("up/{www}/a.txt"));
        assert!(open(&t, &dir, &format!("parent/{www}")).is_ok());
        assert_eq!(open(&t, &dir, "missing"), Err(FileError::NotFound));
        assert_eq!(open(&t, &dir, "a.txt/x"), Err(FileError::NotFound));
        let long = "a/".repeat(libc::PATH_MAX as usize);
        assert_eq!(open(&t, &dir, &long), Err(FileError::NotFound));
    }

    /// A symlink chain of exactly the limit is followed; one more is a loop.
    #[test]
    fn symlinks_are_capped() {
        let t = tree();
        let n = MAX_SYMLINKS as usize;
        // l0 -> l1 -> … -> l40 -> a.txt: from l1, 40 links; from l0, 41.
        for i in 0..n {
            symlink(format!("l{}", i + 1), t.root.join(format!("l{i}"))).expect("symlink");
        }
        symlink("a.txt", t.root.join(format!("l{n}"))).expect("symlink");
        let dir = open_dir(&t.root).expect("root");
        assert_eq!(open(&t, &dir, "l1").as_deref(), Ok(&b"a"[..]));
        assert_eq!(open(&t, &dir, "l0"), Err(FileError::Forbidden));
    }

    /// While one thread swaps directories below the root for symlinks out of it (absolute
    /// and relative), and moves a directory out from under a `..` link, for one second,
    /// others open files below them: nothing outside the root is ever opened.
    #[test]
    fn concurrent_renames_never_lead_out() {
        let t = tree();
        // www/d: a real directory, or a symlink to base/outside (absolute or relative).
        std::fs::create_dir_all(t.root.join("real/deep")).expect("mkdir");
        std::fs::write(t.root.join("real/deep/c.txt"), "inside").expect("write");
        symlink(t.base.join("outside"), t.root.join("abs-link")).expect("symlink");
        symlink("../outside", t.root.join("rel-link")).expect("symlink");
        // www/m/n/up -> ../../a.txt, while www/m/n is moved to base/x/n and back: a
        // kernel resolving `..` from base/x/n would reach base/a.txt (a secret).
        std::fs::create_dir_all(t.root.join("m/n")).expect("mkdir");
        std::fs::create_dir_all(t.base.join("x")).expect("mkdir");
        symlink("../../a.txt", t.root.join("m/n/up")).expect("symlink");
        std::fs::write(t.base.join("a.txt"), SECRET).expect("write");
        let secret_ids: Vec<(u64, u64)> = ["secret.txt", "outside/deep/c.txt", "a.txt"]
            .iter()
            .map(|p| {
                let m = std::fs::metadata(t.base.join(p)).expect("stat");
                (m.dev(), m.ino())
            })
            .collect();
        let dir = open_dir(&t.root).expect("root");
        let stop = AtomicBool::new(false);
        let (opened, refused) = std::thread::scope(|s| {
            s.spawn(|| {
                let r = &t.root;
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(1) {
                    for holder in ["real", "abs-link", "rel-link"] {
                        let _ = std::fs::rename(r.join(holder), r.join("d"));
                        std::thread::yield_now();
                        let _ = std::fs::rename(r.join("d"), r.join(holder));
                    }
                    let _ = std::fs::rename(r.join("m/n"), t.base.join("x/n"));
                    std::thread::yield_now();
                    let _ = std::fs::rename(t.base.join("x/n"), r.join("m/n"));
                }
                stop.store(true, Ordering::Relaxed);
            });
            let openers: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        let (mut opened, mut refused) = (0u32, 0u32);
                        while !stop.load(Ordering::Relaxed) {
                            for rel in ["d/deep/c.txt", "d/deep/../deep/c.txt", "m/n/up"] {
                                match open_beneath(dir.as_fd(), &t.root, rel, OPEN_READ) {
                                    Ok(fd) => {
                                        let file = std::fs::File::from(fd);
                                        let m = file.metadata().expect("fstat");
                                        assert!(
                                            !secret_ids.contains(&(m.dev(), m.ino())),
                                            "{rel} opened a file outside the root"
                                        );
                                        opened += 1;
                                    }
                                    Err(_) => refused += 1,
                                }
                            }
                        }
                        (opened, refused)
                    })
                })
                .collect();
            openers
                .into_iter()
                .map(|h| h.join().expect("opener"))
                .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
        });
        // Both outcomes happened: the race was real, and the walk still opens files.
        assert!(
            opened > 10 && refused > 10,
            "{opened} opened, {refused} refused"
        );
    }
}
