//! Issue 6 over sockets (runtime-std/tests/hardening/), run unchanged against
//! runtime-smol. Its 1,000-dripper slowloris test is in tests/smol_only.rs.
#![cfg(unix)]

#[path = "../../runtime-std/tests/suite/mod.rs"]
mod suite;

#[path = "../../runtime-std/tests/hardening/mod.rs"]
mod hardening;

hardening_tests!(env!("CARGO_BIN_EXE_runtime-smol"));
