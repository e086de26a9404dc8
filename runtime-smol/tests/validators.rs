#![cfg(unix)]
testkit::tests!(validators, env!("CARGO_BIN_EXE_runtime-smol"));
