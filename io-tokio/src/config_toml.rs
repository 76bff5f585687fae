//! TOML configuration files for the PSK and certificate-based frameworks, loaded into the typed configuration of
//! [`m2msec::frameworks::config`] (draft clause 9.1 and the bootstrap configuration of 8.3.2.1).
//!
//! One file configures one role, named by the top-level `role` key:
//!
//! | `role` | core type | example |
//! |---|---|---|
//! | `"field-end-point"` | [`EndPointConfig`], [`Domain::Field`] | `docs/examples/entity-a.toml`, `docs/examples/enrolee.toml` |
//! | `"infrastructure-end-point"` | [`EndPointConfig`], [`Domain::Infrastructure`] | `docs/examples/entity-b.toml` |
//! | `"mef"` | [`MefConfig`] | `docs/examples/mef.toml` |
//! | `"maf"` | [`MafConfig`] | `docs/examples/maf.toml` |
//!
//! Layout of an end-point file (every group optional; keys are the draft's parameter names):
//!
//! ```toml
//! role = "field-end-point"
//!
//! [[preProvisioned]]               # one per Pre-Provisioned association
//! [preProvisioned.credential]      # tables 9.1.1.1-1 / 9.1.1.2-1
//! kpsaKey = "<64 hex digits>"
//! kpsaId = "relative@issuer.example.com"
//! [preProvisioned.association]     # tables 9.1.2.1-1 + 9.1.2.1-2 / 9.1.2.2-1
//! thisEntityIdentifier = "Cae1"    # mandatory in the field domain
//! otherEntityIdentifier = "/id-in"
//! associationConfigurationExpiry = 2036-01-01T00:00:00Z   # optional
//! securityAssociationLifespan = "24h"                     # optional
//!
//! [mafBased.credential]            # table 9.1.1.1-1, MAF-Based rows
//! mafIdentifier = "maf.example.com"
//! thisEntityIdentifier = "Cae1"
//! masterCredential = "<64 hex digits>"
//! masterCredentialIdentifier = "relative@maf.example.com"
//! masterCredentialExpiry = 2036-01-01T00:00:00Z           # optional
//! [[mafBased.association]]         # table 9.1.2.1-1, one per peer
//! otherEntityIdentifier = "/id-in"
//!
//! [bootstrap.credential]           # 8.3.2.1 Bootstrap Credential Configuration (Enrolee)
//! kpmId = "relative@mef.example.com"
//! kpm = "<64 hex digits>"
//! mefUri = "https://mef.example.com"
//! [bootstrap.instruction]          # 8.3.2.1 Bootstrap Instruction Configuration
//! mafId = "maf.example.com"
//! enroleeId = "Cae1"
//! ```
//!
//! Certificate-Based frameworks (draft 8.1.1.2, 8.2.2.2, 8.3.2.2) in an end-point file:
//!
//! ```toml
//! [certificate.credential]            # tables 9.1.1.1-1 / 9.1.1.2-1, Certificate Based rows
//! thisEntityPrivateKey = "key.pem"    # P-256, PKCS#8 ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY"), PEM or DER
//! thisEntityCertificate = "cert.pem"  # PEM/DER; a PEM file may go on with the chain. Or "raw-public-key" (RFC 7250)
//! thisEntityCertificateChain = "ca.pem"   # optional PEM file: the certificates after the leaf
//! [[certificate.association]]         # tables 9.1.2.1-1 + 9.1.2.1-2 / 9.1.2.2-1 + 9.1.2.2-2
//! thisEntityIdentifier = "Cae1"       # mandatory in the field domain
//! otherEntityIdentifier = "/id-in"
//! otherEntityCertificateName = "in-cse.example.com"        # or the ni: hash of a self-signed / raw key
//! otherEntityRootOfTrust = "ni:///sha-256;<base64url>"     # or sha-256-128, sha-256-120, 64 hex digits
//! associationConfigurationExpiry = 2036-01-01T00:00:00Z    # optional
//! securityAssociationLifespan = "24h"                      # optional
//!
//! [bootstrap.credential]              # 8.3.2.2: instead of kpmId / kpm
//! thisEntityPrivateKey = "enrolee-key.pem"
//! thisEntityCertificate = "enrolee.pem"
//! otherEntityCertificateName = "mef.example.com"   # the MEF's Certificate Name (its FQDN: the @FQDN of KeID)
//! otherEntityRootOfTrust = "ni:///sha-256;<base64url>"
//! mefUri = "https://mef.example.com:7001"
//! ```
//!
//! File paths are relative to the configuration file. A bootstrap credential has either
//! `kpmId`/`kpm` or `thisEntityPrivateKey` (both: `Conflicting`). A MEF file adds its own FQDN
//! certificate as `[certificate]` (`thisEntityPrivateKey`, `thisEntityCertificate`,
//! `thisEntityCertificateChain`), and a certificate Enrolee is an `[[enrolee]]` whose
//! `[enrolee.credential]` has `otherEntityCertificateName` and `otherEntityRootOfTrust` (the
//! Enrolee's) instead of `kpmId`/`kpm`.
//!
//! A MEF file has `mefIdentifier` and `[[enrolee]]` entries with `[enrolee.credential]`
//! (`kpmId`, `kpm`) and `[enrolee.instruction]` (`mafId`, `enroleeId`); a MAF file has
//! `mafIdentifier` and `[[client]]` entries with `[client.credential]` (table 9.1.1.3-1) and
//! `[[client.association]]` (table 9.1.2.3-1).
//!
//! Value formats:
//! - **keys**: hexadecimal text, either case, exactly 64 digits (32 bytes); nothing else (no
//!   spaces, no `0x`).
//! - **times** (`...Expiry`): an RFC 3339 date-time *with* an offset, either as a TOML date-time
//!   (`2036-01-01T00:00:00Z`) or as a string (`"2036-01-01T00:00:00+01:00"`), or a non-negative
//!   integer of Unix seconds. A local date-time without offset is refused (ambiguous);
//!   fractions of a second are dropped.
//! - **durations** (`securityAssociationLifespan`): an integer of seconds, or a string of
//!   `<number><unit>` parts with units `s`, `m`, `h`, `d`, `w` (`"90s"`, `"1h30m"`, `"7d"`).
//!
//! Unknown keys are refused (a misspelt optional parameter would otherwise be silently
//! ignored). Every refusal is a [`LoadError`] that names the file, where in it, and the
//! parameter. [`load_file`] checks form only; [`load_file_at`] also refuses anything already
//! expired at the given time.
//!
//! The file text is held in zeroizing buffers while parsing, and decoded keys are zeroized; the
//! TOML parser's own copies of the key strings are not (they are freed normally).

use std::fmt;
use std::path::{Path, PathBuf};

use m2msec::cert::pem_decode;
use m2msec::frameworks::config::{
    param, AssociationConfig, BootstrapCredential, BootstrapInstruction, CertificateAssociation,
    CertificateCredential, CertificatePeer, Domain, EndPointConfig, EnroleeBootstrap, MafClient,
    MafConfig, MafCredential, MasterCredential, MefConfig, MefEnrolee, ParameterError,
    PreProvisionedAssociation, PreProvisionedCredential,
};
use m2msec::UnixTime;
use serde::Deserialize;

