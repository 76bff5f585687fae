//! The certificate-based frameworks over loopback sockets: the registrar's Certificate-Based
//! associations (draft 8.2.2.2) over TLS and DTLS binding the IdA of the association the
//! client's certificate matches (X.509 chain and raw public key), its refusals (wrong name,
//! wrong Root of Trust, expired certificate, no client certificate, expired association
//! configuration), and the Certificate-Based Security Bootstrap (8.3.2.2) from TOML files
//! followed by the MAF first contact, with the MEF refusing an Enrolee certificate it is not
//! configured with.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use m2msec::cert::{
    pem_encode, root_of_trust_of, CertBuilder, RootOfTrust, RotHash, SubjectAltName,
};
use m2msec::frameworks::binding::AssociationFramework;
use m2msec::frameworks::config::{
    AssociationConfig, CertificateAssociation, CertificateCredential, CertificatePeer, Domain,
    EndPointConfig,
};
use m2msec::{CertVerifier, CertifiedKey, ClientConfig, Credential, SigningKey, UnixTime};
use m2msec_tokio::config_toml::Uri;
use m2msec_tokio::frameworks::registrar::{
    associate_certificate, Refusal, Registrar, RegistrarEvent, RegistrarHandle,
};
use m2msec_tokio::frameworks::Transport;
use m2msec_tokio::node;
use tokio::sync::mpsc;

const TRANSPORTS: [Transport; 2] = [Transport::Tls, Transport::Dtls];
const B_NAME: &str = "in-cse.example.com";

fn now() -> u64 {
    node::unix_now().0
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32]).unwrap()
}

/// A CA (self-signed, valid now).
fn ca(seed: u8) -> CertifiedKey {
    let k = key(seed);
    let der = CertBuilder::new(&[seed], UnixTime(now() - 3600), UnixTime(now() + 86_400))
        .subject_cn(&format!("CA {seed}"))
        .ca(None)
        .self_signed(&k)
        .unwrap();
    CertifiedKey::new(k, Credential::X509(vec![der])).unwrap()
}

fn rot(ca: &CertifiedKey) -> RootOfTrust {
    root_of_trust_of(ca.credential()).unwrap()
}

/// A leaf for `name` signed by `ca`, sent with the CA (two levels), valid over `[from, to)`.
fn leaf_in(ca: &CertifiedKey, seed: u8, name: &str, from: u64, to: u64) -> CertifiedKey {
    let k = key(seed);
    let der = CertBuilder::new(&[seed], UnixTime(from), UnixTime(to))
        .subject_cn(name)
        .san(SubjectAltName::Dns(name.into()))
        .end_entity()
        .signed_by(&k.verifying_key(), ca)
        .unwrap();
    let Credential::X509(ca_chain) = ca.credential() else {
        unreachable!()
    };
    CertifiedKey::new(k, Credential::X509(vec![der, ca_chain[0].clone()])).unwrap()
}

fn leaf(ca: &CertifiedKey, seed: u8, name: &str) -> CertifiedKey {
    leaf_in(ca, seed, name, now() - 3600, now() + 86_400)
}

fn ni_of(k: &CertifiedKey) -> String {
    RootOfTrust::of_spki(&k.key().spki_der(), RotHash::Sha256).to_ni_uri()
}

fn cert_assoc(
    name: &str,
    rot: RootOfTrust,
    other: &str,
    expiry: Option<u64>,
) -> CertificateAssociation {
    let mut a = AssociationConfig::builder()
        .other_entity_identifier(other)
        .security_association_lifespan_secs(3600);
    if let Some(e) = expiry {
        a = a.association_configuration_expiry(UnixTime(e));
    }
    let peer = CertificatePeer::with_root_of_trust(name, rot).unwrap();
    CertificateAssociation::new(peer, None, a.build().unwrap()).unwrap()
}

struct Pki {
    ca1: CertifiedKey,
    ca2: CertifiedKey,
    b: CertifiedKey,
    a_x509: CertifiedKey,
    a_raw: CertifiedKey,
}

fn pki() -> Pki {
    let ca1 = ca(10);
    let ca2 = ca(20);
    Pki {
        b: leaf(&ca1, 11, B_NAME),
        a_x509: leaf(&ca1, 12, "asn-c.example.com"),
        a_raw: CertifiedKey::raw(key(13)),
        ca1,
        ca2,
    }
}

