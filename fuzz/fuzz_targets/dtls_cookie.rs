#![no_main]
//! Fuzz target `dtls_cookie`: see `m2msec_fuzz::harness::dtls_cookie`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::dtls_cookie(data));
