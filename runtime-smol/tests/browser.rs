#![cfg(unix)]
testkit::tests!(browser, env!("CARGO_BIN_EXE_runtime-smol"));
