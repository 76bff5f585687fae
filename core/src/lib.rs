//! m2msec: the oneM2M TS-0003 security frameworks over a minimal, sans-IO (D)TLS 1.2 engine.
//!
//! The core is `#![no_std]` + `alloc`, forbids `unsafe`, reads no clock and no ambient
//! randomness, and does no I/O: a [`Session`] consumes bytes and emits bytes and events; the
//! adapters (`m2msec-std`, `m2msec-tokio`) move them over sockets. See [`session`] for the driving
//! contract.
//!
//! Implemented so far: TLS 1.2 and DTLS 1.2 with TLS_PSK_WITH_AES_128_CCM and
//! TLS_PSK_WITH_AES_128_CCM_8 (RFC 4279, RFC 6655), TLS_ECDHE_ECDSA_WITH_AES_128_CCM and
//! TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 (RFC 8422, RFC 7251; P-256 only, X.509 or RFC 7250 raw
//! public keys, mutual authentication), extended master secret (RFC 7627), renegotiation_info
//! (RFC 5746; no renegotiation), server_name (RFC 6066) and the RFC 5705 exporter.
//!
//! Cargo features (all default): `std`; `ecdhe` (the ECDHE-ECDSA suites, certificates, and
//! the certificate parts of `frameworks::config`); `gba` (the [`gba`] module); `binding` (the
//! MEF/MAF wire binding and servers; PSK-only without `ecdhe`). Without default features the
//! engine is PSK-only and `no_std`; see docs/architecture.md, "Features and the embedded
//! budget".

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod cert;
mod client;
pub mod codec;
mod common;
pub mod config;
pub mod crypto;
pub mod dtls;
pub mod enums;
pub mod error;
pub mod frameworks;
#[cfg(feature = "gba")]
pub mod gba;
#[cfg(feature = "ecdhe")]
mod handshake_cert;
pub mod key_schedule;
pub mod keys;
pub mod messages;
pub mod record;
pub mod secret;
mod server;
pub mod session;
pub mod store;
pub mod suites;
pub mod time;

pub use cert::{CertDecision, CertError, CertVerifier, Credential, PeerCertificateInfo};
#[cfg(feature = "ecdhe")]
pub use cert::{CertifiedKey, SigningKey};
pub use common::SessionInfo;
pub use config::{
    ClientAuth, ClientConfig, ClientPsk, PskLookup, PskResolver, PskTable, ServerConfig,
};
pub use enums::CertificateType;
pub use error::Error;
pub use secret::Psk;
pub use session::{Event, Output, Session, Transport};
pub use suites::CipherSuite;
pub use time::{Instant, Now, UnixTime};
