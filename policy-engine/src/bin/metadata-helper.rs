//! `metadata-helper`: serves only release signatures, with the reference metadata-helper's
//! ports (8082, status 9082) and flags; see `policy_engine::signatures::helper`.

use std::io::IsTerminal;
use std::net::TcpListener;

use anyhow::Context;
use clap::Parser;
use policy_engine::signatures::helper::{run, HelperCli};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = HelperCli::parse();
    let level = match cli.verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let settings = cli.settings()?;
    let service = TcpListener::bind(settings.service)
        .with_context(|| format!("binding the signature server on {}", settings.service))?;
    let status = TcpListener::bind(settings.status)
        .with_context(|| format!("binding the status server on {}", settings.status))?;
    tracing::warn!(
        public = %settings.service,
        status = %settings.status,
        prefix = %settings.path_prefix,
        sources = ?settings.signatures.sources,
        "metadata-helper listening"
    );
    run(settings, service, status, async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    })
    .await
    .context("metadata-helper")
}
