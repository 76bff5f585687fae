#![no_main]
//! Fuzz target `server_dtls`: see `m2msec_fuzz::harness::server_dtls`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::server_dtls(data));
