//! The BSF over real sockets: Ub bootstrapping (Digest AKA, MAC failure, wrong RES, SQN
//! resynchronisation, the BSF's Authentication-Info rspauth checked by the UE, a tampering
//! man in the middle refused) and Zn (keys equal to the UE's, refusals), durable across a
//! restart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use m2msec::frameworks::binding::Rsc;
use m2msec::gba::digest::{DigestError, Qop, UbClient, UbRequest, UbResponse, UsimOutcome};
use m2msec::gba::kdf::{ks_int_naf, ks_naf, BTid, NafId};
use m2msec::gba::usim::{generate_vector, sqn_to_u64, SqnProfile, Usim};
use m2msec::store::{KeyKind, MemoryKeyStore, StoreOp, StoreReply};
use m2msec::{ClientPsk, Psk};
use m2msec_tokio::frameworks::bsf::{
    bootstrap, zn_fetch, Bootstrapped, BsfConfig, BsfService, ServiceHandle, UbError, ZnError,
    ZnFlavor,
};
use m2msec_tokio::store::{AsyncKeyStore, Kek, RedbKeyStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const K: [u8; 16] = [
    0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc,
];
const OPC: [u8; 16] = [
    0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf,
];
const IMPI: &str = "alice@ims.example";
const IMPI_NO_U: &str = "bob@ims.example";
const BSF: &str = "bsf.example";
const NAF_PSK: [u8; 32] = [0x42; 32];
const SUITE: u16 = 0x00ae;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let mut r = [0u8; 8];
        getrandom::getrandom(&mut r).unwrap();
        let d = std::env::temp_dir().join(format!(
            "m2msec-bsf-{name}-{}-{}",
            std::process::id(),
            u64::from_le_bytes(r)
        ));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(lifetime: &str) -> BsfConfig {
    let text = format!(
        r#"
role = "bsf"
bsfFqdn = "{BSF}"

[[subscriber]]
impi = "{IMPI}"
k = "{k}"
opc = "{opc}"
sqn = "000000000000"
guss = ["naf.example", "other.example"]
gbaU = true

[[subscriber]]
impi = "{IMPI_NO_U}"
k = "{k}"
opc = "{opc}"
guss = ["naf.example"]

[[naf]]
fqdns = ["naf.example", "notinguss.example"]
pskIdentity = "naf1"
psk = "{psk}"

[[naf]]
fqdn = "other.example"
pskIdentity = "naf2"
psk = "{psk}"

[service]
keyLifetime = "{lifetime}"
"#,
        k = hex::encode(K),
        opc = hex::encode(OPC),
        psk = hex::encode(NAF_PSK),
    );
    BsfConfig::from_toml(&text, Path::new(".")).unwrap()
}

struct Running<S> {
    bsf: Arc<BsfService<S>>,
    ub: ServiceHandle,
    zn: ServiceHandle,
}

impl<S: AsyncKeyStore + 'static> Running<S> {
    async fn start(config: BsfConfig, store: Arc<S>) -> Self {
        let bsf = Arc::new(BsfService::new(Arc::new(config), store));
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let ub = bsf.bind_ub(any).await.unwrap();
        let zn = bsf.bind_zn(any).await.unwrap();
        Self { bsf, ub, zn }
    }

    fn ub(&self) -> SocketAddr {
        self.ub.local_addr().unwrap()
    }

    fn zn(&self) -> SocketAddr {
        self.zn.local_addr().unwrap()
    }

    async fn stop(self) {
        drop(self.bsf);
        self.ub.shutdown().await.unwrap();
        self.zn.shutdown().await.unwrap();
    }
}

fn memory() -> Arc<Mutex<MemoryKeyStore>> {
    Arc::new(Mutex::new(MemoryKeyStore::new()))
}

fn naf_psk(identity: &str) -> ClientPsk {
    ClientPsk::new(identity.as_bytes(), Psk::new(&NAF_PSK).unwrap()).unwrap()
}

