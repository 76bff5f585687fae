//! The oneM2M TS-0003 security frameworks that run over the (D)TLS PSK engine.
//!
//! - `binding` (feature `binding`): the MEF/MAF wire binding of `docs/protocol.md`.
//! - `config`: the typed, validated configuration of draft clause 9.1 (Credential and
//!   Association Configuration) and the Bootstrap Credential / Bootstrap Instruction
//!   Configuration of draft 8.3.2.1. In every build; its certificate parts (Certificate-Based
//!   credentials, associations, bootstrap and Enrolees) need feature `ecdhe`.
//! - `mef`, `maf` (feature `binding`): the MEF and MAF server cores.

#[cfg(feature = "binding")]
pub mod binding;
pub mod config;
#[cfg(feature = "binding")]
pub mod maf;
#[cfg(feature = "binding")]
pub mod mef;
