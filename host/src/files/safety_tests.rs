//! Path safety as a property (SPEC "Security", issue 6): whatever the request target —
//! percent-encodings, dot segments, separators, backslashes, NUL, long paths — the file
//! the runtime opens is below the web root, and symlinks inside the root that point
//! outside it are refused.
//!
//! Every generated target goes the way a request's does: `protocol::target::resolve_path`
//! (the core's rules), then `host::files::Root::open_file` on a temporary tree, through
//! each of the runtime's ways below the root: Linux's `openat2(RESOLVE_BENEATH)`, its
//! canonicalizing fallback (a kernel without `openat2`), and the portable walk that macOS,
//! the BSDs and `PORTABLE_IO=1` take (one `openat(O_NOFOLLOW)` per name, symlinks read and
//! spliced in by the walk itself). Off Linux, or with `PORTABLE_IO=1`, all three are the
//! walk:
//!
//! ```text
//! base/secret.txt                  SECRET: no open may ever read it
//! base/www/                        the root: index.html, a.txt, sub/b.html, sub/deep/c.txt
//! base/www/rel-out.txt  -> ../secret.txt          (relative, out)
//! base/www/abs-out.txt  -> base/secret.txt        (absolute, out)
//! base/www/dir-out      -> base                   (absolute directory, out)
//! base/www/rel-dir-out  -> ..                     (relative directory, out)
//! base/www/sub/up       -> ../..                  (relative, climbs out from a subdirectory)
//! base/www/sub/leak.txt -> ../../secret.txt       (relative, out)
//! base/www/rel-in.txt   -> a.txt                  (relative, in: served)
//! base/www/abs-in.html  -> base/www/sub/b.html    (absolute, in: served)
//! base/www/loop         -> loop
//! ```
//!
//! Properties, for each target: a path the core accepts is relative, with no empty, `.`,
//! `..` or hidden segment, no backslash, no NUL, no control character; what `open_file`
//! opens is below the canonical root (its device and inode are those of an entry of the
//! tree below the root, and on Linux `/proc/self/fd` names a path below it) and never has
//! the secret's content; when the file system resolves the path to something outside the
//! root, the open is refused with `Forbidden` or `NotFound`; when it resolves inside the
//! root to a file or directory, the open succeeds (the checks do not refuse everything);
//! and the three ways agree: each opens the same file, or each refuses.

#![cfg(unix)]

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use crate::files::Root;
use proptest::prelude::*;
use protocol::FileError;
use protocol::SafePath;

const SECRET: &str = "TOP-SECRET-path-safety-5d1e";

struct Tree {
    _base: tempfile::TempDir,
    root: PathBuf,
    canonical_root: PathBuf,
    /// Device and inode of every file and directory below the root (symlinks not
    /// followed), the root included.
    inside: HashSet<(u64, u64)>,
}

fn tree() -> Tree {
    let base = tempfile::tempdir().expect("tempdir");
    let base_path = base.path().canonicalize().expect("canonical base");
    let root = base_path.join("www");
    std::fs::create_dir_all(root.join("sub/deep")).expect("mkdir");
    std::fs::create_dir_all(root.join("uploads")).expect("mkdir");
    let secret = base_path.join("secret.txt");
    std::fs::write(&secret, SECRET).expect("secret");
    for (name, body) in [
        ("index.html", "<p>index</p>"),
        ("a.txt", "file a"),
        ("sub/b.html", "<p>b</p>"),
        ("sub/deep/c.txt", "file c"),
        ("uploads/u.json", "{}"),
        ("a b.txt", "spaced"),
        ("%41.txt", "percent-named"),
    ] {
        std::fs::write(root.join(name), body).expect("write");
    }
    symlink("../secret.txt", root.join("rel-out.txt")).expect("symlink");
    symlink(&secret, root.join("abs-out.txt")).expect("symlink");
    symlink(&base_path, root.join("dir-out")).expect("symlink");
    symlink("..", root.join("rel-dir-out")).expect("symlink");
    symlink("../..", root.join("sub/up")).expect("symlink");
    symlink("../../secret.txt", root.join("sub/leak.txt")).expect("symlink");
    symlink("a.txt", root.join("rel-in.txt")).expect("symlink");
    symlink(root.join("sub/b.html"), root.join("abs-in.html")).expect("symlink");
    symlink("loop", root.join("loop")).expect("symlink");
    let canonical_root = root.canonicalize().expect("canonical root");
    let mut inside = HashSet::new();
    let mut dirs = vec![canonical_root.clone()];
    while let Some(dir) = dirs.pop() {
        let meta = std::fs::symlink_metadata(&dir).expect("stat");
        inside.insert((meta.dev(), meta.ino()));
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            if meta.is_dir() {
                dirs.push(path);
            } else if meta.is_file() {
                inside.insert((meta.dev(), meta.ino()));
            }
        }
    }
    Tree {
        _base: base,
        root,
        canonical_root,
        inside,
    }
}

