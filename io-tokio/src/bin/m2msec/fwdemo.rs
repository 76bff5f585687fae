//! The frameworks part of `m2msec demo`: real MEF, MAF and registrar servers on loopback, started
//! from TOML files written to a temporary directory (fresh random keys, temporary redb stores),
//! exactly as `m2msec mef|maf|registrar` start them, and every PSK framework run against them
//! over TLS and DTLS by the code of `m2msec enrol|associate`.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use m2msec::cert::{
    pem_encode, root_of_trust_of, CertBuilder, RootOfTrust, RotHash, SubjectAltName,
};
use m2msec::{CertifiedKey, CipherSuite, Credential, SigningKey, UnixTime};
use m2msec_tokio::config_toml::{Node, Uri};
use m2msec_tokio::frameworks::bsf::{BsfConfig, BsfService, ServiceHandle};
use m2msec_tokio::frameworks::registrar::RegistrarEvent;
use m2msec_tokio::frameworks::Transport;
use m2msec_tokio::node::{self, NodeError};
use m2msec_tokio::store::RedbKeyStore;
use std::sync::Arc;
use zeroize::Zeroizing;

use crate::Failure;

/// The demo's directory: removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new() -> Result<Self, Failure> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("m2msec-demo-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Failure(format!("demo: {}: {e}", dir.display())))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port free for both TCP and UDP right now.
pub(crate) fn free_port() -> Result<u16, Failure> {
    for _ in 0..64 {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| Failure(format!("demo: bind: {e}")))?;
        let port = tcp.local_addr().map_err(|e| Failure(e.to_string()))?.port();
        if UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_ok() {
            return Ok(port);
        }
    }
    Err(Failure("demo: no free loopback port".into()))
}

fn key() -> Result<String, Failure> {
    let mut k = [0u8; 32];
    getrandom::getrandom(&mut k).map_err(|e| Failure(format!("demo: randomness: {e}")))?;
    Ok(hex::encode(k))
}

/// The demo's configuration files.
pub(crate) struct Files {
    pub(crate) mef: PathBuf,
    pub(crate) maf: PathBuf,
    pub(crate) registrar: PathBuf,
    pub(crate) entity_a: PathBuf,
    /// Enrolees /id-mn-e (bootstraps over TLS) and /id-mn-f (over DTLS).
    pub(crate) enrolees: [PathBuf; 2],
    /// Entity A /id-asn-c with an X.509 certificate under the demo CA (two levels).
    pub(crate) entity_cert: PathBuf,
    /// Entity A /id-asn-r with a raw public key (RFC 7250).
    pub(crate) entity_raw: PathBuf,
    /// Certificate Enrolees /id-mn-g (bootstraps over TLS) and /id-mn-h (over DTLS).
    pub(crate) cert_enrolees: [PathBuf; 2],
    /// The BSF (`role = "bsf"`): Ub and Zn, one subscriber (the UE), NAFs the registrar and
    /// the MAF.
    pub(crate) bsf: PathBuf,
    /// The UE (GBA Entity A): `[gba]` with its USIM's K and OPc, and a store for its Ks.
    pub(crate) ue: PathBuf,
    /// UEs /id-ue-m and /id-ue-n of the GBA-based Security Bootstrap (8.3.3.1): Km for the MAF
    /// from their Ks, first contact with the B-TID (over TLS, over DTLS).
    pub(crate) gba_ues: [PathBuf; 2],
}

/// Where the demo's servers listen.
#[derive(Clone, Copy)]
pub(crate) struct ServerPorts {
    pub(crate) mef: u16,
    pub(crate) maf: u16,
    pub(crate) registrar: u16,
    /// The BSF's Ub (HTTP over TCP).
    pub(crate) ub: u16,
    /// The BSF's Zn (TLS-PSK over TCP).
    pub(crate) zn: u16,
}

/// The demo UE's IMPI (its IdA at the registrar: no `[[gba.peer]]` mapping there).
pub(crate) const UE_IMPI: &str = "ue@ims.example.com";
/// The demo BSF's FQDN (the domain of every B-TID).
pub(crate) const BSF_FQDN: &str = "bsf.example.com";

fn key16() -> Result<String, Failure> {
    let mut k = [0u8; 16];
    getrandom::getrandom(&mut k).map_err(|e| Failure(format!("demo: randomness: {e}")))?;
    Ok(hex::encode(k))
}

/// The DER PKCS#8 PrivateKeyInfo of a P-256 key (RFC 5208 / RFC 5915, as OpenSSL writes it).
fn pkcs8_der(scalar: &[u8; 32], key: &SigningKey) -> Zeroizing<Vec<u8>> {
    const HEAD: [u8; 36] = [
        0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
        0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30,
        0x6b, 0x02, 0x01, 0x01, 0x04, 0x20,
    ];
    const MID: [u8; 5] = [0xa1, 0x44, 0x03, 0x42, 0x00];
    let spki = key.spki_der();
    let mut out = Zeroizing::new(Vec::with_capacity(138));
    out.extend_from_slice(&HEAD);
    out.extend_from_slice(scalar);
    out.extend_from_slice(&MID);
    out.extend_from_slice(&spki[spki.len() - 65..]);
    out
}

