//! Arbitrary bytes into the HTTP/2 frame decoder (`protocol::h2::frame::decode`), frame
//! after frame: no panic; an incomplete frame asks for more than the buffer holds; a
//! whole one takes no more than the buffer and no more than SETTINGS_MAX_FRAME_SIZE
//! allows; and every decoded frame, encoded again, decodes to the same frame. The same
//! bytes (after the preface) go to a full server's refusal (`protocol::H2Refusal`), a few
//! at a time: no panic, and one ending at most.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::h2::frame::{decode, Decoded, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    // The first byte picks SETTINGS_MAX_FRAME_SIZE: the default, or larger.
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let max = 16_384u32 << (pick % 4);
    let mut refusal = protocol::H2Refusal::new();
    let mut endings = 0;
    let answer = b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nbusy";
    let client = [protocol::H2_PREFACE, rest].concat();
    for piece in client.chunks(usize::from(pick % 16) + 1) {
        if let Some(end) = refusal.received(piece, answer) {
            assert!(end.len() >= HEADER_LEN, "an ending holds GOAWAY at least");
            endings += 1;
        }
    }
    assert!(endings <= 1, "{endings} endings");
    while !rest.is_empty() {
        match decode(rest, max) {
            Err(e) => {
                // Every error names an RFC 9113 error code and says why.
                assert!(!e.reason().is_empty());
                let _ = (e.code(), e.is_connection_error());
                return;
            }
            Ok(Decoded::Incomplete { need }) => {
                assert!(
                    need > rest.len(),
                    "Incomplete with {need} of {}",
                    rest.len()
                );
                return;
            }
            Ok(Decoded::Frame { frame, len }) => {
                assert!(len >= HEADER_LEN && len <= rest.len());
                assert!(len - HEADER_LEN <= max as usize);
                let mut again = Vec::new();
                frame.encode(&mut again);
                match decode(&again, u32::MAX >> 8) {
                    Ok(Decoded::Frame { frame: f2, len: l2 }) => {
                        assert_eq!(f2, frame, "re-encoded: {again:?}");
                        assert_eq!(l2, again.len());
                    }
                    other => panic!("{frame:?} re-encoded decodes as {other:?}"),
                }
                rest = &rest[len..];
            }
        }
    }
});
