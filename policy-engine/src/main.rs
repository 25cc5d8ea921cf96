//! `policy-engine`: parse the command line, start logging, bind the two listeners and
//! hand over to [`policy_engine::run`] until SIGINT or SIGTERM.

use std::net::{SocketAddr, TcpListener};

use anyhow::Context;
use graph_builder::config::LoadError;
use policy_engine::{Cli, Listeners};
use tokio::net::TcpSocket;

/// An error ends the process as one record (cause chain on one line), not as the
/// multi-line report a `main` returning `Result` prints.
fn main() -> std::process::ExitCode {
    graph_builder::allocator::tune();
    let cli = match Cli::load(std::env::args_os()) {
        Ok(cli) => cli,
        // `--help` and `--version` print what was asked, and exit 0.
        Err(LoadError::CommandLine(e)) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("policy-engine: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match serve(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            if tracing::dispatcher::has_been_set() {
                tracing::error!("{error:#}");
            } else {
                eprintln!("policy-engine: {error:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn serve(cli: Cli) -> anyhow::Result<()> {
    graph_builder::logging::init(cli.log.verbosity, cli.log.log_format);
    if cli.listen.tracing_endpoint.is_some() {
        tracing::warn!(
            "--service.tracing_endpoint is accepted but tracing export is not implemented"
        );
    }
    let settings = cli.settings()?;
    let listeners = Listeners {
        service: bind(settings.service, settings.backlog)
            .with_context(|| format!("binding the public API on {}", settings.service))?,
        status: bind(settings.status, 1024)
            .with_context(|| format!("binding the status server on {}", settings.status))?,
    };
    // Lifecycle, so INFO (shown by default): where to look and what it waits for.
    match &settings.in_process {
        Some(in_process) => tracing::info!(
            public = %settings.service,
            status = %settings.status,
            prefix = %settings.path_prefix,
            releases = ?in_process.releases,
            graph_data = ?in_process.graph_data,
            "policy-engine listening; building the graph in-process (one-process mode)"
        ),
        None => tracing::info!(
            public = %settings.service,
            status = %settings.status,
            prefix = %settings.path_prefix,
            upstream = %settings.upstream.url,
            "policy-engine listening; not ready until the upstream graph-builder serves a graph"
        ),
    }
    policy_engine::run(settings, listeners, shutdown_signal())
        .await
        .context("policy-engine")
}

/// Binds with an explicit backlog (std's `bind` always uses 128).
fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)?.into_std()
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::error!("cannot watch SIGTERM, stopping on SIGINT only: {error}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
    }
}
