//! The `spec` cases of every group over HTTP/2 (TLS with ALPN `h2`; the harness's
//! client carries each case's HTTP/1.1 as streams), and the account of which are
//! HTTP/1.1's alone: see `testkit::cases` and `testkit::gateway`.
#![cfg(unix)]
testkit::tests!(over_h2, env!("CARGO_BIN_EXE_runtime-smol"));
