//! The shared integration suite (tests/suite/) run against runtime-std.
#![cfg(unix)]

#[path = "suite/mod.rs"]
mod suite;

suite_tests!(env!("CARGO_BIN_EXE_runtime-std"));