/// The roots to check: `openat2`, its fallback, the portable walk.
fn roots(t: &Tree) -> [(&'static str, Root); 3] {
    let fast = Root::new(&t.root).expect("root");
    let slow = Root::new(&t.root).expect("root");
    slow.disable_openat2();
    let walk = Root::new(&t.root).expect("root");
    walk.force_portable();
    [("openat2", fast), ("fallback", slow), ("walk", walk)]
}

/// Segments worth combining: real names, the escaping symlinks, dot forms in every
/// encoding, separators smuggled inside a segment, NUL, over-long and double encodings.
const SEGMENTS: &[&str] = &[
    "a.txt",
    "sub",
    "b.html",
    "deep",
    "c.txt",
    "index.html",
    "uploads",
    "u.json",
    "www",
    "secret.txt",
    "rel-out.txt",
    "abs-out.txt",
    "dir-out",
    "rel-dir-out",
    "up",
    "leak.txt",
    "rel-in.txt",
    "abs-in.html",
    "loop",
    "a%20b.txt",
    "%2541.txt",
    "%61.txt",
    "%72el-out.txt",
    ".",
    "..",
    "...",
    "%2e",
    "%2E",
    "%2e%2e",
    "%2E%2e",
    ".%2e",
    "%2e.",
    "%252e%252e",
    "..%2f",
    "..%2F",
    "%2f..",
    "%2f",
    "%5c",
    "%5C..",
    "..\\",
    "\\..",
    "\\",
    "..%5csecret.txt",
    "%00",
    "\0",
    "a.txt%00.html",
    "%c0%ae%c0%ae",
    "%c0%af",
    "%e0%80%ae",
    "%ff",
    "%",
    "%2",
    "%zz",
    ".hidden",
    "~",
    "?x=..",
    "#..",
    ";..",
    "\t",
    "%0a",
    "%0d%0a",
    "%7f",
];

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(&SEGMENTS[..19]).prop_map(str::to_string),
        4 => proptest::sample::select(SEGMENTS).prop_map(str::to_string),
        2 => "[a-zA-Z0-9._%~\\\\-]{0,12}",
        1 => (1usize..400).prop_map(|n| "a".repeat(n)),
        1 => (1usize..40).prop_map(|n| "../".repeat(n)),
        1 => (1usize..40).prop_map(|n| "%2e%2e%2f".repeat(n)),
    ]
}

fn separator() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(
        &[
            "/", "/", "/", "/", "/", "//", "/./", "\\", "%2f", "%5c", "/../",
        ][..],
    )
}

/// A request target: mostly free combinations, a quarter aimed at the escaping links.
fn target() -> impl Strategy<Value = String> {
    prop_oneof![3 => free_target(), 1 => escape_target()]
}

/// An escaping symlink, reached and continued in various spellings.
fn escape_target() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(
            &[
                "/rel-out.txt",
                "/abs-out.txt",
                "/dir-out",
                "/rel-dir-out",
                "/sub/up",
                "/sub/leak.txt",
                "//sub/./up",
                "/%72el-dir-out",
                "/sub/%75p",
                "/sub%2fup",
            ][..],
        ),
        proptest::sample::select(
            &[
                "",
                "/",
                "/secret.txt",
                "/%73ecret.txt",
                "//secret.txt",
                "/./secret.txt",
                "/www/a.txt",
                "/www/rel-out.txt",
                "/www/sub/up/secret.txt",
                "/www/../secret.txt",
                "/www/",
            ][..],
        ),
        proptest::sample::select(&["", "?x", "#y"][..]),
    )
        .prop_map(|(link, tail, query)| format!("{link}{tail}{query}"))
}

/// A prefix, segments joined by separators, sometimes a query.
fn free_target() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(&["/", "/", "/", "/", "/", "//", "", "\\", "/./", "/%2e%2e/"][..]),
        proptest::collection::vec((segment(), separator()), 0..8),
        any::<bool>(),
        proptest::sample::select(&["", "", "?q=1", "?/../secret.txt", "#frag", "?"][..]),
    )
        .prop_map(|(prefix, parts, trailing, query)| {
            let mut t = prefix.to_string();
            let n = parts.len();
            for (i, (seg, sep)) in parts.into_iter().enumerate() {
                t.push_str(&seg);
                if i + 1 < n || trailing {
                    t.push_str(sep);
                }
            }
            t.push_str(query);
            t
        })
}

