//! The cipher suites this engine implements.
//!
//! [`CipherSuite::ALL`] stays the list of **PSK** suites: it is what a PSK configuration offers
//! by default, and callers that iterate it (the adapters, the command line, tests) keep their
//! meaning now that certificate suites exist. [`CipherSuite::ECDHE_ECDSA`] lists the
//! certificate suites and [`CipherSuite::every`] all of them.

use crate::crypto::aead::TagLen;

/// A cipher suite we implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CipherSuite {
    /// TLS_PSK_WITH_AES_128_CCM (0xC0A4), RFC 6655.
    PskAes128Ccm,
    /// TLS_PSK_WITH_AES_128_CCM_8 (0xC0A8), RFC 6655.
    PskAes128Ccm8,
    /// TLS_ECDHE_ECDSA_WITH_AES_128_CCM (0xC0AC), RFC 7251 (P-256 only here).
    EcdheEcdsaAes128Ccm,
    /// TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 (0xC0AE), RFC 7251 (P-256 only here).
    EcdheEcdsaAes128Ccm8,
}

/// Every suite, PSK first: the order of [`CipherSuite::every`].
const EVERY: &[CipherSuite] = &[
    CipherSuite::PskAes128Ccm,
    CipherSuite::PskAes128Ccm8,
    CipherSuite::EcdheEcdsaAes128Ccm,
    CipherSuite::EcdheEcdsaAes128Ccm8,
];

impl CipherSuite {
    /// The PSK suites, in our default preference order (full tag first). This is what a PSK
    /// configuration offers by default; it does not include the certificate suites.
    pub const ALL: &'static [Self] = &[Self::PskAes128Ccm, Self::PskAes128Ccm8];

    /// The ECDHE-ECDSA (certificate) suites, full tag first.
    pub const ECDHE_ECDSA: &'static [Self] =
        &[Self::EcdheEcdsaAes128Ccm, Self::EcdheEcdsaAes128Ccm8];

    /// Every suite we implement: the PSK suites, then the ECDHE-ECDSA suites.
    #[must_use]
    pub const fn every() -> &'static [Self] {
        EVERY
    }

    /// The IANA code point.
    #[must_use]
    pub const fn code(self) -> u16 {
        match self {
            Self::PskAes128Ccm => 0xC0A4,
            Self::PskAes128Ccm8 => 0xC0A8,
            Self::EcdheEcdsaAes128Ccm => 0xC0AC,
            Self::EcdheEcdsaAes128Ccm8 => 0xC0AE,
        }
    }

    /// The suite with this code point, if we implement it.
    #[must_use]
    pub fn from_code(code: u16) -> Option<Self> {
        EVERY.iter().copied().find(|s| s.code() == code)
    }

    /// The IANA name.
    #[must_use]
    pub const fn iana_name(self) -> &'static str {
        match self {
            Self::PskAes128Ccm => "TLS_PSK_WITH_AES_128_CCM",
            Self::PskAes128Ccm8 => "TLS_PSK_WITH_AES_128_CCM_8",
            Self::EcdheEcdsaAes128Ccm => "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
            Self::EcdheEcdsaAes128Ccm8 => "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
        }
    }

    /// The short name the `m2msec` command uses (`psk-aes128-ccm`, `psk-aes128-ccm8`,
    /// `ecdhe-ecdsa-aes128-ccm`, `ecdhe-ecdsa-aes128-ccm8`).
    #[must_use]
    pub const fn short_name(self) -> &'static str {
        match self {
            Self::PskAes128Ccm => "psk-aes128-ccm",
            Self::PskAes128Ccm8 => "psk-aes128-ccm8",
            Self::EcdheEcdsaAes128Ccm => "ecdhe-ecdsa-aes128-ccm",
            Self::EcdheEcdsaAes128Ccm8 => "ecdhe-ecdsa-aes128-ccm8",
        }
    }

    /// The suite with this short name or IANA name (any suite, PSK or certificate).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        EVERY.iter().copied().find(|s| {
            name.eq_ignore_ascii_case(s.short_name()) || name.eq_ignore_ascii_case(s.iana_name())
        })
    }

    /// The CCM tag length of the record protection.
    #[must_use]
    pub const fn tag_len(self) -> TagLen {
        match self {
            Self::PskAes128Ccm | Self::EcdheEcdsaAes128Ccm => TagLen::Sixteen,
            Self::PskAes128Ccm8 | Self::EcdheEcdsaAes128Ccm8 => TagLen::Eight,
        }
    }

    /// Whether the key exchange is plain PSK (RFC 4279 section 2).
    #[must_use]
    pub const fn is_psk(self) -> bool {
        matches!(self, Self::PskAes128Ccm | Self::PskAes128Ccm8)
    }

    /// Whether the key exchange is ECDHE with ECDSA authentication (RFC 8422, RFC 7251).
    #[must_use]
    pub const fn is_ecdhe_ecdsa(self) -> bool {
        matches!(self, Self::EcdheEcdsaAes128Ccm | Self::EcdheEcdsaAes128Ccm8)
    }
}

impl core::fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.iana_name())
    }
}
