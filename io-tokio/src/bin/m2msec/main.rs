//! The `m2msec` command: a (D)TLS 1.2 client and server (PSK and/or ECDHE-ECDSA certificates)
//! that pipe stdin to the peer and the peer's data to stdout (like `openssl s_client` /
//! `s_server`), certificate tooling (`cert new`, `cert rot`), and a self-contained demo.
//!
//! With `--dtls`, stdin is sent as datagrams: one per line (a line longer than the largest
//! record payload is split), each datagram received is written to stdout as it is. On EOF the
//! client or server sends close_notify and waits for the peer's (up to `LINGER` of silence,
//! since close_notify is a datagram that may be lost). The DTLS server serves peers one after
//! another: handshakes of later peers complete meanwhile and wait in the accept queue.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use m2msec::messages::is_dns_name;
use m2msec::SessionInfo;
use m2msec::{
    CertificateType, CipherSuite, ClientAuth, ClientConfig, ClientPsk, Psk, PskTable, ServerConfig,
};
use m2msec_tokio::{
    accept, connect, connect_dtls, Accepted, DtlsConnection, DtlsListener, Error, TlsStream,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

mod cert;
mod fwdemo;
mod gba;
mod roles;

/// The exporter label of the oneM2M bootstrap (TS-0003), used by the demo.
const DEMO_LABEL: &str = "EXPORTER-oneM2M-Bootstrap";
/// Bytes the demo sends each way.
const DEMO_BYTES: usize = 64 * 1024;
/// Datagrams the DTLS demo sends each way, and their size.
const DEMO_DATAGRAMS: usize = 64;
const DEMO_DATAGRAM_LEN: usize = 1000;
/// The DTLS client gives up on a handshake after this long.
const DTLS_HANDSHAKE_LIMIT: Duration = Duration::from_secs(30);
/// After sending close_notify over DTLS, how long a silent peer is waited for.
const LINGER: Duration = Duration::from_secs(3);

#[derive(Parser, Debug)]
#[command(
    name = "m2msec",
    version,
    about = "oneM2M TS-0003 (D)TLS 1.2 client and server (PSK and certificates)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Connect to a server; stdin goes to the peer, the peer's data to stdout.
    Client(ClientArgs),
    /// Accept connections one after another; stdin goes to the peer, its data to stdout.
    Server(ServerArgs),
    /// Run our client against our server on 127.0.0.1, once per suite and transport, and print
    /// a table.
    Demo,
    /// TS-0003 key derivations, for operators debugging provisioning.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// P-256 keys and certificates for the certificate-based frameworks, and Roots of Trust.
    #[command(subcommand)]
    Cert(cert::CertCmd),
    /// Run an M2M Enrolment Function (Security Bootstrap, Km release to MAFs) until SIGTERM.
    Mef(roles::ServeArgs),
    /// Security Bootstrap as an Enrolee: get Ke/KeID from the MEF, derive Km, store both.
    Enrol(roles::EnrolArgs),
    /// Run an M2M Authentication Function (Km clients, Kc registration/retrieval) until SIGTERM.
    Maf(roles::ServeArgs),
    /// Run an Entity B (e.g. an IN-CSE) that accepts associations and reports the identity
    /// bound to each, until SIGTERM.
    Registrar(roles::ServeArgs),
    /// Associate as Entity A with a registrar (pre-provisioned or MAF-based).
    Associate(roles::AssociateArgs),
    /// Run a GBA Bootstrapping Server Function (Ub and Zn) until SIGTERM.
    Bsf(gba::BsfArgs),
    /// GBA bootstrapping over Ub with a simulated USIM; prints the B-TID and its lifetime.
    GbaBootstrap(gba::BootstrapArgs),
}

#[derive(Subcommand, Debug)]
enum KeysCmd {
    /// Km = HMAC-SHA-256(Ke, "oneM2M Enrolment Key to Master Credential derivation" || NFKC(MAF-ID)).
    /// Prints `km: <hex>`.
    Km {
        /// Ke, 64 hex digits.
        #[arg(long)]
        ke: String,
        /// The MAF-ID (the MAF's FQDN), as configured.
        #[arg(long = "maf-id")]
        maf_id: String,
    },
    /// Splits 48 exported bytes (EXPORTER-oneM2M-Bootstrap or -Connection): prints
    /// `id: HEX(first 16 bytes)@FQDN` and `key: <hex of the last 32 bytes>`.
    Split {
        /// The exporter output, 96 hex digits.
        #[arg(long)]
        exporter: String,
        /// The MEF-FQDN (for a KeID) or the MAF-FQDN (for a KcID).
        #[arg(long)]
        fqdn: String,
    },
}

