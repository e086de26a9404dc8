#![cfg(unix)]
testkit::tests!(logs, env!("CARGO_BIN_EXE_runtime-std"));
