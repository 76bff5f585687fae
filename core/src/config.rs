//! Session configuration. Built once, shared by `Arc` between sessions, validated on build.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use crate::cert::{CertVerifier, MAX_CHAIN_BYTES, MAX_CHAIN_LEN};
#[cfg(feature = "ecdhe")]
use crate::cert::{CertifiedKey, Credential};
use crate::dtls::RetransmitConfig;
use crate::enums::CertificateType;
use crate::error::ConfigError;
use crate::secret::Psk;
use crate::suites::CipherSuite;

/// Default bound on one handshake message (header excluded): room for a Certificate message
/// with the largest chain we accept ([`MAX_CHAIN_BYTES`] plus the length prefixes of
/// [`MAX_CHAIN_LEN`] certificates).
pub const DEFAULT_MAX_HANDSHAKE_MESSAGE: usize = MAX_CHAIN_BYTES + 3 + 3 * MAX_CHAIN_LEN;
/// Default bound on the plaintext queued by `send` before it refuses more (backpressure).
pub const DEFAULT_MAX_BUFFERED_OUTPUT: usize = 64 * 1024;

/// The client's PSK: identity and key.
#[derive(Clone, Debug)]
pub struct ClientPsk {
    identity: Vec<u8>,
    key: Psk,
}

impl ClientPsk {
    /// An identity (1..2^16-1 bytes) and its key.
    pub fn new(identity: &[u8], key: Psk) -> Result<Self, ConfigError> {
        check_identity(identity)?;
        Ok(Self {
            identity: identity.to_vec(),
            key,
        })
    }

    /// The identity.
    #[must_use]
    pub fn identity(&self) -> &[u8] {
        &self.identity
    }

    /// The key.
    #[must_use]
    pub fn key(&self) -> &Psk {
        &self.key
    }
}

fn check_identity(identity: &[u8]) -> Result<(), ConfigError> {
    if identity.is_empty() || identity.len() > usize::from(u16::MAX) {
        return Err(ConfigError::BadPskIdentity);
    }
    Ok(())
}

/// What a server's key lookup answers.
#[derive(Debug)]
pub enum PskLookup {
    /// The key for this identity.
    Found(Psk),
    /// No such identity: the handshake fails with `unknown_psk_identity`.
    Unknown,
    /// Ask the caller: the session emits `Event::PskNeeded` and waits for `provide_psk`.
    Defer,
}

/// Chooses the PSK for a client's identity, given the SNI the client sent.
pub trait PskResolver: Send + Sync {
    /// Looks `identity` up. Called once per handshake.
    fn resolve(&self, identity: &[u8], server_name: Option<&str>) -> PskLookup;
}

/// A fixed table of identities and keys.
#[derive(Debug, Default)]
pub struct PskTable {
    keys: BTreeMap<Vec<u8>, Psk>,
}

impl PskTable {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces `identity`.
    pub fn insert(&mut self, identity: &[u8], key: Psk) -> Result<(), ConfigError> {
        check_identity(identity)?;
        self.keys.insert(identity.to_vec(), key);
        Ok(())
    }
}

impl PskResolver for PskTable {
    fn resolve(&self, identity: &[u8], _server_name: Option<&str>) -> PskLookup {
        self.keys
            .get(identity)
            .map_or(PskLookup::Unknown, |k| PskLookup::Found(k.clone()))
    }
}

/// A resolver that always defers to the caller.
#[derive(Debug, Default, Clone, Copy)]
pub struct DeferAll;

impl PskResolver for DeferAll {
    fn resolve(&self, _identity: &[u8], _server_name: Option<&str>) -> PskLookup {
        PskLookup::Defer
    }
}

/// Limits shared by both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest handshake message body accepted.
    pub max_handshake_message: usize,
    /// Most plaintext `send` buffers before returning a partial count.
    pub max_buffered_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_handshake_message: DEFAULT_MAX_HANDSHAKE_MESSAGE,
            max_buffered_output: DEFAULT_MAX_BUFFERED_OUTPUT,
        }
    }
}

/// Whether and how a server asks clients for a certificate (ECDHE-ECDSA suites only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// No CertificateRequest.
    #[default]
    Off,
    /// CertificateRequest; a client without a certificate is let in unauthenticated.
    Optional,
    /// CertificateRequest; a client without a certificate is refused with handshake_failure
    /// (RFC 5246 7.4.6).
    Required,
}

