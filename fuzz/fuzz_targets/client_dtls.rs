#![no_main]
//! Fuzz target `client_dtls`: see `m2msec_fuzz::harness::client_dtls`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::client_dtls(data));
