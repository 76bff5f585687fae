//! Errors. Every error is typed, carries no secret, and maps to the alert we send through one
//! table: [`Error::alert`].

use core::fmt;

use crate::enums::AlertDescription;

/// A message could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidMessage {
    /// Fewer bytes than the structure needs.
    Truncated,
    /// Bytes left over after the structure.
    TrailingData,
    /// A length does not fit its field.
    TooLong,
    /// A vector that must not be empty was empty.
    EmptyVector,
    /// A zero-length fragment of a content type that forbids it.
    EmptyFragment,
    /// A handshake message above the configured bound.
    HandshakeMessageTooLarge,
    /// An extension appeared twice.
    DuplicateExtension,
    /// A field holds a value the protocol does not allow.
    InvalidValue(&'static str),
}

/// The peer broke the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// A message or record that is not allowed in the current state.
    UnexpectedMessage(&'static str),
    /// A field with a value that is not acceptable here.
    IllegalParameter(&'static str),
    /// The peer's Finished did not verify.
    BadFinished,
    /// The server answered with an extension the client did not offer.
    UnsolicitedExtension,
    /// A handshake message spanned a ChangeCipherSpec or key change.
    MessageInterleavedWithKeyChange,
    /// Renegotiation indication was not empty in an initial handshake (RFC 5746).
    BadRenegotiationInfo,
    /// A ServerKeyExchange or CertificateVerify signature did not verify with the peer's key.
    BadSignature,
}

/// The peer wants something we do not support.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerIncompatible {
    /// No cipher suite in common.
    NoCommonCipherSuite,
    /// The peer does not speak (D)TLS 1.2.
    UnsupportedVersion,
    /// The null compression method was not offered.
    NullCompressionRequired,
    /// The configuration requires RFC 7627 and the peer did not negotiate it.
    ExtendedMasterSecretRequired,
    /// No certificate type in common (RFC 7250: X.509 or raw public key).
    NoCommonCertificateType,
    /// The peer cannot use secp256r1 with ecdsa_secp256r1_sha256, or asked for a client
    /// certificate we cannot provide in the requested form.
    NoCommonSignatureScheme,
}

/// The caller used the API wrongly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// The session failed earlier; drop it.
    AfterFatal,
    /// The operation needs an established session.
    NotConnected,
    /// The session was closed.
    Closed,
    /// `provide_psk` was called when no key was asked for.
    NoPskRequested,
    /// The exporter label is reserved by TLS itself.
    ReservedExporterLabel,
    /// An exporter context or output longer than the protocol allows.
    ExporterTooLong,
    /// A DTLS MTU below the minimum.
    MtuTooSmall,
    /// `peer_verified` was called when no verification was asked for.
    NoVerificationRequested,
}

/// A configuration value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// No cipher suite is enabled.
    NoCipherSuites,
    /// A PSK longer than the supported maximum, or empty.
    BadPskLength,
    /// A PSK identity that is empty or longer than 2^16-1 bytes.
    BadPskIdentity,
    /// A server name that is not a valid DNS host name.
    BadServerName,
    /// A client without a PSK.
    MissingPsk,
    /// An ECDHE-ECDSA suite on a server without its own certificate (`CertifiedKey`).
    MissingCertificate,
    /// An ECDHE-ECDSA suite on a client, or client authentication on a server, without a
    /// `CertVerifier` for the peer.
    MissingVerifier,
    /// A certificate type list that is empty, repeats a type, or names a type the own
    /// credential cannot be sent as.
    BadCertificateTypes,
    /// Certificate authority names that do not fit a CertificateRequest (each 1..2^16-1 bytes,
    /// 2^16-1 in all).
    BadCertificateAuthorities,
    /// An ECDHE-ECDSA suite in a build of the core without the `ecdhe` feature (PSK-only).
    SuiteUnavailable,
}

/// Everything that can go wrong in a session.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A message or record could not be decoded.
    Decode(InvalidMessage),
    /// The peer broke the protocol.
    PeerMisbehaved(PeerMisbehaved),
    /// The peer asks for something we do not support.
    PeerIncompatible(PeerIncompatible),
    /// The peer sent a fatal alert.
    AlertReceived(AlertDescription),
    /// A protected record failed authentication (wrong key, or tampering).
    BadRecordMac,
    /// A record above the size limits of RFC 5246 6.2.
    RecordOverflow,
    /// The server does not know the client's PSK identity.
    UnknownPskIdentity,
    /// The peer closed the connection without close_notify, or the transport ended mid-handshake.
    UnexpectedEof,
    /// The caller used the API wrongly.
    ApiMisuse(ApiMisuse),
    /// Invalid configuration.
    Config(ConfigError),
    /// A sequence number would wrap; the session must end (renegotiation is refused).
    SequenceExhausted,
    /// A DTLS flight was retransmitted the maximum number of times without an answer.
    HandshakeTimeout,
    /// The peer's certificate or raw public key was refused.
    Certificate(crate::cert::CertError),
}