/// A fresh P-256 key, written as `<name>-key.pem` (PKCS#8 PEM) into `dir`.
fn new_key(dir: &Path, name: &str) -> Result<SigningKey, Failure> {
    loop {
        let mut scalar = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(scalar.as_mut())
            .map_err(|e| Failure(format!("demo: randomness: {e}")))?;
        if let Ok(key) = SigningKey::from_bytes(&scalar) {
            let pem = Zeroizing::new(pem_encode("PRIVATE KEY", &pkcs8_der(&scalar, &key)));
            let p = dir.join(format!("{name}-key.pem"));
            std::fs::write(&p, pem.as_bytes())
                .map_err(|e| Failure(format!("demo: {}: {e}", p.display())))?;
            return Ok(key);
        }
    }
}

/// The demo PKI: a CA (the Root of Trust of every X.509 entity), and leaves with an FQDN
/// subjectAltName signed by it (two-level chains: leaf, CA), written as PEM into `dir`.
struct DemoPki {
    ca: CertifiedKey,
    rot: String,
}

impl DemoPki {
    fn new(dir: &Path) -> Result<Self, Failure> {
        let bad = |e: m2msec::CertError| Failure(format!("demo PKI: {e}"));
        let now = node::unix_now().0;
        let key = new_key(dir, "ca")?;
        let der = CertBuilder::new(&[1], UnixTime(now - 3600), UnixTime(now + 86_400))
            .subject_cn("m2msec demo CA")
            .ca(None)
            .self_signed(&key)
            .map_err(bad)?;
        write_pem(dir, "ca.pem", &[&der])?;
        let credential = Credential::X509(vec![der]);
        let rot = root_of_trust_of(&credential).map_err(bad)?.to_ni_uri();
        let ca = CertifiedKey::new(key, credential).map_err(bad)?;
        Ok(Self { ca, rot })
    }

    /// `<name>-key.pem` and `<name>.pem` (the leaf for `fqdn`).
    fn leaf(&self, dir: &Path, name: &str, fqdn: &str, serial: u8) -> Result<(), Failure> {
        let now = node::unix_now().0;
        let key = new_key(dir, name)?;
        let der = CertBuilder::new(&[serial], UnixTime(now - 3600), UnixTime(now + 86_400))
            .subject_cn(fqdn)
            .san(SubjectAltName::Dns(fqdn.to_owned()))
            .end_entity()
            .signed_by(&key.verifying_key(), &self.ca)
            .map_err(|e| Failure(format!("demo PKI: {e}")))?;
        write_pem(dir, &format!("{name}.pem"), &[&der])
    }
}

fn write_pem(dir: &Path, name: &str, ders: &[&[u8]]) -> Result<(), Failure> {
    let text: String = ders.iter().map(|d| pem_encode("CERTIFICATE", d)).collect();
    let p = dir.join(name);
    std::fs::write(&p, text).map_err(|e| Failure(format!("demo: {}: {e}", p.display())))
}

