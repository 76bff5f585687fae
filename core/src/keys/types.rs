//! The 32-byte keys of TS-0003: one type each, so a Kc cannot be passed where a Ke is expected.

use core::fmt;

use zeroize::ZeroizeOnDrop;

use crate::secret::{Psk, SecretArray};

/// Bytes of every oneM2M symmetric key here (published TS-0003 10.3.1-10.3.3).
pub const KEY_LEN: usize = 32;

/// A 32-byte secret of no particular role: the key half of an exporter output
/// ([`split_exporter`](super::split_exporter)).
pub type Key32 = SecretArray<KEY_LEN>;

macro_rules! key32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Zeroized on drop, compared in constant time, redacted in `Debug`.
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(Key32);

        impl $name {
            /// The key from its bytes (configured, provisioned, or a test vector).
            #[must_use]
            pub fn new(bytes: [u8; KEY_LEN]) -> Self {
                Self(SecretArray::new(bytes))
            }

            /// The key bytes. Handle with care.
            #[must_use]
            pub fn expose(&self) -> &[u8; KEY_LEN] {
                self.0.expose()
            }

            /// The key as a (D)TLS pre-shared key: all 32 bytes (D5; draft 8.2.2.1 and 8.3.3.1 use
            /// the whole key as "psk").
            #[must_use]
            pub fn to_psk(&self) -> Psk {
                Psk::new(self.0.expose()).expect("32 bytes is within 1..=MAX_PSK_LEN")
            }
        }

        impl From<Key32> for $name {
            fn from(k: Key32) -> Self {
                Self(k)
            }
        }

        // The only field is a SecretArray, which zeroizes itself on drop.
        impl ZeroizeOnDrop for $name {}

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

key32! {
    /// Enrolment Key Ke, shared by Enrolee and MEF after a Security Bootstrap (draft 8.3.1.2, 9.3;
    /// published TS-0003 10.3.1).
    Ke
}

key32! {
    /// M2M Secure Connection Key Kc, shared by Entity A and the MAF, later by Entity B (draft
    /// 8.2.3.1; published TS-0003 10.3.1, 8.2.2.3).
    Kc
}

key32! {
    /// Master Credential Km, shared by an Enrolee and its MAF (draft 8.3.1.2, 9.4; published
    /// TS-0003 10.3.2).
    Km
}

key32! {
    /// Provisioned Secure Connection Key Kpsa (draft 8.2.2.1; derived from Ke by published TS-0003
    /// 10.3.3).
    Kpsa
}
