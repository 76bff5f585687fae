//! `m2msec cert new|rot` (P-256 keys and certificates for the certificate-based frameworks) and
//! the certificate flags of `m2msec client` / `server` (`--cert`, `--key`, `--chain`,
//! `--raw-public-key`, `--peer-name`, `--peer-root`, `--san-only`).
//!
//! The core is deterministic and takes bytes; the randomness (private scalar, serial number)
//! and the clock come from here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use m2msec::cert::{
    pem_decode, pem_encode, root_of_trust_of, CertBuilder, CertError, CertifiedKey, Credential,
    OneM2mVerifier, RootOfTrust, RotHash, SigningKey, SubjectAltName,
};
use m2msec::messages::is_dns_name;
use m2msec::{CertificateType, SessionInfo, UnixTime};
use zeroize::Zeroizing;

use crate::Failure;

#[derive(Subcommand, Debug)]
pub(crate) enum CertCmd {
    /// Create a P-256 key and a certificate (self-signed, or signed with --ca-cert/--ca-key);
    /// prints `root-of-trust: ni:///sha-256;..` and `certificate-name: NAME`.
    New(NewArgs),
    /// Print the Root of Trust (`root-of-trust: ni:///..`) of a certificate's or key's public
    /// key.
    Rot(RotArgs),
}

/// How `--name` goes into subjectAltName.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum NameKind {
    /// An AE-ID (e.g. `//sp.example.com/CSE1/Cae1`): a URI.
    Ae,
    /// A CSE's public domain name: a dNSName.
    Cse,
    /// An FQDN (MEF, MAF, ...): a dNSName.
    Fqdn,
}

#[derive(Args, Debug)]
pub(crate) struct NewArgs {
    /// The entity's name, written to subjectAltName and the subject CN (a CA's only to the CN,
    /// unless --kind). Required for a CA and for a certificate signed by a CA; a self-signed
    /// entity certificate is named by its key's hash (added as the SAN URI `ni:///sha-256;..`)
    /// and may carry this name too.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// The kind of name: ae (URI), cse or fqdn (dNSName). Default: a name starting with `/`
    /// is an AE-ID, anything else a dNSName.
    #[arg(long, value_enum, requires = "name")]
    kind: Option<NameKind>,
    /// Make a CA certificate (basicConstraints cA, keyUsage keyCertSign).
    #[arg(long)]
    ca: bool,
    /// The CA's pathLenConstraint.
    #[arg(long, value_name = "N", requires = "ca")]
    path_len: Option<u8>,
    /// A permitted dNSName subtree in the CA's nameConstraints (repeatable).
    #[arg(long = "permit-dns", value_name = "DOMAIN", requires = "ca")]
    permit_dns: Vec<String>,
    /// The issuing CA's certificate (PEM; its chain may follow and is appended to --out-cert).
    #[arg(long, value_name = "FILE", requires = "ca_key")]
    ca_cert: Option<PathBuf>,
    /// The issuing CA's private key (PKCS#8 PEM or DER).
    #[arg(long, value_name = "FILE", requires = "ca_cert")]
    ca_key: Option<PathBuf>,
    /// Validity in days, from now.
    #[arg(long, value_name = "N", default_value_t = 365)]
    days: u32,
    /// Where to write the private key (PKCS#8 PEM, mode 0600).
    #[arg(long, value_name = "FILE")]
    out_key: PathBuf,
    /// Where to write the certificate (PEM; followed by the issuer's chain when signed by a CA).
    #[arg(long, value_name = "FILE")]
    out_cert: PathBuf,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["cert", "key"])))]
pub(crate) struct RotArgs {
    /// A certificate (PEM or DER; the first certificate of the file).
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// A private key (PKCS#8 or SEC1, PEM or DER) or a PEM public key.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The hash: sha-256, sha-256-128 or sha-256-120.
    #[arg(long, value_name = "HASH", default_value = "sha-256", value_parser = parse_hash)]
    hash: RotHash,
}

fn parse_hash(s: &str) -> Result<RotHash, String> {
    [RotHash::Sha256, RotHash::Sha256_128, RotHash::Sha256_120]
        .into_iter()
        .find(|h| h.name().eq_ignore_ascii_case(s))
        .ok_or_else(|| "expected sha-256, sha-256-128 or sha-256-120".into())
}

fn parse_rot(s: &str) -> Result<RootOfTrust, String> {
    s.parse::<RootOfTrust>().map_err(|e| e.to_string())
}

