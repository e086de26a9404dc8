//! The `spec` cases of every group over HTTPS, and the account of which run where: see
//! `testkit::cases`.
#![cfg(unix)]
testkit::tests!(over_tls, env!("CARGO_BIN_EXE_runtime-smol"));
