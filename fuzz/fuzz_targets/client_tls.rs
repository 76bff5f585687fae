#![no_main]
//! Fuzz target `client_tls`: see `m2msec_fuzz::harness::client_tls`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::client_tls(data));
