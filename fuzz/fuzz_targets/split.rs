//! The same bytes fed whole and in pieces give the same actions (a differential check
//! of the incremental parser and body decoder; every answer is reported `Written` at
//! once in both runs; see `protocol_fuzz::run_split`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocol_fuzz::run_split(data);
});
