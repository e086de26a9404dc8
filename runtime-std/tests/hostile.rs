#![cfg(unix)]
testkit::hostile_tests!(env!("CARGO_BIN_EXE_runtime-std"));