/// Writes the five roles' files into `dir` for the given ports.
pub(crate) fn write_configs(dir: &Path, ports: ServerPorts) -> Result<Files, Failure> {
    let (mef, maf, reg) = (ports.mef, ports.maf, ports.registrar);
    let (ub, zn) = (ports.ub, ports.zn);
    let (ue_k, ue_opc, reg_naf_psk, kek_bsf, kek_ue) = (key16()?, key16()?, key()?, key()?, key()?);
    let (m_k, m_opc, n_k, n_opc) = (key16()?, key16()?, key16()?, key16()?);
    let (maf_naf_psk, kek_m, kek_n) = (key()?, key()?, key()?);
    let (kpm_e, kpm_f, maf_psk) = (key()?, key()?, key()?);
    let (km_a, km_b, kpsa) = (key()?, key()?, key()?);
    let (kek_mef, kek_maf, kek_e, kek_f) = (key()?, key()?, key()?, key()?);
    let (kek_g, kek_h) = (key()?, key()?);
    let pki = DemoPki::new(dir)?;
    let ca_rot = pki.rot.clone();
    pki.leaf(dir, "in-cse", "in-cse.example.com", 2)?;
    pki.leaf(dir, "asn-c", "asn-c.example.com", 3)?;
    pki.leaf(dir, "mef", "mef.example.com", 4)?;
    pki.leaf(dir, "mn-g", "mn-g.example.com", 5)?;
    pki.leaf(dir, "mn-h", "mn-h.example.com", 6)?;
    // Entity /id-asn-r: a raw public key, named by its own hash (draft 8.1.1.2.1).
    let raw_rot =
        RootOfTrust::of_spki(&new_key(dir, "asn-r")?.spki_der(), RotHash::Sha256).to_ni_uri();
    let mut files = Vec::new();
    let mut write = |name: &str, text: String| -> Result<PathBuf, Failure> {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| Failure(format!("demo: {}: {e}", p.display())))?;
        files.push(p.clone());
        Ok(p)
    };
    let mef_path = write(
        "mef.toml",
        format!(
            r#"role = "mef"
mefIdentifier = "mef.example.com"

[[enrolee]]
[enrolee.credential]
kpmId = "mn-e.kpm1@mef.example.com"
kpm = "{kpm_e}"
[enrolee.instruction]
mafId = "maf.example.com"
enroleeId = "/id-mn-e"

[[enrolee]]
[enrolee.credential]
kpmId = "mn-f.kpm1@mef.example.com"
kpm = "{kpm_f}"
[enrolee.instruction]
mafId = "maf.example.com"
enroleeId = "/id-mn-f"

# Certificate-Based Security Bootstrap (8.3.2.2): the MEF's FQDN certificate ...
[certificate]
thisEntityPrivateKey = "mef-key.pem"
thisEntityCertificate = "mef.pem"
thisEntityCertificateChain = "ca.pem"

# ... and its certificate Enrolees, named by Certificate Name and Root of Trust.
[[enrolee]]
[enrolee.credential]
otherEntityCertificateName = "mn-g.example.com"
otherEntityRootOfTrust = "{ca_rot}"
[enrolee.instruction]
mafId = "maf.example.com"
enroleeId = "/id-mn-g"

[[enrolee]]
[enrolee.credential]
otherEntityCertificateName = "mn-h.example.com"
otherEntityRootOfTrust = "{ca_rot}"
[enrolee.instruction]
mafId = "maf.example.com"
enroleeId = "/id-mn-h"

[service]
listen = "127.0.0.1:{mef}"
listenDtls = "127.0.0.1:{mef}"
store = "mef.redb"
kek = "{kek_mef}"
keyLifetime = "1d"

[[service.maf]]
mafId = "maf.example.com"
mafUri = "https://localhost:{maf}"
pskIdentity = "maf.example.com@mef.example.com"
psk = "{maf_psk}"
"#
        ),
    )?;
    let maf_path = write(
        "maf.toml",
        format!(
            r#"role = "maf"
mafIdentifier = "maf.example.com"

[[client]]
[client.credential]
thisEntityIdentifier = "/id-asn-a"
masterCredential = "{km_a}"
masterCredentialIdentifier = "asn-a.km1@maf.example.com"
[[client.association]]
otherEntityIdentifier = "/id-in"

[[client]]
[client.credential]
thisEntityIdentifier = "/id-in"
masterCredential = "{km_b}"
masterCredentialIdentifier = "in-cse.km1@maf.example.com"
[[client.association]]
otherEntityIdentifier = "/id-asn-a"
[[client.association]]
otherEntityIdentifier = "/id-mn-e"
[[client.association]]
otherEntityIdentifier = "/id-mn-f"
[[client.association]]
otherEntityIdentifier = "/id-mn-g"
[[client.association]]
otherEntityIdentifier = "/id-mn-h"
[[client.association]]
otherEntityIdentifier = "/id-ue-m"
[[client.association]]
otherEntityIdentifier = "/id-ue-n"

[service]
listen = "127.0.0.1:{maf}"
listenDtls = "127.0.0.1:{maf}"
store = "maf.redb"
kek = "{kek_maf}"
keyLifetime = "1h"

[service.mef]
uri = "https://localhost:{mef}"
pskIdentity = "maf.example.com@mef.example.com"
psk = "{maf_psk}"

# GBA-based Security Bootstrap (8.3.3.1): the MAF is the NAF maf.example.com at the BSF; a
# B-TID of bsf.example.com is a first contact (Km = Ks_NAF over Zn), owned by the Enrolee-ID.
[gba]
znAddress = "127.0.0.1:{zn}"
pskIdentity = "maf@{BSF_FQDN}"
psk = "{maf_naf_psk}"
bsfFqdn = "{BSF_FQDN}"
[[gba.peer]]
impi = "ue-m@ims.example.com"
otherEntityIdentifier = "/id-ue-m"
[[gba.peer]]
impi = "ue-n@ims.example.com"
otherEntityIdentifier = "/id-ue-n"
"#
        ),
    )?;
    let registrar = write(
        "registrar.toml",
        format!(
            r#"role = "infrastructure-end-point"

[[preProvisioned]]
[preProvisioned.credential]
kpsaKey = "{kpsa}"
kpsaId = "asn-a.in@sp.example.com"
[preProvisioned.association]
otherEntityIdentifier = "/id-asn-a"
securityAssociationLifespan = "1h"

[mafBased.credential]
mafIdentifier = "maf.example.com"
thisEntityIdentifier = "/id-in"
masterCredential = "{km_b}"
masterCredentialIdentifier = "in-cse.km1@maf.example.com"
[[mafBased.association]]
otherEntityIdentifier = "/id-asn-a"
securityAssociationLifespan = "1h"
[[mafBased.association]]
otherEntityIdentifier = "/id-mn-e"
[[mafBased.association]]
otherEntityIdentifier = "/id-mn-f"
[[mafBased.association]]
otherEntityIdentifier = "/id-mn-g"
[[mafBased.association]]
otherEntityIdentifier = "/id-mn-h"
[[mafBased.association]]
otherEntityIdentifier = "/id-ue-m"
[[mafBased.association]]
otherEntityIdentifier = "/id-ue-n"

# Certificate-Based associations (8.2.2.2): B's certificate, and who may come with which
# Certificate Name and Root of Trust.
[certificate.credential]
thisEntityPrivateKey = "in-cse-key.pem"
thisEntityCertificate = "in-cse.pem"
thisEntityCertificateChain = "ca.pem"
[[certificate.association]]
otherEntityIdentifier = "/id-asn-c"
otherEntityCertificateName = "asn-c.example.com"
otherEntityRootOfTrust = "{ca_rot}"
securityAssociationLifespan = "1h"
[[certificate.association]]
otherEntityIdentifier = "/id-asn-r"
otherEntityCertificateName = "{raw_rot}"
otherEntityRootOfTrust = "{raw_rot}"

[service]
listen = "127.0.0.1:{reg}"
listenDtls = "127.0.0.1:{reg}"
mafUri = "https://localhost:{maf}"

# GBA-based associations (8.2.3.2): the registrar is the NAF in-cse.example.com at the BSF.
[gba]
nafFqdn = "in-cse.example.com"
znAddress = "127.0.0.1:{zn}"
pskIdentity = "in-cse@{BSF_FQDN}"
psk = "{reg_naf_psk}"
flavours = ["gba-me", "gba-u"]
"#
        ),
    )?;
    let bsf = write(
        "bsf.toml",
        format!(
            r#"role = "bsf"
bsfFqdn = "{BSF_FQDN}"

[[subscriber]]
impi = "{UE_IMPI}"
k = "{ue_k}"
opc = "{ue_opc}"
guss = ["in-cse.example.com"]
gbaU = true

[[subscriber]]
impi = "ue-m@ims.example.com"
k = "{m_k}"
opc = "{m_opc}"
guss = ["maf.example.com"]

[[subscriber]]
impi = "ue-n@ims.example.com"
k = "{n_k}"
opc = "{n_opc}"
guss = ["maf.example.com"]

[[naf]]
fqdns = ["in-cse.example.com"]
pskIdentity = "in-cse@{BSF_FQDN}"
psk = "{reg_naf_psk}"

[[naf]]
fqdns = ["maf.example.com"]
pskIdentity = "maf@{BSF_FQDN}"
psk = "{maf_naf_psk}"

[service]
listen = "127.0.0.1:{ub}"
listenZn = "127.0.0.1:{zn}"
store = "bsf.redb"
kek = "{kek_bsf}"
keyLifetime = "1h"
"#
        ),
    )?;
    let ue = write(
        "entity-ue.toml",
        format!(
            r#"role = "field-end-point"

[gba]
ubAddress = "127.0.0.1:{ub}"
bsfFqdn = "{BSF_FQDN}"
impi = "{UE_IMPI}"
k = "{ue_k}"
opc = "{ue_opc}"
nafFqdn = "in-cse.example.com"

[service]
store = "ue.redb"
kek = "{kek_ue}"
"#
        ),
    )?;
    let mut gba_ue = |name: &str, k: &str, opc: &str, kek: &str| {
        write(
            &format!("ue-{name}.toml"),
            format!(
                r#"role = "field-end-point"

[gba]
ubAddress = "127.0.0.1:{ub}"
bsfFqdn = "{BSF_FQDN}"
impi = "ue-{name}@ims.example.com"
k = "{k}"
opc = "{opc}"
mafFqdn = "maf.example.com"
thisEntityIdentifier = "/id-ue-{name}"

[service]
store = "ue-{name}.redb"
kek = "{kek}"
"#
            ),
        )
    };
    let gba_ues = [
        gba_ue("m", &m_k, &m_opc, &kek_m)?,
        gba_ue("n", &n_k, &n_opc, &kek_n)?,
    ];
    let entity_a = write(
        "entity-a.toml",
        format!(
            r#"role = "field-end-point"

[[preProvisioned]]
[preProvisioned.credential]
kpsaKey = "{kpsa}"
kpsaId = "asn-a.in@sp.example.com"
[preProvisioned.association]
thisEntityIdentifier = "/id-asn-a"
otherEntityIdentifier = "/id-in"

[mafBased.credential]
mafIdentifier = "maf.example.com"
thisEntityIdentifier = "/id-asn-a"
masterCredential = "{km_a}"
masterCredentialIdentifier = "asn-a.km1@maf.example.com"
[[mafBased.association]]
otherEntityIdentifier = "/id-in"

[service]
mafUri = "https://localhost:{maf}"
"#
        ),
    )?;
    let mut enrolee = |name: &str, kpm: &str, scheme: &str, kek: &str| {
        let mut t = String::new();
        let _ = write!(
            t,
            r#"role = "field-end-point"

[bootstrap.credential]
kpmId = "mn-{name}.kpm1@mef.example.com"
kpm = "{kpm}"
mefUri = "{scheme}://localhost:{mef}"
[bootstrap.instruction]
mafId = "maf.example.com"
enroleeId = "/id-mn-{name}"

[[mafBased.association]]
otherEntityIdentifier = "/id-in"

[service]
store = "enrolee-{name}.redb"
kek = "{kek}"
"#
        );
        write(&format!("enrolee-{name}.toml"), t)
    };
    let e = enrolee("e", &kpm_e, "https", &kek_e)?;
    let f = enrolee("f", &kpm_f, "coaps", &kek_f)?;
    let mut cert_entity = |name: &str, cert: &str, chain: &str| {
        write(
            &format!("entity-{name}.toml"),
            format!(
                r#"role = "field-end-point"

[certificate.credential]
thisEntityPrivateKey = "asn-{name}-key.pem"
thisEntityCertificate = "{cert}"
{chain}
[[certificate.association]]
thisEntityIdentifier = "/id-asn-{name}"
otherEntityIdentifier = "/id-in"
otherEntityCertificateName = "in-cse.example.com"
otherEntityRootOfTrust = "{ca_rot}"
"#
            ),
        )
    };
    let entity_cert = cert_entity("c", "asn-c.pem", r#"thisEntityCertificateChain = "ca.pem""#)?;
    let entity_raw = cert_entity("r", "raw-public-key", "")?;
    let mut cert_enrolee = |name: &str, scheme: &str, kek: &str| {
        write(
            &format!("enrolee-{name}.toml"),
            format!(
                r#"role = "field-end-point"

[bootstrap.credential]
thisEntityPrivateKey = "mn-{name}-key.pem"
thisEntityCertificate = "mn-{name}.pem"
thisEntityCertificateChain = "ca.pem"
otherEntityCertificateName = "mef.example.com"
otherEntityRootOfTrust = "{ca_rot}"
mefUri = "{scheme}://localhost:{mef}"
[bootstrap.instruction]
mafId = "maf.example.com"
enroleeId = "/id-mn-{name}"

[[mafBased.association]]
otherEntityIdentifier = "/id-in"

[service]
store = "enrolee-{name}.redb"
kek = "{kek}"
"#
            ),
        )
    };
    let g = cert_enrolee("g", "https", &kek_g)?;
    let h = cert_enrolee("h", "coaps", &kek_h)?;
    Ok(Files {
        mef: mef_path,
        maf: maf_path,
        registrar,
        entity_a,
        enrolees: [e, f],
        entity_cert,
        entity_raw,
        cert_enrolees: [g, h],
        bsf,
        ue,
        gba_ues,
    })
}

