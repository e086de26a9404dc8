#![cfg(unix)]
testkit::tests!(http2, env!("CARGO_BIN_EXE_runtime-std"));
