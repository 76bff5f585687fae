//! Known-answer test vectors for `m2msec`, kept as JSON data files with their provenance.
//!
//! The crate has no code of its own: the vectors live in `data/<area>/*.json` (each with a
//! top-level `"source"` field), the scripts that produced or cross-checked them live in
//! `scripts/`, and the tests that feed them through m2msec's public API live in `tests/`.
//! Run them with `cargo test -p m2msec-testvectors`; `tests/vectors.rs` prints one summary
//! line per kind and a closing `vectors: N passed, M failed`. See `README.md`.

#![no_std]
#![forbid(unsafe_code)]
