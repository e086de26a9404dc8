#![cfg(unix)]
testkit::tests!(object_store, env!("CARGO_BIN_EXE_runtime-smol"));
