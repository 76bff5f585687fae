#![no_main]
//! Fuzz target `server_tls`: see `m2msec_fuzz::harness::server_tls`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::server_tls(data));