impl Error {
    /// The alert we send for this error, if any (the one table of the crate).
    #[must_use]
    pub fn alert(&self) -> Option<AlertDescription> {
        use AlertDescription as A;
        Some(match self {
            Self::Decode(InvalidMessage::HandshakeMessageTooLarge) => A::IllegalParameter,
            Self::Decode(_) => A::DecodeError,
            Self::PeerMisbehaved(p) => match p {
                PeerMisbehaved::UnexpectedMessage(_)
                | PeerMisbehaved::MessageInterleavedWithKeyChange => A::UnexpectedMessage,
                PeerMisbehaved::IllegalParameter(_) => A::IllegalParameter,
                PeerMisbehaved::BadFinished | PeerMisbehaved::BadSignature => A::DecryptError,
                PeerMisbehaved::UnsolicitedExtension => A::UnsupportedExtension,
                PeerMisbehaved::BadRenegotiationInfo => A::HandshakeFailure,
            },
            Self::PeerIncompatible(p) => match p {
                PeerIncompatible::UnsupportedVersion => A::ProtocolVersion,
                PeerIncompatible::NullCompressionRequired => A::IllegalParameter,
                PeerIncompatible::NoCommonCipherSuite
                | PeerIncompatible::ExtendedMasterSecretRequired
                | PeerIncompatible::NoCommonSignatureScheme => A::HandshakeFailure,
                PeerIncompatible::NoCommonCertificateType => A::UnsupportedCertificate,
            },
            Self::BadRecordMac => A::BadRecordMac,
            Self::RecordOverflow => A::RecordOverflow,
            Self::UnknownPskIdentity => A::UnknownPskIdentity,
            Self::SequenceExhausted => A::CloseNotify,
            // RFC 5246 7.4.6: a server that requires client authentication answers an empty
            // client Certificate with handshake_failure (what OpenSSL sends too); a missing
            // server certificate gets the same.
            Self::Certificate(crate::cert::CertError::NoCertificate) => A::HandshakeFailure,
            Self::Certificate(e) => e.alert(),
            Self::AlertReceived(_)
            | Self::UnexpectedEof
            | Self::HandshakeTimeout
            | Self::ApiMisuse(_)
            | Self::Config(_) => return None,
        })
    }
}

impl From<InvalidMessage> for Error {
    fn from(e: InvalidMessage) -> Self {
        Self::Decode(e)
    }
}

impl From<PeerMisbehaved> for Error {
    fn from(e: PeerMisbehaved) -> Self {
        Self::PeerMisbehaved(e)
    }
}

impl From<PeerIncompatible> for Error {
    fn from(e: PeerIncompatible) -> Self {
        Self::PeerIncompatible(e)
    }
}

impl From<ApiMisuse> for Error {
    fn from(e: ApiMisuse) -> Self {
        Self::ApiMisuse(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl fmt::Display for AlertDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::CloseNotify => "close_notify",
            Self::UnexpectedMessage => "unexpected_message",
            Self::BadRecordMac => "bad_record_mac",
            Self::RecordOverflow => "record_overflow",
            Self::HandshakeFailure => "handshake_failure",
            Self::BadCertificate => "bad_certificate",
            Self::UnsupportedCertificate => "unsupported_certificate",
            Self::CertificateExpired => "certificate_expired",
            Self::CertificateUnknown => "certificate_unknown",
            Self::IllegalParameter => "illegal_parameter",
            Self::UnknownCa => "unknown_ca",
            Self::AccessDenied => "access_denied",
            Self::DecodeError => "decode_error",
            Self::DecryptError => "decrypt_error",
            Self::ProtocolVersion => "protocol_version",
            Self::InsufficientSecurity => "insufficient_security",
            Self::InternalError => "internal_error",
            Self::UserCanceled => "user_canceled",
            Self::NoRenegotiation => "no_renegotiation",
            Self::UnsupportedExtension => "unsupported_extension",
            Self::UnrecognizedName => "unrecognized_name",
            Self::UnknownPskIdentity => "unknown_psk_identity",
            Self::Unknown(x) => return write!(f, "alert({x})"),
        };
        f.write_str(name)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "malformed message: {e:?}"),
            Self::PeerMisbehaved(e) => write!(f, "peer misbehaved: {e:?}"),
            Self::PeerIncompatible(e) => write!(f, "peer incompatible: {e:?}"),
            Self::AlertReceived(a) => write!(f, "received fatal alert: {a}"),
            Self::BadRecordMac => f.write_str("record failed authentication (bad_record_mac)"),
            Self::RecordOverflow => f.write_str("record too large (record_overflow)"),
            Self::UnknownPskIdentity => f.write_str("unknown PSK identity"),
            Self::UnexpectedEof => f.write_str("connection closed without close_notify"),
            Self::ApiMisuse(e) => write!(f, "API misuse: {e:?}"),
            Self::Config(e) => write!(f, "invalid configuration: {e:?}"),
            Self::SequenceExhausted => f.write_str("record sequence number exhausted"),
            Self::HandshakeTimeout => {
                f.write_str("handshake timed out (no answer to retransmissions)")
            }
            Self::Certificate(e) => write!(f, "peer certificate refused: {e}"),
        }
    }
}

impl core::error::Error for Error {}

impl From<crate::cert::CertError> for Error {
    fn from(e: crate::cert::CertError) -> Self {
        Self::Certificate(e)
    }
}
