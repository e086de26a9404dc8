//! The shared integration suite (runtime-std/tests/suite/) run, unchanged, against
//! runtime-smol.
#![cfg(unix)]

#[path = "../../runtime-std/tests/suite/mod.rs"]
mod suite;

suite_tests!(env!("CARGO_BIN_EXE_runtime-smol"));
