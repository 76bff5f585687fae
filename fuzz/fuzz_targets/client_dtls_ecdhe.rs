#![no_main]
//! Fuzz target `client_dtls_ecdhe`: see `m2msec_fuzz::harness::client_dtls_ecdhe`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::client_dtls_ecdhe(data));
