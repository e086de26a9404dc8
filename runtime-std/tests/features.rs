//! Issue 7 over sockets (tests/features/: validators, ranges, precompressed files, HEAD,
//! curl resumes, --cache-control) run against runtime-std, on the suite's harness.
#![cfg(unix)]

#[path = "suite/mod.rs"]
mod suite;

#[path = "features/mod.rs"]
mod features;

features_tests!(env!("CARGO_BIN_EXE_runtime-std"));
