//! Issue 7 over sockets (runtime-std/tests/features/), run unchanged against runtime-smol.
#![cfg(unix)]

#[path = "../../runtime-std/tests/suite/mod.rs"]
mod suite;

#[path = "../../runtime-std/tests/features/mod.rs"]
mod features;

features_tests!(env!("CARGO_BIN_EXE_runtime-smol"));
