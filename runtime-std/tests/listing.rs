#![cfg(unix)]
testkit::tests!(listing, env!("CARGO_BIN_EXE_runtime-std"));
