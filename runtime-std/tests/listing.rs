#![cfg(unix)]
testkit::listing_tests!(env!("CARGO_BIN_EXE_runtime-std"));
