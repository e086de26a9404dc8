//! Folders as zip archives (`GET /DIR/?zip`, SPEC "Compression and archives"): the
//! archive of a real tree read back by Python's `zipfile` and tested by `unzip -t`
//! holds exactly the tree (hidden entries and symlinks leaving the root left out,
//! compressible entries deflated, UTF-8 names), HTTP/1.0 gets it close-delimited, a folder
//! the requester may not read is refused, and ZIP64 past 4 GiB (a sparse 4.5 GiB file).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::{Fixture, Server};

/// Downloads `target` with curl into `to`; the response head.
fn download(s: &Server, target: &str, to: &Path, extra: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "600", "-D", "-", "-o"])
        .arg(to)
        .args(extra)
        .arg(format!("http://{}{target}", s.host()))
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {target}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What Python's zipfile reads of an archive: each entry's name, whether deflated, and
/// the SHA-256 of its bytes (zipfile checks each CRC-32 as it reads); `testzip` first.
fn python_reads(zip: &Path) -> BTreeMap<String, (bool, String)> {
    let script = r#"
import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None, "a bad entry"
out = {}
for i in z.infolist():
    h = hashlib.sha256()
    with z.open(i) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    out[i.filename] = [i.compress_type == zipfile.ZIP_DEFLATED, h.hexdigest(), i.file_size]
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(zip)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "zipfile: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    v.as_object()
        .expect("an object")
        .iter()
        .map(|(k, e)| {
            (
                k.clone(),
                (
                    e[0].as_bool().expect("bool"),
                    e[1].as_str().expect("sha").to_string(),
                ),
            )
        })
        .collect()
}