fn hex_exact<const N: usize>(
    name: &str,
    text: &str,
) -> Result<zeroize::Zeroizing<[u8; N]>, String> {
    let mut out = zeroize::Zeroizing::new([0u8; N]);
    hex::decode_to_slice(text.trim(), out.as_mut_slice())
        .map_err(|_| format!("--{name} must be {} hex digits", 2 * N))?;
    Ok(out)
}

fn keys_cmd(cmd: KeysCmd) -> Result<(), String> {
    use m2msec::keys::{enrolment_key, km, Ke};
    match cmd {
        KeysCmd::Km { ke, maf_id } => {
            let ke = Ke::new(*hex_exact::<32>("ke", &ke)?);
            let km = km(&ke, &maf_id);
            println!("km: {}", hex::encode(km.expose()));
        }
        KeysCmd::Split { exporter, fqdn } => {
            let out = hex_exact::<48>("exporter", &exporter)?;
            // The split and the identifier format are the same for KeID and KcID (10.3.4, 10.3.5).
            let (id, key) = enrolment_key(&out, &fqdn).map_err(|e| format!("--fqdn: {e}"))?;
            println!("id: {id}");
            println!("key: {}", hex::encode(key.expose()));
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
struct Common {
    /// The PSK identity (PSK suites).
    #[arg(long, value_name = "ID", requires = "psk")]
    psk_identity: Option<String>,
    /// The PSK, in hex.
    #[arg(long, value_name = "HEX", value_parser = parse_key, requires = "psk_identity")]
    psk: Option<Key>,
    /// A cipher suite (repeatable): psk-aes128-ccm, psk-aes128-ccm8, ecdhe-ecdsa-aes128-ccm,
    /// ecdhe-ecdsa-aes128-ccm8 (or ecdhe-aes128-ccm[8]). Default: those the PSK and
    /// certificate flags allow.
    #[arg(long = "suite", value_name = "SUITE", value_parser = parse_suite)]
    suites: Vec<CipherSuite>,
    #[command(flatten)]
    auth: cert::CertArgs,
    /// RFC 5705 keying material to print after the handshake (repeatable); no CONTEXT_HEX
    /// means no context, an empty one means an empty context.
    #[arg(long = "export", value_name = "LABEL:LEN[:CONTEXT_HEX]", value_parser = parse_export)]
    exports: Vec<Export>,
    /// DTLS 1.2 over UDP instead of TLS over TCP.
    #[arg(long)]
    dtls: bool,
    /// The largest datagram to send (DTLS).
    #[arg(long, value_name = "N", default_value_t = 1232, requires = "dtls")]
    mtu: usize,
}

#[derive(Args, Debug)]
struct ClientArgs {
    /// The server to connect to.
    #[arg(long, value_name = "HOST:PORT")]
    connect: String,
    /// The SNI host name (default: HOST when it is a DNS name).
    #[arg(long, value_name = "NAME")]
    sni: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
struct ServerArgs {
    /// The address to listen on.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: String,
    /// The PSK identity hint to send.
    #[arg(long, value_name = "HINT")]
    hint: Option<String>,
    /// Exit after the first connection ends.
    #[arg(long)]
    once: bool,
    /// With --cert/--key: do not ask clients for a certificate (default: required).
    #[arg(long)]
    no_client_auth: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Clone, Debug)]
struct Key(Vec<u8>);

#[derive(Clone, Debug)]
struct Export {
    label: String,
    len: usize,
    context: Option<Vec<u8>>,
}

fn parse_key(s: &str) -> Result<Key, String> {
    hex::decode(s).map(Key).map_err(|e| format!("not hex: {e}"))
}

fn parse_suite(s: &str) -> Result<CipherSuite, String> {
    let alias = match s.to_ascii_lowercase().as_str() {
        "ecdhe-aes128-ccm" => Some(CipherSuite::EcdheEcdsaAes128Ccm),
        "ecdhe-aes128-ccm8" => Some(CipherSuite::EcdheEcdsaAes128Ccm8),
        _ => None,
    };
    alias.or_else(|| CipherSuite::from_name(s)).ok_or_else(|| {
        let names: Vec<_> = CipherSuite::every()
            .iter()
            .map(|s| s.short_name())
            .collect();
        format!("unknown suite (expected one of {})", names.join(", "))
    })
}

fn parse_export(s: &str) -> Result<Export, String> {
    let mut parts = s.splitn(3, ':');
    let label = parts.next().unwrap_or_default();
    let len = parts.next().ok_or("expected LABEL:LEN[:CONTEXT_HEX]")?;
    let len: usize = len.parse().map_err(|e| format!("bad LEN: {e}"))?;
    if label.is_empty() || len == 0 || len > 0xffff {
        return Err("LABEL must not be empty and LEN must be 1..=65535".into());
    }
    let context = parts
        .next()
        .map(hex::decode)
        .transpose()
        .map_err(|e| format!("bad CONTEXT_HEX: {e}"))?;
    Ok(Export {
        label: label.into(),
        len,
        context,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let r = rt.block_on(async {
        match cli.cmd {
            Cmd::Client(a) => client(a).await,
            Cmd::Server(a) => server(a).await,
            Cmd::Demo => demo().await,
            Cmd::Keys(k) => keys_cmd(k).map_err(Failure),
            Cmd::Cert(c) => cert::cert_cmd(c),
            Cmd::Mef(a) => roles::mef(a).await,
            Cmd::Enrol(a) => roles::enrol(a).await,
            Cmd::Maf(a) => roles::maf(a).await,
            Cmd::Registrar(a) => roles::registrar(a).await,
            Cmd::Associate(a) => roles::associate(a).await,
            Cmd::Bsf(a) => gba::bsf(a).await,
            Cmd::GbaBootstrap(a) => gba::gba_bootstrap(a).await,
        }
    });
    let code = match r {
        Ok(()) => 0,
        Err(e) => {
            say(&format!("error: {e}"));
            1
        }
    };
    // The stdin reader is a blocking thread that would keep the runtime alive: exit now.
    std::process::exit(code)
}

/// Writes one status line to stderr in a single write (stderr is unbuffered: `eprintln!`
/// may split a line, and readers of the output see half lines).
pub(crate) fn say(line: &str) {
    use std::io::Write;
    let mut l = String::with_capacity(line.len() + 1);
    l.push_str(line);
    l.push('\n');
    let _ = std::io::stderr().lock().write_all(l.as_bytes());
}

/// A failure with its context, as printed on the `error:` line.
#[derive(Debug)]
struct Failure(String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self(e.to_string())
    }
}

impl From<m2msec::error::ConfigError> for Failure {
    fn from(e: m2msec::error::ConfigError) -> Self {
        Error::Tls(e.into()).into()
    }
}

/// The suites to offer or accept: `--suite`, or by default the certificate suites when
/// certificates are configured (`certs`), then the PSK suites with a PSK. Each chosen suite
/// must have what it needs.
fn suites(c: &Common, certs: bool, cert_need: &str) -> Result<Vec<CipherSuite>, Failure> {
    let psk = c.psk.is_some();
    if c.suites.is_empty() {
        let mut out = Vec::new();
        if certs {
            out.extend_from_slice(CipherSuite::ECDHE_ECDSA);
        }
        if psk {
            out.extend_from_slice(CipherSuite::ALL);
        }
        if out.is_empty() {
            return Err(Failure(format!(
                "nothing to authenticate with: give --psk-identity and --psk, or {cert_need}"
            )));
        }
        return Ok(out);
    }
    for s in &c.suites {
        if s.is_psk() && !psk {
            return Err(Failure(format!(
                "--suite {} needs --psk-identity and --psk",
                s.short_name()
            )));
        }
        if s.is_ecdhe_ecdsa() && !certs {
            return Err(Failure(format!(
                "--suite {} needs {cert_need}",
                s.short_name()
            )));
        }
    }
    Ok(c.suites.clone())
}

fn client_config(c: &Common) -> Result<ClientConfig, Failure> {
    let auth = c.auth.load()?;
    if auth.own.is_some() && auth.verifier.is_none() {
        return Err(Failure(
            "a client certificate needs --peer-root (the server's Root of Trust)".into(),
        ));
    }
    let suites = suites(c, auth.verifier.is_some(), "--peer-root (certificates)")?;
    let psk = match (&c.psk_identity, &c.psk) {
        (Some(id), Some(key)) => Some(ClientPsk::new(id.as_bytes(), Psk::new(&key.0)?)?),
        _ => None,
    };
    let mut b = match (psk, &auth.verifier) {
        (Some(psk), _) => ClientConfig::builder(psk),
        (None, Some(v)) => ClientConfig::builder_with_verifier(v.clone()),
        (None, None) => unreachable!("suites() refused"),
    };
    if let Some(v) = auth.verifier.clone() {
        b = b.verifier(v);
    }
    if let Some(own) = auth.own.clone() {
        b = b.certificate(own);
    }
    if auth.raw {
        b = b.server_certificate_types(&[CertificateType::RawPublicKey, CertificateType::X509]);
    }
    Ok(b.suites(&suites).build()?)
}

fn server_config(a: &ServerArgs) -> Result<ServerConfig, Failure> {
    let c = &a.common;
    let auth = c.auth.load()?;
    let suites = suites(c, auth.own.is_some(), "--cert and --key (certificates)")?;
    let table = match (&c.psk_identity, &c.psk) {
        (Some(id), Some(key)) => {
            let mut table = PskTable::new();
            table.insert(id.as_bytes(), Psk::new(&key.0)?)?;
            Some(table)
        }
        _ => None,
    };
    let mut b = match (table, &auth.own) {
        (Some(t), _) => ServerConfig::builder(Box::new(t)),
        (None, Some(own)) => ServerConfig::builder_with_certificate(own.clone()),
        (None, None) => unreachable!("suites() refused"),
    };
    if let Some(own) = auth.own.clone() {
        b = b
            .certificate(own)
            .server_certificate_types(&auth.server_types());
        if a.no_client_auth {
            if auth.verifier.is_some() {
                return Err(Failure("--no-client-auth excludes --peer-root".into()));
            }
        } else {
            let Some(v) = auth.verifier.clone() else {
                return Err(Failure(
                    "a server with a certificate requires client certificates: give --peer-root \
                     (the clients' Root of Trust), or --no-client-auth"
                        .into(),
                ));
            };
            b = b
                .client_auth(ClientAuth::Required)
                .verifier(v)
                .client_certificate_types(&[CertificateType::X509, CertificateType::RawPublicKey]);
        }
    } else if auth.verifier.is_some() {
        return Err(Failure(
            "--peer-root on a server needs --cert and --key (client certificates are only \
             asked for with the certificate suites)"
                .into(),
        ));
    }
    Ok(b.suites(&suites)
        .identity_hint(a.hint.as_deref().map(str::as_bytes))
        .build()?)
}

/// stdin, read by one task for the whole process; `None` from the receiver means EOF.
fn stdin_chunks() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = stdin.read(&mut buf).await {
            if tx.send(buf[..n].to_vec()).await.is_err() {
                break;
            }
        }
    });
    rx
}

async fn client(a: ClientArgs) -> Result<(), Failure> {
    let host = split_host(&a.connect)?;
    let sni = a
        .sni
        .clone()
        .or_else(|| is_dns_name(host).then(|| host.to_string()));
    let cfg = client_config(&a.common)?;
    let mut input = stdin_chunks();
    if a.common.dtls {
        return client_dtls(&a, Arc::new(cfg), sni.as_deref(), &mut input).await;
    }
    let tcp = TcpStream::connect(&a.connect)
        .await
        .map_err(|e| Failure(format!("cannot connect to {}: {e}", a.connect)))?;
    let _ = tcp.set_nodelay(true);
    let tls = connect(tcp, Arc::new(cfg), sni.as_deref()).await?;
    report(tls.info(), &a.common.exports, |o, l, c| {
        tls.export_keying_material(o, l, c)
    })?;
    pump(tls, &mut input).await
}

async fn client_dtls(
    a: &ClientArgs,
    cfg: Arc<ClientConfig>,
    sni: Option<&str>,
    input: &mut mpsc::Receiver<Vec<u8>>,
) -> Result<(), Failure> {
    let cannot =
        |e: &dyn std::fmt::Display| Failure(format!("cannot connect to {}: {e}", a.connect));
    let addr = tokio::net::lookup_host(&a.connect)
        .await
        .map_err(|e| cannot(&e))?
        .next()
        .ok_or_else(|| cannot(&"no address"))?;
    let any = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let udp = UdpSocket::bind(any).await.map_err(|e| cannot(&e))?;
    udp.connect(addr).await.map_err(|e| cannot(&e))?;
    let dtls = tokio::time::timeout(
        DTLS_HANDSHAKE_LIMIT,
        connect_dtls(udp, cfg, sni, a.common.mtu),
    )
    .await
    .map_err(|_| Failure("DTLS handshake timed out".into()))??;
    report(dtls.info(), &a.common.exports, |o, l, c| {
        dtls.export_keying_material(o, l, c)
    })?;
    pump_dtls(&dtls, input).await
}

/// HOST of HOST:PORT, without the brackets of an IPv6 literal.
fn split_host(addr: &str) -> Result<&str, Failure> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| Failure(format!("expected HOST:PORT, got {addr:?}")))?;
    if port.parse::<u16>().is_err() {
        return Err(Failure(format!("bad port in {addr:?}")));
    }
    Ok(host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host))
}

