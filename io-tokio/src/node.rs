//! Running a role from its configuration file ([`config_toml::load_node`]): the code paths of
//! `m2msec mef`, `m2msec maf`, `m2msec registrar`, `m2msec enrol` and `m2msec associate`, which
//! `m2msec demo` runs too (same servers, same stores, same clients).
//!
//! Servers open their durable key store ([`RedbKeyStore`], keys wrapped with the `[service]`
//! KEK) and listen on TLS and/or DTLS as the `[service]` section says. Clients keep their keys in
//! the same kind of store, under the fixed slots documented on [`ENROLMENT_SLOT`] and
//! [`KM_SLOT`].

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use m2msec::frameworks::binding::AssociationInfoResponse;
use m2msec::frameworks::config::{EndPointConfig, Lifespan, MefConfig};
use m2msec::frameworks::maf::MafServer;
use m2msec::frameworks::mef::{MafDirectory, MafEntry};
use m2msec::keys::{km, IdKind, Ke, KeyId, Km};
use m2msec::store::{KeyKind, KeyRecord, KeySecret};
use m2msec::{ClientPsk, Psk, UnixTime};
use tokio::net::lookup_host;
use tokio::sync::mpsc;

use crate::config_toml::{self, Config, LoadError, Node, Service, Uri};
use crate::frameworks::bsf::bootstrap;
use crate::frameworks::maf::{
    gba_fetch_km, gba_maf_naf_id, mef_fetch_km, register_client_via, register_key_via,
    MafCredentials, MafService,
};
use crate::frameworks::mef::{enrol, enrol_dtls, Enrolment, MefHandle, MefService, ServiceHandle};
use crate::frameworks::registrar::{
    associate_certificate_configured, associate_gba, associate_maf, associate_pre_provisioned,
    AssociateError, GbaNaf, Registrar, RegistrarConnection, RegistrarEvent, RegistrarHandle,
};
use crate::frameworks::Transport;
use crate::store::{AsyncKeyStore, RedbKeyStore};
use m2msec::gba::kdf::{ks_int_naf, ks_naf, psk_identity, BTid, GbaPrefix, NafId};
use m2msec::gba::usim::Usim;
use m2msec::gba::Ks;

/// Default lifetime of an Enrolment Key (and of the Km derived from it): 30 days.
pub const DEFAULT_KE_LIFETIME: u64 = 30 * 86_400;

/// The client store slot of the Enrolee's current Enrolment: `kind = Ke`, `secret = Ke`,
/// `owner` = Enrolee-ID, `targets = [KeID, MAF-ID, mafURI]`, `not_after` = Ke expiry.
pub const ENROLMENT_SLOT: &str = "enrolment@local";

/// The client store slot of the Enrolee's Master Credential: `kind = Km`, `secret = Km`,
/// `owner` = Enrolee-ID, `targets = [KmID or KeID, MAF-ID]` (the PSK identity to use with the
/// MAF: the KeID until the MAF assigned a KmID), `not_after` = Km expiry.
pub const KM_SLOT: &str = "km@local";

/// The client store slot of a UE's GBA bootstrapping: `kind = GbaBootstrapping`, `secret = Ks`,
/// `owner` = IMPI, `targets = [B-TID, hex(RAND)]`, `not_after` = the key lifetime the BSF
/// announced. While it is valid no new bootstrapping is run.
pub const GBA_SLOT: &str = "gba@local";