fn unzip_tests(zip: &Path) {
    assert!(
        crate::have("unzip"),
        "`unzip` is not installed: bash .ci/run installs it (apt-get install unzip)"
    );
    let out = Command::new("unzip")
        .arg("-t")
        .arg(zip)
        .output()
        .expect("unzip");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("No errors detected"),
        "unzip -t: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The tree below `dir` as the archive must hold it: every visible directory (`a/`) and
/// file (with the SHA-256 of its bytes), following symlinks that stay in the root.
fn expected(root: &Path, dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(real) = fs::canonicalize(&path) else {
            continue;
        };
        if !real.starts_with(fs::canonicalize(root).expect("root")) {
            continue;
        }
        if real.is_dir() {
            out.insert(format!("{prefix}{name}/"), String::new());
            expected(root, &real, &format!("{prefix}{name}/"), out);
        } else {
            let bytes = fs::read(&real).expect("read");
            out.insert(format!("{prefix}{name}"), hex(&Sha256::digest(&bytes)));
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn a_folder_as_a_zip_holds_exactly_the_tree(bin: &str) {
    let fx = super::tree();
    let public = fx.root.join("pub");
    fs::write(public.join("app.js"), "let x = 1;\n".repeat(500)).expect("app.js");
    fs::write(public.join("photo.png"), crate::binary_bytes(30_000)).expect("png");
    std::os::unix::fs::symlink(&fx.secret, public.join("leak.txt")).expect("symlink out");
    std::os::unix::fs::symlink(fx.root.join("site"), public.join("site-link")).expect("in");
    let root = fx.root.clone();
    let base = fx.base.path().to_path_buf();
    let s = super::start(bin, fx);
    let zip = base.join("pub.zip");
    let head = download(&s, "/pub/?zip", &zip, &[]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("content-type: application/zip"), "{head}");
    assert!(
        lower.contains("content-disposition: attachment; filename=\"pub.zip\""),
        "{head}"
    );
    assert!(lower.contains("transfer-encoding: chunked"), "{head}");
    unzip_tests(&zip);
    let got = python_reads(&zip);
    let mut want = BTreeMap::new();
    expected(&root, &root.join("pub"), "", &mut want);
    let got_names: Vec<&String> = got.keys().collect();
    let want_names: Vec<&String> = want.keys().collect();
    assert_eq!(
        got_names, want_names,
        "the archive's entries are the tree's"
    );
    for (name, sha) in &want {
        if !name.ends_with('/') {
            assert_eq!(&got[name].1, sha, "{name:?}: its bytes");
        }
    }
    assert!(!got
        .keys()
        .any(|n| n.contains("hidden") || n.contains(".git") || n == "leak.txt"));
    assert!(got["app.js"].0, "a compressible entry is deflated");
    assert!(!got["photo.png"].0, "an image is stored");
    assert!(got.contains_key("caf\u{e9}.txt"), "UTF-8 names");
    // The listing links it; HTTP/1.0 gets it too, the close ending it.
    let page = s.get("/pub/");
    assert!(page.text().contains("href=\"./?zip\""), "{}", page.text());
    let zip10 = base.join("pub10.zip");
    let head = download(&s, "/pub/?zip", &zip10, &["--http1.0"]);
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "{head}"
    );
    assert_eq!(python_reads(&zip10), got);
    // Missing: 404, and the root.
    let r = s.get("/nowhere/?zip");
    r.expect_status(404);
    let all = base.join("all.zip");
    let head = download(&s, "/?zip", &all, &[]);
    assert!(head.contains("filename=\"root.zip\""), "{head}");
    assert!(python_reads(&all).contains_key("pub/app.js"));
}

pub fn a_zip_only_for_who_may_read_the_folder(bin: &str) {
    let fx = super::tree();
    let base = fx.base.path().to_path_buf();
    let rule = format!("up:{}@/:ro", crate::uploads::hash(bin));
    let s = Server::builder(bin)
        .fixture(fx)
        .args(&["--dir-listing", "-a", "@/pub/Zeta:ro", "-a", &rule])
        .start();
    // Anonymous: the one folder its rule names, not the others.
    let zeta = base.join("zeta.zip");
    let head = download(&s, "/pub/Zeta/?zip", &zeta, &[]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        python_reads(&zeta).keys().collect::<Vec<_>>(),
        ["inner.txt"]
    );
    let r = s.get("/pub/?zip");
    r.expect_status(401);
    // The user: all of it.
    let all = base.join("pub.zip");
    let head = download(&s, "/pub/?zip", &all, &["-u", "up:upload-pass"]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(python_reads(&all).contains_key("Zeta/inner.txt"));
}

pub fn zip64_past_4_gib_a_sparse_file(bin: &str) {
    let fx = Fixture::empty();
    let dir = fx.root.join("big");
    fs::create_dir(&dir).expect("big/");
    let huge = fs::File::create(dir.join("huge.bin")).expect("huge.bin");
    huge.set_len(4_608 << 20).expect("a sparse 4.5 GiB file");
    drop(huge);
    fs::write(dir.join("after.txt"), "after the 4 GiB mark\n").expect("after.txt");
    let base = fx.base.path().to_path_buf();
    let s = Server::builder(bin)
        .fixture(fx)
        .args(&["--dir-listing"])
        .start();
    let zip = base.join("big.zip");
    let head = download(&s, "/big/?zip", &zip, &[]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let len = fs::metadata(&zip).expect("zip").len();
    assert!(len > 4_608 << 20, "{len} bytes");
    unzip_tests(&zip);
    let got = python_reads(&zip);
    let zeros = {
        let mut h = Sha256::new();
        let block = vec![0u8; 1 << 20];
        for _ in 0..4_608 {
            h.update(&block);
        }
        hex(&h.finalize())
    };
    assert_eq!(got["huge.bin"].1, zeros, "4.5 GiB of zeros, whole");
    assert_eq!(
        got["after.txt"].1,
        hex(&Sha256::digest(b"after the 4 GiB mark\n")),
        "an entry that starts past 4 GiB"
    );
    let _ = fs::remove_file(&zip);
}