use crate::frameworks::Transport;
use crate::store::Kek;
use toml::value::{Datetime, Offset};
use toml::Value;
use zeroize::Zeroizing;

/// A loaded configuration file: one role.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Config {
    /// `role = "field-end-point"` or `"infrastructure-end-point"` (boxed: by far the largest).
    EndPoint(Box<EndPointConfig>),
    /// `role = "mef"`.
    Mef(MefConfig),
    /// `role = "maf"`.
    Maf(MafConfig),
}

impl Config {
    /// Refuses the configuration if anything in it has expired at `now`, naming the parameter.
    pub fn validate_at(&self, now: UnixTime) -> Result<(), ParameterError> {
        match self {
            Self::EndPoint(c) => c.validate_at(now),
            Self::Mef(c) => c.validate_at(now),
            Self::Maf(c) => c.validate_at(now),
        }
    }
}

/// What is wrong with a configuration file, and where.
#[derive(Debug)]
pub struct LoadError {
    file: PathBuf,
    kind: LoadErrorKind,
}

/// The kinds of [`LoadError`].
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// The file could not be read.
    Io(std::io::Error),
    /// Not TOML, not UTF-8, an unknown key or a group of the wrong shape (the message comes from
    /// the TOML parser and shows the line).
    Syntax(String),
    /// `role` is missing or not one of the four roles.
    Role(Option<String>),
    /// A parameter has a value that cannot be read (wrong TOML type, bad hex, bad time or
    /// duration).
    Format {
        /// Where: the group, e.g. `preProvisioned[0].credential`.
        at: String,
        /// The parameter.
        name: &'static str,
        /// What is wrong.
        problem: FormatProblem,
    },
    /// The core refused a parameter (missing, invalid, or expired for [`load_file_at`]).
    Parameter {
        /// Where: the group, e.g. `mafBased.association[1]`.
        at: String,
        /// The refusal, naming the parameter.
        error: ParameterError,
    },
}

/// Why a parameter value could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatProblem {
    /// The TOML value has the wrong type.
    WrongType {
        /// What was expected.
        expected: &'static str,
    },
    /// Not an even number of hexadecimal digits.
    NotHex,
    /// Not an RFC 3339 date-time with offset, nor Unix seconds.
    NotTime,
    /// A date-time without offset (local time).
    LocalTime,
    /// A time before 1970-01-01T00:00:00Z.
    BeforeEpoch,
    /// Not a duration (`90s`, `1h30m`, `7d`, or integer seconds).
    NotDuration,
    /// The parameter does not belong in this group (or conflicts with another one).
    NotAllowedHere,
    /// Not a socket address (`127.0.0.1:7001`, `[::1]:7001`).
    NotAddress,
    /// Not `https://host:port` or `coaps://host:port`.
    NotUri,
    /// Not a 32-byte key-encryption key (64 hex digits, or 32 raw bytes in a kekFile).
    NotKek,
    /// A file that is neither PEM with the expected label nor DER.
    NotPem,
    /// Two parameters that exclude each other are both given (e.g. `kpmId` and
    /// `thisEntityPrivateKey` in one bootstrap credential).
    Conflicting,
}

impl fmt::Display for FormatProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongType { expected } => write!(f, "must be {expected}"),
            Self::NotHex => f.write_str("is not hexadecimal (an even number of 0-9a-fA-F)"),
            Self::NotTime => {
                f.write_str("is not an RFC 3339 date-time with offset, nor Unix seconds")
            }
            Self::LocalTime => f.write_str("is a date-time without offset (add Z or +hh:mm)"),
            Self::BeforeEpoch => f.write_str("is before 1970-01-01T00:00:00Z"),
            Self::NotDuration => f.write_str(
                "is not a duration (integer seconds, or e.g. \"90s\", \"1h30m\", \"7d\")",
            ),
            Self::NotAllowedHere => f.write_str("is not a parameter of this group"),
            Self::NotAddress => f.write_str("is not a socket address (e.g. 127.0.0.1:7001)"),
            Self::NotUri => f.write_str("is not https://host:port or coaps://host:port"),
            Self::NotKek => {
                f.write_str("is not a 32-byte key (64 hex digits, or 32 raw bytes in a file)")
            }
            Self::NotPem => f.write_str(
                "is not a readable PEM file with the expected label (PRIVATE KEY, EC PRIVATE KEY, CERTIFICATE), nor DER",
            ),
            Self::Conflicting => f.write_str(
                "excludes another parameter given in the same group (PSK and certificate)",
            ),
        }
    }
}

impl LoadError {
    /// The file.
    #[must_use]
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> &LoadErrorKind {
        &self.kind
    }

    /// The parameter concerned, if the error is about one.
    #[must_use]
    pub fn parameter(&self) -> Option<&'static str> {
        match &self.kind {
            LoadErrorKind::Format { name, .. } => Some(name),
            LoadErrorKind::Parameter { error, .. } => Some(error.parameter()),
            LoadErrorKind::Role(_) => Some("role"),
            LoadErrorKind::Io(_) | LoadErrorKind::Syntax(_) => None,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match &self.kind {
            LoadErrorKind::Io(e) => write!(f, "{file}: {e}"),
            LoadErrorKind::Syntax(m) => write!(f, "{file}: {m}"),
            LoadErrorKind::Role(None) => write!(f, "{file}: mandatory key role is missing"),
            LoadErrorKind::Role(Some(r)) => write!(
                f,
                "{file}: role {r:?} is not field-end-point, infrastructure-end-point, mef or maf"
            ),
            LoadErrorKind::Format { at, name, problem } => {
                write!(f, "{file}: {}parameter {name} {problem}", Where(at))
            }
            LoadErrorKind::Parameter { at, error } => write!(f, "{file}: {}{error}", Where(at)),
        }
    }
}

struct Where<'a>(&'a str);

impl fmt::Display for Where<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "[{}] ", self.0)
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            LoadErrorKind::Io(e) => Some(e),
            LoadErrorKind::Parameter { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Loads and validates the form of a configuration file; expiries are not checked (see
/// [`load_file_at`]).
pub fn load_file(path: impl AsRef<Path>) -> Result<Config, LoadError> {
    let path = path.as_ref();
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| LoadError {
        file: path.to_path_buf(),
        kind: LoadErrorKind::Io(e),
    })?);
    let text = std::str::from_utf8(&bytes).map_err(|_| LoadError {
        file: path.to_path_buf(),
        kind: LoadErrorKind::Syntax("not UTF-8".into()),
    })?;
    parse_str(text, path)
}

/// [`load_file`], then refuses anything already expired at `now`, naming the group and the
/// parameter.
pub fn load_file_at(path: impl AsRef<Path>, now: UnixTime) -> Result<Config, LoadError> {
    let path = path.as_ref();
    let config = load_file(path)?;
    check_expiries(&config, now).map_err(|(at, error)| LoadError {
        file: path.to_path_buf(),
        kind: LoadErrorKind::Parameter { at, error },
    })?;
    Ok(config)
}

