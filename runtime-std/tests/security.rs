#![cfg(unix)]
testkit::tests!(security, env!("CARGO_BIN_EXE_runtime-std"));
