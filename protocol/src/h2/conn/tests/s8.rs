//! §8: requests as the handler sees them, malformed ones, trailers, responses; the
//! round trip.

use super::super::SendError;
use super::*;
use crate::h2::frame::kind;

fn bytes(fields: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    (fields.iter())
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s8_round_trip_get_index_html() {
    let mut c = Client::bare(H2Settings::default());
    c.read();
    let mut input = preface();
    let fields = [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "localhost:8443"),
        ("user-agent", "test/1"),
        ("accept", "*/*"),
    ];
    let block = c.block(&fields);
    input.extend(encode(Frame::Headers {
        stream_id: 1,
        fragment: &block,
        pad_len: None,
        priority: None,
        end_stream: true,
        end_headers: true,
    }));
    c.send(&input);
    assert_eq!(
        c.events(),
        vec![Event::Request {
            stream_id: 1,
            headers: bytes(&fields),
            end_stream: true
        }]
    );
    let body = b"<h1>hello</h1>\n";
    let head = [("Content-Type", "text/html"), ("Content-Length", "15")];
    assert_eq!(c.conn.send_headers(1, 200, &head, false), Ok(()));
    assert_eq!(c.conn.send_data(1, body, true, 0), Ok(body.len()));
    let out = c.read();
    assert_eq!(
        out[1..],
        [
            Out::Headers {
                id: 1,
                fields: vec![
                    (":status".into(), "200".into()),
                    ("content-type".into(), "text/html".into()),
                    ("content-length".into(), "15".into()),
                ],
                end_stream: false,
                frames: 1,
            },
            Out::Data {
                id: 1,
                data: body.to_vec(),
                end_stream: true
            },
        ]
    );
    assert!(c.conn.streams.is_empty());
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s8_1_1_malformed_requests_are_reset_with_protocol_error() {
    let fields: &[&[(&str, &str)]] = &[
        // §8.2: uppercase, bad bytes.
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("Accept", "x"),
        ],
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("x", "a\nb"),
        ],
        // §8.2.2: connection-specific fields, te.
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("connection", "close"),
        ],
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("transfer-encoding", "chunked"),
        ],
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("te", "gzip"),
        ],
        // §8.3: unknown, response-only, late, duplicate pseudo-header fields.
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            (":foo", "x"),
        ],
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            (":status", "200"),
        ],
        &[
            (":method", "GET"),
            (":scheme", "https"),
            ("x", "y"),
            (":path", "/"),
        ],
        &[
            (":method", "GET"),
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
        ],
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":scheme", "https"),
            (":path", "/"),
        ],
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            (":path", "/"),
        ],
        // §8.3.1: missing or empty.
        &[(":scheme", "https"), (":path", "/")],
        &[(":method", "GET"), (":path", "/")],
        &[(":method", "GET"), (":scheme", "https")],
        &[(":method", "GET"), (":scheme", "https"), (":path", "")],
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            (":authority", "a"),
            ("host", "b"),
        ],
    ];
    for (i, f) in fields.iter().enumerate() {
        let mut c = Client::default();
        c.headers(1, f, true);
        c.expect_stream_error(1, E::PROTOCOL_ERROR);
        let e = c.events();
        assert!(
            matches!(e[..], [Event::Malformed { stream_id: 1, .. }]),
            "{i}: {e:?}"
        );
        // The next request on the connection is fine.
        c.get(3, "/");
        assert!(matches!(
            c.events()[..],
            [Event::Request { stream_id: 3, .. }]
        ));
    }
}

