//! `metadata-helper`: serves only release signatures, with the reference metadata-helper's
//! ports (8082, status 9082) and flags, and the services' shared listener and logging
//! flags; see `policy_engine::signatures::helper`.

use std::net::TcpListener;

use anyhow::Context;
use clap::Parser;
use policy_engine::signatures::helper::{run, HelperCli};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = HelperCli::parse();
    graph_builder::logging::init(cli.log.verbosity, cli.log.log_format);
    let settings = cli.settings()?;
    let service = TcpListener::bind(settings.service)
        .with_context(|| format!("binding the signature server on {}", settings.service))?;
    let status = TcpListener::bind(settings.status)
        .with_context(|| format!("binding the status server on {}", settings.status))?;
    // Under the library's target: `-v` sets the level of our library crates, and this
    // binary's own crate name is not one of them.
    tracing::info!(
        target: "policy_engine::signatures::helper",
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
