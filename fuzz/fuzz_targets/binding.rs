#![no_main]
//! Fuzz target `binding`: see `m2msec_fuzz::harness::binding`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::binding(data));