/// The certificate flags shared by `client` and `server`.
#[derive(Args, Debug)]
pub(crate) struct CertArgs {
    /// Our certificate (PEM: the leaf first, the chain may follow). Enables the ECDHE-ECDSA
    /// suites on a server.
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// Our private key (PKCS#8 PEM or DER).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// More certificates (PEM) to send after those of --cert (repeatable).
    #[arg(long, value_name = "FILE", requires = "cert")]
    chain: Vec<PathBuf>,
    /// Send an RFC 7250 raw public key instead of the X.509 certificate (--cert not needed).
    #[arg(long, requires = "key")]
    raw_public_key: bool,
    /// The peer's Certificate Name (otherEntityCertificateName): a subjectAltName of its
    /// certificate. Default: the --peer-root text (a self-signed certificate or a raw key).
    #[arg(long, value_name = "NAME", requires = "peer_root")]
    peer_name: Option<String>,
    /// The peer's Root of Trust (otherEntityRootOfTrust): ni:///sha-256;.. of its own key or of
    /// a CA key of its chain. Enables the ECDHE-ECDSA suites on a client.
    #[arg(long, value_name = "ROT", value_parser = parse_rot)]
    peer_root: Option<RootOfTrust>,
    /// Only subjectAltName may carry the peer's Certificate Name (not the subject).
    #[arg(long, requires = "peer_root")]
    san_only: bool,
}

/// The certificate side of a configuration, ready for the builders.
pub(crate) struct Auth {
    /// Our credential and key.
    pub(crate) own: Option<CertifiedKey>,
    /// Whether our credential is sent as a raw public key (RFC 7250).
    pub(crate) raw: bool,
    /// The verifier of the peer.
    pub(crate) verifier: Option<Arc<OneM2mVerifier>>,
}

impl CertArgs {
    /// Loads the files and builds the verifier.
    pub(crate) fn load(&self) -> Result<Auth, Failure> {
        let own = match (&self.cert, &self.key) {
            (None, None) => None,
            (Some(_), None) => return Err(Failure("--cert needs --key".into())),
            (None, Some(k)) if !self.raw_public_key => {
                return Err(Failure(format!(
                    "--key {} needs --cert (or --raw-public-key)",
                    k.display()
                )))
            }
            (None, Some(k)) => Some(CertifiedKey::raw(load_key(k)?)),
            (Some(c), Some(k)) => {
                let key = load_key(k)?;
                let mut chain = load_certs(c)?;
                for extra in &self.chain {
                    chain.extend(load_certs(extra)?);
                }
                let cred = CertifiedKey::new(key, Credential::X509(chain)).map_err(|e| {
                    Failure(match e {
                        CertError::KeyMismatch => format!(
                            "--key {} is not the key of the certificate in {}",
                            k.display(),
                            c.display()
                        ),
                        e => format!("--cert {}: {e}", c.display()),
                    })
                })?;
                Some(cred)
            }
        };
        let verifier = self.peer_root.map(|rot| {
            let name = self.peer_name.clone().unwrap_or_else(|| rot.to_ni_uri());
            Arc::new(OneM2mVerifier::new(name, rot).san_only(self.san_only))
        });
        Ok(Auth {
            own,
            raw: self.raw_public_key,
            verifier,
        })
    }
}

impl Auth {
    /// The server certificate types a server with this credential offers, in preference order.
    pub(crate) fn server_types(&self) -> Vec<CertificateType> {
        use CertificateType::{RawPublicKey, X509};
        match self.own.as_ref().map(CertifiedKey::credential) {
            Some(Credential::X509(_)) if self.raw => vec![RawPublicKey, X509],
            Some(Credential::X509(_)) => vec![X509, RawPublicKey],
            _ => vec![RawPublicKey],
        }
    }
}

/// The fields the `connected:` line gains for an ECDHE-ECDSA suite:
/// ` peer-name=<matched name or -> peer-root=<ni of the peer's key or ->`.
pub(crate) fn connected_suffix(info: &SessionInfo) -> String {
    if !info.suite.is_ecdhe_ecdsa() {
        return String::new();
    }
    let (name, root) = match &info.peer_certificate {
        Some(p) => (
            p.matched_name.clone().unwrap_or_else(|| "-".into()),
            RootOfTrust::from_digest(RotHash::Sha256, &p.spki_sha256)
                .map_or_else(|_| "-".into(), |r| r.to_ni_uri()),
        ),
        None => ("-".into(), "-".into()),
    };
    format!(" peer-name={name} peer-root={root}")
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// A private key: PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`), PEM or DER.
pub(crate) fn load_key(path: &Path) -> Result<SigningKey, Failure> {
    let bytes = Zeroizing::new(read(path)?);
    let bad = |what: &str| Failure(format!("{}: {what}", path.display()));
    if is_pem(&bytes) {
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("not PEM text"))?;
        let pkcs8 = Zeroizing::new(pem_decode("PRIVATE KEY", text).map_err(|_| bad("bad PEM"))?);
        if let Some(der) = pkcs8.first() {
            return SigningKey::from_pkcs8_der(der).map_err(|e| bad(&e.to_string()));
        }
        let sec1 = Zeroizing::new(pem_decode("EC PRIVATE KEY", text).map_err(|_| bad("bad PEM"))?);
        if let Some(der) = sec1.first() {
            return SigningKey::from_sec1_der(der).map_err(|e| bad(&e.to_string()));
        }
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(bad("encrypted keys are not supported"));
        }
        return Err(bad("no PRIVATE KEY or EC PRIVATE KEY block"));
    }
    SigningKey::from_pkcs8_der(&bytes)
        .or_else(|_| SigningKey::from_sec1_der(&bytes))
        .map_err(|_| bad("not a P-256 private key (PKCS#8 or SEC1, PEM or DER)"))
}