/// What the file system makes of `root/rel`, with symlinks followed.
enum Resolved {
    Inside { is_file_or_dir: bool },
    Outside,
    Unresolvable,
}

fn resolve_on_disk(t: &Tree, rel: &str) -> Resolved {
    match t.root.join(rel).canonicalize() {
        Ok(real) if real.starts_with(&t.canonical_root) => {
            let kind = std::fs::metadata(&real).map(|m| m.file_type());
            Resolved::Inside {
                is_file_or_dir: kind.is_ok_and(|k| k.is_file() || k.is_dir()),
            }
        }
        Ok(_) => Resolved::Outside,
        Err(_) => Resolved::Unresolvable,
    }
}

/// Where an open descriptor really points (Linux: by `/proc/self/fd`; elsewhere the
/// canonical root when its device and inode are of the tree below the root, or `/??`).
fn opened_path(t: &Tree, file: &std::fs::File) -> PathBuf {
    if cfg!(target_os = "linux") {
        use std::os::fd::AsRawFd;
        std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("readlink fd")
    } else if is_inside(t, file) {
        t.canonical_root.clone()
    } else {
        PathBuf::from("/??")
    }
}

/// Whether `file` is one of the files or directories below the root.
fn is_inside(t: &Tree, file: &std::fs::File) -> bool {
    let meta = file.metadata().expect("fstat");
    t.inside.contains(&(meta.dev(), meta.ino()))
}

/// What an open gave, to compare the ways: the file's identity, or a refusal.
fn outcome(root: &Root, safe: &SafePath) -> Option<(u64, u64)> {
    let (file, _) = root.open_file(safe).ok()?;
    let meta = file.metadata().expect("fstat");
    Some((meta.dev(), meta.ino()))
}

