#![cfg(unix)]
testkit::tests!(operations, env!("CARGO_BIN_EXE_runtime-smol"));