/// Refuses the ECDHE-ECDSA suites in a build without the `ecdhe` feature.
fn check_suites_built(suites: &[CipherSuite]) -> Result<(), ConfigError> {
    if cfg!(not(feature = "ecdhe")) && suites.iter().any(|s| s.is_ecdhe_ecdsa()) {
        return Err(ConfigError::SuiteUnavailable);
    }
    Ok(())
}

/// Checks a certificate type list: not empty, no repeats, no unknown types.
fn check_types(types: &[CertificateType]) -> Result<(), ConfigError> {
    let known =
        |t: &CertificateType| matches!(t, CertificateType::X509 | CertificateType::RawPublicKey);
    let repeated = types
        .iter()
        .enumerate()
        .any(|(i, t)| types[..i].contains(t));
    if types.is_empty() || repeated || !types.iter().all(known) {
        return Err(ConfigError::BadCertificateTypes);
    }
    Ok(())
}

/// A client configuration.
pub struct ClientConfig {
    pub(crate) suites: Vec<CipherSuite>,
    pub(crate) psk: Option<ClientPsk>,
    pub(crate) require_ems: bool,
    pub(crate) limits: Limits,
    pub(crate) retransmit: RetransmitConfig,
    #[cfg(feature = "ecdhe")]
    pub(crate) certificate: Option<CertifiedKey>,
    pub(crate) verifier: Option<Arc<dyn CertVerifier>>,
    pub(crate) server_cert_types: Vec<CertificateType>,
}

impl core::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("suites", &self.suites)
            .field("psk", &self.psk)
            .field("require_ems", &self.require_ems)
            .field("certificate", &self.has_certificate())
            .field("verifier", &self.verifier.is_some())
            .field("server_cert_types", &self.server_cert_types)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// Whether an own certificate is configured (never without the `ecdhe` feature).
    pub(crate) fn has_certificate(&self) -> bool {
        #[cfg(feature = "ecdhe")]
        return self.certificate.is_some();
        #[cfg(not(feature = "ecdhe"))]
        false
    }

    /// A PSK client: a builder with both PSK CCM suites ([`CipherSuite::ALL`]), extended
    /// master secret offered, and the given key. Add certificate suites with
    /// [`ClientConfigBuilder::verifier`] and [`ClientConfigBuilder::suites`].
    #[must_use]
    pub fn builder(psk: ClientPsk) -> ClientConfigBuilder {
        ClientConfigBuilder {
            suites: CipherSuite::ALL.to_vec(),
            psk: Some(psk),
            require_ems: false,
            limits: Limits::default(),
            retransmit: RetransmitConfig::default(),
            #[cfg(feature = "ecdhe")]
            certificate: None,
            verifier: None,
            server_cert_types: vec![CertificateType::X509],
        }
    }

    /// A certificate client: a builder with both ECDHE-ECDSA suites
    /// ([`CipherSuite::ECDHE_ECDSA`]) that checks the server with `verifier`. Add a
    /// [`ClientConfigBuilder::certificate`] for servers that ask for client authentication.
    #[must_use]
    pub fn builder_with_verifier(verifier: Arc<dyn CertVerifier>) -> ClientConfigBuilder {
        ClientConfigBuilder {
            suites: CipherSuite::ECDHE_ECDSA.to_vec(),
            psk: None,
            require_ems: false,
            limits: Limits::default(),
            retransmit: RetransmitConfig::default(),
            #[cfg(feature = "ecdhe")]
            certificate: None,
            verifier: Some(verifier),
            server_cert_types: vec![CertificateType::X509],
        }
    }
}

/// Builds a [`ClientConfig`].
pub struct ClientConfigBuilder {
    suites: Vec<CipherSuite>,
    psk: Option<ClientPsk>,
    require_ems: bool,
    limits: Limits,
    retransmit: RetransmitConfig,
    #[cfg(feature = "ecdhe")]
    certificate: Option<CertifiedKey>,
    verifier: Option<Arc<dyn CertVerifier>>,
    server_cert_types: Vec<CertificateType>,
}

impl core::fmt::Debug for ClientConfigBuilder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientConfigBuilder")
            .field("suites", &self.suites)
            .finish_non_exhaustive()
    }
}

impl ClientConfigBuilder {
    /// The suites to offer, in order.
    #[must_use]
    pub fn suites(mut self, suites: &[CipherSuite]) -> Self {
        self.suites = suites.to_vec();
        self
    }

