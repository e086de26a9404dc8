#![cfg(unix)]
testkit::suite_tests!(env!("CARGO_BIN_EXE_runtime-smol"));
