#![cfg(unix)]
testkit::tests!(access, env!("CARGO_BIN_EXE_runtime-smol"));
