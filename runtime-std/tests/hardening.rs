//! Issue 6 over sockets (tests/hardening/: slowloris, floods, descriptors, bodies,
//! SIGKILL mid-upload, unwritable uploads, refusal logs) run against runtime-std, on the
//! suite's harness.
#![cfg(unix)]

#[path = "suite/mod.rs"]
mod suite;

#[path = "hardening/mod.rs"]
mod hardening;

hardening_tests!(env!("CARGO_BIN_EXE_runtime-std"));