async fn server(a: ServerArgs) -> Result<(), Failure> {
    let cfg = Arc::new(server_config(&a)?);
    if a.common.dtls {
        return server_dtls(&a, cfg).await;
    }
    let listener = TcpListener::bind(&a.listen)
        .await
        .map_err(|e| Failure(format!("cannot listen on {}: {e}", a.listen)))?;
    if let Ok(addr) = listener.local_addr() {
        say(&format!("listening: {addr}"));
    }
    let mut input = stdin_chunks();
    loop {
        let r = match listener.accept().await {
            Ok((tcp, _)) => {
                let _ = tcp.set_nodelay(true);
                serve_one(tcp, cfg.clone(), &a.common.exports, &mut input).await
            }
            Err(e) => Err(Failure(format!("accept: {e}"))),
        };
        if a.once {
            return r;
        }
        if let Err(e) = r {
            say(&format!("error: {e}"));
        }
    }
}

async fn server_dtls(a: &ServerArgs, cfg: Arc<ServerConfig>) -> Result<(), Failure> {
    let mut listener = DtlsListener::bind(&a.listen, cfg, a.common.mtu)
        .await
        .map_err(|e| Failure(format!("cannot listen on {}: {e}", a.listen)))?;
    say(&format!("listening: {}", listener.local_addr()));
    let mut input = stdin_chunks();
    loop {
        let r = match listener.accept_or_failure().await {
            Ok(Accepted::Connection(dtls)) => {
                let r = report(dtls.info(), &a.common.exports, |o, l, c| {
                    dtls.export_keying_material(o, l, c)
                });
                match r {
                    Ok(()) => pump_dtls(&dtls, &mut input).await,
                    Err(e) => Err(e),
                }
            }
            Ok(Accepted::Failed { error, .. }) => Err(error.into()),
            Ok(_) => continue,
            Err(e) => Err(Failure(format!("accept: {e}"))),
        };
        if a.once {
            return r;
        }
        if let Err(e) = r {
            say(&format!("error: {e}"));
        }
    }
}

