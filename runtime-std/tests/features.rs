#![cfg(unix)]
testkit::features_tests!(env!("CARGO_BIN_EXE_runtime-std"));
