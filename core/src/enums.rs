//! TLS code points. Each enum keeps unknown values (`Unknown(x)`), so decoding never fails on a
//! value we do not know and re-encoding gives the same bytes.

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident : $ty:ty { $($(#[$vm:meta])* $var:ident = $val:expr,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vm])* $var,)*
            /// A value this crate does not know.
            Unknown($ty),
        }
        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                match v {
                    $($val => Self::$var,)*
                    x => Self::Unknown(x),
                }
            }
        }
        impl From<$name> for $ty {
            fn from(v: $name) -> $ty {
                match v {
                    $($name::$var => $val,)*
                    $name::Unknown(x) => x,
                }
            }
        }
    };
}

wire_enum! {
    /// Record content types (RFC 5246 6.2.1).
    ContentType: u8 {
        /// change_cipher_spec(20)
        ChangeCipherSpec = 20,
        /// alert(21)
        Alert = 21,
        /// handshake(22)
        Handshake = 22,
        /// application_data(23)
        ApplicationData = 23,
    }
}

wire_enum! {
    /// Handshake message types (RFC 5246 7.4, RFC 6347 4.3.2).
    HandshakeType: u8 {
        /// hello_request(0)
        HelloRequest = 0,
        /// client_hello(1)
        ClientHello = 1,
        /// server_hello(2)
        ServerHello = 2,
        /// hello_verify_request(3), DTLS only
        HelloVerifyRequest = 3,
        /// certificate(11)
        Certificate = 11,
        /// server_key_exchange(12)
        ServerKeyExchange = 12,
        /// certificate_request(13)
        CertificateRequest = 13,
        /// server_hello_done(14)
        ServerHelloDone = 14,
        /// certificate_verify(15)
        CertificateVerify = 15,
        /// client_key_exchange(16)
        ClientKeyExchange = 16,
        /// finished(20)
        Finished = 20,
    }
}

wire_enum! {
    /// Alert levels (RFC 5246 7.2).
    AlertLevel: u8 {
        /// warning(1)
        Warning = 1,
        /// fatal(2)
        Fatal = 2,
    }
}

wire_enum! {
    /// Alert descriptions (RFC 5246 7.2, RFC 4279, RFC 5746, RFC 6066).
    AlertDescription: u8 {
        /// close_notify(0)
        CloseNotify = 0,
        /// unexpected_message(10)
        UnexpectedMessage = 10,
        /// bad_record_mac(20)
        BadRecordMac = 20,
        /// record_overflow(22)
        RecordOverflow = 22,
        /// handshake_failure(40)
        HandshakeFailure = 40,
        /// bad_certificate(42)
        BadCertificate = 42,
        /// unsupported_certificate(43)
        UnsupportedCertificate = 43,
        /// certificate_expired(45)
        CertificateExpired = 45,
        /// certificate_unknown(46)
        CertificateUnknown = 46,
        /// illegal_parameter(47)
        IllegalParameter = 47,
        /// unknown_ca(48)
        UnknownCa = 48,
        /// access_denied(49)
        AccessDenied = 49,
        /// decode_error(50)
        DecodeError = 50,
        /// decrypt_error(51)
        DecryptError = 51,
        /// protocol_version(70)
        ProtocolVersion = 70,
        /// insufficient_security(71)
        InsufficientSecurity = 71,
        /// internal_error(80)
        InternalError = 80,
        /// user_canceled(90)
        UserCanceled = 90,
        /// no_renegotiation(100)
        NoRenegotiation = 100,
        /// unsupported_extension(110)
        UnsupportedExtension = 110,
        /// unrecognized_name(112)
        UnrecognizedName = 112,
        /// unknown_psk_identity(115), RFC 4279
        UnknownPskIdentity = 115,
    }
}

wire_enum! {
    /// Extension types used or recognised here.
    ExtensionType: u16 {
        /// server_name(0), RFC 6066
        ServerName = 0,
        /// supported_groups(10), RFC 8422
        SupportedGroups = 10,
        /// ec_point_formats(11), RFC 8422
        EcPointFormats = 11,
        /// signature_algorithms(13), RFC 5246
        SignatureAlgorithms = 13,
        /// client_certificate_type(19), RFC 7250
        ClientCertificateType = 19,
        /// server_certificate_type(20), RFC 7250
        ServerCertificateType = 20,
        /// encrypt_then_mac(22), RFC 7366 (ignored: AEAD suites only)
        EncryptThenMac = 22,
        /// extended_master_secret(23), RFC 7627
        ExtendedMasterSecret = 23,
        /// session_ticket(35), RFC 5077 (never negotiated)
        SessionTicket = 35,
        /// renegotiation_info(0xff01), RFC 5746
        RenegotiationInfo = 0xff01,
    }
}

wire_enum! {
    /// Certificate types (RFC 7250 3, the TLS Certificate Types registry).
    CertificateType: u8 {
        /// X.509 (0)
        X509 = 0,
        /// RawPublicKey (2)
        RawPublicKey = 2,
    }
}

/// NamedCurve secp256r1 (RFC 8422 5.1.1), the only group we use.
pub const NAMED_GROUP_SECP256R1: u16 = 23;
/// ECCurveType named_curve (RFC 8422 5.4).
pub const CURVE_TYPE_NAMED_CURVE: u8 = 3;
/// ECPointFormat uncompressed (RFC 8422 5.1.2).
pub const POINT_FORMAT_UNCOMPRESSED: u8 = 0;
/// SignatureAndHashAlgorithm {sha256, ecdsa} = ecdsa_secp256r1_sha256 (RFC 5246 7.4.1.4.1, RFC 8422).
pub const ECDSA_SECP256R1_SHA256: u16 = 0x0403;
/// ClientCertificateType ecdsa_sign (RFC 8422 5.5).
pub const CLIENT_CERT_TYPE_ECDSA_SIGN: u8 = 64;

/// A protocol version on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProtocolVersion(pub u16);

impl ProtocolVersion {
    /// TLS 1.2.
    pub const TLS12: Self = Self(0x0303);
    /// TLS 1.0, what some stacks put in the first record's header.
    pub const TLS10: Self = Self(0x0301);
    /// DTLS 1.2.
    pub const DTLS12: Self = Self(0xfefd);
    /// DTLS 1.0.
    pub const DTLS10: Self = Self(0xfeff);
}

/// The signalling cipher suite value for secure renegotiation (RFC 5746 3.3).
pub const TLS_EMPTY_RENEGOTIATION_INFO_SCSV: u16 = 0x00ff;
