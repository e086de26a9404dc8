//! Options from the environment and from a file (SPEC "Command line"): `RFS_*` variables
//! (a repeatable option's holds one value a line) and the TOML file of `--config FILE`,
//! seen in real answers; the order command line, then environment, then file, then
//! default; the short flags; and the usage errors (exit 2) that name the variable or the
//! key, beside the start-up failures (exit 1) a setting from either place can cause.
//!
//! Where a test goes: here if it is about where an option's value comes from; what an
//! option does is tested in the group of its behaviour, with flags. The details of the
//! parsing (every spelling, every type) are `host`'s unit tests (`host/src/cli/layers.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::{is_smol, run_to_exit_with_env};
use crate::{Fixture, Server, INDEX_HTML};

#[doc(hidden)]
#[macro_export]
macro_rules! __config_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] config;
            spec: [
                the_environment_configures_the_server,
                a_config_file_configures_the_server,
                command_line_over_environment_over_file,
                short_flags_and_the_bind_alias,
            ];
            more: [
                bad_keys_and_values_exit_2_naming_them,
            ];
        }
    };
}
pub use crate::__config_list as list;

/// The fixture's root as a string (for a variable or a file).
fn root_of(fx: &Fixture) -> String {
    fx.root
        .to_str()
        .expect("a UTF-8 temporary path")
        .to_string()
}

/// Writes `text` to `NAME` in `dir`; its path.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the configuration file");
    path
}

/// Waits for the start log line that names `threads` workers (runtime-std) or executor
/// threads (runtime-smol).
fn expect_threads(s: &Server, bin: &str, threads: u32) {
    let what = if is_smol(bin) {
        format!(" {threads} executor threads")
    } else {
        format!(" {threads} workers")
    };
    assert!(
        s.wait_log(&["listening on", &what], Duration::from_secs(5))
            .is_some(),
        "the start line should say{what}:\n{}",
        s.logs()
    );
}

/// `RFS_PORT`, `RFS_ROOT`, `RFS_DIR_LISTING`, `RFS_HEADER` (two lines) and
/// `RFS_THREADS`, with no flag at all: the server listens on port 0, serves that root,
/// lists a folder, sends both headers and runs that many threads. (The working directory
/// has no `resources/`: without `RFS_ROOT` the server could not start.)
pub fn the_environment_configures_the_server(bin: &str) {
    let fx = Fixture::new();
    let root = root_of(&fx);
    let s = Server::builder(bin)
        .fixture(fx)
        .without_port_and_root()
        .env("RFS_PORT", "0")
        .env("RFS_ROOT", &root)
        .env("RFS_DIR_LISTING", "true")
        .env("RFS_HEADER", "X-One: first\nX-Two: second\n")
        .env("RFS_THREADS", "3")
        .start();
    let r = s.get("/");
    r.expect_status(200)
        .expect_header("x-one", "first")
        .expect_header("x-two", "second");
    assert_eq!(r.body, INDEX_HTML.as_bytes());
    let r = s.get("/sub/");
    r.expect_status(200).expect_header("x-one", "first");
    assert!(r.text().contains("inner.html"), "a listing: {}", r.text());
    expect_threads(&s, bin, 3);
}

/// `--config FILE` with `port`, `root`, `dir-listing = true`, `header = [..]` and
/// `cache-control`: each shows in the answers.
pub fn a_config_file_configures_the_server(bin: &str) {
    let fx = Fixture::new();
    let root = root_of(&fx);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "rfs.toml",
        &format!(
            "# the server's settings\n\
             port = 0\n\
             root = '{root}'\n\
             dir-listing = true\n\
             header = [\"X-One: first\", \"X-Two: second\"]\n\
             cache-control = \"public, max-age=60\"\n\
             threads = 2\n"
        ),
    );
    let file = file.to_str().expect("utf-8 path");
    let s = Server::builder(bin)
        .fixture(fx)
        .without_port_and_root()
        .args(&["--config", file])
        .start();
    let r = s.get("/");
    r.expect_status(200)
        .expect_header("x-one", "first")
        .expect_header("x-two", "second")
        .expect_header("cache-control", "public, max-age=60");
    assert_eq!(r.body, INDEX_HTML.as_bytes());
    let r = s.get("/sub/");
    r.expect_status(200);
    assert!(r.text().contains("inner.html"), "a listing: {}", r.text());
    expect_threads(&s, bin, 2);
}

