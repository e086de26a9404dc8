//! The tests' fixtures around the shared driver `protocol::sim::Driver` (one connection
//! driven at a simulated time, answering file, listing and upload actions from tables,
//! every response parsed and its `Date` checked against the clock): a fake web root,
//! the configuration, and request builders.
#![allow(dead_code)]

use protocol::sim::{Start, Tables};
use protocol::{Config, FileError, FileMeta};

// Not every test file uses every name.
#[allow(unused_imports)]
pub use protocol::sim::{deadline, Out};

/// The driver over tables ([`web_root`] unless changed: `d.world.files`, `d.world.dirs`,
/// `d.world.upload_result`, `d.world.upload_queue`, `d.world.uploads`).
pub type Driver = protocol::sim::Driver<Tables>;

/// Declares a test that runs natively and under wasm-bindgen-test.
#[macro_export]
macro_rules! t {
    ($name:ident $body:block) => {
        #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(not(target_arch = "wasm32"), test)]
        fn $name() $body
    };
}

/// The wall clock when a driver starts (`Start::default()`).
pub const T0: u64 = 1_800_000_000;
pub const MTIME: u64 = 1_700_000_000;

/// A fake web root.
pub fn web_root() -> Tables {
    let mut t = Tables::default();
    let mut f = |path: &str, meta: Result<FileMeta, FileError>| {
        t.files.insert(path.to_string(), meta);
    };
    for (path, len) in [
        ("index.html", 1133),
        ("logo.png", 7028),
        ("sample.txt", 218),
        ("photo.jpg", 10),
        ("photo.jpeg", 10),
        ("page.htm", 10),
        ("uploads/a.json", 7),
        ("style.css", 50),
        ("app.js", 50),
        ("pic.svg", 50),
        ("favicon.ico", 50),
        ("anim.gif", 50),
        ("img.webp", 50),
        ("mod.wasm", 50),
        ("notes.qqq", 5),
        ("README", 5),
        ("empty.html", 0),
        ("big.html", 1 << 30),
        ("docs/index.html", 42),
        ("app.js.br", 20),
        ("app.js.gz", 30),
        ("style.css.gz", 25),
        ("only.js.br", 9),
    ] {
        f(path, Tables::file(len, MTIME));
    }
    f("uploads", Tables::dir(MTIME));
    f("docs", Tables::dir(MTIME));
    f("escape.html", Err(FileError::Forbidden));
    f("broken.html", Err(FileError::Other));
    t
}

pub fn config() -> Config {
    Config::new("127.0.0.1", 8080, &[])
}

/// A driver with the default configuration over the [`web_root`]: opening a file takes
/// 250 ms, storing an upload 1.5 s, writing an answer out 40 ms (then `Written`).
pub fn driver() -> Driver {
    driver_with(config())
}

/// A driver with this configuration over the [`web_root`].
pub fn driver_with(config: Config) -> Driver {
    Driver::new(config, web_root(), Start::default())
}

/// One request through a fresh connection.
pub fn one(req: &[u8]) -> Driver {
    let mut d = driver();
    d.send(req);
    d
}

/// `GET path` with a good Host.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n").into_bytes()
}

/// `METHOD path` with a good Host and extra header lines (each ending in \r\n); a body
/// after the head goes in `extra` after an empty line (`"...\r\n\r\nBODY"`), and then
/// nothing is appended after it.
pub fn req(method: &str, path: &str, extra: &str) -> Vec<u8> {
    let head_end = if extra.contains("\r\n\r\n") {
        ""
    } else {
        "\r\n"
    };
    format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n{extra}{head_end}").into_bytes()
}

/// A JSON upload.
pub fn upload(body: &str) -> Vec<u8> {
    format!(
        "POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `GET path` with a good Host and extra header lines (each ending in \r\n).
pub fn get_with(path: &str, extra: &str) -> Vec<u8> {
    req("GET", path, extra)
}
