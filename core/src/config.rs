//! Session configuration. Built once, shared by `Arc` between sessions, validated on build.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::dtls::RetransmitConfig;
use crate::error::ConfigError;
use crate::secret::Psk;
use crate::suites::CipherSuite;

/// Default bound on one handshake message (header excluded).
pub const DEFAULT_MAX_HANDSHAKE_MESSAGE: usize = 16 * 1024;
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

/// A client configuration.
#[derive(Debug)]
pub struct ClientConfig {
    pub(crate) suites: Vec<CipherSuite>,
    pub(crate) psk: ClientPsk,
    pub(crate) require_ems: bool,
    pub(crate) limits: Limits,
    pub(crate) retransmit: RetransmitConfig,
}

impl ClientConfig {
    /// A builder with both CCM suites, extended master secret offered, and the given key.
    #[must_use]
    pub fn builder(psk: ClientPsk) -> ClientConfigBuilder {
        ClientConfigBuilder {
            suites: CipherSuite::ALL.to_vec(),
            psk,
            require_ems: false,
            limits: Limits::default(),
            retransmit: RetransmitConfig::default(),
        }
    }
}

/// Builds a [`ClientConfig`].
#[derive(Debug)]
pub struct ClientConfigBuilder {
    suites: Vec<CipherSuite>,
    psk: ClientPsk,
    require_ems: bool,
    limits: Limits,
    retransmit: RetransmitConfig,
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

    /// Validates and builds.
    pub fn build(self) -> Result<ClientConfig, ConfigError> {
        if self.suites.is_empty() {
            return Err(ConfigError::NoCipherSuites);
        }
        Ok(ClientConfig {
            suites: self.suites,
            psk: self.psk,
            require_ems: self.require_ems,
            limits: self.limits,
            retransmit: self.retransmit,
        })
    }
}

/// A server configuration.
pub struct ServerConfig {
    pub(crate) suites: Vec<CipherSuite>,
    pub(crate) resolver: Box<dyn PskResolver>,
    pub(crate) hint: Option<Vec<u8>>,
    pub(crate) require_ems: bool,
    pub(crate) hide_unknown_identity: bool,
    pub(crate) limits: Limits,
    pub(crate) retransmit: RetransmitConfig,
}

impl core::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("suites", &self.suites)
            .field("hint", &self.hint)
            .field("require_ems", &self.require_ems)
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// A builder accepting both CCM suites, with keys from `resolver`.
    #[must_use]
    pub fn builder(resolver: Box<dyn PskResolver>) -> ServerConfigBuilder {
        ServerConfigBuilder {
            suites: CipherSuite::ALL.to_vec(),
            resolver,
            hint: None,
            require_ems: false,
            hide_unknown_identity: false,
            limits: Limits::default(),
            retransmit: RetransmitConfig::default(),
        }
    }
}

/// Builds a [`ServerConfig`].
pub struct ServerConfigBuilder {
    suites: Vec<CipherSuite>,
    resolver: Box<dyn PskResolver>,
    hint: Option<Vec<u8>>,
    require_ems: bool,
    hide_unknown_identity: bool,
    limits: Limits,
    retransmit: RetransmitConfig,
}

impl core::fmt::Debug for ServerConfigBuilder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConfigBuilder")
            .field("suites", &self.suites)
            .finish_non_exhaustive()
    }
}

impl ServerConfigBuilder {
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

    /// Validates and builds.
    pub fn build(self) -> Result<ServerConfig, ConfigError> {
        if self.suites.is_empty() {
            return Err(ConfigError::NoCipherSuites);
        }
        if let Some(h) = &self.hint {
            if h.len() > usize::from(u16::MAX) {
                return Err(ConfigError::BadPskIdentity);
            }
        }
        Ok(ServerConfig {
            suites: self.suites,
            resolver: self.resolver,
            hint: self.hint,
            require_ems: self.require_ems,
            hide_unknown_identity: self.hide_unknown_identity,
            limits: self.limits,
            retransmit: self.retransmit,
        })
    }
}