/// A configuration file with its `[service]` section: what a server or client process needs
/// beyond clause 9.1 (sockets, key store, the other functions' addresses and PSKs).
#[derive(Debug)]
pub struct Node {
    /// The clause 9.1 configuration of the role.
    pub config: Config,
    /// The `[service]` section (all fields empty if there was none).
    pub service: Service,
    /// The `[gba]` section, if any (TS 33.220 settings; not clause 9.1 configuration).
    pub gba: Option<GbaSection>,
}

/// The `[gba]` section: the GBA settings of an end-point (TS 33.220, draft 8.2.3.2). Which keys
/// a role needs is checked by the process that runs it.
///
/// ```toml
/// [gba]
/// nafFqdn = "in-cse.example.com"   # registrar: its NAF FQDN; Entity A: the registrar's
/// # Registrar (NAF): Zn
/// znAddress = "127.0.0.1:7012"     # the BSF's Zn listener (TLS-PSK)
/// pskIdentity = "in-cse@bsf.example.com"   # the NAF's PSK identity at the BSF
/// psk = "<64 hex digits>"          # the NAF's PSK at the BSF
/// flavours = ["gba-me", "gba-u"]   # accepted (default both)
/// [[gba.peer]]                     # optional IMPI -> IdA mapping (then only these IMPIs)
/// impi = "ue1@ims.example.com"
/// otherEntityIdentifier = "/id-ue1"
/// # Entity A (UE): Ub and the simulated USIM
/// ubAddress = "127.0.0.1:7011"     # the BSF's Ub listener (HTTP)
/// bsfFqdn = "bsf.example.com"      # the Digest realm
/// impi = "ue1@ims.example.com"
/// k = "<32 hex digits>"
/// opc = "<32 hex digits>"
/// suite = "TLS_PSK_WITH_AES_128_CCM"   # the one suite offered (the NAF key depends on it)
/// thisEntityIdentifier = "/id-ue1" # IdA as the registrar maps the IMPI (default: the IMPI)
/// mafFqdn = "maf.example.com"      # GBA-based Security Bootstrap (8.3.3.1): Km for this MAF
/// ```
///
/// A MAF (`role = "maf"`) with `[gba]` is the NAF of the GBA-based Security Bootstrap: `znAddress`,
/// `pskIdentity`, `psk` (its NAF PSK at the BSF), `bsfFqdn` (the domain of the B-TIDs it
/// accepts), `nafFqdn` (default its `mafIdentifier`) and `[[gba.peer]]` (IMPI -> Enrolee-ID).
pub struct GbaSection {
    /// The NAF FQDN.
    pub naf_fqdn: Option<String>,
    /// The BSF's Zn address.
    pub zn_address: Option<std::net::SocketAddr>,
    /// The NAF's PSK identity at the BSF.
    pub psk_identity: Option<String>,
    /// The NAF's PSK at the BSF.
    pub psk: Option<Zeroizing<Vec<u8>>>,
    /// Accept GBA_ME.
    pub accept_me: bool,
    /// Accept GBA_U.
    pub accept_uicc: bool,
    /// IMPI -> IdA.
    pub peers: Vec<(String, String)>,
    /// The BSF's Ub address.
    pub ub_address: Option<std::net::SocketAddr>,
    /// The BSF's FQDN (Digest realm).
    pub bsf_fqdn: Option<String>,
    /// The UE's IMPI.
    pub impi: Option<String>,
    /// The USIM's K.
    pub k: Option<Zeroizing<[u8; 16]>>,
    /// The USIM's OPc.
    pub opc: Option<Zeroizing<[u8; 16]>>,
    /// The suite the UE offers (default TLS_PSK_WITH_AES_128_CCM).
    pub suite: Option<m2msec::CipherSuite>,
    /// The UE's IdA as the registrar binds it (its `[[gba.peer]]` mapping; default the IMPI).
    pub this_entity_identifier: Option<String>,
    /// UE: the MAF-FQDN of a GBA-based Security Bootstrap (8.3.3.1): Km = Ks_NAF for this MAF,
    /// first contact with the B-TID.
    pub maf_fqdn: Option<String>,
}

impl fmt::Debug for GbaSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GbaSection")
            .field("naf_fqdn", &self.naf_fqdn)
            .field("zn_address", &self.zn_address)
            .field("psk_identity", &self.psk_identity)
            .field("accept_me", &self.accept_me)
            .field("accept_uicc", &self.accept_uicc)
            .field("peers", &self.peers)
            .field("ub_address", &self.ub_address)
            .field("bsf_fqdn", &self.bsf_fqdn)
            .field("impi", &self.impi)
            .field("suite", &self.suite)
            .field("maf_fqdn", &self.maf_fqdn)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GbaDoc {
    naf_fqdn: Option<String>,
    zn_address: Option<String>,
    psk_identity: Option<String>,
    psk: Option<String>,
    flavours: Option<Vec<String>>,
    #[serde(default)]
    peer: Vec<GbaPeerDoc>,
    ub_address: Option<String>,
    bsf_fqdn: Option<String>,
    impi: Option<String>,
    k: Option<String>,
    opc: Option<String>,
    suite: Option<String>,
    this_entity_identifier: Option<String>,
    maf_fqdn: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GbaPeerDoc {
    impi: String,
    other_entity_identifier: String,
}

fn gba_section(doc: GbaDoc) -> Result<GbaSection, LoadErrorKind> {
    let bad = |name: &str, what: &str| LoadErrorKind::Syntax(format!("[gba] {name}: {what}"));
    let addr = |v: Option<String>, name: &str| {
        v.map(|s| {
            s.parse()
                .map_err(|_| bad(name, "not an IP address and port"))
        })
        .transpose()
    };
    let key16 = |v: Option<String>, name: &str| {
        v.map(|s| {
            let mut out = Zeroizing::new([0u8; 16]);
            hex::decode_to_slice(s.trim(), out.as_mut())
                .map(|()| out)
                .map_err(|_| bad(name, "not 32 hex digits"))
        })
        .transpose()
    };
    let psk = doc
        .psk
        .map(|s| {
            hex::decode(s.trim())
                .ok()
                .filter(|k| k.len() == 32)
                .map(Zeroizing::new)
                .ok_or_else(|| bad("psk", "not 64 hex digits"))
        })
        .transpose()?;
    let (mut accept_me, mut accept_uicc) = (true, true);
    if let Some(f) = doc.flavours {
        accept_me = false;
        accept_uicc = false;
        for x in f {
            match x.as_str() {
                "gba-me" => accept_me = true,
                "gba-u" => accept_uicc = true,
                _ => return Err(bad("flavours", "expected \"gba-me\" or \"gba-u\"")),
            }
        }
    }
    let suite = doc
        .suite
        .map(|s| {
            m2msec::CipherSuite::ALL
                .iter()
                .copied()
                .find(|c| c.iana_name().eq_ignore_ascii_case(&s))
                .ok_or_else(|| bad("suite", "not a PSK suite name"))
        })
        .transpose()?;
    Ok(GbaSection {
        naf_fqdn: doc.naf_fqdn,
        zn_address: addr(doc.zn_address, "znAddress")?,
        psk_identity: doc.psk_identity,
        psk,
        accept_me,
        accept_uicc,
        peers: doc
            .peer
            .into_iter()
            .map(|p| (p.impi, p.other_entity_identifier))
            .collect(),
        ub_address: addr(doc.ub_address, "ubAddress")?,
        bsf_fqdn: doc.bsf_fqdn,
        impi: doc.impi,
        k: key16(doc.k, "k")?,
        opc: key16(doc.opc, "opc")?,
        suite,
        this_entity_identifier: doc.this_entity_identifier,
        maf_fqdn: doc.maf_fqdn,
    })
}

/// The `[service]` section of a configuration file. Relative paths are resolved against the
/// directory of the file. Which fields a role needs is checked by the process that runs it.
///
/// ```toml
/// [service]
/// listen = "127.0.0.1:7001"        # TLS (https://)
/// listenDtls = "127.0.0.1:7001"    # DTLS (coaps://)
/// store = "mef.redb"               # durable key store (redb)
/// kek = "<64 hex digits>"          # key-encryption key of the store (or kekFile = "path")
/// keyLifetime = "30d"              # MEF: lifetime of Ke (and Km); MAF: default Kc lifetime
/// mafUri = "https://127.0.0.1:7002" # registrar / Entity A: the MAF
///
/// [[service.maf]]                  # MEF: the MAF directory (who may fetch Km)
/// mafId = "maf.example.com"
/// mafUri = "https://127.0.0.1:7002"
/// pskIdentity = "maf@mef.example.com"
/// psk = "<64 hex digits>"
///
/// [service.mef]                    # MAF: how it reaches its MEF (first contact, D13)
/// uri = "https://127.0.0.1:7001"
/// pskIdentity = "maf@mef.example.com"
/// psk = "<64 hex digits>"
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Service {
    /// TLS listening address.
    pub listen: Option<std::net::SocketAddr>,
    /// DTLS listening address.
    pub listen_dtls: Option<std::net::SocketAddr>,
    /// Key store file.
    pub store: Option<PathBuf>,
    /// Key-encryption key of the store.
    pub kek: Option<Kek>,
    /// Key lifetime in seconds (Ke at a MEF, Kc at a MAF).
    pub key_lifetime: Option<u64>,
    /// Where the MAF is.
    pub maf_uri: Option<Uri>,
    /// The MEF's MAF directory.
    pub mafs: Vec<MafPeer>,
    /// The MAF's MEF.
    pub mef: Option<MefPeer>,
}

/// A `https://host:port` (TLS) or `coaps://host:port` (DTLS) address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    /// The transport the scheme names.
    pub transport: Transport,
    /// `host:port`.
    pub authority: String,
    /// The URI as written.
    pub text: String,
}

