//! The oneM2M TS-0003 frameworks over the tokio adapter: the network side of the sans-IO
//! servers of [`m2msec::frameworks`] (wire contract: `docs/protocol.md`).

pub mod bsf;
pub mod maf;
pub mod mef;
pub mod registrar;
mod serve;

use std::fmt;

/// How a framework endpoint is reached: TLS over TCP (`https://`) or DTLS over UDP
/// (`coaps://`). The same HTTP/1.1 binding runs over both (`docs/protocol.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TLS 1.2 over TCP.
    Tls,
    /// DTLS 1.2 over UDP, one binding message per record.
    Dtls,
}

impl Transport {
    /// The transport a URI scheme names: `https` is TLS, `coaps` is DTLS.
    #[must_use]
    pub fn from_scheme(scheme: &str) -> Option<Self> {
        if scheme.eq_ignore_ascii_case("https") {
            Some(Self::Tls)
        } else if scheme.eq_ignore_ascii_case("coaps") {
            Some(Self::Dtls)
        } else {
            None
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tls => "TLS",
            Self::Dtls => "DTLS",
        })
    }
}
