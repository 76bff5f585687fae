//! The framework roles of the `m2msec` command: `mef`, `maf`, `registrar` (servers, until
//! SIGINT/SIGTERM) and `enrol`, `associate` (clients), each configured by a TOML file
//! (`m2msec_tokio::config_toml`, `[service]` section: `m2msec_tokio::config_toml::Service`).
//!
//! Output contract (one line each, on stdout):
//! - servers: `listening: https://ADDR:PORT` and/or `listening: coaps://ADDR:PORT` once bound;
//! - `enrol`: `enrolled: ke-id=<KeID> maf-id=<MAF-ID> maf-uri=<URI> expires=<unix> transport=<TLS|DTLS>`;
//! - failures: `error: ...` on stderr and exit status 1.
//!
//! Logs (tracing, on stderr) never contain key material.

use std::path::PathBuf;

use clap::Args;
use m2msec_tokio::config_toml::Uri;
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

/// Waits for SIGINT or SIGTERM.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

pub(crate) async fn mef(a: ServeArgs) -> Result<(), Failure> {
    init_logs(a.log);
    let n = node::load(&a.config).map_err(nf)?;
    let running = node::start_mef(n).await.map_err(nf)?;
    for uri in running.uris() {
        println!("listening: {uri}");
    }
    tracing::info!(config = %a.config.display(), "MEF started");
    terminated().await;
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