/// The certificates of a file: every PEM `CERTIFICATE` block in order, or one DER certificate.
pub(crate) fn load_certs(path: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    let bytes = read(path)?;
    let bad = |what: &str| Failure(format!("{}: {what}", path.display()));
    if is_pem(&bytes) {
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("not PEM text"))?;
        let certs = pem_decode("CERTIFICATE", text).map_err(|_| bad("bad PEM"))?;
        if certs.is_empty() {
            return Err(bad("no CERTIFICATE block"));
        }
        return Ok(certs);
    }
    if bytes.first() == Some(&0x30) {
        return Ok(vec![bytes]);
    }
    Err(bad("not a PEM or DER certificate"))
}

/// The DER PKCS#8 PrivateKeyInfo (RFC 5208, RFC 5915) of a P-256 key, as OpenSSL writes it:
/// the curve in the algorithm identifier, the public key in the ECPrivateKey.
fn pkcs8_der(scalar: &[u8; 32], key: &SigningKey) -> Zeroizing<Vec<u8>> {
    const HEAD: [u8; 36] = [
        0x30, 0x81, 0x87, // PrivateKeyInfo, 135 bytes
        0x02, 0x01, 0x00, // version 0
        0x30, 0x13, // AlgorithmIdentifier
        0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, // id-ecPublicKey
        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, // secp256r1
        0x04, 0x6d, // OCTET STRING, 109 bytes
        0x30, 0x6b, // ECPrivateKey, 107 bytes
        0x02, 0x01, 0x01, // version 1
        0x04, 0x20, // privateKey, 32 bytes
    ];
    const MID: [u8; 5] = [0xa1, 0x44, 0x03, 0x42, 0x00]; // [1] { BIT STRING, 66 bytes }
    let spki = key.spki_der();
    let point = &spki[spki.len() - 65..];
    let mut out = Zeroizing::new(Vec::with_capacity(138));
    out.extend_from_slice(&HEAD);
    out.extend_from_slice(scalar);
    out.extend_from_slice(&MID);
    out.extend_from_slice(point);
    out
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, Failure> {
    let mut out = Zeroizing::new([0u8; N]);
    getrandom::getrandom(out.as_mut_slice())
        .map_err(|e| Failure(format!("no randomness from the OS: {e}")))?;
    Ok(out)
}

/// A new P-256 key from OS randomness, and its PKCS#8 DER.
fn new_key() -> Result<(SigningKey, Zeroizing<Vec<u8>>), Failure> {
    loop {
        let scalar = random::<32>()?;
        // A scalar of zero or at least the group order (odds ~2^-32) is drawn again.
        if let Ok(key) = SigningKey::from_bytes(&scalar) {
            let der = pkcs8_der(&scalar, &key);
            return Ok((key, der));
        }
    }
}

fn write_file(path: &Path, data: &[u8], private: bool) -> Result<(), Failure> {
    use std::io::Write;
    let cannot = |e: std::io::Error| Failure(format!("cannot write {}: {e}", path.display()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        let f = opts.open(path).map_err(cannot)?;
        // An existing file keeps its mode on open: narrow it before writing the key.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(cannot)?;
        let mut f = f;
        return f
            .write_all(data)
            .and_then(|()| f.sync_all())
            .map_err(cannot);
    }
    let _ = private;
    let mut f = opts.open(path).map_err(cannot)?;
    f.write_all(data).map_err(cannot)
}

fn san_of(name: &str, kind: Option<NameKind>) -> Result<SubjectAltName, Failure> {
    let kind = kind.unwrap_or(if name.starts_with('/') {
        NameKind::Ae
    } else {
        NameKind::Fqdn
    });
    if !name.is_ascii() || name.is_empty() {
        return Err(Failure(format!("--name {name:?}: must be non-empty ASCII")));
    }
    match kind {
        NameKind::Ae => Ok(SubjectAltName::Uri(name.into())),
        NameKind::Cse | NameKind::Fqdn if is_dns_name(name) => Ok(SubjectAltName::Dns(name.into())),
        NameKind::Cse | NameKind::Fqdn => Err(Failure(format!(
            "--name {name:?} is not a DNS name (use --kind ae for an AE-ID)"
        ))),
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn cert_cmd(cmd: CertCmd) -> Result<(), Failure> {
    match cmd {
        CertCmd::New(a) => cert_new(&a),
        CertCmd::Rot(a) => cert_rot(&a),
    }
}

fn cert_new(a: &NewArgs) -> Result<(), Failure> {
    let signed = a.ca_cert.is_some();
    if a.name.is_none() && (a.ca || signed) {
        return Err(Failure(
            "--name is required for a CA and for a certificate signed by a CA".into(),
        ));
    }
    if a.days == 0 {
        return Err(Failure("--days must be at least 1".into()));
    }
    let permitted = a
        .permit_dns
        .iter()
        .map(|d| {
            let base = d.strip_prefix('.').unwrap_or(d);
            if is_dns_name(base) {
                Ok(SubjectAltName::Dns(d.clone()))
            } else {
                Err(Failure(format!("--permit-dns {d:?} is not a DNS name")))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let issuer = match (&a.ca_cert, &a.ca_key) {
        (Some(c), Some(k)) => {
            let chain = load_certs(c)?;
            let key = load_key(k)?;
            let ca = CertifiedKey::new(key, Credential::X509(chain.clone())).map_err(|e| {
                Failure(format!(
                    "--ca-key {} / --ca-cert {}: {e}",
                    k.display(),
                    c.display()
                ))
            })?;
            Some((ca, chain))
        }
        _ => None,
    };

    let now = now_unix();
    // A minute back, for peers whose clock is slightly behind.
    let not_before = UnixTime(now.saturating_sub(60));
    let not_after = UnixTime(now.saturating_add(u64::from(a.days) * 86_400));
    let mut serial = *random::<16>()?;
    serial[0] = (serial[0] & 0x7f) | 0x01; // positive, 16 significant bytes
    let mut b = CertBuilder::new(&serial, not_before, not_after);
    if let Some(name) = &a.name {
        b = b.subject_cn(name);
        // A CA is named by its subject; it gets a subjectAltName only when --kind says which.
        if !a.ca || a.kind.is_some() {
            b = b.san(san_of(name, a.kind)?);
        }
    }
    b = if a.ca {
        b.ca(a.path_len).name_constraints(permitted, Vec::new())
    } else {
        b.end_entity()
    };

    let (key, pkcs8) = new_key()?;
    let der = match &issuer {
        Some((ca, _)) => b.signed_by(&key.verifying_key(), ca),
        None => b.self_signed(&key),
    }
    .map_err(|e| Failure(format!("cannot build the certificate: {e}")))?;
    let mut pem = pem_encode("CERTIFICATE", &der);
    if let Some((_, chain)) = &issuer {
        for c in chain {
            pem.push_str(&pem_encode("CERTIFICATE", c));
        }
    }
    let key_pem = Zeroizing::new(pem_encode("PRIVATE KEY", &pkcs8));
    write_file(&a.out_key, key_pem.as_bytes(), true)?;
    write_file(&a.out_cert, pem.as_bytes(), false)?;

    let rot = root_of_trust_of(&Credential::X509(vec![der]))
        .map_err(|e| Failure(format!("cannot hash the key: {e}")))?;
    // A self-signed entity certificate is named by its key's hash (the self-signed rule); a
    // CA or a certificate issued by one, by --name.
    let name = match &a.name {
        Some(n) if a.ca || signed => n.clone(),
        _ => rot.to_ni_uri(),
    };
    println!("root-of-trust: {rot}");
    println!("certificate-name: {name}");
    Ok(())
}

fn cert_rot(a: &RotArgs) -> Result<(), Failure> {
    let spki = if let Some(c) = &a.cert {
        let certs = load_certs(c)?;
        let leaf = certs.into_iter().next().unwrap_or_default();
        Credential::X509(vec![leaf])
            .leaf_spki()
            .map_err(|e| Failure(format!("{}: {e}", c.display())))?
    } else if let Some(k) = &a.key {
        let bytes = read(k)?;
        let public = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|t| pem_decode("PUBLIC KEY", t).ok())
            .and_then(|v| v.into_iter().next());
        match public {
            Some(spki) => Credential::RawPublicKey(spki)
                .leaf_spki()
                .map_err(|e| Failure(format!("{}: {e}", k.display())))?,
            None => load_key(k)?.spki_der(),
        }
    } else {
        return Err(Failure("give --cert or --key".into()));
    };
    println!("root-of-trust: {}", RootOfTrust::of_spki(&spki, a.hash));
    Ok(())
}
