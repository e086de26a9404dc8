//! The whole shared suite over HTTPS (issue 16): see `testkit::suite_tests_tls!`.
#![cfg(all(unix, feature = "tls"))]
testkit::suite_tests_tls!(env!("CARGO_BIN_EXE_runtime-smol"));