/// Why a role could not be started or a client step failed. Carries no key material.
#[derive(Debug)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration file is invalid (names the file, group and parameter).
    Load(LoadError),
    /// The file configures another role than the command needs.
    WrongRole {
        /// What the command needs.
        expected: &'static str,
    },
    /// A `[service]` or clause 9.1 parameter the command needs is missing or unusable.
    Missing(&'static str),
    /// A parameter is invalid (the message names it).
    Invalid(String),
    /// The key store could not be opened or used.
    Store(String),
    /// A socket could not be bound or an address resolved.
    Io(std::io::Error),
    /// A protocol step failed.
    Failed(String),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Load(e) => write!(f, "{e}"),
            Self::WrongRole { expected } => {
                write!(f, "the configuration is not for the role {expected}")
            }
            Self::Missing(p) => write!(f, "parameter {p} is required for this command"),
            Self::Invalid(m) | Self::Store(m) | Self::Failed(m) => f.write_str(m),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for NodeError {}

impl From<LoadError> for NodeError {
    fn from(e: LoadError) -> Self {
        Self::Load(e)
    }
}

impl From<std::io::Error> for NodeError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// The current Unix time.
#[must_use]
pub fn unix_now() -> UnixTime {
    m2msec::Now::from_std(std::time::Instant::now()).unix
}

/// Loads `path` for a client starting now: expired configuration is refused, naming the
/// parameter.
pub fn load(path: impl Into<PathBuf>) -> Result<Node, NodeError> {
    Ok(config_toml::load_node(path.into(), Some(unix_now()))?)
}

/// Loads `path` for a server: an expired entry (one client's Km, one peer's association
/// configuration) does not stop the server, since the other entries are still usable; it is
/// logged as a warning and refused at run time, per request or per handshake.
pub fn load_server(path: impl Into<PathBuf>) -> Result<Node, NodeError> {
    let path = path.into();
    match config_toml::load_node(&path, Some(unix_now())) {
        Ok(n) => Ok(n),
        Err(e)
            if matches!(
                e.kind(),
                config_toml::LoadErrorKind::Parameter {
                    error: m2msec::frameworks::config::ParameterError::Expired(_),
                    ..
                }
            ) =>
        {
            tracing::warn!(error = %e, "expired configuration entry: refused at run time");
            Ok(config_toml::load_node(&path, None)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Opens the durable store the `[service]` section names (`store` and `kek` are required).
pub async fn open_store(service: &Service) -> Result<Arc<RedbKeyStore>, NodeError> {
    let path = service
        .store
        .clone()
        .ok_or(NodeError::Missing("service.store"))?;
    let kek = service
        .kek
        .clone()
        .ok_or(NodeError::Missing("service.kek"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let store = RedbKeyStore::open_async(path.clone(), kek)
        .await
        .map_err(|e| NodeError::Store(format!("{}: {e}", path.display())))?;
    Ok(Arc::new(store))
}

/// Resolves `host:port` to its first address.
pub async fn resolve(authority: &str) -> Result<SocketAddr, NodeError> {
    lookup_host(authority)
        .await?
        .next()
        .ok_or_else(|| NodeError::Invalid(format!("{authority}: no address")))
}

/// A handle of one listener of a running role ([`ServiceHandle`] of a MEF or MAF,
/// [`RegistrarHandle`]): where it listens and how to stop it.
pub trait Listener {
    /// The address the listener is bound to.
    fn local_addr(&self) -> Option<SocketAddr>;
    /// Stops accepting, ends every connection and waits until the service is gone.
    fn shutdown(self) -> impl Future<Output = std::io::Result<()>> + Send;
}

impl Listener for ServiceHandle {
    fn local_addr(&self) -> Option<SocketAddr> {
        Self::local_addr(self)
    }
    fn shutdown(self) -> impl Future<Output = std::io::Result<()>> + Send {
        Self::shutdown(self)
    }
}

/// The listeners of a running role, as its `[service]` section configures them.
#[derive(Debug)]
pub struct Listeners<H> {
    /// The TLS listener, if configured.
    pub tls: Option<H>,
    /// The DTLS listener, if configured.
    pub dtls: Option<H>,
}

impl<H: Listener> Listeners<H> {
    /// The URIs served (`https://addr` and/or `coaps://addr`).
    #[must_use]
    pub fn uris(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(a) = self.tls.as_ref().and_then(Listener::local_addr) {
            out.push(format!("https://{a}"));
        }
        if let Some(a) = self.dtls.as_ref().and_then(Listener::local_addr) {
            out.push(format!("coaps://{a}"));
        }
        out
    }

    /// Stops both listeners and waits until every connection (and store handle) is gone.
    pub async fn shutdown(self) -> std::io::Result<()> {
        if let Some(h) = self.tls {
            h.shutdown().await?;
        }
        if let Some(h) = self.dtls {
            h.shutdown().await?;
        }
        Ok(())
    }
}

/// Refuses a `[service]` section without a listener.
fn require_listener(service: &Service) -> Result<(), NodeError> {
    if service.listen.is_none() && service.listen_dtls.is_none() {
        return Err(NodeError::Missing("service.listen or service.listenDtls"));
    }
    Ok(())
}

/// Binds the listeners `[service]` configures, each on its own service from `build`.
async fn bind_listeners<S, H, E, FT, FD>(
    service: &Service,
    mut build: impl FnMut() -> Result<S, NodeError>,
    bind: impl FnOnce(S, SocketAddr) -> FT,
    bind_dtls: impl FnOnce(S, SocketAddr) -> FD,
) -> Result<Listeners<H>, NodeError>
where
    FT: Future<Output = std::io::Result<H>>,
    FD: Future<Output = Result<H, E>>,
    E: fmt::Display,
{
    let tls = match service.listen {
        Some(addr) => Some(bind(build()?, addr).await?),
        None => None,
    };
    let dtls = match service.listen_dtls {
        Some(addr) => Some(
            bind_dtls(build()?, addr)
                .await
                .map_err(|e| NodeError::Failed(format!("DTLS listener {addr}: {e}")))?,
        ),
        None => None,
    };
    Ok(Listeners { tls, dtls })
}

// ---------------------------------------------------------------------------------------------
// MEF

/// A running MEF: its listeners.
pub type RunningMef = Listeners<MefHandle>;

/// The MEF's MAF directory, the MAFs' PSKs and the Ke lifetime.
type MefParts = (Arc<MafDirectory>, Vec<(KeyId, Psk)>, Lifespan);

fn mef_parts(config: &MefConfig, service: &Service) -> Result<MefParts, NodeError> {
    let mut entries = Vec::new();
    let mut psks = Vec::new();
    for (i, m) in service.mafs.iter().enumerate() {
        let entry = MafEntry::new(&m.psk_identity, &m.maf_id, &m.maf_uri)
            .map_err(|e| NodeError::Invalid(format!("[service.maf[{i}]] {e}")))?;
        let psk = Psk::new(&m.psk)
            .map_err(|e| NodeError::Invalid(format!("[service.maf[{i}]] psk: {e:?}")))?;
        psks.push((entry.psk_identity().clone(), psk));
        entries.push(entry);
    }
    let dir =
        MafDirectory::new(entries).map_err(|e| NodeError::Invalid(format!("[service.maf] {e}")))?;
    let lifetime = Lifespan::from_secs(service.key_lifetime.unwrap_or(DEFAULT_KE_LIFETIME))
        .map_err(|_| NodeError::Invalid("[service] keyLifetime must not be zero".into()))?;
    let _ = config;
    Ok((Arc::new(dir), psks, lifetime))
}

/// Starts a MEF from a `role = "mef"` file: the store, then the listeners of `[service]`.
pub async fn start_mef(node: Node) -> Result<RunningMef, NodeError> {
    let Config::Mef(config) = node.config else {
        return Err(NodeError::WrongRole { expected: "mef" });
    };
    let service = node.service;
    require_listener(&service)?;
    let store = open_store(&service).await?;
    let config = Arc::new(config);
    let (dir, psks, lifetime) = mef_parts(&config, &service)?;
    let build = || {
        MefService::new(
            Arc::clone(&config),
            Arc::clone(&dir),
            psks.clone(),
            lifetime,
            Arc::clone(&store),
        )
        .map_err(|e| NodeError::Invalid(e.to_string()))
    };
    bind_listeners(
        &service,
        build,
        |s, addr| s.bind(addr),
        |s, addr| s.bind_dtls(addr),
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Enrolee

/// The outcome of [`enrol_node`]: the Enrolment, the Km derived for its MAF, where they are
/// stored.
#[derive(Debug)]
pub struct Enrolled {
    /// Ke, KeID, MAF-ID, mafURI and expiry as the MEF confirmed them.
    pub enrolment: Enrolment,
    /// Km = HMAC-SHA-256(Ke, label || MAF-ID) (D6).
    pub km: Km,
    /// The transport used.
    pub transport: Transport,
}

/// The Enrolee's Security Bootstrap from an end-point file with a `[bootstrap]` group: connects
/// to `mef` (default: the file's `mefUri`), enrols, derives Km, and stores Ke and Km in the
/// `[service]` store ([`ENROLMENT_SLOT`], [`KM_SLOT`]) if one is configured.
pub async fn enrol_node(node: &Node, mef: Option<&Uri>) -> Result<Enrolled, NodeError> {
    let Config::EndPoint(ep) = &node.config else {
        return Err(NodeError::WrongRole {
            expected: "field-end-point or infrastructure-end-point",
        });
    };
    let bootstrap = ep.bootstrap().ok_or(NodeError::Missing("bootstrap"))?;
    let configured;
    let uri = match mef {
        Some(u) => u,
        None => {
            configured = Uri::parse(bootstrap.mef_uri().as_str())
                .ok_or(NodeError::Missing("mefUri with a port, or --mef"))?;
            &configured
        }
    };
    // The MEF's FQDN (mefIdentifier): the one its Enrolees' KpmIDs are issued under, or for a
    // certificate bootstrap the MEF's Certificate Name (an FQDN certificate) or URI host.
    let mef_fqdn = bootstrap
        .mef_fqdn()
        .ok_or(NodeError::Missing(
            "otherEntityCertificateName: the MEF's FQDN (or a mefUri with a DNS host)",
        ))?
        .to_owned();
    // server_name: the URI's host when it is a DNS name (D9), else the MEF's FQDN.
    let sni = if uri.host().parse::<std::net::IpAddr>().is_ok() {
        mef_fqdn.clone()
    } else {
        uri.host().to_owned()
    };
    let addr = resolve(&uri.authority).await?;
    let enrolment = match uri.transport {
        Transport::Tls => enrol(addr, bootstrap, &mef_fqdn, Some(&sni)).await,
        Transport::Dtls => enrol_dtls(addr, bootstrap, &mef_fqdn, Some(&sni)).await,
    }
    .map_err(|e| NodeError::Failed(format!("enrolment: {e}")))?;
    let km = km(&enrolment.ke, &enrolment.maf_id);
    if node.service.store.is_some() {
        let store = open_store(&node.service).await?;
        store_enrolment(&*store, ep, &enrolment, &km).await?;
    }
    Ok(Enrolled {
        enrolment,
        km,
        transport: uri.transport,
    })
}

fn record(
    slot: &str,
    kind: KeyKind,
    owner: &str,
    targets: Vec<String>,
    not_after: UnixTime,
    key: &[u8; 32],
) -> Result<KeyRecord, NodeError> {
    let mut r = KeyRecord::new(slot, kind, owner, not_after, KeySecret::from_key(key))
        .map_err(|e| NodeError::Store(format!("{slot}: {e}")))?;
    r.targets = targets;
    Ok(r)
}

async fn store_enrolment(
    store: &impl AsyncKeyStore,
    ep: &EndPointConfig,
    e: &Enrolment,
    km: &Km,
) -> Result<(), NodeError> {
    let owner = ep
        .bootstrap()
        .map(|b| b.instruction().enrolee_id().as_str().to_owned())
        .unwrap_or_default();
    let ke_rec = record(
        ENROLMENT_SLOT,
        KeyKind::Ke,
        &owner,
        vec![
            e.ke_id.as_str().to_owned(),
            e.maf_id.clone(),
            e.maf_uri.clone(),
        ],
        e.expires,
        e.ke.expose(),
    )?;
    let km_rec = record(
        KM_SLOT,
        KeyKind::Km,
        &owner,
        vec![e.ke_id.as_str().to_owned(), e.maf_id.clone()],
        e.expires,
        km.expose(),
    )?;
    for r in [ke_rec, km_rec] {
        store
            .put(r)
            .await
            .map_err(|e| NodeError::Store(e.to_string()))?;
    }
    Ok(())
}

/// The Enrolee's stored Enrolment: (KeID, Ke, MAF-ID, mafURI, expiry).
pub async fn stored_enrolment(
    store: &impl AsyncKeyStore,
) -> Result<Option<(KeyId, Ke, String, String, UnixTime)>, NodeError> {
    let Some(r) = store
        .get(ENROLMENT_SLOT)
        .await
        .map_err(|e| NodeError::Store(e.to_string()))?
    else {
        return Ok(None);
    };
    let [ke_id, maf_id, maf_uri] = r.targets.as_slice() else {
        return Err(NodeError::Store(format!(
            "{ENROLMENT_SLOT}: malformed record"
        )));
    };
    let ke_id = KeyId::parse(IdKind::Ke, ke_id)
        .map_err(|_| NodeError::Store(format!("{ENROLMENT_SLOT}: malformed KeID")))?;
    let key: [u8; 32] = r
        .secret
        .expose()
        .try_into()
        .map_err(|_| NodeError::Store(format!("{ENROLMENT_SLOT}: key length")))?;
    Ok(Some((
        ke_id,
        Ke::new(key),
        maf_id.clone(),
        maf_uri.clone(),
        r.not_after,
    )))
}

// ---------------------------------------------------------------------------------------------
// Registrar (Entity B)

/// A running registrar: its listeners and the events of both.
#[derive(Debug)]
pub struct RunningRegistrar {
    /// The TLS and DTLS listeners.
    pub listeners: Listeners<RegistrarHandle>,
    /// Associations accepted, refused and closed (no key material).
    pub events: mpsc::Receiver<RegistrarEvent>,
}

impl RunningRegistrar {
    /// The URIs the registrar serves.
    #[must_use]
    pub fn uris(&self) -> Vec<String> {
        self.listeners.uris()
    }

    /// Stops both listeners and their associations.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.listeners.shutdown().await
    }
}

/// Starts a registrar (Entity B) from an end-point file: its pre-provisioned associations and,
/// with `[mafBased.credential]` and `[service] mafUri`, MAF-based associations.
pub async fn start_registrar(node: Node) -> Result<RunningRegistrar, NodeError> {
    let Config::EndPoint(ep) = node.config else {
        return Err(NodeError::WrongRole {
            expected: "field-end-point or infrastructure-end-point",
        });
    };
    let service = node.service;
    require_listener(&service)?;
    let config: Arc<EndPointConfig> = Arc::from(ep);
    let (tx, events) = mpsc::channel(1024);
    let gba = match &node.gba {
        Some(g) if g.zn_address.is_some() => Some(gba_naf(g)?),
        _ => None,
    };
    let build = || -> Result<Registrar, NodeError> {
        let mut r = Registrar::from_config(Arc::clone(&config)).with_events(tx.clone());
        if let Some(g) = &gba {
            r = r.with_gba(g.clone());
        }
        match (&service.maf_uri, config.maf_credential()) {
            (Some(uri), Some(_)) => r
                .with_maf(uri.authority.clone(), uri.transport)
                .map_err(|e| NodeError::Invalid(format!("[service] mafUri: {e}"))),
            (None, Some(_)) => Err(NodeError::Missing("service.mafUri")),
            _ => Ok(r),
        }
    };
    let listeners = bind_listeners(
        &service,
        build,
        |r, addr| r.bind(addr),
        |r, addr| r.bind_dtls(addr),
    )
    .await?;
    Ok(RunningRegistrar { listeners, events })
}

/// The registrar's NAF settings from `[gba]` (`znAddress`, `pskIdentity`, `psk`, `nafFqdn`).
fn gba_naf(g: &config_toml::GbaSection) -> Result<GbaNaf, NodeError> {
    let zn_addr = g.zn_address.ok_or(NodeError::Missing("gba.znAddress"))?;
    let identity = g
        .psk_identity
        .as_deref()
        .ok_or(NodeError::Missing("gba.pskIdentity"))?;
    let psk = Psk::new(g.psk.as_deref().ok_or(NodeError::Missing("gba.psk"))?)
        .map_err(|e| NodeError::Invalid(format!("[gba] psk: {e:?}")))?;
    let naf_psk = ClientPsk::new(identity.as_bytes(), psk)
        .map_err(|e| NodeError::Invalid(format!("[gba] pskIdentity: {e:?}")))?;
    let naf_fqdn = g
        .naf_fqdn
        .clone()
        .ok_or(NodeError::Missing("gba.nafFqdn"))?;
    NafId::tls_psk(&naf_fqdn, 0)
        .map_err(|_| NodeError::Invalid(format!("[gba] nafFqdn {naf_fqdn}: not an FQDN")))?;
    Ok(GbaNaf {
        zn_addr,
        naf_psk,
        naf_fqdn,
        accept_me: g.accept_me,
        accept_uicc: g.accept_uicc,
        peers: g.peers.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// Entity A

/// The association frameworks of an Entity A.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framework {
    /// Pre-Provisioned Symmetric Key (draft 8.2.2.1): Kpsa/KpsaId.
    PreProvisioned,
    /// MAF-based (draft 8.2.3.1): Kc/KcID from the MAF.
    MafBased,
    /// Certificate-based (draft 8.2.2.2): ECDHE-ECDSA with the `[certificate.credential]`,
    /// checking B against the association's `otherEntityCertificateName` and
    /// `otherEntityRootOfTrust`.
    Certificate,
    /// GBA-based (draft 8.2.3.2): the NAF key (Ks_NAF, or Ks_int_NAF with `uicc`) of the
    /// `[gba]` section's bootstrapping, bootstrapping over Ub first unless a valid Ks is stored.
    Gba {
        /// GBA_U with Ks_int_NAF (psk_identity prefix `3GPP-bootstrapping-uicc`).
        uicc: bool,
    },
}

impl fmt::Display for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PreProvisioned => "pre-provisioned",
            Self::MafBased => "maf-based",
            Self::Certificate => "certificate",
            Self::Gba { uicc: false } => "gba-me",
            Self::Gba { uicc: true } => "gba-u",
        })
    }
}

/// What an association gave Entity A.
#[derive(Debug)]
pub struct Associated {
    /// The framework used.
    pub framework: Framework,
    /// TLS or DTLS.
    pub transport: Transport,
    /// The negotiated suite.
    pub suite: m2msec::CipherSuite,
    /// This entity (IdA).
    pub this_entity: String,
    /// The registrar's answer: the identity it bound, the framework and key identifier it saw,
    /// the deadline.
    pub registrar: AssociationInfoResponse,
    /// The MAF session's identity (KmID, or KeID at first contact) for MAF-based.
    pub maf_identity: Option<String>,
    /// A KmID the MAF assigned during this call (first contact after a bootstrap).
    pub assigned_km_id: Option<String>,
    /// The Kc's expiry the MAF granted (MAF-based).
    pub kc_expires: Option<u64>,
    /// GBA: the B-TID used, and whether this call ran the bootstrapping (false: a stored,
    /// still valid Ks was reused).
    pub gba: Option<(String, bool)>,
    /// The psk_identity_hint the registrar sent (GBA: `3GPP-bootstrapping[-uicc]`).
    pub identity_hint: Option<String>,
}

/// How long a Kc is asked for (the MAF may grant less).
pub const KC_REQUEST_SECS: u64 = 3600;

/// Entity A: associates with the registrar at `to` using `framework`, for the peer `peer`
/// (an `otherEntityIdentifier` of the file; default: the first one of the framework), asks the
/// registrar what it bound and closes. For MAF-based, `maf` overrides where the MAF is
/// (default: `[service] mafUri`, or for a bootstrapped Enrolee the mafURI its MEF returned).
pub async fn associate_node(
    node: &Node,
    framework: Framework,
    to: &Uri,
    peer: Option<&str>,
    maf: Option<&Uri>,
) -> Result<Associated, NodeError> {
    let Config::EndPoint(ep) = &node.config else {
        return Err(NodeError::WrongRole {
            expected: "field-end-point or infrastructure-end-point",
        });
    };
    let addr = resolve(&to.authority).await?;
    let failed = |e: AssociateError| NodeError::Failed(format!("association: {e}"));
    match framework {
        Framework::PreProvisioned => {
            let entry = ep
                .pre_provisioned()
                .iter()
                .find(|p| {
                    peer.is_none_or(|id| p.association().other_entity_identifier().as_str() == id)
                })
                .ok_or(NodeError::Missing("preProvisioned (for this peer)"))?;
            let this = entry
                .this_entity_identifier()
                .map(|e| e.as_str().to_owned())
                .ok_or(NodeError::Missing("thisEntityIdentifier"))?;
            let mut conn = associate_pre_provisioned(addr, to.transport, entry)
                .await
                .map_err(failed)?;
            finish(
                conn_info(&mut conn, &this).await,
                conn,
                framework,
                to,
                this,
                None,
                None,
                None,
            )
            .await
        }
        Framework::Certificate => {
            let credential = ep
                .certificate()
                .ok_or(NodeError::Missing("certificate.credential"))?;
            let entry = ep
                .certificate_associations()
                .iter()
                .find(|a| {
                    peer.is_none_or(|id| a.association().other_entity_identifier().as_str() == id)
                })
                .ok_or(NodeError::Missing(
                    "certificate.association (for this peer)",
                ))?;
            let this = entry
                .this_entity_identifier()
                .map(|e| e.as_str().to_owned())
                .ok_or(NodeError::Missing("thisEntityIdentifier"))?;
            let mut conn = associate_certificate_configured(addr, to.transport, credential, entry)
                .await
                .map_err(failed)?;
            finish(
                conn_info(&mut conn, &this).await,
                conn,
                framework,
                to,
                this,
                None,
                None,
                None,
            )
            .await
        }
        Framework::Gba { uicc } => {
            let gba = node.gba.as_ref().ok_or(NodeError::Missing("gba"))?;
            let (btid, ks, rand, impi, ran) = gba_bootstrapping(node, gba).await?;
            let suite = gba.suite.unwrap_or(m2msec::CipherSuite::PskAes128Ccm);
            let naf_fqdn = gba
                .naf_fqdn
                .as_deref()
                .ok_or(NodeError::Missing("gba.nafFqdn"))?;
            let naf_id = NafId::tls_psk(naf_fqdn, suite.code())
                .map_err(|_| NodeError::Invalid(format!("[gba] nafFqdn {naf_fqdn}")))?;
            let key = if uicc {
                ks_int_naf(&ks, &rand, &impi, &naf_id)
            } else {
                ks_naf(&ks, &rand, &impi, &naf_id)
            }
            .map_err(|e| NodeError::Invalid(format!("[gba] {e}")))?;
            let prefix = if uicc { GbaPrefix::Uicc } else { GbaPrefix::Me };
            let identity = psk_identity(prefix, &btid);
            let mut conn = associate_gba(addr, to.transport, &identity, &key, suite)
                .await
                .map_err(failed)?;
            let this = gba.this_entity_identifier.clone().unwrap_or(impi);
            let mut done = finish(
                conn_info(&mut conn, &this).await,
                conn,
                framework,
                to,
                this,
                None,
                None,
                None,
            )
            .await?;
            done.gba = Some((btid.as_str().to_owned(), ran));
            Ok(done)
        }
        Framework::MafBased => {
            let target = match peer {
                Some(p) => p.to_owned(),
                None => ep
                    .maf_associations()
                    .first()
                    .map(|a| a.other_entity_identifier().as_str().to_owned())
                    .ok_or(NodeError::Missing("mafBased.association"))?,
            };
            let (creds, maf_uri, assigned) = maf_credentials(node, ep, maf).await?;
            let maf_addr = resolve(&maf_uri.authority).await?;
            let expires = unix_now().0.saturating_add(KC_REQUEST_SECS);
            let (kc_id, kc, kc_expires) =
                register_key_via(maf_addr, maf_uri.transport, &creds, &[&target], expires)
                    .await
                    .map_err(|e| NodeError::Failed(format!("key registration at the MAF: {e}")))?;
            let mut conn = associate_maf(addr, to.transport, &kc_id, &kc)
                .await
                .map_err(failed)?;
            let this = creds.origin.clone();
            finish(
                conn_info(&mut conn, &this).await,
                conn,
                framework,
                to,
                this,
                Some(creds.psk_identity.clone()),
                assigned,
                Some(kc_expires),
            )
            .await
        }
    }
}

async fn conn_info(
    conn: &mut RegistrarConnection,
    origin: &str,
) -> Result<AssociationInfoResponse, NodeError> {
    conn.association_info(origin)
        .await
        .map_err(|e| NodeError::Failed(format!("association info: {e}")))
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    info: Result<AssociationInfoResponse, NodeError>,
    conn: RegistrarConnection,
    framework: Framework,
    to: &Uri,
    this_entity: String,
    maf_identity: Option<String>,
    assigned_km_id: Option<String>,
    kc_expires: Option<u64>,
) -> Result<Associated, NodeError> {
    let suite = conn.info().suite;
    let identity_hint = conn
        .info()
        .psk_identity_hint
        .as_ref()
        .map(|h| String::from_utf8_lossy(h).into_owned());
    let _ = conn.close().await;
    Ok(Associated {
        gba: None,
        identity_hint,
        framework,
        transport: to.transport,
        suite,
        this_entity,
        registrar: info?,
        maf_identity,
        assigned_km_id,
        kc_expires,
    })
}

/// The UE's bootstrapping: the stored one ([`GBA_SLOT`]) while valid and for this IMPI, else a
/// new run over Ub (stored if the file has a `[service]` store). Returns (B-TID, Ks, RAND,
/// IMPI, whether a bootstrapping ran).
pub async fn gba_bootstrapping(
    node: &Node,
    gba: &config_toml::GbaSection,
) -> Result<(BTid, Ks, [u8; 16], String, bool), NodeError> {
    let impi = gba.impi.clone().ok_or(NodeError::Missing("gba.impi"))?;
    let store = match node.service.store {
        Some(_) => Some(open_store(&node.service).await?),
        None => None,
    };
    if let Some(store) = &store {
        let rec = store
            .get(GBA_SLOT)
            .await
            .map_err(|e| NodeError::Store(e.to_string()))?;
        if let Some(r) = rec.filter(|r| {
            r.kind == KeyKind::GbaBootstrapping && r.owner == impi && !r.is_expired(unix_now())
        }) {
            if let [btid, rand_hex] = r.targets.as_slice() {
                let mut rand = [0u8; 16];
                let key: Option<[u8; 32]> = r.secret.expose().try_into().ok();
                if let (Ok(btid), Ok(()), Some(key)) = (
                    BTid::parse(btid),
                    hex::decode_to_slice(rand_hex, &mut rand),
                    key,
                ) {
                    return Ok((btid, Ks(key), rand, impi, false));
                }
            }
        }
    }
    let ub = gba.ub_address.ok_or(NodeError::Missing("gba.ubAddress"))?;
    let realm = gba
        .bsf_fqdn
        .as_deref()
        .ok_or(NodeError::Missing("gba.bsfFqdn"))?;
    let k = gba.k.as_ref().ok_or(NodeError::Missing("gba.k"))?;
    let opc = gba.opc.as_ref().ok_or(NodeError::Missing("gba.opc"))?;
    let mut usim = Usim::new(k, opc);
    let b = bootstrap(ub, &impi, realm, &mut usim)
        .await
        .map_err(|e| NodeError::Failed(format!("GBA bootstrapping: {e}")))?;
    if let Some(store) = &store {
        let rec = record(
            GBA_SLOT,
            KeyKind::GbaBootstrapping,
            &impi,
            vec![b.btid.as_str().to_owned(), hex::encode(b.rand)],
            b.lifetime,
            &b.ks.0,
        )?;
        store
            .put(rec)
            .await
            .map_err(|e| NodeError::Store(e.to_string()))?;
    }
    Ok((b.btid.clone(), b.ks.clone(), b.rand, impi, true))
}

/// The MAF credentials of Entity A: the configured `[mafBased.credential]`, or the Enrolee's
/// stored Km (first contact with the KeID registers the client and stores the KmID).
async fn maf_credentials(
    node: &Node,
    ep: &EndPointConfig,
    maf: Option<&Uri>,
) -> Result<(MafCredentials, Uri, Option<String>), NodeError> {
    if let Some(c) = ep.maf_credential() {
        let uri = maf
            .or(node.service.maf_uri.as_ref())
            .cloned()
            .ok_or(NodeError::Missing("service.mafUri or --maf"))?;
        let m = c.master();
        let creds = MafCredentials {
            maf_fqdn: c.maf_identifier().as_str().to_owned(),
            psk_identity: m.master_credential_identifier().as_str().to_owned(),
            key: m.master_credential().clone(),
            origin: m.this_entity_identifier().as_str().to_owned(),
        };
        return Ok((creds, uri, None));
    }
    let store = open_store(&node.service).await?;
    let rec = store
        .get(KM_SLOT)
        .await
        .map_err(|e| NodeError::Store(e.to_string()))?;
    // A UE of a GBA-based Security Bootstrap (8.3.3.1) without a valid Km yet: Km from Ks,
    // first contact with the B-TID.
    if let Some(g) = node.gba.as_ref().filter(|g| g.maf_fqdn.is_some()) {
        if rec.as_ref().is_none_or(|r| r.is_expired(unix_now())) {
            drop(store);
            return gba_maf_first_contact(node, g, maf).await;
        }
    }
    let rec = rec.ok_or(NodeError::Missing(
        "mafBased.credential, or a Km from `m2msec enrol` in the store",
    ))?;
    if rec.is_expired(unix_now()) {
        return Err(NodeError::Failed(
            "the stored Km has expired: enrol again".into(),
        ));
    }
    let [identity, maf_id] = rec.targets.as_slice() else {
        return Err(NodeError::Store(format!("{KM_SLOT}: malformed record")));
    };
    let key: [u8; 32] = rec
        .secret
        .expose()
        .try_into()
        .map_err(|_| NodeError::Store(format!("{KM_SLOT}: key length")))?;
    let uri = match maf.or(node.service.maf_uri.as_ref()) {
        Some(u) => u.clone(),
        None => {
            let (_, _, _, maf_uri, _) = stored_enrolment(&*store)
                .await?
                .ok_or(NodeError::Missing("an enrolment in the store"))?;
            Uri::parse(&maf_uri).ok_or_else(|| {
                NodeError::Invalid(format!(
                    "the MEF's mafURI {maf_uri} is not https://HOST:PORT"
                ))
            })?
        }
    };
    let mut creds = MafCredentials {
        maf_fqdn: maf_id.clone(),
        psk_identity: identity.clone(),
        key: Km::new(key),
        origin: rec.owner.clone(),
    };
    let mut assigned = None;
    if KeyId::parse(IdKind::Ke, identity).is_ok_and(|k| k.fqdn() != maf_id) {
        // First contact (D13): the MAF fetches Km from the MEF and assigns a KmID.
        let maf_addr = resolve(&uri.authority).await?;
        let reg = register_client_via(maf_addr, uri.transport, &creds, rec.not_after.0)
            .await
            .map_err(|e| NodeError::Failed(format!("client registration at the MAF: {e}")))?;
        let mut updated = rec.clone();
        let km_id = reg.km_id;
        updated.targets = vec![km_id.as_str().to_owned(), maf_id.clone()];
        if reg.expires < updated.not_after.0 {
            updated.not_after = UnixTime(reg.expires);
        }
        store
            .put(updated)
            .await
            .map_err(|e| NodeError::Store(e.to_string()))?;
        creds.psk_identity = km_id.as_str().to_owned();
        assigned = Some(km_id.as_str().to_owned());
    }
    Ok((creds, uri, assigned))
}

/// GBA-based Security Bootstrap (8.3.3.1) at the UE: the bootstrapping (stored Ks, or a run
/// over Ub), Km = Ks_NAF(Ks, RAND, IMPI, NAF_Id = mafFqdn ‖ 01 00 01 ‖ C0 A4), first contact
/// with the B-TID as PSK identity (Client Registration; X-M2M-Origin = `thisEntityIdentifier`,
/// default the IMPI), then Km stored under the assigned KmID in [`KM_SLOT`].
async fn gba_maf_first_contact(
    node: &Node,
    gba: &config_toml::GbaSection,
    maf: Option<&Uri>,
) -> Result<(MafCredentials, Uri, Option<String>), NodeError> {
    let maf_fqdn = gba
        .maf_fqdn
        .clone()
        .ok_or(NodeError::Missing("gba.mafFqdn"))?;
    let uri = maf
        .or(node.service.maf_uri.as_ref())
        .cloned()
        .ok_or(NodeError::Missing("service.mafUri or --maf"))?;
    let (btid, ks, rand, impi, _) = gba_bootstrapping(node, gba).await?;
    let naf_id = gba_maf_naf_id(&maf_fqdn)
        .map_err(|_| NodeError::Invalid(format!("[gba] mafFqdn {maf_fqdn}: not an FQDN")))?;
    let km =
        ks_naf(&ks, &rand, &impi, &naf_id).map_err(|e| NodeError::Invalid(format!("[gba] {e}")))?;
    let origin = gba.this_entity_identifier.clone().unwrap_or(impi);
    let mut creds = MafCredentials {
        maf_fqdn: maf_fqdn.clone(),
        psk_identity: btid.as_str().to_owned(),
        key: Km::new(*km.expose()),
        origin: origin.clone(),
    };
    let maf_addr = resolve(&uri.authority).await?;
    // The MAF grants at most the bootstrapping's lifetime.
    let asked = unix_now().0.saturating_add(DEFAULT_KE_LIFETIME);
    let reg = register_client_via(maf_addr, uri.transport, &creds, asked)
        .await
        .map_err(|e| NodeError::Failed(format!("client registration at the MAF: {e}")))?;
    let km_id = reg.km_id.as_str().to_owned();
    let rec = record(
        KM_SLOT,
        KeyKind::Km,
        &origin,
        vec![km_id.clone(), maf_fqdn],
        UnixTime(reg.expires),
        km.expose(),
    )?;
    open_store(&node.service)
        .await?
        .put(rec)
        .await
        .map_err(|e| NodeError::Store(e.to_string()))?;
    creds.psk_identity.clone_from(&km_id);
    Ok((creds, uri, Some(km_id)))
}

// ---------------------------------------------------------------------------------------------
// MAF

/// Default lifetime of a registered Kc: one hour.
pub const DEFAULT_KC_LIFETIME: u64 = 3600;

/// A running MAF: its listeners.
pub type RunningMaf = Listeners<ServiceHandle>;

/// Starts a MAF from a `role = "maf"` file: the store, first contact through `[service.mef]`
/// (without it, an unknown KeID is an unknown identity), then the listeners.
pub async fn start_maf(node: Node) -> Result<RunningMaf, NodeError> {
    let Config::Maf(config) = node.config else {
        return Err(NodeError::WrongRole { expected: "maf" });
    };
    let gba = node.gba;
    let service = node.service;
    require_listener(&service)?;
    let store = open_store(&service).await?;
    let config = Arc::new(config);
    let lifetime = Lifespan::from_secs(service.key_lifetime.unwrap_or(DEFAULT_KC_LIFETIME))
        .map_err(|_| NodeError::Invalid("[service] keyLifetime must not be zero".into()))?;
    let fetch = match &service.mef {
        None => None,
        Some(m) => {
            let psk = Psk::new(&m.psk)
                .map_err(|e| NodeError::Invalid(format!("[service.mef] psk: {e:?}")))?;
            let psk = ClientPsk::new(m.psk_identity.as_bytes(), psk)
                .map_err(|e| NodeError::Invalid(format!("[service.mef] pskIdentity: {e:?}")))?;
            let addr = resolve(&m.uri.authority).await?;
            let sni = (m.uri.host().parse::<std::net::IpAddr>().is_err())
                .then(|| m.uri.host().to_owned());
            Some(mef_fetch_km(
                addr,
                m.uri.transport,
                psk,
                config.maf_identifier().as_str(),
                sni,
                Arc::clone(&config),
            ))
        }
    };
    // GBA-based Security Bootstrap (8.3.3.1): the MAF is a NAF at the BSF; B-TIDs of that BSF
    // are first contacts resolved over Zn, any other KeID at the MEF.
    let (fetch, gba_bsf) = match gba.filter(|g| g.zn_address.is_some()) {
        None => (fetch, None),
        Some(mut g) => {
            let bsf = g
                .bsf_fqdn
                .clone()
                .ok_or(NodeError::Missing("gba.bsfFqdn"))?;
            if g.naf_fqdn.is_none() {
                g.naf_fqdn = Some(config.maf_identifier().as_str().to_owned());
            }
            let naf = gba_naf(&g)?;
            let f = gba_fetch_km(
                naf.zn_addr,
                naf.naf_psk,
                &naf.naf_fqdn,
                &bsf,
                naf.peers,
                fetch,
            );
            (Some(f), Some(bsf))
        }
    };
    let build = || {
        let s = MafService::new(
            MafServer::new(Arc::clone(&config), lifetime),
            Arc::clone(&store),
        );
        let s = match &gba_bsf {
            Some(bsf) => s.with_gba_btids(bsf),
            None => s,
        };
        match &fetch {
            Some(f) => s.with_fetch_km(Arc::clone(f)),
            None => s,
        }
    };
    bind_listeners(
        &service,
        || Ok(build()),
        |s, addr| s.bind(addr),
        |s, addr| s.bind_dtls(addr),
    )
    .await
}
