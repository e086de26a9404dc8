//! A conformance pass with the Python `h2` library (python-hyper's sans-IO HTTP/2, as a
//! client that validates everything the server sends): `conformance.py` runs its checks
//! against a server started here, and each prints `ok NAME`.
//!
//! The library lives in a virtual environment that `.ci/run` makes (idempotently) at
//! [`VENV`], with `h2` pinned to [`H2_VERSION`]; `RFS_H2_PYTHON` may name another
//! interpreter that has it. Without either the test fails, saying so: never a silent
//! pass.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Fixture, Server};

/// The `h2` release the checks are written against.
pub const H2_VERSION: &str = "4.1.0";

const SCRIPT: &str = include_str!("conformance.py");

/// Where `.ci/run` installs the Python `h2` library.
pub const VENV: &str = "/opt/h2venv";

/// The Python interpreter that has `h2`.
pub fn python_with_h2() -> PathBuf {
    if let Ok(p) = std::env::var("RFS_H2_PYTHON") {
        return PathBuf::from(p);
    }
    let python = std::path::Path::new(VENV).join("bin/python");
    assert!(
        has_h2(&python),
        "{} has no h2: the conformance pass needs the Python h2 library, which \
         `bash .ci/run` installs (python3 -m venv {VENV} && {VENV}/bin/pip install \
         h2=={H2_VERSION}), or RFS_H2_PYTHON naming an interpreter that has it",
        python.display()
    );
    python
}

fn has_h2(python: &std::path::Path) -> bool {
    python.exists()
        && Command::new(python)
            .args(["-c", "import h2"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

pub fn python_h2_conformance(bin: &str) {
    let python = python_with_h2();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let fx = Fixture::new()
        .with_file("digits.txt", b"0123456789abcdefghij")
        .with_file("big.txt", big);
    let s = Server::builder(bin).fixture(fx).rust_log("info").start();
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("conformance.py");
    std::fs::write(&script, SCRIPT).expect("write the script");
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(s.port.to_string())
        .arg(s.host())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the conformance script");
    let until = Instant::now() + Duration::from_secs(120);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("the script's output");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{text}");
    assert!(
        out.status.success(),
        "conformance: {text}\n{err}\nserver: {}",
        crate::util::tail(&s.logs())
    );
    let declared: usize = (text.lines())
        .find_map(|l| l.strip_prefix("checks ")?.parse().ok())
        .expect("the script says how many checks it has");
    let passed = text.lines().filter(|l| l.starts_with("ok s")).count();
    // Each of RFC 9113's sections from 3 to 8 has checks, named after it.
    assert!(declared >= 50, "{declared} checks");
    assert_eq!(passed, declared, "every check ran and passed: {text}");
    for section in ["s3_", "s4_", "s5_", "s6_", "s8_"] {
        let n = text
            .lines()
            .filter(|l| l.starts_with(&format!("ok {section}")))
            .count();
        assert!(n > 0, "no check of §{section}: {text}");
    }
}