/// One row of the frameworks table.
pub(crate) struct FwRow {
    pub(crate) framework: &'static str,
    pub(crate) transport: Transport,
    pub(crate) suite: CipherSuite,
    pub(crate) identities: String,
    pub(crate) key_ids: String,
    pub(crate) elapsed: Duration,
    /// Shown instead of the transport and the suite (a GBA bootstrapping over Ub: HTTP Digest
    /// AKA, no TLS).
    pub(crate) shown_as: Option<(&'static str, &'static str)>,
}

fn nf(what: &str) -> impl Fn(NodeError) -> Failure + '_ {
    move |e| Failure(format!("demo {what}: {e}"))
}

fn uri(transport: Transport, port: u16) -> Uri {
    let scheme = match transport {
        Transport::Tls => "https",
        Transport::Dtls => "coaps",
    };
    Uri::parse(&format!("{scheme}://127.0.0.1:{port}")).expect("a loopback URI parses")
}

/// Checks what the registrar bound against what the client learnt from it.
fn bound_row(
    framework: &'static str,
    a: &node::Associated,
    elapsed: Duration,
    maf_key: Option<String>,
) -> Result<FwRow, Failure> {
    if a.registrar.bound_identity != a.this_entity {
        return Err(Failure(format!(
            "demo {framework}: the registrar bound {} to {}",
            a.registrar.bound_identity, a.this_entity
        )));
    }
    let key_ids = match maf_key {
        Some(km) => format!("km={km} kc={}", a.registrar.key_identifier),
        None if a.framework == node::Framework::Certificate => {
            format!("a-key={}", a.registrar.key_identifier)
        }
        None if matches!(a.framework, node::Framework::Gba { .. }) => {
            let ran = a.gba.as_ref().is_some_and(|g| g.1);
            let ks = if ran { "ub" } else { "stored" };
            format!("ks={ks} btid={}", a.registrar.key_identifier)
        }
        None => format!("kpsa={}", a.registrar.key_identifier),
    };
    Ok(FwRow {
        framework,
        transport: a.transport,
        suite: a.suite,
        identities: format!("A={} B-bound={}", a.this_entity, a.registrar.bound_identity),
        key_ids,
        elapsed,
        shown_as: None,
    })
}