/// B: associations /id-asn-c (X.509 under CA 1), /id-asn-r (raw key), /id-asn-x (X.509 under
/// CA 1, configuration expired).
fn registrar_config(p: &Pki) -> EndPointConfig {
    let b = match p.b.credential() {
        Credential::X509(c) => {
            CertificateCredential::x509(p.b.key().clone(), c[0].clone(), c[1..].to_vec()).unwrap()
        }
        Credential::RawPublicKey(_) => unreachable!(),
    };
    let raw_ni: RootOfTrust = ni_of(&p.a_raw).parse().unwrap();
    EndPointConfig::builder(Domain::Infrastructure)
        .certificate(b)
        .certificate_association(cert_assoc(
            "asn-c.example.com",
            rot(&p.ca1),
            "/id-asn-c",
            None,
        ))
        .certificate_association(cert_assoc(&ni_of(&p.a_raw), raw_ni, "/id-asn-r", None))
        .certificate_association(cert_assoc(
            "asn-x.example.com",
            rot(&p.ca1),
            "/id-asn-x",
            Some(now() - 10),
        ))
        .build()
        .unwrap()
}

async fn start(
    config: EndPointConfig,
    t: Transport,
) -> (RegistrarHandle, mpsc::Receiver<RegistrarEvent>) {
    let (tx, rx) = mpsc::channel(64);
    let r = Registrar::from_config(Arc::new(config))
        .with_events(tx)
        .with_handshake_timeout(Duration::from_secs(5));
    let h = match t {
        Transport::Tls => r.bind("127.0.0.1:0").await.unwrap(),
        Transport::Dtls => r.bind_dtls("127.0.0.1:0").await.unwrap(),
    };
    (h, rx)
}

fn b_verifier(p: &Pki) -> Arc<dyn CertVerifier> {
    Arc::new(
        CertificatePeer::with_root_of_trust(B_NAME, rot(&p.ca1))
            .unwrap()
            .verifier(),
    )
}

async fn next_event(rx: &mut mpsc::Receiver<RegistrarEvent>) -> RegistrarEvent {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("no registrar event")
            .expect("events closed");
        if matches!(
            e,
            RegistrarEvent::Accepted { .. } | RegistrarEvent::Refused { .. }
        ) {
            return e;
        }
    }
}

