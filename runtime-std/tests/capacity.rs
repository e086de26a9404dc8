#![cfg(unix)]
testkit::tests!(capacity, env!("CARGO_BIN_EXE_runtime-std"));
