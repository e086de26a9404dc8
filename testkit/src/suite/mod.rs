//! The integration suite shared by both runtimes: every row of SPEC over real sockets.
//!
//! A runtime's test file expands the macro with the path of its binary, which gives one
//! `#[test]` per case:
//!
//! ```ignore
//! testkit::suite_tests!(env!("CARGO_BIN_EXE_runtime-std"));
//! ```
//!
//! Each case starts its own server ([`Server`](crate::Server)) with `--port 0 --root
//! <temporary root>`, reads the port from the `listening on http://HOST:PORT` line on
//! stdout, collects stderr (the logs) for the case to inspect, and kills the server by
//! PID when dropped. Clients are raw [`TcpStream`](std::net::TcpStream)s on 127.0.0.1
//! (and `curl` for the seed's examples, where installed). Every response read through
//! [`Client`](crate::Client) is checked for what SPEC says every response has, and that
//! it does not contain [`SECRET`](crate::SECRET), the content of a file beside (outside)
//! the web root that symlinks inside the root point to.
//!
//! `suite_tests_tls!` (the `tls` feature) runs the same cases over HTTPS: servers start
//! with the harness's test certificate and clients speak TLS to them (see
//! [`crate::https`]); the cases in [`NOT_OVER_TLS`] are skipped there, with why.

pub mod cases;

/// Expands to one `#[test]` per case of the suite, run against the binary at `$bin`.
#[macro_export]
macro_rules! suite_tests {
    ($bin:expr) => {
        $crate::suite_tests!(@over plain, $bin);
    };
    // `plain` or `tls` (see `suite_tests_tls!`): one list of cases for both.
    (@over $mode:ident, $bin:expr) => {
        $crate::suite_tests!(@cases $mode, $bin;
            get_root_is_index_html,
            html_and_htm_are_inline_html,
            downloads_are_attachments_byte_identical,
            json_is_application_json,
            common_web_types_are_inline_with_their_type,
            unknown_extension_is_415,
            missing_file_or_directory_is_404,
            head_has_the_get_headers_and_no_body,
            upload_is_created_atomically_and_readable_back,
            upload_content_type_parameters_are_allowed,
            upload_other_content_type_is_415,
            upload_invalid_json_is_400,
            post_elsewhere_is_404_and_writes_nothing,
            options_is_204_with_allow,
            other_methods_are_405_with_allow,
            keep_alive_and_connection_close,
            http10_closes_unless_keep_alive,
            idle_timeout_closes_quiet_connections,
            hundred_requests_per_connection,
            pipelined_requests_are_answered_in_order,
            slow_drip_head_gets_408_while_others_are_served,
            traversal_is_refused_and_nothing_outside_is_read,
            symlinks_out_of_the_root_are_refused,
            host_header_rules,
            wildcard_bind_and_allow_host,
            framing_and_smuggling_are_refused,
            chunked_upload_is_accepted,
            expect_continue_upload,
            limits_431_414_413_and_long_method,
            malformed_request_and_bad_version,
            refusals_are_logged_at_warn_with_the_peer,
            request_log_lines_and_start_line,
            concurrent_uploads_lose_and_duplicate_nothing,
            busy_workers_and_full_queue_give_503,
            unwritable_uploads_give_500_and_serving_goes_on,
            large_file_download_is_byte_identical,
            ranges_and_conditional_requests,
            precompressed_sibling_is_served,
            curl_examples_of_the_seed,
            sigterm_drains_in_flight_and_exits_0,
            command_line_errors_and_positionals,
        );
    };
    (@cases $mode:ident, $bin:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::suite::run(stringify!($mode), stringify!($name), $bin, $crate::suite::cases::$name);
            }
        )*

        /// Which cases run (over TLS: which are skipped, and why).
        #[test]
        fn suite_cases_are_accounted_for() {
            $crate::suite::account(stringify!($mode), &[$(stringify!($name)),*]);
        }
    };
}

/// Expands to one `#[test]` per case of the suite, run against the binary at `$bin`
/// over HTTPS: every server a case starts speaks TLS with the harness's test
/// certificate (`--tls-cert/--tls-key`, signed by a CA made in the test process), and
/// every [`Client`](crate::Client) to it speaks TLS (see [`crate::https`]). The cases in
/// [`NOT_OVER_TLS`] are skipped, each with its reason, and counted.
#[cfg(feature = "tls")]
#[macro_export]
macro_rules! suite_tests_tls {
    ($bin:expr) => {
        $crate::suite_tests!(@over tls, $bin);
    };
}

/// The cases `suite_tests_tls!` skips, and why (each is still run over HTTP by
/// `suite_tests!`).
pub const NOT_OVER_TLS: &[(&str, &str)] = &[];

/// Runs one case: over plain HTTP (`plain`) or over TLS (`tls`).
pub fn run(mode: &str, name: &str, bin: &str, case: fn(&str)) {
    match mode {
        "plain" => case(bin),
        #[cfg(feature = "tls")]
        "tls" => {
            if let Some((_, why)) = NOT_OVER_TLS.iter().find(|(n, _)| *n == name) {
                eprintln!("{name}: skipped over TLS: {why}");
                return;
            }
            let before = crate::https::tls_servers_started();
            crate::https::over_tls(|| case(bin));
            assert!(
                crate::https::tls_servers_started() > before,
                "{name} started no server over TLS"
            );
        }
        other => panic!("{name}: no such mode {other:?}"),
    }
}

/// Checks that every skip names a case of the list, and says how many cases run.
pub fn account(mode: &str, cases: &[&str]) {
    for (name, why) in NOT_OVER_TLS {
        assert!(cases.contains(name), "NOT_OVER_TLS names no case: {name}");
        assert!(!why.trim().is_empty(), "{name}: a skip says why");
    }
    let skipped = if mode == "tls" { NOT_OVER_TLS.len() } else { 0 };
    eprintln!(
        "{} suite cases over {mode}: {} run, {skipped} skipped",
        cases.len(),
        cases.len() - skipped
    );
}