#[tokio::test]
async fn certificate_association_binds_the_matching_ida() {
    let p = pki();
    for t in TRANSPORTS {
        let (h, mut events) = start(registrar_config(&p), t).await;
        let addr = h.local_addr().unwrap();
        for (a, ida) in [(&p.a_x509, "/id-asn-c"), (&p.a_raw, "/id-asn-r")] {
            let mut conn = associate_certificate(addr, t, a, b_verifier(&p))
                .await
                .unwrap_or_else(|e| panic!("{t} {ida}: {e}"));
            assert!(conn.info().suite.is_ecdhe_ecdsa());
            let seen = conn.association_info(ida).await.unwrap();
            assert_eq!(seen.framework, AssociationFramework::CertificateBased);
            assert_eq!(seen.bound_identity, ida);
            assert_eq!(seen.key_identifier, ni_of(a));
            assert!(seen.expiration_time.is_some_and(|d| d > now()));
            // Another identity is refused on this association.
            assert!(conn.association_info("/id-asn-x").await.is_err());
            let RegistrarEvent::Accepted { info, .. } = next_event(&mut events).await else {
                panic!("{t} {ida}: not accepted");
            };
            assert_eq!(info.bound_identity, ida);
            assert_eq!(info.transport, t);
            conn.close().await.unwrap();
        }
        h.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn certificate_refusals() {
    let p = pki();
    let wrong_name = leaf(&p.ca1, 30, "asn-z.example.com");
    let wrong_root = leaf(&p.ca2, 31, "asn-c.example.com");
    let expired = leaf_in(&p.ca1, 32, "asn-c.example.com", now() - 7200, now() - 3600);
    let expired_config = leaf(&p.ca1, 33, "asn-x.example.com");
    let cases = [
        (
            "wrong name",
            &wrong_name,
            Refusal::CertificateRefused,
            "Certificate Name",
        ),
        (
            "wrong root",
            &wrong_root,
            Refusal::CertificateRefused,
            "Root of Trust",
        ),
        (
            "expired certificate",
            &expired,
            Refusal::CertificateRefused,
            "expired",
        ),
        (
            "expired configuration",
            &expired_config,
            Refusal::AssociationExpired,
            "",
        ),
    ];
    for t in TRANSPORTS {
        let (h, mut events) = start(registrar_config(&p), t).await;
        let addr = h.local_addr().unwrap();
        for (what, a, want, text) in &cases {
            let r = associate_certificate(addr, t, a, b_verifier(&p)).await;
            assert!(r.is_err(), "{t} {what}: associated");
            let RegistrarEvent::Refused { refusal, error, .. } = next_event(&mut events).await
            else {
                panic!("{t} {what}: not refused");
            };
            assert_eq!(refusal, *want, "{t} {what}: {error}");
            assert!(error.contains(text), "{t} {what}: {error}");
        }
        // A client without a certificate.
        let config = Arc::new(
            ClientConfig::builder_with_verifier(b_verifier(&p))
                .build()
                .unwrap(),
        );
        let r = match t {
            Transport::Tls => {
                let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                m2msec_tokio::connect(tcp, config, None).await.map(|_| ())
            }
            Transport::Dtls => {
                let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                s.connect(addr).await.unwrap();
                m2msec_tokio::connect_dtls(s, config, None, 1232)
                    .await
                    .map(|_| ())
            }
        };
        assert!(r.is_err(), "{t}: a client without certificate associated");
        let RegistrarEvent::Refused { refusal, .. } = next_event(&mut events).await else {
            panic!("{t}: no certificate not refused");
        };
        assert_eq!(refusal, Refusal::NoCertificate, "{t}");
        h.shutdown().await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Certificate-Based Security Bootstrap from TOML files

/// The DER PKCS#8 PrivateKeyInfo of a P-256 key (as OpenSSL writes it).
fn pkcs8(scalar: u8, key: &SigningKey) -> Vec<u8> {
    let mut out = vec![
        0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
        0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30,
        0x6b, 0x02, 0x01, 0x01, 0x04, 0x20,
    ];
    out.extend_from_slice(&[scalar; 32]);
    out.extend_from_slice(&[0xa1, 0x44, 0x03, 0x42, 0x00]);
    let spki = key.spki_der();
    out.extend_from_slice(&spki[spki.len() - 65..]);
    out
}

/// Writes `<name>-key.pem` and `<name>.pem` (leaf then CA) for the leaf of seed `seed`.
fn write_leaf(dir: &Path, name: &str, seed: u8, k: &CertifiedKey) {
    let pem = pem_encode("PRIVATE KEY", &pkcs8(seed, k.key()));
    std::fs::write(dir.join(format!("{name}-key.pem")), pem).unwrap();
    let Credential::X509(chain) = k.credential() else {
        unreachable!()
    };
    let text: String = chain.iter().map(|c| pem_encode("CERTIFICATE", c)).collect();
    std::fs::write(dir.join(format!("{name}.pem")), text).unwrap();
}

fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn hex32(seed: u8) -> String {
    hex::encode([seed; 32])
}

#[tokio::test]
async fn certificate_bootstrap_then_maf_first_contact() {
    let dir = Dir(std::env::temp_dir().join(format!("m2msec-certfw-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let d = dir.0.as_path();
    let ca1 = ca(40);
    let rot1 = rot(&ca1).to_ni_uri();
    write_leaf(d, "mef", 41, &leaf(&ca1, 41, "mef.example.com"));
    write_leaf(d, "mn-g", 42, &leaf(&ca1, 42, "mn-g.example.com"));
    // Same CA, a name the MEF is not configured with.
    write_leaf(d, "mn-z", 43, &leaf(&ca1, 43, "mn-z.example.com"));
    let (p_mef, p_maf, p_reg) = (free_port(), free_port(), free_port());
    let (maf_psk, km_b) = (hex32(0x51), hex32(0x52));
    let w = |name: &str, text: String| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let mef = w(
        "mef.toml",
        format!(
            r#"role = "mef"
mefIdentifier = "mef.example.com"
[certificate]
thisEntityPrivateKey = "mef-key.pem"
thisEntityCertificate = "mef.pem"
[[enrolee]]
[enrolee.credential]
otherEntityCertificateName = "mn-g.example.com"
otherEntityRootOfTrust = "{rot1}"
[enrolee.instruction]
mafId = "maf.example.com"
enroleeId = "/id-mn-g"
[service]
listen = "127.0.0.1:{p_mef}"
listenDtls = "127.0.0.1:{p_mef}"
store = "mef.redb"
kek = "{k1}"
[[service.maf]]
mafId = "maf.example.com"
mafUri = "https://localhost:{p_maf}"
pskIdentity = "maf.example.com@mef.example.com"
psk = "{maf_psk}"
"#,
            k1 = hex32(1)
        ),
    );
    let maf = w(
        "maf.toml",
        format!(
            r#"role = "maf"
mafIdentifier = "maf.example.com"
[[client]]
[client.credential]
thisEntityIdentifier = "/id-in"
masterCredential = "{km_b}"
masterCredentialIdentifier = "in-cse.km1@maf.example.com"
[[client.association]]
otherEntityIdentifier = "/id-mn-g"
[service]
listen = "127.0.0.1:{p_maf}"
store = "maf.redb"
kek = "{k2}"
[service.mef]
uri = "https://localhost:{p_mef}"
pskIdentity = "maf.example.com@mef.example.com"
psk = "{maf_psk}"
"#,
            k2 = hex32(2)
        ),
    );
    let reg = w(
        "registrar.toml",
        format!(
            r#"role = "infrastructure-end-point"
[mafBased.credential]
mafIdentifier = "maf.example.com"
thisEntityIdentifier = "/id-in"
masterCredential = "{km_b}"
masterCredentialIdentifier = "in-cse.km1@maf.example.com"
[[mafBased.association]]
otherEntityIdentifier = "/id-mn-g"
[service]
listen = "127.0.0.1:{p_reg}"
mafUri = "https://localhost:{p_maf}"
"#
        ),
    );
    let enrolee = |name: &str, scheme: &str, kek: u8| {
        w(
            &format!("enrolee-{name}-{scheme}.toml"),
            format!(
                r#"role = "field-end-point"
[bootstrap.credential]
thisEntityPrivateKey = "mn-{name}-key.pem"
thisEntityCertificate = "mn-{name}.pem"
otherEntityCertificateName = "mef.example.com"
otherEntityRootOfTrust = "{rot1}"
mefUri = "{scheme}://localhost:{p_mef}"
[bootstrap.instruction]
mafId = "maf.example.com"
enroleeId = "/id-mn-{name}"
[[mafBased.association]]
otherEntityIdentifier = "/id-in"
[service]
store = "enrolee-{name}-{scheme}.redb"
kek = "{k}"
"#,
                k = hex32(kek)
            ),
        )
    };
    let mef = node::start_mef(node::load_server(&mef).unwrap())
        .await
        .unwrap();
    let maf = node::start_maf(node::load_server(&maf).unwrap())
        .await
        .unwrap();
    let reg = node::start_registrar(node::load_server(&reg).unwrap())
        .await
        .unwrap();

    for (i, scheme) in ["https", "coaps"].into_iter().enumerate() {
        // An Enrolee certificate the MEF is not configured with: the handshake fails.
        let z = node::load(enrolee("z", scheme, 10 + i as u8)).unwrap();
        let e = node::enrol_node(&z, None).await;
        assert!(
            e.is_err(),
            "{scheme}: an unconfigured Enrolee certificate enrolled"
        );

        let g = node::load(enrolee("g", scheme, 20 + i as u8)).unwrap();
        let e = node::enrol_node(&g, None).await.unwrap();
        assert!(e.enrolment.suite.is_ecdhe_ecdsa());
        assert_eq!(e.enrolment.ke_id.fqdn(), "mef.example.com");
        assert_eq!(e.enrolment.maf_id, "maf.example.com");
        // First contact with the MAF (KeID, Km from the MEF), then the association with B.
        let a = node::associate_node(
            &g,
            node::Framework::MafBased,
            &Uri::parse(&format!("https://127.0.0.1:{p_reg}")).unwrap(),
            None,
            Some(&Uri::parse(&format!("https://127.0.0.1:{p_maf}")).unwrap()),
        )
        .await
        .unwrap_or_else(|e| panic!("{scheme}: {e}"));
        assert!(a.assigned_km_id.is_some(), "{scheme}: no KmID assigned");
        assert_eq!(a.registrar.bound_identity, "/id-mn-g");
        assert_eq!(a.registrar.framework, AssociationFramework::MafBased);
    }
    reg.shutdown().await.unwrap();
    maf.shutdown().await.unwrap();
    mef.shutdown().await.unwrap();
}
