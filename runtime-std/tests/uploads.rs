#![cfg(unix)]
testkit::tests!(uploads, env!("CARGO_BIN_EXE_runtime-std"));
