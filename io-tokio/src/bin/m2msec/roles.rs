//! The framework roles of the `m2msec` command: `mef`, `maf`, `registrar` (servers, until
//! SIGINT/SIGTERM) and `enrol`, `associate` (clients), each configured by a TOML file
//! (`m2msec_tokio::config_toml`, `[service]` section: `m2msec_tokio::config_toml::Service`).
//!
//! Output contract (one line each, on stdout):
//! - servers: `listening: https://ADDR:PORT` and/or `listening: coaps://ADDR:PORT` once bound;
//! - `enrol`: `enrolled: ke-id=<KeID> maf-id=<MAF-ID> maf-uri=<URI> expires=<unix> transport=<TLS|DTLS>`;
//! - `registrar`, per association: `association:
//!   framework=<pre-provisioned|maf-based|certificate-based|gba-based> transport=<TLS|DTLS>
//!   suite=<IANA name> bound-identity=<IdA> key-id=<KpsaId|KcID|ni:///sha-256;A's key hash>
//!   deadline=<unix|->`, `refused: transport=.. peer=<addr|-> identity=<psk_identity|-> reason=<kind>`
//!   and `closed: transport=.. bound-identity=<IdA> reason=<why>`;
//! - `associate`: `associated: framework=.. transport=.. suite=.. this-entity=<IdA>
//!   bound-identity=<what B bound> key-id=<..> deadline=<unix|->`, preceded for a first MAF
//!   contact by `km-id: <KmID assigned by the MAF>`;
//! - failures: `error: ...` on stderr and exit status 1.
//!
//! Logs (tracing, on stderr) never contain key material.

use std::path::PathBuf;

use clap::Args;
use m2msec_tokio::config_toml::Uri;
use m2msec_tokio::frameworks::registrar::RegistrarEvent;
use m2msec_tokio::node;

use crate::Failure;

/// `m2msec mef|maf|registrar`.
#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// The role's configuration file (TOML, with a [service] section).
    #[arg(long, short)]
    config: PathBuf,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    log: tracing::Level,
}

/// `m2msec enrol`.
#[derive(Args, Debug)]
pub(crate) struct EnrolArgs {
    /// The Enrolee's configuration file (an end-point file with [bootstrap]).
    #[arg(long, short)]
    config: PathBuf,
    /// The MEF to use instead of the file's mefUri: https://HOST:PORT (TLS) or coaps://HOST:PORT
    /// (DTLS).
    #[arg(long, value_parser = parse_uri)]
    mef: Option<Uri>,
    /// Log level.
    #[arg(long, default_value = "warn")]
    log: tracing::Level,
}

/// `m2msec associate`.
#[derive(Args, Debug)]
pub(crate) struct AssociateArgs {
    /// Entity A's configuration file (an end-point file).
    #[arg(long, short)]
    config: PathBuf,
    /// The framework: pre-provisioned (8.2.2.1), maf-based (8.2.3.1), certificate (8.2.2.2)
    /// or gba (8.2.3.2, with the file's [gba] section).
    #[arg(long, value_parser = parse_framework)]
    framework: node::Framework,
    /// GBA_U: the NAF key Ks_int_NAF, psk_identity prefix 3GPP-bootstrapping-uicc.
    #[arg(long)]
    uicc: bool,
    /// The registrar (Entity B): https://HOST:PORT (TLS) or coaps://HOST:PORT (DTLS).
    #[arg(long, value_parser = parse_uri)]
    to: Uri,
    /// The peer's identity (an otherEntityIdentifier of the file; default: the first one).
    #[arg(long)]
    peer: Option<String>,
    /// The MAF, instead of [service] mafUri or the mafURI of the enrolment.
    #[arg(long, value_parser = parse_uri)]
    maf: Option<Uri>,
    /// Log level.
    #[arg(long, default_value = "warn")]
    log: tracing::Level,
}

fn parse_framework(s: &str) -> Result<node::Framework, String> {
    match s {
        "pre-provisioned" => Ok(node::Framework::PreProvisioned),
        "maf-based" => Ok(node::Framework::MafBased),
        "certificate" | "certificate-based" => Ok(node::Framework::Certificate),
        "gba" | "gba-based" => Ok(node::Framework::Gba { uicc: false }),
        _ => Err(format!(
            "{s}: not pre-provisioned, maf-based, certificate or gba"
        )),
    }
}

pub(crate) fn parse_uri(s: &str) -> Result<Uri, String> {
    Uri::parse(s).ok_or_else(|| format!("{s}: not https://HOST:PORT or coaps://HOST:PORT"))
}

fn init_logs(level: tracing::Level) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn nf(e: node::NodeError) -> Failure {
    Failure(e.to_string())
}

