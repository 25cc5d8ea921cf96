//! `graph-builder`: parses the configuration, starts logging, binds the listeners and
//! calls [`graph_builder::run`] until SIGTERM or SIGINT.
//!
//! Exit codes: 2 for a configuration error (nothing was started), 1 for a failure at or
//! after start-up, 0 after a requested shutdown.

use std::process::ExitCode;

use anyhow::Context as _;
use graph_builder::config::{Args, ConfigError, LoadError, Settings};
use graph_builder::Listeners;

fn main() -> ExitCode {
    graph_builder::allocator::tune();
    let loaded = Args::try_parse_from(std::env::args_os())
        .map_err(|e| ConfigError::Load(LoadError::CommandLine(e)))
        .and_then(|args| Settings::load(&args));
    let settings = match loaded {
        Ok(settings) => settings,
        // `--help` and `--version` print what was asked, and exit 0.
        Err(ConfigError::Load(LoadError::CommandLine(e))) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("graph-builder: {:#}", anyhow::Error::new(e));
            return ExitCode::from(2);
        }
    };
    graph_builder::logging::init(settings.verbosity, settings.log_format);
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    match serve(settings) {
        Ok(()) => ExitCode::SUCCESS,
        // One record (cause chain on one line); on stderr as such once logging runs.
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listeners = Listeners::bind(&settings)?;
        // The bound addresses, so a port 0 shows the port the system chose.
        let bound = |l: &std::net::TcpListener, configured: std::net::SocketAddr| {
            l.local_addr().unwrap_or(configured)
        };
        tracing::info!(
            main = %bound(&listeners.main, settings.service.main),
            public = %bound(&listeners.public, settings.service.public),
            status = %bound(&listeners.status, settings.status),
            "listening"
        );
        graph_builder::run(settings, listeners, shutdown_signal()).await?;
        Ok(())
    })
}

/// Completes at the first SIGTERM (what Kubernetes sends) or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::error!("cannot listen for SIGTERM: {e}");
            std::future::pending::<()>().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
