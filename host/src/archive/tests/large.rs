//! Past the zip limits (ZIP64 by size and by count), and the smaller checks.

use super::*;

/// A file of `len` bytes that takes no space (a hole).
fn sparse(path: &Path, len: u64) {
    File::create(path)
        .expect("create")
        .set_len(len)
        .expect("set_len");
}

/// The archive written to a file as it comes, chunks of zeros as holes (no 4.5 GiB on
/// the disk); how long producing it took.
fn save_sparse(zip: &mut Archive) -> (tempfile::TempDir, PathBuf, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.zip");
    let mut out = File::create(&path).expect("create");
    let mut len = 0u64;
    let started = Instant::now();
    while let Some(chunk) = zip.next_chunk(CHUNK).expect("chunk") {
        if chunk.iter().all(|&b| b == 0) {
            out.seek(SeekFrom::Current(chunk.len() as i64))
                .expect("seek");
        } else {
            out.write_all(&chunk).expect("write");
        }
        len += chunk.len() as u64;
    }
    let took = started.elapsed();
    out.set_len(len).expect("set_len");
    (dir, path, took)
}

/// The size of the big sparse files: 4.5 GiB of zeros.
const BIG: u64 = (4 << 30) + (512 << 20);
/// Their CRC-32 (Python's `zlib.crc32`).
const BIG_ZEROS_CRC: u32 = 0xe901_77c6;
/// Their SHA-256 (`head -c 4831838208 /dev/zero | sha256sum`).
const BIG_ZEROS_SHA256: &str = "4a106567656aef43130523c2c13d109f772dd3cd4e5330e9c589e387b347a7dd";

/// ZIP64 for a stored file of 4.5 GiB (sizes past 4 GiB) and for the file after it
/// (its local header past 4 GiB), and the ZIP64 end records (the central directory past
/// 4 GiB).
#[test]
fn zip64_past_4_gib_stored() {
    let base = tempfile::tempdir().expect("tempdir");
    sparse(&base.path().join("big.bin"), BIG);
    std::fs::write(base.path().join("z.txt"), "after the big one").expect("write");
    let mut zip = Archive::new(tree(base.path()), SafePath::root(), everything());
    let (_dir, path, took) = save_sparse(&mut zip);
    eprintln!("4.5 GiB stored: archived in {took:?}");
    // Constant memory: this process never came near the file's size (the other tests
    // run beside this one in it, hence the generous bound).
    #[cfg(target_os = "linux")]
    {
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let peak_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM");
        eprintln!(
            "4.5 GiB stored: peak RSS of the test process {} MiB",
            peak_kib >> 10
        );
        assert!(peak_kib < 512 << 10, "peak RSS {peak_kib} KiB");
    }
    assert!(std::fs::metadata(&path).expect("zip").len() > BIG);
    let started = Instant::now();
    let seen = python_reads_with(&path, false);
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[0].name.as_str(), seen[0].size, seen[0].method),
        ("big.bin", BIG, 0)
    );
    assert_eq!(
        (seen[0].sha256.as_str(), seen[0].crc),
        (BIG_ZEROS_SHA256, BIG_ZEROS_CRC)
    );
    assert_eq!(seen[1].name, "z.txt");
    assert_eq!(seen[1].sha256, sha256(b"after the big one"));
    // Info-ZIP: the listing through the ZIP64 records, and a test of the entry past
    // 4 GiB (testing all of it, at about 200 MB/s, would take this test past a minute
    // in a debug build; zip64_past_4_gib_deflated tests a 4.5 GiB entry in full).
    let list = Command::new("unzip")
        .arg("-l")
        .arg(&path)
        .output()
        .expect("unzip");
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{listing}");
    assert!(
        listing
            .lines()
            .any(|l| l.contains("big.bin") && l.trim_start().starts_with(&BIG.to_string())),
        "{listing}"
    );
    unzip_tests_ok_only(&path, &["z.txt"]);
    eprintln!("4.5 GiB stored: read back in {:?}", started.elapsed());
}

