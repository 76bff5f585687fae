#![no_main]
//! Fuzz target `server_dtls_ecdhe`: see `m2msec_fuzz::harness::server_dtls_ecdhe`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::server_dtls_ecdhe(data));
