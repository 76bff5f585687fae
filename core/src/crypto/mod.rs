//! The cryptography the engine uses, on RustCrypto: AES-128-CCM record protection, the TLS 1.2
//! PRF (HMAC-SHA-256), a deterministic random bit generator seeded by the caller, and P-256
//! ECDHE / ECDSA for the certificate suites (feature `ecdhe`).

pub mod aead;
#[cfg(feature = "ecdhe")]
pub mod ecc;
pub mod prf;
pub mod rng;
