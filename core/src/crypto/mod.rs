//! The cryptography the engine uses, on RustCrypto: AES-128-CCM record protection, the TLS 1.2
//! PRF (HMAC-SHA-256) and a deterministic random bit generator seeded by the caller.

pub mod aead;
pub mod prf;
pub mod rng;
