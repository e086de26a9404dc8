//! How the groups of cases become `#[test]`s: [`tests!`](crate::tests) (what a runtime's
//! test file says), [`cases!`](crate::cases) (the one expansion of a list of cases), and
//! what runs a case over HTTPS ([`run_over_tls`], [`account`]).
//!
//! A group is a module of this crate whose cases are `pub fn NAME(bin: &str)` and whose
//! `list!` macro names them in two lists, written once:
//!
//! ```ignore
//! // testkit/src/connections.rs
//! #[doc(hidden)]
//! #[macro_export]
//! macro_rules! __connections_list {
//!     ($($how:tt)*) => {
//!         $crate::cases! { [$($how)*] connections;
//!             spec: [keep_alive_and_connection_close, /* … */];
//!             more: [];
//!         }
//!     };
//! }
//! pub use crate::__connections_list as list;
//! ```
//!
//! - `spec`: cases that check rows of SPEC through the harness alone (its
//!   [`Server`](crate::Server) and [`Client`](crate::Client), curl with
//!   [`Server::curl_args`](crate::Server::curl_args)), so that they run unchanged over
//!   HTTPS. They run over HTTP in the group's own test file, and over HTTPS in
//!   `over_tls.rs` (`tests!(over_tls, …)`) — the suite over TLS.
//! - `more`: cases that run over HTTP only, because they talk to the server through raw
//!   sockets (a `TcpStream`, not the harness's `Client`), or measure what TLS would
//!   change (timings, memory, descriptors), or need a tool that speaks only plain HTTP.
//!   Some use only the harness and were simply never run over TLS (most of
//!   `validators`, `listing`): moving one to `spec` adds it to `over_tls.rs`.
//!
//! A new group: its module with that macro, a line in `lib.rs`, a line in each
//! runtime's `tests/` (`testkit::tests!(GROUP, env!("CARGO_BIN_EXE_…"));`), and its name
//! in the list of `tests!(over_tls, …)` below.

/// Expands to the `#[test]`s of one group of cases against the binary at `$bin` (an
/// expression that names nothing in scope, such as `env!("CARGO_BIN_EXE_runtime-std")`):
///
/// ```ignore
/// // runtime-std/tests/requests.rs
/// testkit::tests!(requests, env!("CARGO_BIN_EXE_runtime-std"));
/// ```
///
/// `GROUP` is one of the modules listed in the crate's documentation, each test named as
/// its case; or `over_tls`: the `spec` cases of every group over HTTPS (with the `tls`
/// feature), in a module per group (`requests::get_root_is_index_html`), and
/// `suite_cases_are_accounted_for` over each transport.
#[macro_export]
macro_rules! tests {
    (over_tls, $bin:expr) => {
        $crate::tests!(@over_tls $bin;
            requests, validators, listing, connections, security, slow_clients, capacity,
            logs, lifecycle, object_store, access, uploads, compress, config, operations,
            listeners, http2
        );
    };
    (@over_tls $bin:expr; $($group:ident),* $(,)?) => {
        $(
            #[cfg(feature = "tls")]
            mod $group {
                $crate::$group::list!(tls $bin);
            }
        )*

        /// Which `spec` cases run over TLS, which are skipped, and why.
        #[cfg(feature = "tls")]
        #[test]
        fn suite_cases_are_accounted_for() {
            $crate::cases::account("tls", &[$($crate::$group::list!(names)),*].concat());
        }

        /// The same account over HTTP (where each group's file runs them), also without
        /// the `tls` feature: every skip names a `spec` case.
        mod over_http {
            #[test]
            fn suite_cases_are_accounted_for() {
                $crate::cases::account("plain", &[$($crate::$group::list!(names)),*].concat());
            }
        }
    };
    ($group:ident, $bin:expr) => {
        $crate::$group::list!(plain $bin);
    };
}

/// The one expansion of a group's lists (see the [module](crate::cases)): over plain
/// HTTP (`[plain BIN]`) one `#[test]` per case of both lists, calling
/// `testkit::GROUP::NAME(BIN)`; over HTTPS (`[tls BIN]`) one per `spec` case, through
/// [`run_over_tls`]; `[names]` the names of the `spec` cases, as a `&[&str]`.
#[doc(hidden)]
#[macro_export]
macro_rules! cases {
    ([plain $bin:expr] $group:ident;
        spec: [$($spec:ident),* $(,)?];
        more: [$($more:ident),* $(,)?];
    ) => {
        $(
            #[test]
            fn $spec() {
                $crate::$group::$spec($bin);
            }
        )*
        $(
            #[test]
            fn $more() {
                $crate::$group::$more($bin);
            }
        )*
    };
    ([tls $bin:expr] $group:ident;
        spec: [$($spec:ident),* $(,)?];
        more: [$($more:ident),* $(,)?];
    ) => {
        $(
            #[test]
            fn $spec() {
                $crate::cases::run_over_tls(stringify!($spec), $bin, $crate::$group::$spec);
            }
        )*
    };
    ([names] $group:ident;
        spec: [$($spec:ident),* $(,)?];
        more: [$($more:ident),* $(,)?];
    ) => {{
        let names: &[&str] = &[$(stringify!($spec)),*];
        names
    }};
}

/// Runs one `spec` case over TLS: every server it starts speaks TLS with the harness's
/// test certificate (`--tls-cert/--tls-key`, signed by a CA made in the test process),
/// and every [`Client`](crate::Client) to it speaks TLS (see [`crate::https`]). Every
/// `spec` case runs over TLS: none is skipped.
#[cfg(feature = "tls")]
pub fn run_over_tls(name: &str, bin: &str, case: fn(&str)) {
    let before = crate::https::tls_servers_started();
    crate::https::over_tls(|| case(bin));
    assert!(
        crate::https::tls_servers_started() > before,
        "{name} started no server over TLS"
    );
}

/// Says how many `spec` cases run over `mode`, and checks that none is named twice.
pub fn account(mode: &str, cases: &[&str]) {
    let mut names = cases.to_vec();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "a spec case is listed twice");
    eprintln!("{} suite cases over {mode}: all run", cases.len());
}
