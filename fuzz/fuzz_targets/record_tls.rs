#![no_main]
//! Fuzz target `record_tls`: see `m2msec_fuzz::harness::record_tls`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::record_tls(data));
