#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lantern_fuzz::sdp(data));
