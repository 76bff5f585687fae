//! `m2msec bsf` (a GBA Bootstrapping Server Function, Ub and Zn) and `m2msec gba-bootstrap` (Ub
//! with a simulated USIM, for operators).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::Args;
use m2msec::gba::usim::{generate_vector, sqn_to_u64, SqnProfile, Usim};
use m2msec::store::MemoryKeyStore;
use m2msec_tokio::frameworks::bsf::{bootstrap, BsfConfig, BsfService};
use m2msec_tokio::store::{AsyncKeyStore, RedbKeyStore};
use zeroize::Zeroizing;

use super::Failure;

/// `m2msec bsf`.
#[derive(Args, Debug)]
pub(crate) struct BsfArgs {
    /// The BSF's configuration file (TOML, role = "bsf").
    #[arg(long, short)]
    config: PathBuf,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    log: tracing::Level,
}

/// `m2msec gba-bootstrap`.
#[derive(Args, Debug)]
pub(crate) struct BootstrapArgs {
    /// The BSF's Ub address: http://HOST:PORT.
    #[arg(long)]
    bsf: String,
    /// The subscriber's IMPI.
    #[arg(long)]
    impi: String,
    /// The subscriber key K (32 hex digits).
    #[arg(long)]
    k: String,
    /// OPc (32 hex digits).
    #[arg(long)]
    opc: String,
    /// The USIM's current SQN (12 hex digits; default 0).
    #[arg(long)]
    sqn: Option<String>,
    /// The BSF's FQDN (the Digest realm).
    #[arg(long)]
    realm: String,
    /// Log level.
    #[arg(long, default_value = "warn")]
    log: tracing::Level,
}

fn init_logs(level: tracing::Level) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

pub(crate) async fn bsf(a: BsfArgs) -> Result<(), Failure> {
    init_logs(a.log);
    let config = BsfConfig::load(&a.config).map_err(|e| Failure(e.to_string()))?;
    match (&config.service.store, &config.service.kek) {
        (Some(path), Some(kek)) => {
            let store = RedbKeyStore::open_async(path.clone(), kek.clone())
                .await
                .map_err(|e| Failure(format!("store {}: {e}", path.display())))?;
            serve(config, Arc::new(store)).await
        }
        (Some(_), None) => Err(Failure("service.kek: required with service.store".into())),
        (None, _) => {
            tracing::warn!(
                "no service.store: subscribers' SQNs and B-TIDs are kept in memory only"
            );
            serve(config, Arc::new(Mutex::new(MemoryKeyStore::new()))).await
        }
    }
}

async fn serve<S: AsyncKeyStore + 'static>(
    config: BsfConfig,
    store: Arc<S>,
) -> Result<(), Failure> {
    let ub_addr = config
        .service
        .listen
        .ok_or_else(|| Failure("service.listen: required (the Ub address)".into()))?;
    let zn_addr = config.service.listen_zn;
    let stop = tokio::spawn(termination());
    let bsf = Arc::new(BsfService::new(Arc::new(config), store));
    let ub = bsf
        .bind_ub(ub_addr)
        .await
        .map_err(|e| Failure(format!("Ub {ub_addr}: {e}")))?;
    let zn = match zn_addr {
        Some(addr) => Some(
            bsf.bind_zn(addr)
                .await
                .map_err(|e| Failure(format!("Zn {addr}: {e}")))?,
        ),
        None => None,
    };
    if let Some(a) = ub.local_addr() {
        println!("listening: http://{a}");
    }
    if let Some(a) = zn.as_ref().and_then(|z| z.local_addr()) {
        println!("listening: https://{a}");
    }
    tracing::info!("BSF started");
    let _ = stop.await;
    tracing::info!("BSF stopping");
    drop(bsf);
    ub.shutdown()
        .await
        .map_err(|e| Failure(format!("shutdown: {e}")))?;
    if let Some(zn) = zn {
        zn.shutdown()
            .await
            .map_err(|e| Failure(format!("shutdown: {e}")))?;
    }
    Ok(())
}

fn hex16(name: &str, text: &str) -> Result<Zeroizing<[u8; 16]>, Failure> {
    let mut out = Zeroizing::new([0u8; 16]);
    hex::decode_to_slice(text.trim(), out.as_mut())
        .map_err(|_| Failure(format!("--{name}: expected 32 hex digits")))?;
    Ok(out)
}

pub(crate) async fn gba_bootstrap(a: BootstrapArgs) -> Result<(), Failure> {
    init_logs(a.log);
    let hostport = a
        .bsf
        .strip_prefix("http://")
        .map(|s| s.trim_end_matches('/'))
        .ok_or_else(|| Failure("--bsf: expected http://HOST:PORT".into()))?;
    let addr: SocketAddr = tokio::net::lookup_host(hostport)
        .await
        .map_err(|e| Failure(format!("--bsf {hostport}: {e}")))?
        .next()
        .ok_or_else(|| Failure(format!("--bsf {hostport}: no address")))?;
    let k = hex16("k", &a.k)?;
    let opc = hex16("opc", &a.opc)?;
    let mut usim = Usim::new(&k, &opc);
    if let Some(sqn) = &a.sqn {
        let mut raw = [0u8; 6];
        hex::decode_to_slice(sqn.trim(), &mut raw)
            .map_err(|_| Failure("--sqn: expected 12 hex digits".into()))?;
        if sqn_to_u64(&raw) != 0 {
            // The simulated USIM reaches this SQN by accepting one vector that carries it.
            let profile = SqnProfile::default();
            let (seq, ind) = profile.split(&raw);
            let sqn = profile
                .sqn(seq, ind)
                .ok_or_else(|| Failure("--sqn: out of range".into()))?;
            let mut rand = [0u8; 16];
            getrandom::getrandom(&mut rand).map_err(|e| Failure(e.to_string()))?;
            let v = generate_vector(&k, &opc, &sqn, &[0, 0], &rand);
            usim.authenticate(&v.rand, &v.autn)
                .map_err(|e| Failure(format!("--sqn: {e}")))?;
        }
    }
    let b = bootstrap(addr, &a.impi, &a.realm, &mut usim)
        .await
        .map_err(|e| Failure(e.to_string()))?;
    println!("bootstrapped: btid={} lifetime={}", b.btid, b.lifetime.0);
    Ok(())
}