/// The whole property for one target against one `Root`; `Err` names the violation.
fn check(t: &Tree, root: &Root, target: &str) -> Result<(), String> {
    let Some(safe) = SafePath::from_request_path(target) else {
        return Ok(()); // the core refused it (400/403/404): nothing is opened
    };
    let rel = safe.as_str();
    if rel.starts_with('/')
        || rel.contains(['\\', '\0'])
        || rel
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == ".." || s.starts_with('.'))
    {
        return Err(format!("core let {target:?} through as {rel:?}"));
    }
    let lexical = Path::new(rel);
    if lexical.is_absolute() || lexical.components().count() != rel.split('/').count() {
        return Err(format!("{rel:?} is not a plain relative path"));
    }
    let on_disk = resolve_on_disk(t, rel);
    match root.open_file(&safe) {
        Ok((mut file, meta)) => {
            let real = opened_path(t, &file);
            if !real.starts_with(&t.canonical_root) || !is_inside(t, &file) {
                return Err(format!(
                    "{target:?} ({rel:?}) opened {} outside the root",
                    real.display()
                ));
            }
            if matches!(on_disk, Resolved::Outside) {
                return Err(format!("{target:?} resolves outside yet was opened"));
            }
            if !meta.is_dir {
                let mut content = Vec::new();
                file.read_to_end(&mut content)
                    .map_err(|e| format!("read {rel:?}: {e}"))?;
                if content == SECRET.as_bytes()
                    || content
                        .windows(SECRET.len())
                        .any(|w| w == SECRET.as_bytes())
                {
                    return Err(format!("{target:?} read the secret"));
                }
                if content.len() as u64 != meta.len {
                    return Err(format!("{rel:?}: size {} vs {}", content.len(), meta.len));
                }
            }
            Ok(())
        }
        Err(e) => match on_disk {
            Resolved::Outside if !matches!(e, FileError::Forbidden | FileError::NotFound) => Err(
                format!("{target:?} ({rel:?}) points outside: refused as {e:?}"),
            ),
            Resolved::Inside {
                is_file_or_dir: true,
            } => Err(format!(
                "{target:?} ({rel:?}) is inside the root but was refused: {e:?}"
            )),
            _ => Ok(()),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn opened_files_are_always_below_the_root(targets in proptest::collection::vec(target(), 8)) {
        thread_local! {
            static TREE: Tree = tree();
        }
        TREE.with(|t| {
            let roots = roots(t);
            for target in &targets {
                for (way, root) in &roots {
                    check(t, root, target).map_err(|e| TestCaseError::fail(format!("{way}: {e}")))?;
                }
                if let Some(safe) = SafePath::from_request_path(target) {
                    let [a, b, c] = roots.each_ref().map(|(_, root)| outcome(root, &safe));
                    prop_assert!(
                        a == b && b == c,
                        "{target:?}: openat2 {a:?}, fallback {b:?}, walk {c:?}"
                    );
                }
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}

/// The escaping symlinks, reached by every spelling the core lets through, are refused
/// (deterministic companion of the property, so the interesting cases always run).
#[test]
fn symlinks_out_of_the_root_are_refused_in_every_spelling() {
    let t = tree();
    let roots = roots(&t);
    let outside = [
        "/rel-out.txt",
        "/%72el-out.txt",
        "/abs-out.txt",
        "/%61bs-out.txt",
        "/dir-out/secret.txt",
        "/dir-out/www/../secret.txt",
        "/rel-dir-out/secret.txt",
        "/sub/up/secret.txt",
        "/sub//up/./secret.txt",
        "/sub/leak.txt",
        "/sub/./leak.txt?x",
        "//sub//leak.txt",
        "/dir-out/",
        "/rel-dir-out",
    ];
    let mut checked = 0;
    for target in outside {
        let Some(safe) = SafePath::from_request_path(target) else {
            continue; // refused by the core already
        };
        for (way, root) in &roots {
            match root.open_file(&safe) {
                Err(FileError::Forbidden | FileError::NotFound) => checked += 1,
                Err(e) => panic!("{way}: {target}: {e:?}"),
                Ok((f, _)) => panic!("{way}: {target} opened {}", opened_path(&t, &f).display()),
            }
        }
    }
    assert!(
        checked >= 10 * roots.len(),
        "only {} spellings reached the runtime",
        checked / roots.len()
    );
    // And the way back in through an escaping directory link, or a link inside, works.
    for (target, want) in [
        ("/rel-in.txt", "file a"),
        ("/abs-in.html", "<p>b</p>"),
        ("/a%20b.txt", "spaced"),
        ("/%2541.txt", "percent-named"),
        ("/sub/deep/c.txt", "file c"),
    ] {
        let safe = SafePath::from_request_path(target).expect("safe");
        for (way, root) in &roots {
            let (mut f, _) = root
                .open_file(&safe)
                .unwrap_or_else(|e| panic!("{way}: {target}: {e:?}"));
            let mut s = String::new();
            f.read_to_string(&mut s).expect("read");
            assert_eq!(s, want, "{way}: {target}");
        }
    }
    for target in [
        "/sub/up/www/a.txt",
        "/rel-dir-out/www/a.txt",
        "/dir-out/www/sub/b.html",
    ] {
        // Out of the root and back in: whatever is opened is below the root.
        let safe = SafePath::from_request_path(target).expect("safe");
        for (way, root) in &roots {
            if let Ok((f, _)) = root.open_file(&safe) {
                assert!(
                    opened_path(&t, &f).starts_with(&t.canonical_root) && is_inside(&t, &f),
                    "{way}: {target}"
                );
            }
        }
    }
    for target in ["/loop", "/loop/x"] {
        let safe = SafePath::from_request_path(target).expect("safe");
        for (way, root) in &roots {
            assert!(root.open_file(&safe).is_err(), "{way}: {target}");
        }
    }
}

/// Traversal spellings never even reach the runtime: the core refuses them.
#[test]
fn traversal_spellings_are_refused_by_the_core() {
    for target in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2e/secret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/sub/../../secret.txt",
        "/..%2fsecret.txt",
        "/sub%2f..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/a.txt%00.html",
        "/a.txt\0.html",
        "/%c0%ae%c0%ae/secret.txt",
        "\\..\\secret.txt",
        "secret.txt",
        "/.hidden",
    ] {
        assert!(
            SafePath::from_request_path(target).is_none(),
            "{target:?} was accepted"
        );
    }
}

/// The generator is not vacuous: a good share of its targets pass the core and reach the
/// file system, some open files, and some resolve outside the root (and are refused).
#[test]
fn the_generated_targets_reach_the_runtime() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let t = tree();
    for (way, root) in roots(&t) {
        let mut runner = TestRunner::deterministic();
        let strategy = target();
        let (mut passed_core, mut opened, mut forbidden) = (0, 0, 0);
        for _ in 0..3000 {
            let target = strategy.new_tree(&mut runner).expect("generate").current();
            let Some(safe) = SafePath::from_request_path(&target) else {
                continue;
            };
            passed_core += 1;
            let outside = matches!(resolve_on_disk(&t, safe.as_str()), Resolved::Outside);
            match root.open_file(&safe) {
                Ok(_) => opened += 1,
                Err(_) if outside => forbidden += 1,
                Err(_) => {}
            }
        }
        assert!(
            passed_core > 400,
            "{way}: only {passed_core} of 3000 passed the core"
        );
        assert!(opened > 60, "{way}: only {opened} opened");
        assert!(
            forbidden > 200,
            "{way}: only {forbidden} resolved outside (and were refused)"
        );
        eprintln!("{way}: 3000 targets: {passed_core} passed the core, {opened} opened, {forbidden} resolved outside");
    }
}
