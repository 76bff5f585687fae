#![no_main]
//! Fuzz target `cert_verify`: see `m2msec_fuzz::harness::cert_verify`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::cert_verify(data));
