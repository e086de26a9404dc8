#![cfg(unix)]
testkit::hardening_tests!(env!("CARGO_BIN_EXE_runtime-std"));
