#![cfg(unix)]
testkit::tests!(listeners, env!("CARGO_BIN_EXE_runtime-smol"));