async fn serve_one(
    tcp: TcpStream,
    cfg: Arc<ServerConfig>,
    exports: &[Export],
    input: &mut mpsc::Receiver<Vec<u8>>,
) -> Result<(), Failure> {
    let tls = accept(tcp, cfg).await?;
    report(tls.info(), exports, |o, l, c| {
        tls.export_keying_material(o, l, c)
    })?;
    pump(tls, input).await
}

/// Prints the `connected:` and `exporter:` lines.
fn report(
    info: &SessionInfo,
    exports: &[Export],
    export: impl Fn(&mut [u8], &[u8], Option<&[u8]>) -> Result<(), Error>,
) -> Result<(), Failure> {
    let identity = if info.psk_identity.is_empty() {
        "-".into()
    } else {
        String::from_utf8_lossy(&info.psk_identity)
    };
    say(&format!(
        "connected: suite={} identity={identity} sni={}{}",
        info.suite.iana_name(),
        info.server_name.as_deref().unwrap_or("-"),
        cert::connected_suffix(info)
    ));
    for x in exports {
        let mut out = vec![0u8; x.len];
        export(&mut out, x.label.as_bytes(), x.context.as_deref())?;
        say(&format!("exporter: {}", hex::encode(out)));
    }
    Ok(())
}

/// Copies `input` to the peer (close_notify at its end) and the peer's data to stdout until
/// the peer closes. The reader's outcome decides: a write failure counts only if reading does
/// not end on its own soon after.
async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
    tls: TlsStream<S>,
    input: &mut mpsc::Receiver<Vec<u8>>,
) -> Result<(), Failure> {
    let (mut rh, mut wh) = tokio::io::split(tls);
    let result = {
        let reader = async {
            let mut out = tokio::io::stdout();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = rh.read(&mut buf).await.map_err(Error::from)?;
                if n == 0 {
                    return Ok::<(), Error>(());
                }
                out.write_all(&buf[..n]).await?;
                out.flush().await?;
            }
        };
        let writer = async {
            while let Some(chunk) = input.recv().await {
                wh.write_all(&chunk).await?;
                wh.flush().await?;
            }
            wh.shutdown().await?;
            Ok::<(), Error>(())
        };
        tokio::pin!(reader, writer);
        tokio::select! {
            r = &mut reader => r,
            w = &mut writer => match w {
                Ok(()) => reader.await,
                Err(we) => match tokio::time::timeout(Duration::from_secs(2), reader).await {
                    Ok(r) => r,
                    Err(_) => Err(we),
                },
            },
        }
    };
    let mut tls = rh.unsplit(wh);
    if result.is_ok() {
        // Write out our close_notify reply (best effort: the peer has closed already).
        let _ = tokio::time::timeout(Duration::from_secs(2), tls.shutdown()).await;
    }
    Ok(result?)
}

