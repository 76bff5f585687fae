//! Harness logic for the cargo-fuzz targets in `fuzz_targets/`.
//!
//! All logic lives in [`harness`], a single file with no dependency but `m2msec` and `std`, so
//! that `core/tests/fuzz_regressions.rs` can include it by path and replay saved crash inputs
//! (`fuzz/regressions/<target>/*`) through exactly the code the fuzzer ran.

#![forbid(unsafe_code)]

pub mod harness;
