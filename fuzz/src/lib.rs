//! # protocol-fuzz — the harness shared by the fuzz targets
//!
//! Three targets (in `fuzz_targets/`) drive the sans-IO core:
//!
//! - `parse`: raw bytes into [`protocol::parse::parse_head`] ([`check_parse`]).
//! - `connection`: the input is decoded as a script of timed inputs for one
//!   [`protocol::Connection`] ([`run_script`]), driven by the shared in-memory driver
//!   [`protocol::sim::Driver`] (the `sim` feature) against a scripted [`World`]
//!   ([`fake::Scripted`]). After every input a [`Checker`] looks at the actions it
//!   produced, and a [`Shadow`] counts the requests the client has sent so far, so the
//!   checker can tell how many answers are allowed. Some scripts turn directory
//!   listings on: the fake file system answers `OpenFile` with directories and `ListDir`
//!   with entries made from the input ([`fake::dir_answer`]), and the checker reads the
//!   redirects and the listing pages it gets back ([`check::check_listing`]).
//! - `split`: the same request bytes fed whole and fed in pieces must give the same
//!   actions ([`run_split`]).
//!
//! Modules, by concern:
//!
//! - [`script`]: the byte decoder ([`Reader`]), the canned requests and the `connection`
//!   script's opcodes.
//! - [`fake`]: what the fake runtime answers (files, listings, uploads) and the two
//!   [`World`]s built from it: [`fake::Scripted`] (from the input) and [`fake::Hashed`]
//!   (by a hash of the path, the same in both runs of `split`).
//! - [`shadow`]: the shadow request model (the same bytes through `parse_head` and the
//!   body framing).
//! - [`check`]: the action checker, split into responses, directory listings, and
//!   paths, redirects and upload names.
//! - [`harness`]: one connection in the shared driver, checked after every input.
//! - [`parse`] and [`split`]: the other two targets.
//!
//! The script format is a hand-written byte decoder ([`Reader`]) rather than `arbitrary`,
//! so that the seed corpus can be written by hand (see `fuzz/make_seeds.py`) and a
//! crashing input reads as a list of events (`fuzz/README.md` tells how).

use std::sync::Arc;

use protocol::Config;

pub mod check;
pub mod fake;
pub mod harness;
pub mod parse;
pub mod script;
pub mod shadow;
pub mod split;

pub use check::Checker;
pub use harness::Harness;
pub use parse::check_parse;
pub use protocol::sim::World;
pub use script::{run_script, script_harness, Reader};
pub use shadow::Shadow;
pub use split::{run_pieces, run_split};

/// The port the fuzzed server believes it is bound to.
pub const PORT: u16 = 8080;
/// Small enough that the request limit is reached within a short script.
pub const MAX_REQUESTS: u32 = 5;
/// Short deadlines, so that scripts reach them with a few clock steps.
pub const IDLE_TIMEOUT_MS: u64 = 2_000;
pub const HEAD_TIMEOUT_MS: u64 = 1_000;
/// Longer than the idle timeout: a body that trickles in keeps the connection alive but
/// still meets this one.
pub const BODY_TIMEOUT_MS: u64 = 3_000;
/// The wall clock the scripts start at (the `Date` header and file dates see it).
pub const UNIX_START: u64 = 1_700_000_000;
/// The connection's random seed (upload names derive from it).
pub const SEED: [u8; 16] = [7; 16];
/// The exact interim response `Action::Continue` stands for.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
/// Names an upload is tried under before it is a 500 (`AlreadyExists` each time).
pub const UPLOAD_NAME_TRIES: u32 = 4;

/// The `max_body` settings a script can choose from (its first byte picks one).
pub const MAX_BODIES: [u64; 4] = [16, 1024, 64 * 1024, 10 * 1024 * 1024];

/// The fuzzing configuration: the SPEC's defaults, with short timeouts, a small request
/// limit, the chosen body limit and directory listings on or off (`--dir-listing`).
/// The one user of the fuzzing rules (`@/:rw`: anyone may do anything, so a request
/// without credentials is answered as without access control; one with credentials is
/// verified, and a wrong password is a 401).
pub const FUZZ_USER: &str = "fuzz";
const FUZZ_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$Vm/cP5vKzAT0WxgoA3cE+lsZUHKCKkeXi7E3uAzu8SA";

pub fn config(max_body: u64, dir_listing: bool) -> Arc<Config> {
    let mut c = Config::new("127.0.0.1", PORT, &[]);
    let rules = protocol::Rules::parse_lines(&format!("@/:rw\n{FUZZ_USER}:{FUZZ_HASH}@/:rw\n"))
        .expect("the fuzzing rules");
    c.access = Some(Arc::new(protocol::AccessControl::new(rules, "fuzz")));
    c.idle_timeout_ms = IDLE_TIMEOUT_MS;
    c.head_timeout_ms = HEAD_TIMEOUT_MS;
    c.body_timeout_ms = BODY_TIMEOUT_MS;
    c.max_requests = MAX_REQUESTS;
    c.max_body = max_body;
    // Streamed uploads (PUT, multipart) have the same limit, so that the shadow's one
    // rule for a body too large holds for them too.
    c.max_upload = max_body;
    c.dir_listing = dir_listing;
    // Every answer written gives a request record (the access log's, the metrics'): the
    // harness takes and checks them.
    c.records = true;
    Arc::new(c)
}
