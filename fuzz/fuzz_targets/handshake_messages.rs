#![no_main]
//! Fuzz target `handshake_messages`: see `m2msec_fuzz::harness::handshake_messages`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::handshake_messages(data));
