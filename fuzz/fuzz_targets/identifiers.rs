#![no_main]
//! Fuzz target `identifiers`: see `m2msec_fuzz::harness::identifiers`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::identifiers(data));
