//! Builds only if `m2msec` without default features pulls no `std` into the crate graph:
//! with std present, this crate's `#[panic_handler]` is a duplicate lang item and the build fails.
//! The default build checks the full core; `--no-default-features` the PSK-only one.
#![no_std]

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

/// A certificate verifier from the oneM2M rules: present in the full build only.
#[cfg(feature = "full")]
pub fn verifier_type() -> &'static str {
    core::any::type_name::<m2msec::cert::OneM2mVerifier>()
}

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    loop {}
}
