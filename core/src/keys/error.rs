//! Why a key identifier was refused.

use core::fmt;

/// A key identifier (`relative@FQDN`) that does not have the required form. Carries no secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyError {
    /// The identifier bytes are not UTF-8.
    NotUtf8,
    /// Longer than [`MAX_KEY_ID_LEN`](super::MAX_KEY_ID_LEN) bytes.
    TooLong,
    /// No `@` between the relative part and the FQDN.
    MissingAt,
    /// Nothing before the `@`.
    EmptyRelative,
    /// The relative part is longer than [`MAX_RELATIVE_LEN`](super::MAX_RELATIVE_LEN) bytes.
    RelativeTooLong,
    /// The relative part has a character outside `A-Z a-z 0-9 . _ -`.
    InvalidRelativeChar,
    /// A KeID's relative part is not exactly 32 hexadecimal digits (16 bytes).
    NotHexRelative,
    /// The part after the `@` is not a DNS name (or a second `@` follows).
    InvalidFqdn,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotUtf8 => "key identifier is not UTF-8",
            Self::TooLong => "key identifier too long",
            Self::MissingAt => "key identifier has no '@'",
            Self::EmptyRelative => "key identifier has an empty relative part",
            Self::RelativeTooLong => "key identifier relative part too long",
            Self::InvalidRelativeChar => {
                "key identifier relative part has a character outside A-Z a-z 0-9 . _ -"
            }
            Self::NotHexRelative => "key identifier relative part is not 32 hexadecimal digits",
            Self::InvalidFqdn => "key identifier FQDN part is not a DNS name",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for KeyError {}
