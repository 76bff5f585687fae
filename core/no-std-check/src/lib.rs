//! Builds only if `m2msec` without default features pulls no `std` into the crate graph:
//! with std present, this crate's `#[panic_handler]` is a duplicate lang item and the build fails.
//! The default build checks the full core; `--no-default-features` the PSK-only one;
//! `--no-default-features --features binding` the PSK-only one with the MEF/MAF frameworks.
#![no_std]

extern crate alloc;

use core::panic::PanicInfo;

/// Uses the core so that it is really linked.
pub fn suite_count() -> usize {
    m2msec::CipherSuite::ALL.len()
}

/// A PSK client configuration: the PSK-only engine links without std.
pub fn psk_client_config() -> Result<m2msec::ClientConfig, m2msec::error::ConfigError> {
    let psk = m2msec::ClientPsk::new(b"id", m2msec::Psk::new(&[1; 16])?)?;
    m2msec::ClientConfig::builder(psk).build()
}

/// A PSK Enrolee's bootstrap configuration and a MEF, its frameworks without certificates.
#[cfg(feature = "binding")]
pub fn psk_mef(
) -> Result<m2msec::frameworks::mef::MefServer, m2msec::frameworks::config::ParameterError> {
    use alloc::sync::Arc;
    use m2msec::frameworks::config::{
        BootstrapCredential, BootstrapInstruction, EnroleeBootstrap, Lifespan, MefConfig,
        MefEnrolee,
    };
    use m2msec::frameworks::mef::{MafDirectory, MefServer};
    let credential = BootstrapCredential::new("kpm-1@mef.example.com", &[7; 32])?;
    let instruction = BootstrapInstruction::new("maf.example.com", "Cae1")?;
    let _enrolee = EnroleeBootstrap::new(
        credential.clone(),
        "coaps://mef.example.com",
        instruction.clone(),
    )?;
    let mef = MefConfig::new(
        "mef.example.com",
        alloc::vec![MefEnrolee::new(credential, instruction)],
    )?;
    let lifespan = Lifespan::from_secs(3600).map_err(|reason| {
        m2msec::frameworks::config::ParameterError::InvalidParameter {
            name: "keLifetime",
            reason,
        }
    })?;
    Ok(MefServer::new(
        Arc::new(mef),
        Arc::new(MafDirectory::default()),
        lifespan,
    ))
}

/// A MAF without configured clients (they register through the MEF).
#[cfg(feature = "binding")]
pub fn psk_maf(
) -> Result<m2msec::frameworks::maf::MafServer, m2msec::frameworks::config::ParameterError> {
    use m2msec::frameworks::config::{Lifespan, MafConfig};
    let maf = MafConfig::new("maf.example.com", alloc::vec::Vec::new())?;
    let lifespan = Lifespan::from_secs(3600).unwrap_or_else(|_| unreachable!());
    Ok(m2msec::frameworks::maf::MafServer::new(
        alloc::sync::Arc::new(maf),
        lifespan,
    ))
}

/// A certificate verifier from the oneM2M rules: present in the full build only.
#[cfg(feature = "full")]
pub fn verifier_type() -> &'static str {
    core::any::type_name::<m2msec::cert::OneM2mVerifier>()
}

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    loop {}
}