/// The same options in three places: the command line's win, then the environment's,
/// then the file's. A root or a port from a lower place would not start the server (the
/// roots do not exist, the port is taken), so that it starts at all shows they lost.
pub fn command_line_over_environment_over_file(bin: &str) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "rfs.toml",
        &format!(
            "port = {taken_port}\n\
             root = '/nonexistent/root-of-the-file'\n\
             header = [\"X-Layer: file\"]\n\
             dir-listing = true\n\
             cache-control = \"public, max-age=60\"\n"
        ),
    );
    let file = file.to_str().expect("utf-8 path");
    let env = [
        ("RFS_PORT", taken_port.as_str()),
        ("RFS_ROOT", "/nonexistent/root-of-the-environment"),
        ("RFS_HEADER", "X-Layer: environment"),
        ("RFS_DIR_LISTING", "off"),
    ];
    // The harness's own `--port 0 --root ROOT` are the command line's.
    let mut b = Server::builder(bin).args(&["--config", file]);
    for (k, v) in env {
        b = b.env(k, v);
    }
    let s = b.start();
    let r = s.get("/");
    r.expect_status(200)
        .expect_header("x-layer", "environment")
        .expect_header("cache-control", "public, max-age=60");
    assert_eq!(r.header_count("x-layer"), 1, "{:?}", r.headers);
    assert_eq!(r.body, INDEX_HTML.as_bytes());
    // The environment's `off` beats the file's `true`.
    s.get("/sub/").expect_status(404);
    drop(s);

    // A list on the command line replaces the environment's (and the file's).
    let mut b = Server::builder(bin).args(&["--config", file, "-H", "X-Layer: command line"]);
    for (k, v) in env {
        b = b.env(k, v);
    }
    let s = b.start();
    let r = s.get("/");
    r.expect_status(200)
        .expect_header("x-layer", "command line");
    assert_eq!(r.header_count("x-layer"), 1, "{:?}", r.headers);
    drop(s);
    drop(taken);
}

/// `-p`, `-b`, `-d`, `-t`, and `--bind` for `--host`.
pub fn short_flags_and_the_bind_alias(bin: &str) {
    let fx = Fixture::new();
    let root = root_of(&fx);
    let s = Server::builder(bin)
        .fixture(fx)
        .without_port_and_root()
        .args(&["-p", "0", "-b", "127.0.0.1", "-d", &root, "-t", "2"])
        .start();
    let r = s.get("/");
    r.expect_status(200);
    assert_eq!(r.body, INDEX_HTML.as_bytes());
    expect_threads(&s, bin, 2);
    drop(s);
    let fx = Fixture::new();
    let root = root_of(&fx);
    let s = Server::builder(bin)
        .fixture(fx)
        .without_port_and_root()
        .args(&["--bind", "127.0.0.1", "--port", "0", "--root", &root])
        .start();
    s.get("/sample.txt").expect_status(200);
}

/// An unknown key, a value of the wrong type, a bad variable and a file that cannot be
/// read: exit 2, the key, variable or file named on stderr, nothing on stdout. A root
/// that does not exist or a port in use from a variable: exit 1, one line.
pub fn bad_keys_and_values_exit_2_naming_them(bin: &str) {
    let fx = Fixture::new();
    let cwd = fx.base.path();
    let root = root_of(&fx);
    let dir = tempfile::tempdir().expect("tempdir");
    let bogus = write(dir.path(), "bogus.toml", "port = 0\nbogus-key = 1\n");
    let snake = write(dir.path(), "snake.toml", "dir_listing = true\n");
    let typed = write(dir.path(), "typed.toml", "port = \"0\"\n");
    let listed = write(dir.path(), "listed.toml", "header = \"X-A: 1\"\n");
    let broken = write(dir.path(), "broken.toml", "port = = 0\n");
    let missing = dir.path().join("missing.toml");
    let p = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let refused = |args: &[&str], env: &[(&str, &str)], needles: &[&str]| {
        let (status, out, err) = run_to_exit_with_env(bin, args, cwd, env);
        assert_eq!(status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert!(out.is_empty(), "{args:?} {env:?}: stdout {out:?}");
        for needle in needles {
            assert!(
                err.contains(needle),
                "{args:?} {env:?} names {needle}: {err}"
            );
        }
    };
    let (bogus, snake, typed) = (p(&bogus), p(&snake), p(&typed));
    let (listed, broken, missing) = (p(&listed), p(&broken), p(&missing));
    refused(&["--config", &bogus], &[], &["bogus-key", &bogus]);
    refused(&["--config", &snake], &[], &["dir_listing", "dir-listing"]);
    refused(&["--config", &typed], &[], &["key `port`", "integer"]);
    refused(&["--config", &listed], &[], &["key `header`", "array"]);
    refused(&["--config", &broken], &[], &[&broken]);
    refused(&["--config", &missing], &[], &[&missing]);
    refused(&[], &[("RFS_CONFIG", &missing)], &[&missing]);
    refused(&[], &[("RFS_PORT", "http")], &["RFS_PORT"]);
    // Even when the command line overrides it.
    refused(&["--port", "0"], &[("RFS_PORT", "http")], &["RFS_PORT"]);
    refused(&[], &[("RFS_DIR_LISTING", "maybe")], &["RFS_DIR_LISTING"]);
    refused(
        &[],
        &[("RFS_HEADER", "X-A: 1\nContent-Length: 5")],
        &["RFS_HEADER", "Content-Length"],
    );
    refused(&[], &[("RFS_MAX_BODY", "4294967296")], &["RFS_MAX_BODY"]);

    // A setting that parses but cannot be used: a start-up failure, exit 1, one line.
    let (status, _, err) = run_to_exit_with_env(
        bin,
        &["--port", "0"],
        cwd,
        &[("RFS_ROOT", "/nonexistent/root-from-env")],
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("/nonexistent/root-from-env"), "{err}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let (status, _, err) =
        run_to_exit_with_env(bin, &["--root", &root], cwd, &[("RFS_PORT", &port)]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("in use"), "{err}");
    drop(taken);
}
