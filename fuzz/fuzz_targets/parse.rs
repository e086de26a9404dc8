//! Arbitrary bytes into the request-head parser: no panic, and a consistent answer
//! (see `protocol_fuzz::check_parse`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocol_fuzz::check_parse(data);
});