/// ZIP64 for a deflated file of 4.5 GiB (its uncompressed size past 4 GiB, its
/// compressed size not). Deflating 4.5 GiB is CPU-bound: see the timing it prints.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "deflates 4.5 GiB: about 4 CPU-minutes in a debug build; runs in --release builds"
)]
fn zip64_past_4_gib_deflated() {
    let base = tempfile::tempdir().expect("tempdir");
    sparse(&base.path().join("big.txt"), BIG);
    let mut zip = Archive::new(tree(base.path()), SafePath::root(), everything());
    let (_dir, path, took) = save_sparse(&mut zip);
    eprintln!("4.5 GiB deflated: archived in {took:?}");
    assert!(std::fs::metadata(&path).expect("zip").len() < 64 << 20);
    let started = Instant::now();
    let seen = python_reads_with(&path, false);
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].name.as_str(), seen[0].size, seen[0].method),
        ("big.txt", BIG, 8)
    );
    assert_eq!(
        (seen[0].sha256.as_str(), seen[0].crc),
        (BIG_ZEROS_SHA256, BIG_ZEROS_CRC)
    );
    unzip_tests_ok(&path);
    eprintln!("4.5 GiB deflated: read back in {:?}", started.elapsed());
}

/// More than 65,535 entries: the ZIP64 end records carry the count.
#[test]
fn zip64_past_65535_entries() {
    let base = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut expected = Vec::new();
    for d in 0..3 {
        let dir = base.path().join(format!("d{d}"));
        std::fs::create_dir(&dir).expect("mkdir");
        expected.push(format!("d{d}/"));
        let mut names: Vec<String> = (0..22_000).map(|i| format!("f{i}")).collect();
        names.sort();
        for name in names {
            File::create(dir.join(&name)).expect("create");
            expected.push(format!("d{d}/{name}"));
        }
    }
    let made = started.elapsed();
    let started = Instant::now();
    let bytes = archive_of(tree(base.path()), "", CHUNK);
    let archived = started.elapsed();
    let (_dir, path) = save(&bytes);
    let started = Instant::now();
    let names: Vec<String> = python_reads(&path).into_iter().map(|s| s.name).collect();
    assert_eq!(names.len(), 66_003);
    assert_eq!(names, expected);
    unzip_tests_ok(&path);
    eprintln!(
        "66,003 entries: made in {made:?}, archived in {archived:?}, read back in {:?}",
        started.elapsed()
    );
    // The classic end record says "see ZIP64".
    let end = &bytes[bytes.len() - 22..];
    assert_eq!(&end[..4], &[0x50, 0x4b, 0x05, 0x06]);
    assert_eq!(u16::from_le_bytes([end[10], end[11]]), 0xFFFF);
}

#[test]
fn compressible_names() {
    for yes in [
        "a.html", "B.HTM", "x.min.js", "d.json", "e.svg", "r.txt", "w.wasm",
    ] {
        assert!(compressible(yes), "{yes}");
    }
    for no in [
        "a.png", "b.jpg", "c.zip", "d.gz", "e", "f.", "video.ts", "g.woff2",
    ] {
        assert!(!compressible(no), "{no}");
    }
}

#[test]
fn an_archive_can_move_to_another_thread() {
    fn is_send<T: Send>() {}
    is_send::<Archive>();
}

/// Past MAX_DEPTH levels, directories are left out, and the archive says it is
/// incomplete in its comment.
#[test]
fn too_deep_is_left_out_and_said() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut dir = base.path().to_path_buf();
    let mut expected = Vec::new();
    let mut name = String::new();
    for level in 1..=MAX_DEPTH + 2 {
        dir.push("d");
        name.push_str("d/");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::write(dir.join("f.txt"), "x").expect("write");
        if level <= MAX_DEPTH {
            expected.push(name.clone());
            expected.push(format!("{name}f.txt"));
        }
    }
    // Each level's file comes before its subdirectory (`d` < `f.txt`): reorder.
    let mut want = Vec::new();
    for level in 0..MAX_DEPTH {
        want.push(expected[2 * level].clone());
    }
    for level in (0..MAX_DEPTH).rev() {
        want.push(expected[2 * level + 1].clone());
    }
    let bytes = archive_of(tree(base.path()), "", CHUNK);
    assert!(bytes.ends_with(INCOMPLETE.as_bytes()));
    let (_dir, path) = save(&bytes);
    let names: Vec<String> = python_reads(&path).into_iter().map(|s| s.name).collect();
    assert_eq!(names, want);
    unzip_tests_ok(&path);
}