impl Uri {
    /// Parses `https://host:port` or `coaps://host:port` (a trailing `/` is allowed; the port
    /// is mandatory).
    pub fn parse(text: &str) -> Option<Self> {
        let (scheme, rest) = text.split_once("://")?;
        let transport = Transport::from_scheme(scheme)?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = authority.rsplit_once(':')?;
        if host.is_empty()
            || authority.contains('/')
            || port.parse::<u16>().ok().filter(|p| *p != 0).is_none()
        {
            return None;
        }
        Some(Self {
            transport,
            authority: authority.to_owned(),
            text: text.to_owned(),
        })
    }

    /// The host part (without brackets for an IPv6 literal).
    #[must_use]
    pub fn host(&self) -> &str {
        let host = self.authority.rsplit_once(':').map_or("", |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One MAF of a MEF's directory. `Debug` redacts the PSK.
pub struct MafPeer {
    /// The MAF-ID.
    pub maf_id: String,
    /// Where Enrolees reach it (the `mafURI` of Enrolment responses).
    pub maf_uri: String,
    /// The PSK identity it authenticates to the MEF with.
    pub psk_identity: String,
    /// Its PSK.
    pub psk: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for MafPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MafPeer")
            .field("maf_id", &self.maf_id)
            .field("maf_uri", &self.maf_uri)
            .field("psk_identity", &self.psk_identity)
            .field("psk", &"<redacted>")
            .finish()
    }
}

/// How a MAF reaches its MEF. `Debug` redacts the PSK.
pub struct MefPeer {
    /// The MEF's address.
    pub uri: Uri,
    /// The MAF's PSK identity at the MEF.
    pub psk_identity: String,
    /// The MAF's PSK at the MEF.
    pub psk: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for MefPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MefPeer")
            .field("uri", &self.uri)
            .field("psk_identity", &self.psk_identity)
            .field("psk", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceDoc {
    listen: Raw,
    listen_dtls: Raw,
    store: Raw,
    kek: Raw,
    kek_file: Raw,
    key_lifetime: Raw,
    maf_uri: Raw,
    #[serde(default)]
    maf: Vec<MafPeerDoc>,
    mef: Option<MefPeerDoc>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MafPeerDoc {
    maf_id: Raw,
    maf_uri: Raw,
    psk_identity: Raw,
    psk: Raw,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MefPeerDoc {
    uri: Raw,
    psk_identity: Raw,
    psk: Raw,
}

/// [`load_file_at`] (`now` = `None`: [`load_file`]) plus the `[service]` section.
pub fn load_node(path: impl AsRef<Path>, now: Option<UnixTime>) -> Result<Node, LoadError> {
    let path = path.as_ref();
    let config = match now {
        Some(now) => load_file_at(path, now)?,
        None => load_file(path)?,
    };
    let err = |kind| LoadError {
        file: path.to_path_buf(),
        kind,
    };
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| err(LoadErrorKind::Io(e)))?);
    let text =
        std::str::from_utf8(&bytes).map_err(|_| err(LoadErrorKind::Syntax("not UTF-8".into())))?;
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(LoadErrorKind::Syntax(e.to_string())))?;
    let service = match table.remove("service") {
        None => Service::default(),
        Some(v) => {
            let doc: ServiceDoc = v
                .try_into()
                .map_err(|e: toml::de::Error| err(LoadErrorKind::Syntax(e.to_string())))?;
            let base = path.parent().unwrap_or_else(|| Path::new("."));
            service(doc, base).map_err(err)?
        }
    };
    let gba = match table.remove("gba") {
        None => None,
        Some(v) => {
            let doc: GbaDoc = v
                .try_into()
                .map_err(|e: toml::de::Error| err(LoadErrorKind::Syntax(e.to_string())))?;
            Some(gba_section(doc).map_err(err)?)
        }
    };
    Ok(Node {
        config,
        service,
        gba,
    })
}

fn service(doc: ServiceDoc, base: &Path) -> Result<Service, LoadErrorKind> {
    let at = At("service".into());
    let addr =
        |v: Raw, name: &'static str| -> Result<Option<std::net::SocketAddr>, LoadErrorKind> {
            at.string(v, name)?
                .map(|s| {
                    s.parse()
                        .map_err(|_| at.format(name, FormatProblem::NotAddress))
                })
                .transpose()
        };
    let uri = |at: &At, v: Raw, name: &'static str| -> Result<Option<Uri>, LoadErrorKind> {
        at.string(v, name)?
            .map(|s| Uri::parse(&s).ok_or_else(|| at.format(name, FormatProblem::NotUri)))
            .transpose()
    };
    let path = |v: Raw, name: &'static str| -> Result<Option<PathBuf>, LoadErrorKind> {
        Ok(at.string(v, name)?.map(|s| base.join(s.as_str())))
    };
    let kek = match (doc.kek, doc.kek_file) {
        (Some(_), Some(_)) => return Err(at.format("kekFile", FormatProblem::NotAllowedHere)),
        (Some(k), None) => Some(
            Kek::from_slice(&at.req_key(Some(k), "kek")?)
                .ok_or_else(|| at.format("kek", FormatProblem::NotKek))?,
        ),
        (None, Some(f)) => {
            let file = path(Some(f), "kekFile")?.unwrap_or_default();
            let bytes = Zeroizing::new(std::fs::read(&file).map_err(|e| {
                LoadErrorKind::Io(std::io::Error::new(
                    e.kind(),
                    format!("kekFile {}: {e}", file.display()),
                ))
            })?);
            let text = std::str::from_utf8(&bytes).map(str::trim).unwrap_or("");
            let mut raw = Zeroizing::new([0u8; 32]);
            let key = if bytes.len() == 32 {
                Kek::from_slice(&bytes)
            } else if hex::decode_to_slice(text, raw.as_mut()).is_ok() {
                Some(Kek::new(*raw))
            } else {
                None
            };
            Some(key.ok_or_else(|| at.format("kekFile", FormatProblem::NotKek))?)
        }
        (None, None) => None,
    };
    let mut mafs = Vec::with_capacity(doc.maf.len());
    for (i, m) in doc.maf.into_iter().enumerate() {
        let at = At(format!("service.maf[{i}]"));
        let maf_id = at.req_string(m.maf_id, "mafId")?.to_string();
        let maf_uri = at.req_string(m.maf_uri, "mafUri")?.to_string();
        let psk_identity = at.req_string(m.psk_identity, "pskIdentity")?.to_string();
        let psk = at.req_key(m.psk, "psk")?;
        mafs.push(MafPeer {
            maf_id,
            maf_uri,
            psk_identity,
            psk,
        });
    }
    let mef = match doc.mef {
        None => None,
        Some(m) => {
            let at = At("service.mef".into());
            Some(MefPeer {
                uri: uri(&at, m.uri, "uri")?.ok_or_else(|| at.missing("uri"))?,
                psk_identity: at.req_string(m.psk_identity, "pskIdentity")?.to_string(),
                psk: at.req_key(m.psk, "psk")?,
            })
        }
    };
    Ok(Service {
        listen: addr(doc.listen, "listen")?,
        listen_dtls: addr(doc.listen_dtls, "listenDtls")?,
        store: path(doc.store, "store")?,
        kek,
        key_lifetime: at.duration(doc.key_lifetime, "keyLifetime")?,
        maf_uri: uri(&at, doc.maf_uri, "mafUri")?,
        mafs,
        mef,
    })
}

