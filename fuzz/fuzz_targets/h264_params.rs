#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lantern_fuzz::h264_params(data));