/// Splits a chunk of stdin into datagrams: one per line, at most `max` bytes each.
fn datagrams(chunk: &[u8], max: usize) -> impl Iterator<Item = &[u8]> {
    chunk
        .split_inclusive(|&b| b == b'\n')
        .flat_map(move |line| line.chunks(max.max(1)))
}

/// The DTLS `pump`: stdin lines to the peer as datagrams (close_notify at EOF), the peer's
/// datagrams to stdout, until the peer closes or, after our close_notify, stays silent for
/// `LINGER`.
async fn pump_dtls(
    dtls: &DtlsConnection,
    input: &mut mpsc::Receiver<Vec<u8>>,
) -> Result<(), Failure> {
    let mut out = tokio::io::stdout();
    let mut buf = vec![0u8; 64 * 1024];
    let mut linger: Option<tokio::time::Instant> = None;
    let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
    loop {
        tokio::select! {
            r = dtls.recv(&mut buf) => {
                let n = r?;
                if n == 0 {
                    return Ok(());
                }
                out.write_all(&buf[..n]).await.map_err(Error::from)?;
                out.flush().await.map_err(Error::from)?;
                if linger.is_some() {
                    linger = Some(tokio::time::Instant::now() + LINGER);
                }
            }
            chunk = input.recv(), if linger.is_none() => match chunk {
                Some(chunk) => {
                    for d in datagrams(&chunk, dtls.max_payload()) {
                        dtls.send(d).await?;
                    }
                }
                None => {
                    dtls.close().await?;
                    linger = Some(tokio::time::Instant::now() + LINGER);
                }
            },
            () = tokio::time::sleep_until(linger.unwrap_or_else(far)), if linger.is_some() => {
                // Our close_notify or the peer's reply was lost: we are done either way.
                return Ok(());
            }
        }
    }
}

