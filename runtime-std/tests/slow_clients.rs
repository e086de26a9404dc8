#![cfg(unix)]
testkit::tests!(slow_clients, env!("CARGO_BIN_EXE_runtime-std"));
