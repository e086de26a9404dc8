//! The one harness of the runtime tests, and the cases every runtime runs.
//!
//! The harness: [`Fixture`] (a web root in a temporary directory, a secret beside it),
//! [`Server`] (the one spawner: `--port 0`, the `listening on http://HOST:PORT` start
//! line, the logs collected, signals, killed by PID when dropped; see
//! [`ServerBuilder`]), [`Client`] (raw HTTP/1.1 over one connection, every response
//! checked by [`check_common`]) and [`Response`] (the one parser of responses:
//! `Content-Length`, chunked and close-delimited bodies; chromedriver's too).
//!
//! The cases, each a module with a macro that expands to one `#[test]` per case, run
//! against the binary it is given:
//!
//! ```ignore
//! // runtime-std/tests/suite.rs               // runtime-smol/tests/suite.rs
//! testkit::suite_tests!(env!("CARGO_BIN_EXE_runtime-std"));
//! testkit::suite_tests!(env!("CARGO_BIN_EXE_runtime-smol"));
//! ```
//!
//! - [`suite`] (`suite_tests!`): every row of SPEC over real sockets;
//! - [`hardening`] (`hardening_tests!`): issue 6, hostile clients and exhausted
//!   resources;
//! - [`hostile`] (`hostile_tests!`): issue 13, slow readers, idle keep-alive, a small
//!   descriptor limit, a second instance, a big download, 503s, a stalled log sink, the
//!   upload memory budget, bounded flags;
//! - [`features`] (`features_tests!`): issue 7, validators, ranges, precompressed files;
//! - [`browser`] (`browser_tests!`): the bundled page in headless Chromium;
//! - [`listing`] (`listing_tests!`): issue 15, directory listings (`--dir-listing`);
//! - [`s3`] (`s3_tests!`): issue 17, uploads in an S3-compatible store (a real Garage);
//! - over TLS (the `tls` feature, issue 16): `suite_tests_tls!` runs the whole [`suite`]
//!   over HTTPS ([`https`]: test certificates, the client's TLS, [`https::over_tls`]),
//!   and [`tls`] (`tls_tests!`) what only HTTPS has.
//!
//! Everything runs on 127.0.0.1 against servers the test starts itself. Unix only: on
//! other targets this crate is empty (as are the runtimes' test files).
#![cfg(unix)]

mod client;
mod fixture;
mod response;
mod server;
mod util;

pub mod browser;
pub mod features;
pub mod hardening;
pub mod hostile;
#[cfg(feature = "tls")]
pub mod https;
pub mod listing;
pub mod s3;
pub mod suite;
#[cfg(feature = "tls")]
pub mod tls;

pub use client::{check_common, Client, ClientWriter, CLIENT_TIMEOUT};
pub use fixture::{binary_bytes, Fixture, INDEX_HTML, SECRET};
pub use response::{dechunk, Response};
pub use server::{parse_fingerprint, parse_start_line, Server, ServerBuilder};
pub use util::{contains, find, have, own_flags, raise_fd_limit, run_to_exit};
