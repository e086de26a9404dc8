//! # runtime-std — the server on a fixed pool of threads
//!
//! Start-up and every session are the `host` crate's (`host::start`, `host::session`);
//! this crate schedules them: the accept thread (`host::accept`), the pool of workers fed by a
//! bounded queue (`pool.rs`), the worker's driver of a session (`server.rs`), and the
//! poller where connections wait on their clients without a worker (`park.rs`).
//!
//! ```text
//!  accept thread ── queue full, or --max-connections open? ──▶ refusal session (503)
//!      │ try_submit
//!      ▼
//!  pool: worker ◀── queue ◀── the parking (one idle worker waits on its poller)
//!      drive(session): Write / SendFile / Cork → the non-blocking socket, now
//!                      Read (what is there) → the session; nothing there → park
//!                      Writable → park; Blocking(job) → here, a blocking section
//!                      Shutdown / Close → the socket
//! ```
//!
//! The module `pool` is public for this crate's tests only.

mod park;
#[doc(hidden)]
pub mod pool;
mod server;

pub use server::run;
