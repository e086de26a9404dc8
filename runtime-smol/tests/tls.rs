//! What only HTTPS has: see `testkit::tls`.
#![cfg(all(unix, feature = "tls"))]
testkit::tests!(tls, env!("CARGO_BIN_EXE_runtime-smol"));
