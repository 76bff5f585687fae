#![no_main]
//! Fuzz target `dtls_reassembly`: see `m2msec_fuzz::harness::dtls_reassembly`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::dtls_reassembly(data));