    /// Refuse servers that do not negotiate RFC 7627 extended master secret.
    #[must_use]
    pub fn require_extended_master_secret(mut self, yes: bool) -> Self {
        self.require_ems = yes;
        self
    }

    /// Memory bounds.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// DTLS retransmission timer settings.
    #[must_use]
    pub fn retransmit(mut self, retransmit: RetransmitConfig) -> Self {
        self.retransmit = retransmit;
        self
    }

    /// Adds (or replaces) the PSK, for configurations with both kinds of suites.
    #[must_use]
    pub fn psk(mut self, psk: ClientPsk) -> Self {
        self.psk = Some(psk);
        self
    }

    /// The verifier of the server's certificate or raw public key (needed by ECDHE-ECDSA suites).
    #[must_use]
    pub fn verifier(mut self, verifier: Arc<dyn CertVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    #[cfg(feature = "ecdhe")]
    /// The client's own certificate (or raw public key) and key, sent when the server asks.
    /// A raw public key credential is offered in client_certificate_type (RFC 7250).
    #[must_use]
    pub fn certificate(mut self, key: CertifiedKey) -> Self {
        self.certificate = Some(key);
        self
    }

    /// The server certificate types accepted, in preference order (default: X.509 only). Any
    /// other list is sent in server_certificate_type (RFC 7250), e.g.
    /// `[RawPublicKey, X509]` to prefer a raw public key.
    #[must_use]
    pub fn server_certificate_types(mut self, types: &[CertificateType]) -> Self {
        self.server_cert_types = types.to_vec();
        self
    }

    /// Validates and builds: PSK suites need a PSK, ECDHE-ECDSA suites a verifier.
    pub fn build(self) -> Result<ClientConfig, ConfigError> {
        if self.suites.is_empty() {
            return Err(ConfigError::NoCipherSuites);
        }
        if self.suites.iter().any(|s| s.is_psk()) && self.psk.is_none() {
            return Err(ConfigError::MissingPsk);
        }
        check_suites_built(&self.suites)?;
        if self.suites.iter().any(|s| s.is_ecdhe_ecdsa()) && self.verifier.is_none() {
            return Err(ConfigError::MissingVerifier);
        }
        check_types(&self.server_cert_types)?;
        Ok(ClientConfig {
            suites: self.suites,
            psk: self.psk,
            require_ems: self.require_ems,
            limits: self.limits,
            retransmit: self.retransmit,
            #[cfg(feature = "ecdhe")]
            certificate: self.certificate,
            verifier: self.verifier,
            server_cert_types: self.server_cert_types,
        })
    }
}

/// A server configuration.
pub struct ServerConfig {
    pub(crate) suites: Vec<CipherSuite>,
    pub(crate) resolver: Option<Box<dyn PskResolver>>,
    pub(crate) hint: Option<Vec<u8>>,
    pub(crate) require_ems: bool,
    pub(crate) hide_unknown_identity: bool,
    pub(crate) limits: Limits,
    pub(crate) retransmit: RetransmitConfig,
    #[cfg(feature = "ecdhe")]
    pub(crate) certificate: Option<CertifiedKey>,
    #[cfg_attr(not(feature = "ecdhe"), allow(dead_code))] // kept: the API is the same
    pub(crate) verifier: Option<Arc<dyn CertVerifier>>,
    pub(crate) client_auth: ClientAuth,
    pub(crate) server_cert_types: Vec<CertificateType>,
    pub(crate) client_cert_types: Vec<CertificateType>,
    #[cfg_attr(not(feature = "ecdhe"), allow(dead_code))]
    pub(crate) ca_names: Vec<Vec<u8>>,
}

impl core::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("suites", &self.suites)
            .field("hint", &self.hint)
            .field("require_ems", &self.require_ems)
            .field("certificate", &self.has_certificate())
            .field("client_auth", &self.client_auth)
            .field("server_cert_types", &self.server_cert_types)
            .field("client_cert_types", &self.client_cert_types)
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// Whether an own certificate is configured (never without the `ecdhe` feature).
    pub(crate) fn has_certificate(&self) -> bool {
        #[cfg(feature = "ecdhe")]
        return self.certificate.is_some();
        #[cfg(not(feature = "ecdhe"))]
        false
    }

    /// A PSK server: a builder accepting both PSK CCM suites ([`CipherSuite::ALL`]), with keys
    /// from `resolver`. Add certificate suites with [`ServerConfigBuilder::certificate`] and
    /// [`ServerConfigBuilder::suites`].
    #[must_use]
    pub fn builder(resolver: Box<dyn PskResolver>) -> ServerConfigBuilder {
        ServerConfigBuilder::new(CipherSuite::ALL, Some(resolver))
    }