fn with_length(c: &mut Client, n: &str, end: bool) {
    let mut f = req("POST", "/up");
    f.push(("content-length", n));
    c.headers(1, &f, end);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s8_1_1_content_length_must_match_the_data() {
    let cases: &[Case] = &[
        (
            "one DATA short",
            |_| {},
            |c| {
                with_length(c, "10", false);
                c.data(1, b"12345", true);
            },
            Expect::Stream(1, E::PROTOCOL_ERROR),
        ),
        (
            "several DATA over",
            |_| {},
            |c| {
                with_length(c, "6", false);
                c.data(1, b"1234", false);
                c.data(1, b"1234", false);
            },
            Expect::Stream(1, E::PROTOCOL_ERROR),
        ),
        (
            "END_STREAM on HEADERS",
            |_| {},
            |c| with_length(c, "1", true),
            Expect::Stream(1, E::PROTOCOL_ERROR),
        ),
        (
            "ended by trailers, short",
            |_| {},
            |c| {
                with_length(c, "3", false);
                c.data(1, b"12", false);
                c.headers(1, &[("x-sum", "1")], true);
            },
            Expect::Stream(1, E::PROTOCOL_ERROR),
        ),
        (
            "exact",
            |_| {},
            |c| {
                with_length(c, "8", false);
                c.data(1, b"1234", false);
                c.data(1, b"5678", true);
            },
            Expect::Fine,
        ),
        (
            "zero with END_STREAM",
            |_| {},
            |c| with_length(c, "0", true),
            Expect::Fine,
        ),
    ];
    run_table(&H2Settings::default(), cases);
    // After its Request was delivered, the stream's Malformed tells the caller to stop.
    let mut c = Client::default();
    with_length(&mut c, "2", false);
    assert_eq!(c.events().len(), 1);
    c.data(1, b"123", false);
    let e = c.events();
    assert!(
        matches!(e[..], [Event::Malformed { stream_id: 1, .. }]),
        "{e:?}"
    );
    assert_eq!(
        c.conn.send_headers(1, 400, &[], true),
        Err(SendError::UnknownStream)
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s8_1_trailers() {
    let cases: &[Case] = &[
        (
            "trailers end the body",
            |c| {
                c.post(1, "/up");
                c.data(1, b"body", false);
            },
            |c| {
                c.headers(1, &[("x-checksum", "abc")], true);
                let e = c.events();
                assert_eq!(
                    e,
                    vec![Event::Data {
                        stream_id: 1,
                        bytes: vec![],
                        end_stream: true
                    }]
                );
            },
            Expect::Fine,
        ),
        (
            "a second HEADERS without END_STREAM",
            |c| c.post(1, "/up"),
            |c| {
                c.headers(1, &[("x-checksum", "abc")], false);
            },
            Expect::Stream(1, E::PROTOCOL_ERROR),
        ),
        (
            "pseudo-header fields in trailers",
            |c| c.post(1, "/up"),
            |c| {
                c.headers(1, &[(":path", "/")], true);
            },
            Expect::Stream(1, E::PROTOCOL_ERROR),
        ),
    ];
    run_table(&H2Settings::default(), cases);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s8_2_3_cookie_crumbs_are_joined() {
    let mut c = Client::default();
    let mut f = req("GET", "/");
    f.extend([("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2")]);
    c.headers(1, &f, true);
    let e = c.events();
    let Event::Request { headers, .. } = &e[0] else {
        panic!("{e:?}")
    };
    let mut want = req("GET", "/");
    want.extend([("cookie", "a=1; b=2"), ("accept", "*/*")]);
    assert_eq!(headers, &bytes(&want));
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s8_3_1_options_asterisk_and_connect() {
    let mut c = Client::default();
    c.headers(
        1,
        &[(":method", "OPTIONS"), (":scheme", "https"), (":path", "*")],
        true,
    );
    c.headers(3, &[(":method", "CONNECT"), (":authority", "a:443")], false);
    let e = c.events();
    assert_eq!(e.len(), 2, "{e:?}");
    c.expect_no_error();
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s8_4_push_promise_from_a_client_is_a_protocol_error() {
    let mut c = Client::default();
    c.get(1, "/");
    c.raw(kind::PUSH_PROMISE, 4, 1, &[0, 0, 0, 2, 0x82]);
    c.expect_conn_error(E::PROTOCOL_ERROR);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s8_2_2_responses_carry_no_connection_specific_fields() {
    let mut c = Client::default();
    c.get(1, "/");
    c.events();
    let head = [
        ("Connection", "keep-alive"),
        ("Keep-Alive", "timeout=30"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "h2c"),
        ("Proxy-Connection", "x"),
        (":status", "999"),
        ("ETag", "\"x\""),
    ];
    assert_eq!(c.conn.send_headers(1, 200, &head, true), Ok(()));
    let out = c.read();
    let Out::Headers {
        fields,
        end_stream: true,
        ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        fields,
        &[
            (":status".into(), "200".into()),
            ("etag".into(), "\"x\"".into())
        ]
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s8_1_response_heads_in_order() {
    let mut c = Client::default();
    c.post(1, "/up");
    c.events();
    assert_eq!(
        c.conn.send_data(1, b"x", false, 0),
        Err(SendError::HeadersNotSent)
    );
    assert_eq!(
        c.conn.send_headers(1, 101, &[], false),
        Err(SendError::InvalidStatus)
    );
    assert_eq!(
        c.conn.send_headers(1, 100, &[], true),
        Err(SendError::InvalidStatus)
    );
    assert_eq!(
        c.conn.send_headers(1, 1000, &[], true),
        Err(SendError::InvalidStatus)
    );
    assert_eq!(c.conn.send_headers(1, 100, &[], false), Ok(()));
    assert_eq!(
        c.conn.send_data(1, b"x", false, 0),
        Err(SendError::HeadersNotSent)
    );
    assert_eq!(c.conn.send_headers(1, 201, &[], false), Ok(()));
    assert_eq!(
        c.conn.send_headers(1, 200, &[], false),
        Err(SendError::HeadersAlreadySent)
    );
    assert_eq!(c.conn.send_data(1, b"done", true, 0), Ok(4));
    assert_eq!(
        c.conn.send_data(1, b"more", true, 0),
        Err(SendError::StreamEnded)
    );
    assert_eq!(
        c.conn.send_headers(9, 200, &[], true),
        Err(SendError::UnknownStream)
    );
    let out = c.read();
    assert!(matches!(&out[0], Out::Headers { fields, .. } if fields[0].1 == "100"));
    assert!(matches!(&out[1], Out::Headers { fields, .. } if fields[0].1 == "201"));
    assert_eq!(out.len(), 3);
    // The client still sends its body (half-closed local), then the stream closes.
    c.data(1, b"body", true);
    assert_eq!(c.events().len(), 1);
    assert!(c.conn.streams.is_empty());
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s6_10_large_response_heads_are_split_into_continuations() {
    let mut c = Client::default();
    c.get(1, "/");
    c.events();
    let big = "v".repeat(40_000);
    assert_eq!(
        c.conn.send_headers(1, 200, &[("x-big", &big)], true),
        Ok(())
    );
    let out = c.read();
    let Out::Headers { fields, frames, .. } = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(fields[1].1.len(), 40_000);
    assert!(*frames >= 2, "{frames} frames");
}
