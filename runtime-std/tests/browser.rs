//! The bundled page in headless Chromium, against runtime-std (see browser/mod.rs).
#![cfg(unix)]

#[path = "browser/mod.rs"]
#[macro_use]
mod browser;

browser_tests!(env!("CARGO_BIN_EXE_runtime-std"));