/// One row of the demo table.
struct Row {
    transport: &'static str,
    suite: CipherSuite,
    handshake: Duration,
    bytes: usize,
    exporter_equal: bool,
}

async fn demo() -> Result<(), Failure> {
    let mut rows = Vec::new();
    for &suite in CipherSuite::ALL {
        let row = tokio::time::timeout(Duration::from_secs(10), demo_one(suite))
            .await
            .map_err(|_| Failure(format!("demo {}: timed out", suite.iana_name())))??;
        rows.push(row);
    }
    for &suite in CipherSuite::ALL {
        let row = tokio::time::timeout(Duration::from_secs(10), demo_dtls(suite))
            .await
            .map_err(|_| Failure(format!("demo dtls {}: timed out", suite.iana_name())))??;
        rows.push(row);
    }
    println!(
        "{:<10} {:<10} {:<28} {:>13} {:>15} {:>15}",
        "framework", "transport", "suite", "handshake_ms", "bytes_each_way", "exporter_equal"
    );
    for r in &rows {
        println!(
            "{:<10} {:<10} {:<28} {:>13.3} {:>15} {:>15}",
            "psk-tls",
            r.transport,
            r.suite.iana_name(),
            r.handshake.as_secs_f64() * 1000.0,
            r.bytes,
            if r.exporter_equal { "yes" } else { "no" }
        );
    }
    if !rows.iter().all(|r| r.exporter_equal) {
        return Err(Failure("demo: exporters differ".into()));
    }
    // The frameworks: real MEF, MAF and registrar on loopback.
    let rows = tokio::time::timeout(Duration::from_secs(60), fwdemo::run())
        .await
        .map_err(|_| Failure("demo frameworks: timed out".into()))??;
    println!();
    fwdemo::print(&rows);
    Ok(())
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn demo_one(suite: CipherSuite) -> Result<Row, Failure> {
    const ID: &[u8] = b"demo-client";
    let key = os_key()?;
    let mut table = PskTable::new();
    table.insert(ID, Psk::new(&key)?)?;
    let scfg = Arc::new(ServerConfig::builder(Box::new(table)).build()?);
    let ccfg = Arc::new(
        ClientConfig::builder(ClientPsk::new(ID, Psk::new(&key)?)?)
            .suites(&[suite])
            .build()?,
    );
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Failure(format!("demo: bind: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure(format!("demo: {e}")))?;

    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let mut tls = accept(tcp, scfg).await?;
        let ekm = exporter(&tls)?;
        let got = exchange(&mut tls, &pattern(2, DEMO_BYTES)).await?;
        // Wait for the client's close_notify, then answer it.
        let extra = tls.read(&mut [0u8; 1]).await?;
        tls.shutdown().await?;
        Ok::<_, Error>((ekm, got == pattern(1, DEMO_BYTES) && extra == 0))
    });

    let start = Instant::now();
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| Failure(format!("demo: connect: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let mut tls = connect(tcp, ccfg, Some("localhost")).await?;
    let handshake = start.elapsed();
    if tls.info().suite != suite {
        return Err(Failure(format!("demo: negotiated {}", tls.info().suite)));
    }
    let ekm = exporter(&tls)?;
    let got = exchange(&mut tls, &pattern(1, DEMO_BYTES)).await?;
    tls.shutdown().await.map_err(Error::from)?;
    let extra = tls.read(&mut [0u8; 1]).await.map_err(Error::from)?;
    let (server_ekm, server_ok) = server
        .await
        .map_err(|e| Failure(format!("demo: server task: {e}")))??;
    if got != pattern(2, DEMO_BYTES) || extra != 0 || !server_ok {
        return Err(Failure(format!(
            "demo {}: data corrupted",
            suite.iana_name()
        )));
    }
    Ok(Row {
        transport: "tls",
        suite,
        handshake,
        bytes: DEMO_BYTES,
        exporter_equal: ekm == server_ekm,
    })
}

/// Datagram `i` of the DTLS demo: its index, then a pattern.
fn demo_datagram(seed: u8, i: usize) -> Vec<u8> {
    let mut d = pattern(seed.wrapping_add(i as u8), DEMO_DATAGRAM_LEN);
    d[0] = i as u8;
    d
}

/// Sends the demo datagrams while receiving the peer's; whether all arrived intact.
async fn exchange_dtls(c: &DtlsConnection, mine: u8, theirs: u8) -> Result<bool, Error> {
    let send = async {
        for i in 0..DEMO_DATAGRAMS {
            c.send(&demo_datagram(mine, i)).await?;
        }
        Ok::<_, Error>(())
    };
    let recv = async {
        let mut got = Vec::with_capacity(DEMO_DATAGRAMS);
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < DEMO_DATAGRAMS {
            let n = c.recv(&mut buf).await?;
            if n == 0 {
                return Ok(false);
            }
            got.push(buf[..n].to_vec());
        }
        got.sort_by_key(|d| d[0]);
        Ok(got
            .iter()
            .enumerate()
            .all(|(i, d)| *d == demo_datagram(theirs, i)))
    };
    let ((), ok) = tokio::try_join!(send, recv)?;
    Ok(ok)
}

/// One DTLS handshake over UDP loopback, through the listener's cookie exchange.
async fn demo_dtls(suite: CipherSuite) -> Result<Row, Failure> {
    const ID: &[u8] = b"demo-client";
    let key = os_key()?;
    let mut table = PskTable::new();
    table.insert(ID, Psk::new(&key)?)?;
    let scfg = Arc::new(ServerConfig::builder(Box::new(table)).build()?);
    let ccfg = Arc::new(
        ClientConfig::builder(ClientPsk::new(ID, Psk::new(&key)?)?)
            .suites(&[suite])
            .build()?,
    );
    let mut listener = DtlsListener::bind("127.0.0.1:0", scfg, 1232)
        .await
        .map_err(|e| Failure(format!("demo: bind: {e}")))?;
    let addr = listener.local_addr();
    let server = tokio::spawn(async move {
        let c = listener.accept().await?;
        let mut ekm = vec![0u8; 48];
        c.export_keying_material(&mut ekm, DEMO_LABEL.as_bytes(), None)?;
        let ok = exchange_dtls(&c, 2, 1).await?;
        // Wait for the client's close_notify (ours answers it by itself).
        let extra = c.recv(&mut [0u8; 1]).await?;
        let cookies = listener.stats().hello_verify_requests;
        Ok::<_, Error>((ekm, ok && extra == 0 && cookies == 1))
    });

    let start = Instant::now();
    let udp = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| Failure(format!("demo: bind: {e}")))?;
    udp.connect(addr)
        .await
        .map_err(|e| Failure(format!("demo: connect: {e}")))?;
    let c = connect_dtls(udp, ccfg, Some("localhost"), 1232).await?;
    let handshake = start.elapsed();
    if c.info().suite != suite {
        return Err(Failure(format!("demo: negotiated {}", c.info().suite)));
    }
    let mut ekm = vec![0u8; 48];
    c.export_keying_material(&mut ekm, DEMO_LABEL.as_bytes(), None)?;
    let ok = exchange_dtls(&c, 1, 2).await?;
    c.close().await?;
    let extra = c.recv(&mut [0u8; 1]).await?;
    let (server_ekm, server_ok) = server
        .await
        .map_err(|e| Failure(format!("demo: server task: {e}")))??;
    if !ok || extra != 0 || !server_ok {
        return Err(Failure(format!(
            "demo dtls {}: data corrupted or lost",
            suite.iana_name()
        )));
    }
    Ok(Row {
        transport: "dtls",
        suite,
        handshake,
        bytes: DEMO_DATAGRAMS * DEMO_DATAGRAM_LEN,
        exporter_equal: ekm == server_ekm,
    })
}

fn os_key() -> Result<[u8; 16], Failure> {
    let mut key = [0u8; 16];
    getrandom::getrandom(&mut key).map_err(|e| Failure(format!("demo: randomness: {e}")))?;
    Ok(key)
}

fn exporter<S: AsyncRead + AsyncWrite + Unpin>(tls: &TlsStream<S>) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; 48];
    tls.export_keying_material(&mut out, DEMO_LABEL.as_bytes(), None)?;
    Ok(out)
}

/// Sends `data` while reading as many bytes from the peer; returns what was read.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    tls: &mut TlsStream<S>,
    data: &[u8],
) -> Result<Vec<u8>, Error> {
    let (mut r, mut w) = tokio::io::split(tls);
    let send = async {
        w.write_all(data).await?;
        w.flush().await
    };
    let recv = async {
        let mut got = vec![0u8; data.len()];
        r.read_exact(&mut got).await?;
        Ok(got)
    };
    let ((), got) = tokio::try_join!(send, recv).map_err(Error::from)?;
    Ok(got)
}