    #[cfg(feature = "ecdhe")]
    /// A certificate server: a builder accepting both ECDHE-ECDSA suites
    /// ([`CipherSuite::ECDHE_ECDSA`]) that presents `key`. Client authentication is off until
    /// [`ServerConfigBuilder::client_auth`] and [`ServerConfigBuilder::verifier`].
    #[must_use]
    pub fn builder_with_certificate(key: CertifiedKey) -> ServerConfigBuilder {
        let mut b = ServerConfigBuilder::new(CipherSuite::ECDHE_ECDSA, None);
        b.certificate = Some(key);
        b
    }
}

/// Builds a [`ServerConfig`].
pub struct ServerConfigBuilder {
    suites: Vec<CipherSuite>,
    resolver: Option<Box<dyn PskResolver>>,
    hint: Option<Vec<u8>>,
    require_ems: bool,
    hide_unknown_identity: bool,
    limits: Limits,
    retransmit: RetransmitConfig,
    #[cfg(feature = "ecdhe")]
    certificate: Option<CertifiedKey>,
    verifier: Option<Arc<dyn CertVerifier>>,
    client_auth: ClientAuth,
    server_cert_types: Option<Vec<CertificateType>>,
    client_cert_types: Vec<CertificateType>,
    ca_names: Vec<Vec<u8>>,
}

impl core::fmt::Debug for ServerConfigBuilder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConfigBuilder")
            .field("suites", &self.suites)
            .finish_non_exhaustive()
    }
}

impl ServerConfigBuilder {
    fn new(suites: &[CipherSuite], resolver: Option<Box<dyn PskResolver>>) -> Self {
        Self {
            suites: suites.to_vec(),
            resolver,
            hint: None,
            require_ems: false,
            hide_unknown_identity: false,
            limits: Limits::default(),
            retransmit: RetransmitConfig::default(),
            #[cfg(feature = "ecdhe")]
            certificate: None,
            verifier: None,
            client_auth: ClientAuth::Off,
            server_cert_types: None,
            client_cert_types: vec![CertificateType::X509],
            ca_names: Vec::new(),
        }
    }

    /// The accepted suites, in server preference order.
    #[must_use]
    pub fn suites(mut self, suites: &[CipherSuite]) -> Self {
        self.suites = suites.to_vec();
        self
    }

    /// The PSK identity hint sent in ServerKeyExchange (none: ServerKeyExchange is omitted).
    #[must_use]
    pub fn identity_hint(mut self, hint: Option<&[u8]>) -> Self {
        self.hint = hint.map(<[u8]>::to_vec);
        self
    }

    /// Refuse clients that do not offer RFC 7627 extended master secret.
    #[must_use]
    pub fn require_extended_master_secret(mut self, yes: bool) -> Self {
        self.require_ems = yes;
        self
    }

    /// Answer an unknown identity with `decrypt_error` as if the key were wrong (RFC 4279 2),
    /// instead of `unknown_psk_identity`.
    #[must_use]
    pub fn hide_unknown_identity(mut self, yes: bool) -> Self {
        self.hide_unknown_identity = yes;
        self
    }

    /// Memory bounds.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// DTLS retransmission timer settings.
    #[must_use]
    pub fn retransmit(mut self, retransmit: RetransmitConfig) -> Self {
        self.retransmit = retransmit;
        self
    }

