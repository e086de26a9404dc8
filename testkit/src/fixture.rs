//! The one fixture builder: a web root in a temporary directory, a secret beside it.

use std::path::{Path, PathBuf};

/// The content of the file outside the web root; no response may ever contain it.
pub const SECRET: &str = "TOP-SECRET-outside-the-web-root-7f3a9c";

pub const INDEX_HTML: &str = "<!doctype html>\n<title>suite index</title>\n<h1>index</h1>\n";

/// Bytes that are not text: every byte value, CR LF pairs, and NULs.
pub fn binary_bytes(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}

/// A web root and the temporary directory around it, with a secret file beside (outside)
/// the root. [`Fixture::new`] is the suite's root; [`Fixture::empty`] and
/// [`Fixture::with_file`] build others; [`Fixture::at`] wraps a root made elsewhere.
pub struct Fixture {
    /// The temporary directory: the server's default working directory.
    pub base: tempfile::TempDir,
    /// The web root (`base/www`, unless given to [`Fixture::at`]).
    pub root: PathBuf,
    /// `base/secret.txt`, outside the root.
    pub secret: PathBuf,
}

impl Default for Fixture {
    fn default() -> Fixture {
        Fixture::new()
    }
}

impl Fixture {
    /// The suite's web root: a page of every served type, downloads, a file of an
    /// unknown type, `uploads/`, and symlinks out of the root (to the secret and to the
    /// base directory) and within it.
    pub fn new() -> Fixture {
        let files: &[(&str, &[u8])] = &[
            ("index.html", INDEX_HTML.as_bytes()),
            ("page.htm", b"<p>an htm page</p>"),
            ("sample.txt", b"sample text\r\nsecond line\n"),
            ("data.json", b"{\"k\": [1, 2, 3]}"),
            ("style.css", b"body { color: red }"),
            ("app.js", b"console.log(1);"),
            ("image.svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            ("mod.wasm", b"\0asm\x01\0\0\0"),
            ("favicon.ico", b"\0\0\x01\0"),
            ("anim.gif", b"GIF89a"),
            ("pic.webp", b"RIFF\0\0\0\0WEBP"),
            ("notes.unknownext", b"what is this"),
            ("sub/inner.html", b"<p>inner</p>"),
        ];
        let mut fx = Fixture::empty();
        for (name, bytes) in files {
            fx = fx.with_file(name, bytes);
        }
        let fx = fx
            .with_file("logo.png", binary_bytes(7028))
            .with_file("photo.jpg", binary_bytes(3000))
            .with_file("photo.jpeg", binary_bytes(1234));
        let (root, secret, base) = (&fx.root, &fx.secret, fx.base.path());
        std::os::unix::fs::symlink("../secret.txt", root.join("leak.txt")).expect("symlink");
        std::os::unix::fs::symlink(secret, root.join("abs-leak.txt")).expect("symlink");
        std::os::unix::fs::symlink(base, root.join("outdir")).expect("symlink");
        std::os::unix::fs::symlink("../secret.txt", root.join("leak.html")).expect("symlink");
        std::os::unix::fs::symlink("sample.txt", root.join("inlink.txt")).expect("symlink");
        std::os::unix::fs::symlink(root.join("page.htm"), root.join("abs-inlink.html"))
            .expect("symlink");
        fx
    }

    /// An empty web root with only `uploads/`; beside it `secret.txt` and `server.py`,
    /// both holding [`SECRET`].
    pub fn empty() -> Fixture {
        let base = tempfile::tempdir().expect("tempdir");
        let root = base.path().join("www");
        let secret = base.path().join("secret.txt");
        std::fs::write(&secret, SECRET).expect("secret");
        std::fs::write(base.path().join("server.py"), SECRET).expect("server.py");
        std::fs::create_dir_all(root.join("uploads")).expect("uploads");
        Fixture { base, root, secret }
    }

    /// A web root made elsewhere (left as it is), with a fresh temporary directory as
    /// the base (and the secret there).
    pub fn at(root: &Path) -> Fixture {
        let base = tempfile::tempdir().expect("tempdir");
        let secret = base.path().join("secret.txt");
        std::fs::write(&secret, SECRET).expect("secret");
        Fixture {
            base,
            root: root.to_path_buf(),
            secret,
        }
    }

    /// Adds a file below the root (`name` may have directories, which are created).
    pub fn with_file(self, name: &str, bytes: impl AsRef<[u8]>) -> Fixture {
        let path = self.root.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
        self
    }

    /// The names of the finished uploads (`uploads/*.json`), sorted.
    pub fn uploads(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.join("uploads"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}
