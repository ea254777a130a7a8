#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| acd_fuzz_targets::note(data));