/// Where the demo's registrar and MAF listen (TLS and DTLS on the same port).
#[derive(Clone, Copy)]
struct Ports {
    registrar: u16,
    maf: u16,
}

/// Associates `entity` with the registrar over `t` (MAF-based: through the MAF) and times it.
async fn associate_timed(
    entity: &Node,
    framework: node::Framework,
    t: Transport,
    ports: Ports,
    what: &str,
) -> Result<(node::Associated, Duration), Failure> {
    associate_timed_to(entity, framework, t, ports, what, None).await
}

/// [`associate_timed`] with the peer (`otherEntityIdentifier`) given.
async fn associate_timed_to(
    entity: &Node,
    framework: node::Framework,
    t: Transport,
    ports: Ports,
    what: &str,
    peer: Option<&str>,
) -> Result<(node::Associated, Duration), Failure> {
    let maf = (framework == node::Framework::MafBased).then(|| uri(t, ports.maf));
    let start = Instant::now();
    let a = node::associate_node(
        entity,
        framework,
        &uri(t, ports.registrar),
        peer,
        maf.as_ref(),
    )
    .await
    .map_err(nf(what))?;
    Ok((a, start.elapsed()))
}

/// A bootstrapped Enrolee's first MAF-based association: the MAF must assign a KmID.
async fn after_bootstrap_row(
    enrolee: &Node,
    t: Transport,
    ports: Ports,
    what: &str,
    framework: &'static str,
) -> Result<FwRow, Failure> {
    // A GBA UE's file names no MAF-based association: the registrar /id-in.
    let peer = enrolee.gba.is_some().then_some("/id-in");
    let (a, elapsed) =
        associate_timed_to(enrolee, node::Framework::MafBased, t, ports, what, peer).await?;
    let km = a.assigned_km_id.clone().ok_or_else(|| {
        Failure("demo: the first MAF contact after the bootstrap assigned no KmID".into())
    })?;
    bound_row(framework, &a, elapsed, Some(km))
}

