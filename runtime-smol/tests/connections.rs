#![cfg(unix)]
testkit::tests!(connections, env!("CARGO_BIN_EXE_runtime-smol"));
