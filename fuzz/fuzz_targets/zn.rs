#![no_main]
//! Fuzz target `zn`: see `m2msec_fuzz::harness::zn`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::zn(data));
