#![cfg(unix)]
testkit::tests!(compress, env!("CARGO_BIN_EXE_runtime-smol"));