/// Installs the SIGINT and SIGTERM handlers now (before a server announces itself, so that a
/// signal right after `listening:` is handled) and returns a future that waits for either.
fn termination() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(crate) async fn mef(a: ServeArgs) -> Result<(), Failure> {
    init_logs(a.log);
    let n = node::load_server(&a.config).map_err(nf)?;
    let stop = termination();
    let running = node::start_mef(n).await.map_err(nf)?;
    for uri in running.uris() {
        println!("listening: {uri}");
    }
    tracing::info!(config = %a.config.display(), "MEF started");
    stop.await;
    tracing::info!("MEF stopping");
    running
        .shutdown()
        .await
        .map_err(|e| Failure(format!("shutdown: {e}")))
}

pub(crate) async fn enrol(a: EnrolArgs) -> Result<(), Failure> {
    init_logs(a.log);
    let n = node::load(&a.config).map_err(nf)?;
    let done = node::enrol_node(&n, a.mef.as_ref()).await.map_err(nf)?;
    let e = &done.enrolment;
    println!(
        "enrolled: ke-id={} maf-id={} maf-uri={} expires={} transport={}",
        e.ke_id.as_str(),
        e.maf_id,
        e.maf_uri,
        e.expires.0,
        done.transport
    );
    Ok(())
}

pub(crate) async fn maf(a: ServeArgs) -> Result<(), Failure> {
    init_logs(a.log);
    let n = node::load_server(&a.config).map_err(nf)?;
    let stop = termination();
    let running = node::start_maf(n).await.map_err(nf)?;
    for uri in running.uris() {
        println!("listening: {uri}");
    }
    tracing::info!(config = %a.config.display(), "MAF started");
    stop.await;
    tracing::info!("MAF stopping");
    running
        .shutdown()
        .await
        .map_err(|e| Failure(format!("shutdown: {e}")))
}

fn or_dash<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The stdout line of a registrar event.
pub(crate) fn event_line(e: &RegistrarEvent) -> Option<String> {
    Some(match e {
        RegistrarEvent::Accepted { info, .. } => format!(
            "association: framework={} transport={} suite={} bound-identity={} key-id={} deadline={}",
            info.framework,
            info.transport,
            info.suite.iana_name(),
            info.bound_identity,
            info.key_id.as_str(),
            or_dash(info.deadline)
        ),
        RegistrarEvent::Refused {
            transport,
            peer,
            identity,
            refusal,
            ..
        } => format!(
            "refused: transport={transport} peer={} identity={} reason={refusal:?}",
            or_dash(*peer),
            or_dash(identity.as_ref())
        ),
        RegistrarEvent::Closed {
            transport,
            bound_identity,
            reason,
            ..
        } => format!("closed: transport={transport} bound-identity={bound_identity} reason={reason:?}"),
        _ => return None,
    })
}

pub(crate) async fn registrar(a: ServeArgs) -> Result<(), Failure> {
    use std::io::Write as _;
    init_logs(a.log);
    let n = node::load_server(&a.config).map_err(nf)?;
    let stop = termination();
    let mut running = node::start_registrar(n).await.map_err(nf)?;
    for uri in running.uris() {
        println!("listening: {uri}");
    }
    tracing::info!(config = %a.config.display(), "registrar started");
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(e) = running.events.recv() => {
                if let Some(line) = event_line(&e) {
                    println!("{line}");
                    let _ = std::io::stdout().flush();
                }
            }
        }
    }
    tracing::info!("registrar stopping");
    running
        .shutdown()
        .await
        .map_err(|e| Failure(format!("shutdown: {e}")))
}

pub(crate) async fn associate(a: AssociateArgs) -> Result<(), Failure> {
    init_logs(a.log);
    let n = node::load(&a.config).map_err(nf)?;
    let framework = match a.framework {
        node::Framework::Gba { .. } => node::Framework::Gba { uicc: a.uicc },
        f if a.uicc => {
            return Err(Failure(format!("--uicc is for --framework gba, not {f}")));
        }
        f => f,
    };
    let done = node::associate_node(&n, framework, &a.to, a.peer.as_deref(), a.maf.as_ref())
        .await
        .map_err(nf)?;
    if let Some((btid, ran)) = &done.gba {
        println!(
            "gba: btid={btid} bootstrapped={}",
            if *ran { "yes" } else { "reused" }
        );
    }
    if let Some(km_id) = &done.assigned_km_id {
        println!("km-id: {km_id}");
    }
    println!("{}", associated_line(&done));
    Ok(())
}

pub(crate) fn associated_line(d: &node::Associated) -> String {
    format!(
        "associated: framework={} transport={} suite={} this-entity={} bound-identity={} key-id={} deadline={}",
        d.framework,
        d.transport,
        d.suite.iana_name(),
        d.this_entity,
        d.registrar.bound_identity,
        d.registrar.key_identifier,
        or_dash(d.registrar.expiration_time)
    )
}
