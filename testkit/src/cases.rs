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
    (over_h2, $bin:expr) => {
        $crate::tests!(@over_h2 $bin;
            requests, validators, listing, connections, security, slow_clients, capacity,
            logs, lifecycle, object_store, access, uploads, compress, config, operations,
            listeners, http2
        );
    };
    (@over_h2 $bin:expr; $($group:ident),* $(,)?) => {
        $(
            #[cfg(feature = "tls")]
            mod $group {
                $crate::$group::list!(h2 $bin);
            }
        )*

        /// Which `spec` cases run over HTTP/2, which are HTTP/1.1's alone, and why.
        #[cfg(feature = "tls")]
        #[test]
        fn suite_cases_are_accounted_for() {
            $crate::cases::account("h2", &[$($crate::$group::list!(names)),*].concat());
        }
    };
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
    ([h2 $bin:expr] $group:ident;
        spec: [$($spec:ident),* $(,)?];
        more: [$($more:ident),* $(,)?];
    ) => {
        $(
            #[test]
            fn $spec() {
                $crate::cases::run_over_h2(stringify!($spec), $bin, $crate::$group::$spec);
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

/// Runs one `spec` case over HTTP/2: as [`run_over_tls`], with every client offering
/// ALPN `h2` only, the harness's [`Client`](crate::Client) carrying the case's HTTP/1.1
/// as HTTP/2 streams (see [`crate::gateway`]) and curl told `--http2`. A case of
/// [`HTTP1_ONLY`] is not run: it is about HTTP/1.1's own framing or connection, and its
/// line there says what covers the same ground over HTTP/2.
#[cfg(feature = "tls")]
pub fn run_over_h2(name: &str, bin: &str, case: fn(&str)) {
    if let Some((_, why)) = HTTP1_ONLY.iter().find(|(n, _)| *n == name) {
        eprintln!("{name}: HTTP/1.1 only: {why}");
        return;
    }
    let (tls, h2) = (crate::https::tls_servers_started(), crate::https::h2_uses());
    crate::https::over_h2(|| case(bin));
    assert!(
        crate::https::tls_servers_started() > tls,
        "{name} started no server over TLS"
    );
    assert!(crate::https::h2_uses() > h2, "{name} spoke no HTTP/2");
}

/// The `spec` cases that do not run over HTTP/2, and why: each checks what HTTP/1.1's
/// framing or connection does, which HTTP/2 does not have (or does by frames, tested in
/// [`crate::http2`]).
pub const HTTP1_ONLY: &[(&str, &str)] = &[
    (
        "keep_alive_and_connection_close",
        "HTTP/1.1's Keep-Alive and Connection: close; an HTTP/2 connection carries its \
         streams until GOAWAY (http2::a_hundred_streams_at_once, \
         http2::drain_sends_goaway_and_finishes_streams)",
    ),
    (
        "http10_closes_unless_keep_alive",
        "HTTP/1.0, which HTTP/2 is not",
    ),
    (
        "idle_timeout_closes_quiet_connections",
        "checks Keep-Alive: timeout=, an HTTP/1.1 field; the idle timeout over HTTP/2: \
         http2::an_idle_connection_closes",
    ),
    (
        "hundred_requests_per_connection",
        "checks Keep-Alive: max=, an HTTP/1.1 field; --max-requests over HTTP/2 (GOAWAY \
         after N streams): http2::max_requests_ends_with_goaway",
    ),
    (
        "framing_and_smuggling_are_refused",
        "Content-Length against Transfer-Encoding and chunk syntax are HTTP/1.1's framing; \
         HTTP/2 frames bodies itself (content-length against DATA: the §8.1.1 rows of \
         http2::python_h2_conformance)",
    ),
    (
        "malformed_request_and_bad_version",
        "the request line's syntax and version; an HTTP/2 request is a header list \
         (malformed lists: the §8.2–§8.3 rows of http2::python_h2_conformance, \
         http2::stream_id_misuse_is_a_protocol_error)",
    ),
    (
        "slow_drip_head_gets_408_while_others_are_served",
        "a head dripped a byte at a time; an HTTP/2 head comes in frames (a header block \
         left open: http2::continuation_flood_is_bounded)",
    ),
];

/// Says how many `spec` cases run over `mode`, checks that none is named twice, and
/// (over h2) that every case [`HTTP1_ONLY`] names is a `spec` case.
pub fn account(mode: &str, cases: &[&str]) {
    let mut names = cases.to_vec();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "a spec case is listed twice");
    if mode != "h2" {
        eprintln!("{} suite cases over {mode}: all run", cases.len());
        return;
    }
    for (name, why) in HTTP1_ONLY {
        assert!(
            cases.contains(name),
            "HTTP1_ONLY names {name}, not a spec case"
        );
        eprintln!("over h2, HTTP/1.1 only: {name}: {why}");
    }
    eprintln!(
        "{} suite cases over h2: {} run, {} HTTP/1.1 only",
        cases.len(),
        cases.len() - HTTP1_ONLY.len(),
        HTTP1_ONLY.len()
    );
}
