//! What only HTTPS has (issue 16): see `testkit::tls_tests!`.
#![cfg(all(unix, feature = "tls"))]
testkit::tls_tests!(env!("CARGO_BIN_EXE_runtime-std"));