/// Loads the Enrolee of `file` and runs its Security Bootstrap over `t`.
async fn enrol_row(
    file: &Path,
    t: Transport,
    what: &str,
    framework: &'static str,
) -> Result<(Node, FwRow), Failure> {
    let enrolee = node::load(file).map_err(nf("Enrolee"))?;
    let start = Instant::now();
    let e = node::enrol_node(&enrolee, None).await.map_err(nf(what))?;
    let id = match &enrolee.config {
        m2msec_tokio::config_toml::Config::EndPoint(ep) => ep
            .bootstrap()
            .map(|b| b.instruction().enrolee_id().as_str().to_owned())
            .unwrap_or_default(),
        _ => String::new(),
    };
    let row = FwRow {
        framework,
        transport: e.transport,
        suite: e.enrolment.suite,
        identities: format!("enrolee={id} maf-id={}", e.enrolment.maf_id),
        key_ids: format!("ke={}", e.enrolment.ke_id.as_str()),
        elapsed: start.elapsed(),
        shown_as: None,
    };
    debug_assert_eq!(e.transport, t);
    Ok((enrolee, row))
}

/// Starts MEF, MAF and registrar from files in a temporary directory and runs every PSK
/// framework over TLS and DTLS against them; the registrar's own reports are checked against
/// the clients' view.
pub(crate) async fn run() -> Result<Vec<FwRow>, Failure> {
    let dir = TempDir::new()?;
    let mut ports = Vec::new();
    while ports.len() < 5 {
        let p = free_port()?;
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    let (p_mef, p_maf, p_reg) = (ports[0], ports[1], ports[2]);
    let server_ports = ServerPorts {
        mef: p_mef,
        maf: p_maf,
        registrar: p_reg,
        ub: ports[3],
        zn: ports[4],
    };
    let files = write_configs(&dir.0, server_ports)?;
    let (ub, zn) = start_bsf(&files.bsf).await?;
    let mef = node::start_mef(node::load_server(&files.mef).map_err(nf("MEF"))?)
        .await
        .map_err(nf("MEF"))?;
    let maf = node::start_maf(node::load_server(&files.maf).map_err(nf("MAF"))?)
        .await
        .map_err(nf("MAF"))?;
    let mut reg =
        node::start_registrar(node::load_server(&files.registrar).map_err(nf("registrar"))?)
            .await
            .map_err(nf("registrar"))?;
    let entity_a = node::load(&files.entity_a).map_err(nf("Entity A"))?;
    let mut rows = Vec::new();
    let transports = [Transport::Tls, Transport::Dtls];
    let ports = Ports {
        registrar: p_reg,
        maf: p_maf,
    };

    for t in transports {
        let framework = node::Framework::PreProvisioned;
        let (a, elapsed) =
            associate_timed(&entity_a, framework, t, ports, "pre-provisioned").await?;
        rows.push(bound_row("pre-provisioned", &a, elapsed, None)?);
    }
    for (i, t) in transports.into_iter().enumerate() {
        let (_, row) = enrol_row(&files.enrolees[i], t, "bootstrap", "bootstrap-psk").await?;
        rows.push(row);
    }
    let km_a = match &entity_a.config {
        m2msec_tokio::config_toml::Config::EndPoint(ep) => ep
            .maf_credential()
            .map(|c| {
                c.master()
                    .master_credential_identifier()
                    .as_str()
                    .to_owned()
            })
            .unwrap_or_default(),
        _ => String::new(),
    };
    for t in transports {
        let framework = node::Framework::MafBased;
        let (a, elapsed) = associate_timed(&entity_a, framework, t, ports, "maf-based").await?;
        rows.push(bound_row("maf-based", &a, elapsed, Some(km_a.clone()))?);
    }
    for (i, t) in transports.into_iter().enumerate() {
        let enrolee = node::load(&files.enrolees[i]).map_err(nf("Enrolee"))?;
        let what = "maf-based after bootstrap";
        rows.push(after_bootstrap_row(&enrolee, t, ports, what, "maf-after-bootstrap").await?);
    }

    // Certificate-based associations (8.2.2.2): X.509 (leaf + CA) and a raw public key.
    for (file, framework) in [
        (&files.entity_cert, "certificate"),
        (&files.entity_raw, "certificate-raw"),
    ] {
        let entity = node::load(file).map_err(nf(framework))?;
        for t in transports {
            let (a, elapsed) =
                associate_timed(&entity, node::Framework::Certificate, t, ports, framework).await?;
            if a.registrar.framework.as_str() != "certificate-based" {
                return Err(Failure(format!(
                    "demo {framework}: the registrar saw {}",
                    a.registrar.framework
                )));
            }
            rows.push(bound_row(framework, &a, elapsed, None)?);
        }
    }
    // Certificate-Based Security Bootstrap (8.3.2.2), then the MAF-based association with the
    // Km it yields (first contact with the KeID).
    for (i, t) in transports.into_iter().enumerate() {
        let file = &files.cert_enrolees[i];
        let (enrolee, row) = enrol_row(file, t, "bootstrap-cert", "bootstrap-cert").await?;
        rows.push(row);
        let what = "maf-based after certificate bootstrap";
        rows.push(after_bootstrap_row(&enrolee, t, ports, what, "maf-after-cert-boot").await?);
    }

    // GBA-based associations (8.2.3.2): the UE bootstraps over Ub once, then every association
    // (GBA_ME and GBA_U, TLS and DTLS) derives its NAF key from the stored Ks.
    let ue = node::load(&files.ue).map_err(nf("UE"))?;
    let mut btid = None;
    for (uicc, framework) in [(false, "gba-me"), (true, "gba-u")] {
        for t in transports {
            let f = node::Framework::Gba { uicc };
            let (a, elapsed) = associate_timed(&ue, f, t, ports, framework).await?;
            let (b, ran) = a.gba.clone().unwrap_or_default();
            if ran != btid.is_none() || btid.as_ref().is_some_and(|first| first != &b) {
                return Err(Failure(format!(
                    "demo {framework}: expected one bootstrapping and its Ks reused (B-TID {b})"
                )));
            }
            btid = Some(b);
            rows.push(bound_row(framework, &a, elapsed, None)?);
        }
    }

    // GBA-based Security Bootstrap (8.3.3.1): the UE bootstraps over Ub (Ke = Ks, KeID = B-TID),
    // then its first MAF contact with the B-TID (the MAF fetches Km = Ks_NAF over Zn) assigns a
    // KmID, and the MAF-based association follows.
    for (i, t) in transports.into_iter().enumerate() {
        let ue = node::load(&files.gba_ues[i]).map_err(nf("UE"))?;
        let gba = ue
            .gba
            .as_ref()
            .ok_or_else(|| Failure("demo: the UE has no [gba]".into()))?;
        let start = Instant::now();
        let (btid, _, _, impi, _) = node::gba_bootstrapping(&ue, gba)
            .await
            .map_err(nf("bootstrap-gba"))?;
        rows.push(FwRow {
            framework: "bootstrap-gba",
            transport: t,
            suite: CipherSuite::PskAes128Ccm,
            identities: format!("impi={impi} bsf={}", btid.bsf_fqdn()),
            key_ids: format!("btid={}", btid.as_str()),
            elapsed: start.elapsed(),
            shown_as: Some(("http", "Digest-AKAv1-MD5")),
        });
        let what = "maf-based after GBA bootstrap";
        rows.push(after_bootstrap_row(&ue, t, ports, what, "maf-after-gba-boot").await?);
    }

    // Every association the clients saw must have been reported by the registrar, bound alike.
    let is_association = |r: &&FwRow| !r.framework.starts_with("bootstrap-");
    let associations = rows.iter().filter(is_association).count();
    let mut accepted = Vec::new();
    while accepted.len() < associations {
        match tokio::time::timeout(Duration::from_secs(2), reg.events.recv()).await {
            Ok(Some(RegistrarEvent::Accepted { info, .. })) => accepted.push(info),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    for r in rows.iter().filter(is_association) {
        // The last `name=value` of the key_ids (a B-TID's base64 may end in '=').
        let key = r
            .key_ids
            .rsplit(' ')
            .next()
            .and_then(|kv| kv.split_once('='))
            .map(|(_, v)| v)
            .unwrap_or_default();
        let found = accepted.iter().any(|i| {
            i.key_id.as_str() == key
                && i.transport == r.transport
                && r.identities
                    .ends_with(&format!("B-bound={}", i.bound_identity))
        });
        if !found {
            return Err(Failure(format!(
                "demo: the registrar did not report the {} association with {key}",
                r.framework
            )));
        }
    }
    reg.shutdown()
        .await
        .map_err(|e| Failure(format!("demo: registrar shutdown: {e}")))?;
    maf.shutdown()
        .await
        .map_err(|e| Failure(format!("demo: MAF shutdown: {e}")))?;
    mef.shutdown()
        .await
        .map_err(|e| Failure(format!("demo: MEF shutdown: {e}")))?;
    for (what, h) in [("Ub", ub), ("Zn", zn)] {
        h.shutdown()
            .await
            .map_err(|e| Failure(format!("demo: BSF {what} shutdown: {e}")))?;
    }
    drop(dir);
    Ok(rows)
}

/// Starts the BSF of `file` as `m2msec bsf` does (redb store under the KEK): Ub and Zn.
async fn start_bsf(file: &Path) -> Result<(ServiceHandle, ServiceHandle), Failure> {
    let config = BsfConfig::load(file).map_err(|e| Failure(format!("demo BSF: {e}")))?;
    let (Some(path), Some(kek)) = (config.service.store.clone(), config.service.kek.clone()) else {
        return Err(Failure("demo BSF: service.store and service.kek".into()));
    };
    let (Some(ub), Some(zn)) = (config.service.listen, config.service.listen_zn) else {
        return Err(Failure(
            "demo BSF: service.listen and service.listenZn".into(),
        ));
    };
    let store = RedbKeyStore::open_async(path.clone(), kek)
        .await
        .map_err(|e| Failure(format!("demo BSF: store {}: {e}", path.display())))?;
    let bsf = Arc::new(BsfService::new(Arc::new(config), Arc::new(store)));
    let ub = bsf
        .bind_ub(ub)
        .await
        .map_err(|e| Failure(format!("demo BSF: Ub {ub}: {e}")))?;
    let zn = bsf
        .bind_zn(zn)
        .await
        .map_err(|e| Failure(format!("demo BSF: Zn {zn}: {e}")))?;
    Ok((ub, zn))
}

/// Prints the frameworks table.
pub(crate) fn print(rows: &[FwRow]) {
    println!(
        "{:<20} {:<9} {:<34} {:<48} {:<102} {:>8}",
        "framework", "transport", "suite", "identities", "key_ids", "ms"
    );
    for r in rows {
        let (transport, suite) = match r.shown_as {
            Some((t, s)) => (t.to_owned(), s),
            None => (
                r.transport.to_string().to_ascii_lowercase(),
                r.suite.iana_name(),
            ),
        };
        println!(
            "{:<20} {:<9} {:<34} {:<48} {:<102} {:>8.1}",
            r.framework,
            transport,
            suite,
            r.identities,
            r.key_ids,
            r.elapsed.as_secs_f64() * 1000.0
        );
    }
}
