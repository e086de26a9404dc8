//! The bundled page in headless Chromium, against runtime-smol (the shared body lives in
//! runtime-std/tests/browser/mod.rs).
#![cfg(unix)]

#[path = "../../runtime-std/tests/browser/mod.rs"]
#[macro_use]
mod browser;

browser_tests!(env!("CARGO_BIN_EXE_runtime-smol"));