fn naf_id(fqdn: &str) -> NafId {
    NafId::tls_psk(fqdn, SUITE).unwrap()
}

async fn bootstrapping_count<S: AsyncKeyStore>(store: &S, impi: &str) -> usize {
    match store
        .execute(StoreOp::ListByOwner(impi.to_owned()))
        .await
        .unwrap()
    {
        StoreReply::Listed(l) => l
            .iter()
            .filter(|i| i.kind == KeyKind::GbaBootstrapping)
            .count(),
        _ => panic!("ListByOwner"),
    }
}

async fn refused(r: Result<m2msec_tokio::frameworks::bsf::ZnKey, ZnError>) -> (Rsc, String) {
    match r {
        Err(ZnError::Refused { rsc, error }) => (rsc, error.unwrap_or_default()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn boot(run: &Running<impl AsyncKeyStore + 'static>, usim: &mut Usim) -> Bootstrapped {
    bootstrap(run.ub(), IMPI, BSF, usim).await.unwrap()
}

#[tokio::test]
async fn bootstrap_and_zn_give_the_ue_keys() {
    let run = Running::start(config("1h"), memory()).await;
    let mut usim = Usim::new(&K, &OPC);
    let b = boot(&run, &mut usim).await;
    assert_eq!(b.btid.bsf_fqdn(), BSF);
    assert_eq!(b.btid.rand(), Some(b.rand));
    let id = naf_id("naf.example");

    let me = zn_fetch(run.zn(), naf_psk("naf1"), &b.btid, &id, ZnFlavor::Me)
        .await
        .unwrap();
    assert_eq!(me.key, ks_naf(&b.ks, &b.rand, IMPI, &id).unwrap());
    assert_eq!(me.impi, IMPI);
    assert_eq!(me.lifetime, b.lifetime);
    assert!(me.bootstrapping_time.0 <= me.lifetime.0);
    assert_eq!(me.uss, vec!["naf.example".to_owned()]);
    assert!(!format!("{me:?}").contains(&hex::encode(me.key.expose())));

    let u = zn_fetch(run.zn(), naf_psk("naf1"), &b.btid, &id, ZnFlavor::Uicc)
        .await
        .unwrap();
    assert_eq!(u.key, ks_int_naf(&b.ks, &b.rand, IMPI, &id).unwrap());
    assert_ne!(u.key, me.key);

    // A second bootstrapping replaces the first.
    let b2 = boot(&run, &mut usim).await;
    assert_ne!(b2.btid, b.btid);
    let (rsc, _) =
        refused(zn_fetch(run.zn(), naf_psk("naf1"), &b.btid, &id, ZnFlavor::Me).await).await;
    assert_eq!(rsc, Rsc::NotFound);
    run.stop().await;
}

#[tokio::test]
async fn zn_refusals() {
    let store = memory();
    let run = Running::start(config("1h"), Arc::clone(&store)).await;
    let b = boot(&run, &mut Usim::new(&K, &OPC)).await;

    // Unknown B-TID.
    let unknown = BTid::new(&[9; 16], BSF).unwrap();
    let (rsc, e) = refused(
        zn_fetch(
            run.zn(),
            naf_psk("naf1"),
            &unknown,
            &naf_id("naf.example"),
            ZnFlavor::Me,
        )
        .await,
    )
    .await;
    assert_eq!((rsc, e.as_str()), (Rsc::NotFound, "unknown B-TID"));

    // NAF configured for notinguss.example, which is not in the GUSS.
    let (rsc, e) = refused(
        zn_fetch(
            run.zn(),
            naf_psk("naf1"),
            &b.btid,
            &naf_id("notinguss.example"),
            ZnFlavor::Me,
        )
        .await,
    )
    .await;
    assert_eq!(rsc, Rsc::NoPrivilege);
    assert!(e.contains("GUSS"), "{e}");

    // naf2 asks for an FQDN it is not configured for.
    let (rsc, e) = refused(
        zn_fetch(
            run.zn(),
            naf_psk("naf2"),
            &b.btid,
            &naf_id("naf.example"),
            ZnFlavor::Me,
        )
        .await,
    )
    .await;
    assert_eq!(rsc, Rsc::NoPrivilege);
    assert!(e.contains("not an FQDN of this NAF"), "{e}");
    // ... and gets its own.
    zn_fetch(
        run.zn(),
        naf_psk("naf2"),
        &b.btid,
        &naf_id("other.example"),
        ZnFlavor::Me,
    )
    .await
    .unwrap();

    // GBA_U not allowed for bob.
    let bob = bootstrap(run.ub(), IMPI_NO_U, BSF, &mut Usim::new(&K, &OPC))
        .await
        .unwrap();
    zn_fetch(
        run.zn(),
        naf_psk("naf1"),
        &bob.btid,
        &naf_id("naf.example"),
        ZnFlavor::Me,
    )
    .await
    .unwrap();
    let (rsc, e) = refused(
        zn_fetch(
            run.zn(),
            naf_psk("naf1"),
            &bob.btid,
            &naf_id("naf.example"),
            ZnFlavor::Uicc,
        )
        .await,
    )
    .await;
    assert_eq!(rsc, Rsc::NoPrivilege);
    assert!(e.contains("GBA_U"), "{e}");

    // A NAF with a wrong PSK (or an unknown identity) fails the handshake.
    let wrong = ClientPsk::new(b"naf1", Psk::new(&[1; 32]).unwrap()).unwrap();
    let r = zn_fetch(
        run.zn(),
        wrong,
        &b.btid,
        &naf_id("naf.example"),
        ZnFlavor::Me,
    )
    .await;
    assert!(matches!(r, Err(ZnError::Transport(_))), "{r:?}");
    run.stop().await;
}

#[tokio::test]
async fn expired_bootstrapping_is_refused() {
    let store = memory();
    let run = Running::start(config("1s"), Arc::clone(&store)).await;
    let b = boot(&run, &mut Usim::new(&K, &OPC)).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (rsc, e) = refused(
        zn_fetch(
            run.zn(),
            naf_psk("naf1"),
            &b.btid,
            &naf_id("naf.example"),
            ZnFlavor::Me,
        )
        .await,
    )
    .await;
    assert_eq!((rsc, e.as_str()), (Rsc::NotFound, "bootstrapping expired"));
    // The expired record is gone.
    assert_eq!(bootstrapping_count(&*store, IMPI).await, 0);
    run.stop().await;
}

#[tokio::test]
async fn mac_failure_at_the_usim() {
    let store = memory();
    let run = Running::start(config("1h"), Arc::clone(&store)).await;
    let mut wrong_k = K;
    wrong_k[0] ^= 1;
    let r = bootstrap(run.ub(), IMPI, BSF, &mut Usim::new(&wrong_k, &OPC)).await;
    assert!(matches!(r, Err(UbError::MacFailure)), "{r:?}");
    assert!(r.unwrap_err().to_string().contains("MAC"));
    assert_eq!(bootstrapping_count(&*store, IMPI).await, 0);
    run.stop().await;
}

/// Runs Ub by hand, answering the challenge with a tampered RES.
#[tokio::test]
async fn wrong_res_is_refused() {
    let store = memory();
    let run = Running::start(config("1h"), Arc::clone(&store)).await;
    let mut tcp = TcpStream::connect(run.ub()).await.unwrap();
    let mut client = UbClient::new(IMPI, BSF, "/").unwrap();
    let mut buf = Vec::new();
    let first = client.start().unwrap();
    let UbResponse::Unauthorized(ch) = exchange(&mut tcp, &mut buf, first).await else {
        panic!("no challenge");
    };
    let usim_ch = client.on_challenge(&ch).unwrap();
    let mut usim = Usim::new(&K, &OPC);
    let mut res = usim.authenticate(&usim_ch.rand, &usim_ch.autn).unwrap().res;
    res[0] ^= 0x01;
    let answer = client
        .answer(UsimOutcome::Res(&res), &[7; 16], "GET", b"")
        .unwrap();
    let r = exchange(&mut tcp, &mut buf, answer.clone()).await;
    assert_eq!(r, UbResponse::Status(403));
    assert_eq!(bootstrapping_count(&*store, IMPI).await, 0);
    // The challenge was consumed: replaying the answer gets a fresh (stale) challenge.
    let r = exchange(&mut tcp, &mut buf, answer).await;
    assert!(matches!(r, UbResponse::Unauthorized(c) if c.stale));
    assert_eq!(bootstrapping_count(&*store, IMPI).await, 0);
    run.stop().await;
}

async fn exchange(
    tcp: &mut TcpStream,
    buf: &mut Vec<u8>,
    creds: m2msec::gba::digest::Credentials,
) -> UbResponse {
    let mut out = Vec::new();
    UbRequest {
        uri: "/".into(),
        host: BSF.into(),
        authorization: creds,
    }
    .encode(&mut out)
    .unwrap();
    tcp.write_all(&out).await.unwrap();
    loop {
        if let Some((r, used)) = UbResponse::decode(buf).unwrap() {
            buf.drain(..used);
            return r;
        }
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The real BSF's 200 carries `Authentication-Info` with the request's qop, nc and cnonce and
/// an rspauth the client verifies over the body as received.
#[tokio::test]
async fn bsf_sends_a_verifiable_rspauth() {
    let run = Running::start(config("1h"), memory()).await;
    let mut tcp = TcpStream::connect(run.ub()).await.unwrap();
    let mut client = UbClient::new(IMPI, BSF, "/").unwrap();
    let mut buf = Vec::new();
    let first = client.start().unwrap();
    let UbResponse::Unauthorized(ch) = exchange(&mut tcp, &mut buf, first).await else {
        panic!("no challenge");
    };
    let u = client.on_challenge(&ch).unwrap();
    let res = Usim::new(&K, &OPC)
        .authenticate(&u.rand, &u.autn)
        .unwrap()
        .res;
    let answer = client
        .answer(UsimOutcome::Res(&res), &[7; 16], "GET", b"")
        .unwrap();
    let (response, auth, body) = exchange_reply(&mut tcp, &mut buf, answer.clone()).await;
    assert!(matches!(response, UbResponse::Bootstrapped(_)));
    let auth = auth.expect("200 without Authentication-Info");
    assert_eq!(auth.qop, Some(Qop::AuthInt));
    assert_eq!(auth.nc, answer.nc);
    assert_eq!(auth.cnonce, answer.cnonce);
    assert_ne!(auth.rspauth, answer.response);
    let info = client.on_bootstrapped(Some(&auth), &body).unwrap();
    assert_eq!(BTid::parse(&info.btid).unwrap().rand(), Some(u.rand));
    run.stop().await;
}

/// How the man in the middle alters the BSF's 200.
#[derive(Clone, Copy, Debug)]
enum Tamper {
    /// Forward it unchanged (the control case).
    Nothing,
    /// Drop the `Authentication-Info` header.
    DropHeader,
    /// Flip the last digit of `rspauth`.
    FlipRspauth,
    /// Change the body's lifetime, keeping the header.
    ChangeBody,
}

/// A proxy between the UE and the real BSF for one connection: requests pass unchanged, the
/// 200 is altered as `tamper` says.
async fn tampering_proxy(bsf: SocketAddr, tamper: Tamper) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut ue, _) = listener.accept().await.unwrap();
        let mut up = TcpStream::connect(bsf).await.unwrap();
        let (mut from_ue, mut from_bsf) = (Vec::new(), Vec::new());
        let mut chunk = [0u8; 4096];
        loop {
            // One request from the UE, forwarded as is.
            let used = loop {
                if let Some((_, used)) = UbRequest::decode(&from_ue).unwrap() {
                    break used;
                }
                let n = ue.read(&mut chunk).await.unwrap();
                if n == 0 {
                    return;
                }
                from_ue.extend_from_slice(&chunk[..n]);
            };
            up.write_all(&from_ue[..used]).await.unwrap();
            from_ue.drain(..used);
            // Its answer, altered when it is the 200.
            let (reply, used) = loop {
                if let Some(r) = UbResponse::decode_reply(&from_bsf).unwrap() {
                    let used = r.used;
                    break ((r.response, r.authentication_info), used);
                }
                let n = up.read(&mut chunk).await.unwrap();
                assert!(n > 0, "BSF closed");
                from_bsf.extend_from_slice(&chunk[..n]);
            };
            let mut out = from_bsf[..used].to_vec();
            from_bsf.drain(..used);
            if let (UbResponse::Bootstrapped(info), Some(auth)) = &reply {
                let mut auth = auth.clone();
                let mut info = info.clone();
                let header = match tamper {
                    Tamper::Nothing => Some(auth),
                    Tamper::DropHeader => None,
                    Tamper::FlipRspauth => {
                        let last = if auth.rspauth.ends_with('0') {
                            "1"
                        } else {
                            "0"
                        };
                        auth.rspauth.replace_range(31.., last);
                        Some(auth)
                    }
                    Tamper::ChangeBody => {
                        info.lifetime.0 += 3600;
                        Some(auth)
                    }
                };
                out.clear();
                UbResponse::Bootstrapped(info)
                    .encode_with(header.as_ref(), &mut out)
                    .unwrap();
            }
            ue.write_all(&out).await.unwrap();
        }
    });
    addr
}

/// A man in the middle that removes or alters the BSF's proof is refused by the UE with a typed
/// error; unaltered, the same path bootstraps.
#[tokio::test]
async fn tampered_or_missing_rspauth_is_refused() {
    let run = Running::start(config("1h"), memory()).await;
    let mut usim = Usim::new(&K, &OPC);
    let proxy = tampering_proxy(run.ub(), Tamper::Nothing).await;
    let b = bootstrap(proxy, IMPI, BSF, &mut usim).await.unwrap();
    assert_eq!(b.btid.rand(), Some(b.rand));
    for (tamper, want) in [
        (Tamper::DropHeader, DigestError::MissingRspauth),
        (Tamper::FlipRspauth, DigestError::BadRspauth),
        (Tamper::ChangeBody, DigestError::BadRspauth),
    ] {
        let proxy = tampering_proxy(run.ub(), tamper).await;
        match bootstrap(proxy, IMPI, BSF, &mut usim).await {
            Err(UbError::Digest(e)) => assert_eq!(e, want, "{tamper:?}"),
            other => panic!("{tamper:?}: expected {want:?}, got {other:?}"),
        }
    }
    run.stop().await;
}

async fn exchange_reply(
    tcp: &mut TcpStream,
    buf: &mut Vec<u8>,
    creds: m2msec::gba::digest::Credentials,
) -> (
    UbResponse,
    Option<m2msec::gba::digest::AuthenticationInfo>,
    Vec<u8>,
) {
    let mut out = Vec::new();
    UbRequest {
        uri: "/".into(),
        host: BSF.into(),
        authorization: creds,
    }
    .encode(&mut out)
    .unwrap();
    tcp.write_all(&out).await.unwrap();
    loop {
        if let Some(r) = UbResponse::decode_reply(buf).unwrap() {
            let got = (r.response, r.authentication_info, r.body.to_vec());
            let used = r.used;
            buf.drain(..used);
            return got;
        }
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Advances the USIM's SQN to `seq` by feeding it a vector the BSF never saw.
fn advance_usim(usim: &mut Usim, seq: u64) {
    let sqn = SqnProfile::default().sqn(seq, 0).unwrap();
    let v = generate_vector(&K, &OPC, &sqn, &[0, 0], &[0x33; 16]);
    usim.authenticate(&v.rand, &v.autn).unwrap();
}

#[tokio::test]
async fn sqn_resynchronisation() {
    let run = Running::start(config("1h"), memory()).await;
    let mut usim = Usim::new(&K, &OPC);
    advance_usim(&mut usim, 1000);
    let profile = SqnProfile::default();
    let before = run.bsf.stored_sqn(IMPI).await.unwrap().unwrap();
    assert_eq!(profile.split(&before).0, 0);
    let b = boot(&run, &mut usim).await;
    let after = run.bsf.stored_sqn(IMPI).await.unwrap().unwrap();
    assert_eq!(
        profile.split(&after).0,
        1001,
        "SQN resynchronised past the USIM's"
    );
    assert_eq!(sqn_to_u64(&usim.sqn_ms()), sqn_to_u64(&after));
    zn_fetch(
        run.zn(),
        naf_psk("naf1"),
        &b.btid,
        &naf_id("naf.example"),
        ZnFlavor::Me,
    )
    .await
    .unwrap();
    run.stop().await;
}

#[tokio::test]
async fn durable_across_restart() {
    let dir = TempDir::new("restart");
    let path = dir.0.join("bsf.redb");
    let kek = || Kek::new([0x11; 32]);
    let mut usim = Usim::new(&K, &OPC);
    let profile = SqnProfile::default();

    let store = Arc::new(RedbKeyStore::open_async(&path, kek()).await.unwrap());
    let run = Running::start(config("1h"), store).await;
    let b = boot(&run, &mut usim).await;
    let first_sqn = run.bsf.stored_sqn(IMPI).await.unwrap().unwrap();
    assert_eq!(profile.split(&first_sqn).0, 1);
    run.stop().await;

    // Restart over the same file with the same configuration (sqn = 0 there).
    let store = Arc::new(RedbKeyStore::open_async(&path, kek()).await.unwrap());
    let run = Running::start(config("1h"), store).await;
    // The B-TID survived.
    let id = naf_id("naf.example");
    let k = zn_fetch(run.zn(), naf_psk("naf1"), &b.btid, &id, ZnFlavor::Me)
        .await
        .unwrap();
    assert_eq!(k.key, ks_naf(&b.ks, &b.rand, IMPI, &id).unwrap());
    // The SQN survived: the configured 0 does not win, so the next vector is fresh for the USIM
    // without a resynchronisation (an old SQN would have been refused by it).
    assert_eq!(run.bsf.stored_sqn(IMPI).await.unwrap(), Some(first_sqn));
    boot(&run, &mut usim).await;
    let second = run.bsf.stored_sqn(IMPI).await.unwrap().unwrap();
    assert_eq!(
        profile.split(&second).0,
        2,
        "no resynchronisation was needed"
    );
    run.stop().await;
}

#[test]
fn config_errors_name_the_parameter() {
    let base = Path::new(".");
    let e = BsfConfig::from_toml("role = \"bsf\"\nbsfFqdn = \"b.example\"\nbogus = 1\n", base)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bogus"), "{e}");
    let e = BsfConfig::from_toml(
        "role = \"bsf\"\nbsfFqdn = \"b.example\"\n[[subscriber]]\nimpi = \"a@b\"\nk = \"00\"\nopc = \"00\"\n",
        base,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("subscriber[0].k"), "{e}");
    let e = BsfConfig::from_toml("role = \"mef\"\nbsfFqdn = \"b.example\"\n", base)
        .unwrap_err()
        .to_string();
    assert!(e.contains("role"), "{e}");
    let c = BsfConfig::from_toml(
        &format!(
            "role = \"bsf\"\nbsfFqdn = \"b.example\"\n[[subscriber]]\nimpi = \"a@b\"\nk = \"{}\"\nop = \"{}\"\n[service]\nkeyLifetime = 90\n",
            hex::encode(K),
            hex::encode([0u8; 16])
        ),
        base,
    )
    .unwrap();
    assert_eq!(c.key_lifetime, Duration::from_secs(90));
    assert_eq!(
        *c.subscribers[0].opc,
        m2msec::gba::milenage::opc(&K, &[0; 16])
    );
}
