//! The `parse` target: raw bytes into the request-head parser.

use protocol::parse::{parse_head, Parsed};

/// The `parse` target: the head parser never panics, and what it says is consistent.
pub fn check_parse(data: &[u8]) {
    match parse_head(data) {
        Ok(Parsed::Complete(head, len)) => {
            assert!(
                len > 0 && len <= data.len(),
                "length {len} of {}",
                data.len()
            );
            assert!(
                head.target.bytes().all(|b| (0x21..0x7f).contains(&b)),
                "target {:?}",
                head.target
            );
            assert!(head.minor <= 1);
            assert!(
                !head.expect_continue || head.minor == 1,
                "Expect: 100-continue kept for HTTP/1.0"
            );
            // The head alone parses the same, and a strict prefix of it is not complete.
            match parse_head(&data[..len]) {
                Ok(Parsed::Complete(again, n)) => {
                    assert_eq!(n, len);
                    assert_eq!(again, head);
                }
                other => panic!("the head alone parses as {other:?}"),
            }
            assert!(
                !matches!(parse_head(&data[..len - 1]), Ok(Parsed::Complete(..))),
                "a strict prefix of a head is complete"
            );
        }
        Ok(Parsed::Partial) => {
            // Past the head limit the parser must decide: a client cannot make the
            // server buffer more than 8 KiB waiting for a head.
            assert!(
                data.len() <= protocol::config::MAX_HEAD,
                "still Partial after {} bytes",
                data.len()
            );
        }
        Err(r) => {
            assert!(r.close, "a parse refusal that keeps the connection: {r:?}");
            assert!(
                matches!(r.status, 400 | 413 | 414 | 417 | 431 | 501 | 505),
                "refusal status {}",
                r.status
            );
        }
    }
}
