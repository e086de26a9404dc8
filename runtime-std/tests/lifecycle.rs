#![cfg(unix)]
testkit::tests!(lifecycle, env!("CARGO_BIN_EXE_runtime-std"));
