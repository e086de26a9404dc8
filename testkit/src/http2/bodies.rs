//! Big bodies over HTTP/2 both ways: a 64 MiB download byte for byte (clear text and
//! TLS) and a 64 MiB upload streamed in bounded memory.

use std::time::Instant;

use sha2::{Digest, Sha256};

use super::{curl, BOB_BCRYPT};
use crate::util::{proc_kib, tail};
use crate::{Fixture, Server};

/// Deterministic bytes of `len` (not compressible, not a repeated pattern).
pub(super) fn generated(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    out
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub fn a_64_mib_download_byte_for_byte(bin: &str) {
    let bytes = generated(64 << 20);
    let fx = Fixture::new().with_file("big.bin", &bytes);
    let root = fx.root.clone();
    let s = Server::builder(bin).fixture(fx).rust_log("info").start();
    let t = Instant::now();
    let got = curl(&s, "/big.bin", &["-H", "Accept-Encoding: gzip, br, zstd"]);
    let took = t.elapsed();
    assert_eq!((got.code, got.version.as_str()), (200, "2"));
    assert_eq!(got.body.len(), bytes.len());
    assert!(got.body == bytes, "the 64 MiB came back byte for byte");
    eprintln!(
        "64 MiB over h2c in {took:.2?} ({})",
        crate::util::runtime(bin)
    );
    // Over TLS (ALPN h2), on the same files.
    #[cfg(feature = "tls")]
    {
        let s = Server::builder(bin)
            .fixture(Fixture::at(&root))
            .tls()
            .rust_log("info")
            .start();
        let got = curl(&s, "/big.bin", &[]);
        assert_eq!((got.code, got.version.as_str()), (200, "2"));
        assert_eq!(sha256(&got.body), sha256(&bytes), "over TLS, byte for byte");
    }
    let _ = root;
}

pub fn an_upload_streamed_in_bounded_memory(bin: &str) {
    const LEN: usize = 64 << 20;
    let rule = format!("bob:{BOB_BCRYPT}@/:rw");
    let s = Server::builder(bin)
        .fixture(Fixture::new())
        .rust_log("info")
        .args(&["-a", &rule])
        .start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("upload.bin");
    let bytes = generated(LEN);
    std::fs::write(&file, &bytes).expect("write");
    let f = file.to_string_lossy().into_owned();
    let before = proc_kib(s.pid(), "VmRSS");
    let got = curl(&s, "/upload.bin", &["-T", &f, "-u", "bob:builder"]);
    assert_eq!(
        (got.code, got.version.as_str()),
        (201, "2"),
        "{}",
        tail(&s.logs())
    );
    let on_disk = std::fs::read(s.fx.root.join("upload.bin")).expect("upload.bin");
    assert_eq!(on_disk.len(), LEN);
    assert_eq!(
        sha256(&on_disk),
        sha256(&bytes),
        "the bytes on disk are those sent"
    );
    let peak = proc_kib(s.pid(), "VmHWM");
    eprintln!("64 MiB PUT over h2c: RSS {before} KiB before, peak {peak} KiB");
    // Streamed: the body never sits in memory whole (a window and a chunk per stream).
    assert!(
        peak < before + 32 * 1024,
        "peak RSS {peak} KiB (before: {before})"
    );
}
