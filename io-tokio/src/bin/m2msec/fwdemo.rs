//! The frameworks part of `m2msec demo`: real MEF, MAF and registrar servers on loopback, started
//! from TOML files written to a temporary directory (fresh random keys, temporary redb stores),
//! exactly as `m2msec mef|maf|registrar` start them, and every PSK framework run against them
//! over TLS and DTLS by the code of `m2msec enrol|associate`.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

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
}

/// Writes the five roles' files into `dir` for the given ports.
pub(crate) fn write_configs(dir: &Path, mef: u16, maf: u16, reg: u16) -> Result<Files, Failure> {
    let (kpm_e, kpm_f, maf_psk) = (key()?, key()?, key()?);
    let (km_a, km_b, kpsa) = (key()?, key()?, key()?);
    let (kek_mef, kek_maf, kek_e, kek_f) = (key()?, key()?, key()?, key()?);
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

[service]
listen = "127.0.0.1:{reg}"
listenDtls = "127.0.0.1:{reg}"
mafUri = "https://localhost:{maf}"
"#
        ),
    )?;
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
    Ok(Files {
        mef: mef_path,
        maf: maf_path,
        registrar,
        entity_a,
        enrolees: [e, f],
    })
}
