#![cfg(unix)]
testkit::browser_tests!(env!("CARGO_BIN_EXE_runtime-smol"));
