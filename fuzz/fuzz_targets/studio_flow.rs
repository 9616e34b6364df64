#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| chatwire::fuzz::studio_flow(data));
