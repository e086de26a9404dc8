//! The one harness of the runtime tests, and the cases every runtime runs.
//!
//! The harness: [`Fixture`] (a web root in a temporary directory, a secret beside it),
//! [`Server`] (the one spawner: `--port 0`, the `listening on http://HOST:PORT` start
//! line, the logs collected, signals, killed by PID when dropped; see
//! [`ServerBuilder`]), [`Client`] (raw HTTP/1.1 over one connection, every response
//! checked by [`check_common`]) and [`Response`] (the one parser of responses:
//! `Content-Length`, chunked and close-delimited bodies; chromedriver's too); over TLS
//! (the `tls` feature), [`https`] (test certificates, the client's TLS, and
//! [`https::over_tls`], which runs a case unchanged over HTTPS). Helpers the cases share
//! are defined once, in `util.rs`.
//!
//! The cases are `pub fn NAME(bin: &str)`, in groups named for what they test. A
//! runtime's test file expands one group against its binary, one `#[test]` per case (see
//! [`tests!`] and [`cases`]):
//!
//! ```ignore
//! // runtime-std/tests/requests.rs            // runtime-smol/tests/requests.rs
//! testkit::tests!(requests, env!("CARGO_BIN_EXE_runtime-std"));
//! testkit::tests!(requests, env!("CARGO_BIN_EXE_runtime-smol"));
//! ```
//!
//! The groups, and where a new test goes (ask what would have regressed if it failed,
//! not how hostile its client is; SPEC is the behaviour contract, its sections quoted):
//!
//! - [`requests`]: what one well-formed request gets back (SPEC "Requests"): routes,
//!   content types, 404/415, HEAD, OPTIONS and refused methods, downloads, and uploads of
//!   JSON, with what they leave on disk (also after a crash, or with `uploads/`
//!   unwritable);
//! - [`validators`]: answers that depend on the file's version or on `Range`, `If-*` or
//!   `Accept-Encoding`: ETags, 304s, ranges, precompressed siblings, `--cache-control`,
//!   the open-file cache never serving an old version;
//! - [`listing`]: anything that needs `--dir-listing`;
//! - [`connections`]: how one HTTP/1.1 connection carries its requests and when it
//!   closes (SPEC "Connections"): keep-alive, HTTP/1.0, idle timeout,
//!   `--max-requests`, pipelining, `100-continue`;
//! - [`security`]: a request that is itself the attack, and its refusal (SPEC
//!   "Security"): traversal and symlinks, Host, smuggling and framing, per-request limits
//!   (huge and endless bodies too), malformed requests;
//! - [`slow_clients`]: a few clients that hold a connection for long (dripping a head,
//!   reading slowly, sitting idle, stalling, downloading something big) or a log sink
//!   that stops reading, and whether the others are served meanwhile;
//! - [`capacity`]: many clients at once or a resource at its limit (SPEC "Capacity"):
//!   connection places and 503s, floods, open-file limits, the memory budget of upload
//!   bodies, and service resuming after;
//! - [`logs`]: the log itself (SPEC "Logs"): the start line, request lines, one `warn`
//!   per refusal, escaping; a test of a behaviour that also checks its log line stays
//!   with the behaviour;
//! - [`lifecycle`]: the process (SPEC "Command line"): usage errors and bounds, the
//!   positionals, a port in use and a second instance, the start-up clean-up, SIGTERM and
//!   SIGINT;
//! - [`listeners`]: where the server listens and how it hands over (SPEC
//!   "Operations"): `--listen` (IPv6, `[::]`, Unix sockets, several at once), sockets
//!   from systemd, `READY=1`/`STOPPING=1`, a drain that loses nothing;
//! - [`config`]: options from the environment (`RFS_*`) and from `--config FILE`, their
//!   precedence under the command line, and the short flags;
//! - [`access`]: who may read and write (`--auth`), and the switches for web pages
//!   (`--cors`, `--header`, `--spa`, `404.html`);
//! - [`uploads`]: uploads of any file (`PUT`, `DELETE`, multipart forms, streamed);
//! - [`operations`]: what an operator watches (SPEC "Operations"): `--metrics` and its
//!   counters, `/healthz` and `/readyz`, the access log in its formats, rotation, and a
//!   stalled reader of it;
//! - [`tls`]: what only HTTPS has (with the `tls` feature);
//! - [`http2`]: HTTP/2, prior knowledge and ALPN: the routes per stream, many streams,
//!   big bodies both ways, `--http2 off`, drain, the defences against their attacks,
//!   a conformance pass with Python's `h2`;
//! - [`object_store`]: `--upload-store s3://` against a real Garage (SPEC "Uploads of any
//!   file"): one node, a three-node cluster with nodes SIGKILLed and restarted, and
//!   three instances behind nginx (`contrib/nginx-balancer.conf`) killed, drained and
//!   restarted under load;
//! - [`browser`]: the bundled page and a listing in headless Chromium (`#[ignore]`d
//!   without one).
//!
//! The `spec` cases of every group (see [`cases`]) are also run over HTTPS, with the
//! `tls` feature: `testkit::tests!(over_tls, …)`, the runtimes' `tests/over_tls.rs`; and
//! over HTTP/2 (TLS with ALPN `h2`, the harness's client carrying each case's HTTP/1.1
//! as streams through [`gateway`]): `testkit::tests!(over_h2, …)`, `tests/over_h2.rs`.
//!
//! Everything runs on 127.0.0.1 against servers the test starts itself (stopped by PID
//! when dropped), and every wait and loop is bounded in time and count. Unix only: on
//! other targets this crate is empty (as are the runtimes' test files).
#![cfg(unix)]

mod client;
mod fixture;
mod response;
mod server;
mod util;

pub mod cases;
#[cfg(feature = "tls")]
pub mod gateway;
#[cfg(feature = "tls")]
pub mod https;

pub mod access;
pub mod browser;
pub mod capacity;
pub mod compress;
pub mod config;
pub mod connections;
pub mod http2;
pub mod lifecycle;
pub mod listeners;
pub mod listing;
pub mod logs;
pub mod object_store;
pub mod operations;
pub mod requests;
pub mod security;
pub mod slow_clients;
#[cfg(feature = "tls")]
pub mod tls;
pub mod uploads;
pub mod validators;

pub use client::{check_common, Client, ClientWriter, CLIENT_TIMEOUT};
pub use fixture::{binary_bytes, Fixture, INDEX_HTML, SECRET};
pub use response::{dechunk, Response};
pub use server::{parse_fingerprint, parse_start_line, Server, ServerBuilder};
pub use util::{
    contains, find, have, own_flags, raise_fd_limit, run_to_exit, run_to_exit_with_env,
};