/// Parses configuration text; `origin` names it in errors (a file name, or e.g. `<stdin>`).
pub fn parse_str(text: &str, origin: impl AsRef<Path>) -> Result<Config, LoadError> {
    let file = origin.as_ref();
    let base = file.parent().unwrap_or_else(|| Path::new("."));
    parse_inner(text, base).map_err(|kind| LoadError {
        file: file.to_path_buf(),
        kind,
    })
}

fn check_expiries(config: &Config, now: UnixTime) -> Result<(), (String, ParameterError)> {
    let e = |at: String| move |x| (at, ParameterError::Expired(x));
    match config {
        Config::EndPoint(c) => {
            if let Some(m) = c.maf_credential() {
                m.check_usable(now)
                    .map_err(e("mafBased.credential".into()))?;
            }
            for (i, p) in c.pre_provisioned().iter().enumerate() {
                p.association()
                    .check_usable(now)
                    .map_err(e(format!("preProvisioned[{i}].association")))?;
            }
            for (i, a) in c.maf_associations().iter().enumerate() {
                a.check_usable(now)
                    .map_err(e(format!("mafBased.association[{i}]")))?;
            }
            for (i, a) in c.certificate_associations().iter().enumerate() {
                a.association()
                    .check_usable(now)
                    .map_err(e(format!("certificate.association[{i}]")))?;
            }
        }
        Config::Maf(c) => {
            for (i, client) in c.clients().iter().enumerate() {
                client
                    .credential()
                    .check_usable(now)
                    .map_err(e(format!("client[{i}].credential")))?;
                for (j, a) in client.associations().iter().enumerate() {
                    a.check_usable(now)
                        .map_err(e(format!("client[{i}].association[{j}]")))?;
                }
            }
        }
        Config::Mef(_) => {}
    }
    // Anything the walk above does not know about yet.
    config.validate_at(now).map_err(|x| (String::new(), x))
}

// ---------------------------------------------------------------------------------------------
// File shapes. Every parameter is read as a raw `Value` so that type errors name it.

