#![cfg(unix)]
testkit::tests!(requests, env!("CARGO_BIN_EXE_runtime-smol"));
