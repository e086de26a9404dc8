//! A script of events (bytes, file and upload answers, timeouts, EOF) into one
//! `Connection`, with the invariants checked after every step (see
//! `protocol_fuzz::run_script` for the script format).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocol_fuzz::run_script(data);
});
