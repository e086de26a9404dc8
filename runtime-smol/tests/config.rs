#![cfg(unix)]
testkit::tests!(config, env!("CARGO_BIN_EXE_runtime-smol"));
