#![no_main]
//! Fuzz target `gba`: see `m2msec_fuzz::harness::gba`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::gba(data));
