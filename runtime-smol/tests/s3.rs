#![cfg(unix)]
testkit::s3_tests!(env!("CARGO_BIN_EXE_runtime-smol"));
