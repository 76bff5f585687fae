#![no_main]
//! Fuzz target `ecdhe_messages`: see `m2msec_fuzz::harness::ecdhe_messages`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| m2msec_fuzz::harness::ecdhe_messages(data));
