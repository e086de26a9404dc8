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

pub mod cases;

/// Expands to one `#[test]` per case of the suite, run against the binary at `$bin`.
#[macro_export]
macro_rules! suite_tests {
    ($bin:expr) => {
        $crate::suite_tests!(@cases $bin;
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
    (@cases $bin:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::suite::cases::$name($bin);
            }
        )*
    };
}