type Raw = Option<Value>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EndPointDoc {
    #[serde(default)]
    pre_provisioned: Vec<PreProvisionedDoc>,
    maf_based: Option<MafBasedDoc>,
    bootstrap: Option<BootstrapDoc>,
    certificate: Option<CertificateDoc>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CertificateDoc {
    credential: Option<CertCredentialDoc>,
    #[serde(default)]
    association: Vec<CertAssociationDoc>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CertCredentialDoc {
    this_entity_private_key: Raw,
    this_entity_certificate: Raw,
    this_entity_certificate_chain: Raw,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CertAssociationDoc {
    this_entity_identifier: Raw,
    other_entity_identifier: Raw,
    other_entity_certificate_name: Raw,
    other_entity_root_of_trust: Raw,
    association_configuration_expiry: Raw,
    security_association_lifespan: Raw,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PreProvisionedDoc {
    #[serde(default)]
    credential: KpsaDoc,
    #[serde(default)]
    association: AssociationDoc,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KpsaDoc {
    kpsa_key: Raw,
    kpsa_id: Raw,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AssociationDoc {
    this_entity_identifier: Raw,
    other_entity_identifier: Raw,
    association_configuration_expiry: Raw,
    security_association_lifespan: Raw,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MafBasedDoc {
    credential: Option<MasterDoc>,
    #[serde(default)]
    association: Vec<AssociationDoc>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MasterDoc {
    maf_identifier: Raw,
    this_entity_identifier: Raw,
    master_credential: Raw,
    master_credential_identifier: Raw,
    master_credential_expiry: Raw,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BootstrapDoc {
    #[serde(default)]
    credential: KpmDoc,
    #[serde(default)]
    instruction: InstructionDoc,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KpmDoc {
    kpm_id: Raw,
    kpm: Raw,
    mef_uri: Raw,
    this_entity_private_key: Raw,
    this_entity_certificate: Raw,
    this_entity_certificate_chain: Raw,
    other_entity_certificate_name: Raw,
    other_entity_root_of_trust: Raw,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InstructionDoc {
    maf_id: Raw,
    enrolee_id: Raw,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MefDoc {
    mef_identifier: Raw,
    certificate: Option<CertCredentialDoc>,
    #[serde(default)]
    enrolee: Vec<MefEnroleeDoc>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MefEnroleeDoc {
    #[serde(default)]
    credential: KpmDoc,
    #[serde(default)]
    instruction: InstructionDoc,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MafDoc {
    maf_identifier: Raw,
    #[serde(default)]
    client: Vec<MafClientDoc>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MafClientDoc {
    #[serde(default)]
    credential: MasterDoc,
    #[serde(default)]
    association: Vec<AssociationDoc>,
}

// ---------------------------------------------------------------------------------------------
// Mapping onto the core types

fn parse_inner(text: &str, base: &Path) -> Result<Config, LoadErrorKind> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| LoadErrorKind::Syntax(e.to_string()))?;
    let role = match table.remove("role") {
        None => return Err(LoadErrorKind::Role(None)),
        Some(Value::String(s)) => s,
        Some(other) => return Err(LoadErrorKind::Role(Some(other.to_string()))),
    };
    // The service and gba sections are not clause 9.1 configuration: see [`load_node`].
    table.remove("service");
    table.remove("gba");
    let value = Value::Table(table);
    let syntax = |e: toml::de::Error| LoadErrorKind::Syntax(e.to_string());
    match role.as_str() {
        "field-end-point" => end_point(Domain::Field, value.try_into().map_err(syntax)?, base),
        "infrastructure-end-point" => end_point(
            Domain::Infrastructure,
            value.try_into().map_err(syntax)?,
            base,
        ),
        "mef" => mef(value.try_into().map_err(syntax)?, base),
        "maf" => maf(value.try_into().map_err(syntax)?),
        _ => Err(LoadErrorKind::Role(Some(role))),
    }
}

/// Where the current group is; builds errors.
struct At(String);

impl At {
    fn format(&self, name: &'static str, problem: FormatProblem) -> LoadErrorKind {
        LoadErrorKind::Format {
            at: self.0.clone(),
            name,
            problem,
        }
    }

    fn param(&self) -> impl Fn(ParameterError) -> LoadErrorKind + '_ {
        move |error| LoadErrorKind::Parameter {
            at: self.0.clone(),
            error,
        }
    }

    fn missing(&self, name: &'static str) -> LoadErrorKind {
        self.param()(ParameterError::Missing { name })
    }

    /// An optional string parameter.
    fn string(
        &self,
        v: Raw,
        name: &'static str,
    ) -> Result<Option<Zeroizing<String>>, LoadErrorKind> {
        match v {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(Zeroizing::new(s))),
            Some(_) => Err(self.format(
                name,
                FormatProblem::WrongType {
                    expected: "a string",
                },
            )),
        }
    }

    /// A mandatory string parameter.
    fn req_string(&self, v: Raw, name: &'static str) -> Result<Zeroizing<String>, LoadErrorKind> {
        self.string(v, name)?.ok_or_else(|| self.missing(name))
    }

    /// A mandatory key, as hex.
    fn req_key(&self, v: Raw, name: &'static str) -> Result<Zeroizing<Vec<u8>>, LoadErrorKind> {
        let s = self.req_string(v, name)?;
        let mut out = Zeroizing::new(vec![0u8; s.len() / 2]);
        if s.len() % 2 != 0 || hex::decode_to_slice(s.as_bytes(), &mut out).is_err() {
            return Err(self.format(name, FormatProblem::NotHex));
        }
        Ok(out)
    }

    /// An optional time.
    fn time(&self, v: Raw, name: &'static str) -> Result<Option<UnixTime>, LoadErrorKind> {
        let dt = match v {
            None => return Ok(None),
            Some(Value::Integer(i)) => {
                return u64::try_from(i)
                    .map(|s| Some(UnixTime(s)))
                    .map_err(|_| self.format(name, FormatProblem::BeforeEpoch))
            }
            Some(Value::Datetime(dt)) => dt,
            Some(Value::String(s)) => s
                .trim()
                .parse::<Datetime>()
                .map_err(|_| self.format(name, FormatProblem::NotTime))?,
            Some(_) => {
                return Err(self.format(
                    name,
                    FormatProblem::WrongType {
                        expected: "an RFC 3339 date-time or integer Unix seconds",
                    },
                ))
            }
        };
        datetime_to_unix(&dt)
            .map(Some)
            .map_err(|p| self.format(name, p))
    }

    /// An optional duration, in seconds.
    fn duration(&self, v: Raw, name: &'static str) -> Result<Option<u64>, LoadErrorKind> {
        match v {
            None => Ok(None),
            Some(Value::Integer(i)) => u64::try_from(i)
                .map(Some)
                .map_err(|_| self.format(name, FormatProblem::NotDuration)),
            Some(Value::String(s)) => parse_duration(&s)
                .map(Some)
                .ok_or_else(|| self.format(name, FormatProblem::NotDuration)),
            Some(_) => Err(self.format(
                name,
                FormatProblem::WrongType {
                    expected: "a duration string or integer seconds",
                },
            )),
        }
    }
}

fn end_point(domain: Domain, doc: EndPointDoc, base: &Path) -> Result<Config, LoadErrorKind> {
    let mut b = EndPointConfig::builder(domain);
    for (i, p) in doc.pre_provisioned.into_iter().enumerate() {
        let at = At(format!("preProvisioned[{i}].credential"));
        let key = at.req_key(p.credential.kpsa_key, param::KPSA_KEY)?;
        let id = at.req_string(p.credential.kpsa_id, param::KPSA_ID)?;
        let cred = PreProvisionedCredential::new(&key, &id).map_err(at.param())?;
        let at = At(format!("preProvisioned[{i}].association"));
        let this = at.string(
            p.association.this_entity_identifier.clone(),
            param::THIS_ENTITY_IDENTIFIER,
        )?;
        if domain == Domain::Field && this.is_none() {
            // Table 9.1.2.1-2; the core checks it too, but without the group.
            return Err(at.missing(param::THIS_ENTITY_IDENTIFIER));
        }
        let assoc = association(&at, p.association, true)?;
        let entry =
            PreProvisionedAssociation::new(cred, this.as_deref().map(String::as_str), assoc)
                .map_err(at.param())?;
        b = b.pre_provisioned(entry);
    }
    if let Some(m) = doc.maf_based {
        if let Some(c) = m.credential {
            let at = At("mafBased.credential".into());
            let maf_id = at.req_string(c.maf_identifier.clone(), param::MAF_IDENTIFIER)?;
            let master = master_credential(&at, c)?;
            b = b.maf_credential(MafCredential::new(&maf_id, master).map_err(at.param())?);
        }
        for (i, a) in m.association.into_iter().enumerate() {
            let at = At(format!("mafBased.association[{i}]"));
            b = b.maf_association(association(&at, a, false)?);
        }
    }
    if let Some(boot) = doc.bootstrap {
        let at = At("bootstrap.credential".into());
        let c = boot.credential;
        let uri = at.req_string(c.mef_uri.clone(), param::MEF_URI)?;
        let at_i = At("bootstrap.instruction".into());
        let instruction = instruction(&at_i, boot.instruction)?;
        let bootstrap = if c.this_entity_private_key.is_some() {
            // Certificate-Based Security Bootstrap (8.3.2.2).
            if c.kpm_id.is_some() || c.kpm.is_some() {
                return Err(at.format(param::KPM_ID, FormatProblem::Conflicting));
            }
            let own = certificate_credential(
                &at,
                base,
                c.this_entity_private_key,
                c.this_entity_certificate,
                c.this_entity_certificate_chain,
            )?;
            let mef = certificate_peer(
                &at,
                c.other_entity_certificate_name,
                c.other_entity_root_of_trust,
            )?;
            EnroleeBootstrap::certificate(own, mef, &uri, instruction)
        } else {
            let certificate_keys = [
                &c.this_entity_certificate,
                &c.this_entity_certificate_chain,
                &c.other_entity_certificate_name,
                &c.other_entity_root_of_trust,
            ];
            if certificate_keys.iter().any(|v| v.is_some()) {
                // A certificate bootstrap needs thisEntityPrivateKey.
                return Err(at.missing(param::THIS_ENTITY_PRIVATE_KEY));
            }
            let cred = kpm_credential(&at, &c)?;
            EnroleeBootstrap::new(cred, &uri, instruction)
        };
        b = b.bootstrap(bootstrap.map_err(at.param())?);
    }
    if let Some(cert) = doc.certificate {
        if let Some(c) = cert.credential {
            let at = At("certificate.credential".into());
            b = b.certificate(certificate_credential(
                &at,
                base,
                c.this_entity_private_key,
                c.this_entity_certificate,
                c.this_entity_certificate_chain,
            )?);
        }
        for (i, a) in cert.association.into_iter().enumerate() {
            let at = At(format!("certificate.association[{i}]"));
            let this = at.string(
                a.this_entity_identifier.clone(),
                param::THIS_ENTITY_IDENTIFIER,
            )?;
            if domain == Domain::Field && this.is_none() {
                return Err(at.missing(param::THIS_ENTITY_IDENTIFIER));
            }
            let peer = certificate_peer(
                &at,
                a.other_entity_certificate_name,
                a.other_entity_root_of_trust,
            )?;
            let common = AssociationDoc {
                this_entity_identifier: None,
                other_entity_identifier: a.other_entity_identifier,
                association_configuration_expiry: a.association_configuration_expiry,
                security_association_lifespan: a.security_association_lifespan,
            };
            let assoc = association(&at, common, false)?;
            b = b.certificate_association(
                CertificateAssociation::new(peer, this.as_deref().map(String::as_str), assoc)
                    .map_err(at.param())?,
            );
        }
    }
    b.build()
        .map(|c| Config::EndPoint(Box::new(c)))
        .map_err(At(String::new()).param())
}

fn mef(doc: MefDoc, base: &Path) -> Result<Config, LoadErrorKind> {
    let top = At(String::new());
    let mef_id = top.req_string(doc.mef_identifier, param::MEF_IDENTIFIER)?;
    let certificate = match doc.certificate {
        None => None,
        Some(c) => Some(certificate_credential(
            &At("certificate".into()),
            base,
            c.this_entity_private_key,
            c.this_entity_certificate,
            c.this_entity_certificate_chain,
        )?),
    };
    let mut enrolees = Vec::with_capacity(doc.enrolee.len());
    for (i, e) in doc.enrolee.into_iter().enumerate() {
        let at = At(format!("enrolee[{i}].credential"));
        let c = e.credential;
        for (v, name) in [
            (&c.mef_uri, param::MEF_URI),
            (&c.this_entity_private_key, param::THIS_ENTITY_PRIVATE_KEY),
            (&c.this_entity_certificate, param::THIS_ENTITY_CERTIFICATE),
            (
                &c.this_entity_certificate_chain,
                param::THIS_ENTITY_CERTIFICATE_CHAIN,
            ),
        ] {
            if v.is_some() {
                return Err(at.format(name, FormatProblem::NotAllowedHere));
            }
        }
        let ins = instruction(&At(format!("enrolee[{i}].instruction")), e.instruction)?;
        let cert_given =
            c.other_entity_certificate_name.is_some() || c.other_entity_root_of_trust.is_some();
        if cert_given {
            // A certificate Enrolee (8.3.2.2): its Certificate Name and Root of Trust.
            if c.kpm_id.is_some() || c.kpm.is_some() {
                return Err(at.format(param::KPM_ID, FormatProblem::Conflicting));
            }
            let peer = certificate_peer(
                &at,
                c.other_entity_certificate_name,
                c.other_entity_root_of_trust,
            )?;
            enrolees.push(MefEnrolee::certificate(peer, ins));
        } else {
            let cred = kpm_credential(&at, &c)?;
            enrolees.push(MefEnrolee::new(cred, ins));
        }
    }
    MefConfig::with_certificate(&mef_id, enrolees, certificate)
        .map(Config::Mef)
        .map_err(top.param())
}

fn maf(doc: MafDoc) -> Result<Config, LoadErrorKind> {
    let top = At(String::new());
    let maf_id = top.req_string(doc.maf_identifier, param::MAF_IDENTIFIER)?;
    let mut clients = Vec::with_capacity(doc.client.len());
    for (i, c) in doc.client.into_iter().enumerate() {
        let at = At(format!("client[{i}].credential"));
        if c.credential.maf_identifier.is_some() {
            // The MAF's own identifier is the top-level mafIdentifier.
            return Err(at.format(param::MAF_IDENTIFIER, FormatProblem::NotAllowedHere));
        }
        let cred = master_credential(&at, c.credential)?;
        let mut assocs = Vec::with_capacity(c.association.len());
        for (j, a) in c.association.into_iter().enumerate() {
            assocs.push(association(
                &At(format!("client[{i}].association[{j}]")),
                a,
                false,
            )?);
        }
        clients.push(MafClient::new(cred, assocs).map_err(At(format!("client[{i}]")).param())?);
    }
    MafConfig::new(&maf_id, clients)
        .map(Config::Maf)
        .map_err(top.param())
}

fn association(
    at: &At,
    a: AssociationDoc,
    this_allowed: bool,
) -> Result<AssociationConfig, LoadErrorKind> {
    if !this_allowed && a.this_entity_identifier.is_some() {
        return Err(at.format(param::THIS_ENTITY_IDENTIFIER, FormatProblem::NotAllowedHere));
    }
    let mut b = AssociationConfig::builder();
    if let Some(other) = at.string(a.other_entity_identifier, param::OTHER_ENTITY_IDENTIFIER)? {
        b = b.other_entity_identifier(&other);
    }
    if let Some(t) = at.time(
        a.association_configuration_expiry,
        param::ASSOCIATION_CONFIGURATION_EXPIRY,
    )? {
        b = b.association_configuration_expiry(t);
    }
    if let Some(s) = at.duration(
        a.security_association_lifespan,
        param::SECURITY_ASSOCIATION_LIFESPAN,
    )? {
        b = b.security_association_lifespan_secs(s);
    }
    b.build().map_err(at.param())
}

fn master_credential(at: &At, c: MasterDoc) -> Result<MasterCredential, LoadErrorKind> {
    let mut b = MasterCredential::builder();
    if let Some(s) = at.string(c.this_entity_identifier, param::THIS_ENTITY_IDENTIFIER)? {
        b = b.this_entity_identifier(&s);
    }
    if c.master_credential.is_some() {
        b = b.master_credential(&at.req_key(c.master_credential, param::MASTER_CREDENTIAL)?);
    }
    if let Some(s) = at.string(
        c.master_credential_identifier,
        param::MASTER_CREDENTIAL_IDENTIFIER,
    )? {
        b = b.master_credential_identifier(&s);
    }
    if let Some(t) = at.time(c.master_credential_expiry, param::MASTER_CREDENTIAL_EXPIRY)? {
        b = b.master_credential_expiry(t);
    }
    b.build().map_err(at.param())
}

fn kpm_credential(at: &At, c: &KpmDoc) -> Result<BootstrapCredential, LoadErrorKind> {
    let id = at.req_string(c.kpm_id.clone(), param::KPM_ID)?;
    let key = at.req_key(c.kpm.clone(), param::KPM)?;
    BootstrapCredential::new(&id, &key).map_err(at.param())
}

fn instruction(at: &At, i: InstructionDoc) -> Result<BootstrapInstruction, LoadErrorKind> {
    let maf_id = at.req_string(i.maf_id, param::MAF_ID)?;
    let enrolee_id = at.req_string(i.enrolee_id, param::ENROLEE_ID)?;
    BootstrapInstruction::new(&maf_id, &enrolee_id).map_err(at.param())
}

/// `otherEntityCertificateName` and `otherEntityRootOfTrust`, both mandatory.
fn certificate_peer(at: &At, name: Raw, rot: Raw) -> Result<CertificatePeer, LoadErrorKind> {
    let name = at.req_string(name, param::OTHER_ENTITY_CERTIFICATE_NAME)?;
    let rot = at.req_string(rot, param::OTHER_ENTITY_ROOT_OF_TRUST)?;
    CertificatePeer::new(&name, &rot).map_err(at.param())
}

/// The value of `thisEntityCertificate` that selects a raw public key (RFC 7250) instead of a
/// certificate file.
pub const RAW_PUBLIC_KEY: &str = "raw-public-key";

/// `thisEntityPrivateKey` (file), `thisEntityCertificate` (file, or [`RAW_PUBLIC_KEY`]) and the
/// optional `thisEntityCertificateChain` (file), paths relative to the configuration file.
fn certificate_credential(
    at: &At,
    base: &Path,
    key: Raw,
    cert: Raw,
    chain: Raw,
) -> Result<CertificateCredential, LoadErrorKind> {
    let key_path = at.req_string(key, param::THIS_ENTITY_PRIVATE_KEY)?;
    let cert_path = at.req_string(cert, param::THIS_ENTITY_CERTIFICATE)?;
    let chain_path = at.string(chain, param::THIS_ENTITY_CERTIFICATE_CHAIN)?;
    let key_der = read_pem(
        at,
        base,
        &key_path,
        param::THIS_ENTITY_PRIVATE_KEY,
        &["PRIVATE KEY", "EC PRIVATE KEY"],
    )?;
    let key_der = Zeroizing::new(key_der.into_iter().next().unwrap_or_default());
    let key = CertificateCredential::private_key_from_der(&key_der).map_err(at.param())?;
    if cert_path.as_str() == RAW_PUBLIC_KEY {
        if chain_path.is_some() {
            return Err(at.format(
                param::THIS_ENTITY_CERTIFICATE_CHAIN,
                FormatProblem::NotAllowedHere,
            ));
        }
        return Ok(CertificateCredential::raw_public_key(key));
    }
    let mut certs = read_pem(
        at,
        base,
        &cert_path,
        param::THIS_ENTITY_CERTIFICATE,
        &["CERTIFICATE"],
    )?;
    // A certificate file may hold the chain after the certificate.
    let leaf = certs.remove(0);
    if let Some(p) = chain_path {
        certs.extend(read_pem(
            at,
            base,
            &p,
            param::THIS_ENTITY_CERTIFICATE_CHAIN,
            &["CERTIFICATE"],
        )?);
    }
    CertificateCredential::x509(key, leaf, certs).map_err(at.param())
}

/// The blocks of a PEM file under the first of `labels` present (at least one), or the whole
/// file as one DER value when it is not PEM.
fn read_pem(
    at: &At,
    base: &Path,
    file: &str,
    name: &'static str,
    labels: &[&str],
) -> Result<Vec<Vec<u8>>, LoadErrorKind> {
    let path = base.join(file);
    let bytes = Zeroizing::new(std::fs::read(&path).map_err(|e| {
        LoadErrorKind::Io(std::io::Error::new(
            e.kind(),
            format!("{name} {}: {e}", path.display()),
        ))
    })?);
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(vec![bytes.to_vec()]);
    };
    if !text.contains("-----BEGIN ") {
        return Ok(vec![bytes.to_vec()]);
    }
    for label in labels {
        match pem_decode(label, text) {
            Ok(blocks) if !blocks.is_empty() => return Ok(blocks),
            Ok(_) => {}
            Err(_) => return Err(at.format(name, FormatProblem::NotPem)),
        }
    }
    Err(at.format(name, FormatProblem::NotPem))
}

// ---------------------------------------------------------------------------------------------
// Times and durations

/// Seconds since the Unix epoch of an RFC 3339 date-time with offset.
fn datetime_to_unix(dt: &Datetime) -> Result<UnixTime, FormatProblem> {
    let (Some(date), Some(time)) = (dt.date, dt.time) else {
        return Err(FormatProblem::NotTime);
    };
    let offset_minutes = match dt.offset {
        None => return Err(FormatProblem::LocalTime),
        Some(Offset::Z) => 0,
        Some(Offset::Custom { minutes }) => i64::from(minutes),
    };
    let days = m2msec::time::days_from_civil(
        i64::from(date.year),
        i64::from(date.month),
        i64::from(date.day),
    );
    let secs = days * 86_400
        + i64::from(time.hour) * 3600
        + i64::from(time.minute) * 60
        + i64::from(time.second.unwrap_or(0))
        - offset_minutes * 60;
    u64::try_from(secs)
        .map(UnixTime)
        .map_err(|_| FormatProblem::BeforeEpoch)
}

/// `<number><unit>` parts, units `s m h d w`, e.g. `1h30m`; `None` if malformed or overflowing.
fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let mult = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("24h"), Some(86_400));
        assert_eq!(parse_duration("2w1d"), Some(15 * 86_400));
        assert_eq!(parse_duration("0s"), Some(0));
        for bad in [
            "",
            "h",
            "10",
            "10x",
            "1.5h",
            "-1h",
            "1h 30m",
            "99999999999999999999w",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn times() {
        let t = |s: &str| datetime_to_unix(&s.parse::<Datetime>().unwrap());
        assert_eq!(t("1970-01-01T00:00:00Z"), Ok(UnixTime(0)));
        assert_eq!(t("2000-03-01T00:00:00Z"), Ok(UnixTime(951_868_800)));
        assert_eq!(t("2036-01-01T00:00:00Z"), Ok(UnixTime(2_082_758_400)));
        assert_eq!(t("2036-01-01T01:00:00+01:00"), Ok(UnixTime(2_082_758_400)));
        assert_eq!(t("2035-12-31T23:00:00-01:00"), Ok(UnixTime(2_082_758_400)));
        assert_eq!(t("2024-02-29T12:34:56.789Z"), Ok(UnixTime(1_709_210_096)));
        assert_eq!(t("2036-01-01T00:00:00"), Err(FormatProblem::LocalTime));
        assert_eq!(t("2036-01-01"), Err(FormatProblem::NotTime));
        assert_eq!(t("1969-12-31T23:59:59Z"), Err(FormatProblem::BeforeEpoch));
    }
}