    /// Adds (or replaces) the PSK resolver, for configurations with both kinds of suites.
    #[must_use]
    pub fn psk_resolver(mut self, resolver: Box<dyn PskResolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    #[cfg(feature = "ecdhe")]
    /// The server's certificate (or raw public key) and key (needed by ECDHE-ECDSA suites).
    #[must_use]
    pub fn certificate(mut self, key: CertifiedKey) -> Self {
        self.certificate = Some(key);
        self
    }

    /// The verifier of client certificates (needed when client authentication is on).
    #[must_use]
    pub fn verifier(mut self, verifier: Arc<dyn CertVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Whether to ask ECDHE-ECDSA clients for a certificate.
    #[must_use]
    pub fn client_auth(mut self, mode: ClientAuth) -> Self {
        self.client_auth = mode;
        self
    }

    /// The types the server may present, in preference order, chosen against the client's
    /// server_certificate_type (RFC 7250). Default: the credential's own type. An X.509
    /// credential may add `RawPublicKey` (its leaf key is then sent alone).
    #[must_use]
    pub fn server_certificate_types(mut self, types: &[CertificateType]) -> Self {
        self.server_cert_types = Some(types.to_vec());
        self
    }

    /// The client certificate types accepted, in preference order (default: X.509 only).
    /// Add `RawPublicKey` to accept RFC 7250 raw public keys from clients.
    #[must_use]
    pub fn client_certificate_types(mut self, types: &[CertificateType]) -> Self {
        self.client_cert_types = types.to_vec();
        self
    }

    /// The DER DistinguishedNames sent as certificate_authorities in CertificateRequest
    /// (default: none, i.e. any).
    #[must_use]
    pub fn certificate_authorities(mut self, names: &[Vec<u8>]) -> Self {
        self.ca_names = names.to_vec();
        self
    }

    /// Validates and builds: PSK suites need a resolver, ECDHE-ECDSA suites a certificate,
    /// client authentication a verifier; certificate types must suit the credential.
    pub fn build(self) -> Result<ServerConfig, ConfigError> {
        if self.suites.is_empty() {
            return Err(ConfigError::NoCipherSuites);
        }
        if let Some(h) = &self.hint {
            if h.len() > usize::from(u16::MAX) {
                return Err(ConfigError::BadPskIdentity);
            }
        }
        if self.suites.iter().any(|s| s.is_psk()) && self.resolver.is_none() {
            return Err(ConfigError::MissingPsk);
        }
        check_suites_built(&self.suites)?;
        #[cfg(feature = "ecdhe")]
        if self.suites.iter().any(|s| s.is_ecdhe_ecdsa()) && self.certificate.is_none() {
            return Err(ConfigError::MissingCertificate);
        }
        if self.client_auth != ClientAuth::Off && self.verifier.is_none() {
            return Err(ConfigError::MissingVerifier);
        }
        #[cfg(feature = "ecdhe")]
        let own_x509 = matches!(
            self.certificate.as_ref().map(CertifiedKey::credential),
            Some(Credential::X509(_))
        );
        #[cfg(not(feature = "ecdhe"))]
        let own_x509 = false;
        let server_cert_types = match self.server_cert_types {
            Some(t) => t,
            None if own_x509 => vec![CertificateType::X509],
            None => vec![CertificateType::RawPublicKey],
        };
        check_types(&server_cert_types)?;
        if server_cert_types.contains(&CertificateType::X509) && !own_x509 {
            return Err(ConfigError::BadCertificateTypes);
        }
        check_types(&self.client_cert_types)?;
        let total: usize = self.ca_names.iter().map(|n| 2 + n.len()).sum();
        let bad_name = |n: &Vec<u8>| n.is_empty() || n.len() > usize::from(u16::MAX);
        if total > usize::from(u16::MAX) || self.ca_names.iter().any(bad_name) {
            return Err(ConfigError::BadCertificateAuthorities);
        }
        Ok(ServerConfig {
            suites: self.suites,
            resolver: self.resolver,
            hint: self.hint,
            require_ems: self.require_ems,
            hide_unknown_identity: self.hide_unknown_identity,
            limits: self.limits,
            retransmit: self.retransmit,
            #[cfg(feature = "ecdhe")]
            certificate: self.certificate,
            verifier: self.verifier,
            client_auth: self.client_auth,
            server_cert_types,
            client_cert_types: self.client_cert_types,
            ca_names: self.ca_names,
        })
    }
}

#[cfg(all(test, not(feature = "ecdhe")))]
mod psk_only_tests {
    use super::*;

    #[test]
    fn ecdhe_suites_are_refused_without_the_feature() {
        let psk = ClientPsk::new(b"id", Psk::new(&[1; 16]).unwrap()).unwrap();
        let suites = [CipherSuite::PskAes128Ccm, CipherSuite::EcdheEcdsaAes128Ccm8];
        let c = ClientConfig::builder(psk).suites(&suites).build();
        assert_eq!(c.unwrap_err(), ConfigError::SuiteUnavailable);
        let s = ServerConfig::builder(Box::new(PskTable::new()))
            .suites(&suites)
            .build();
        assert_eq!(s.unwrap_err(), ConfigError::SuiteUnavailable);
        let psk = ClientPsk::new(b"id", Psk::new(&[1; 16]).unwrap()).unwrap();
        assert!(ClientConfig::builder(psk).build().is_ok());
    }
}
