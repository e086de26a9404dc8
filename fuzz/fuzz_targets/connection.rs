//! A script of timed inputs (bytes, EOF, file and upload results, Written, WriteFailed,
//! Timeout, Drain, expected or stray) into one `Connection`, with the invariants checked
//! after every input (see `protocol_fuzz::run_script` for the script format).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocol_fuzz::run_script(data);
});
