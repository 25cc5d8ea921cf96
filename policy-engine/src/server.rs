//! Running the service: the public and status servers on listeners the caller bound
//! (so tests own their ports), until a shutdown future completes.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::Compress;
use actix_web::{web, App, HttpServer};
use bytes::Bytes;

use crate::config::Settings;
use crate::error::ApiError;
use crate::in_process::InProcess;
use crate::metrics::{Metrics, GIT_COMMIT, VERSION};
use crate::openapi;
use crate::refresh::{self, Producer};
use crate::routes::{self, ApiState};
use crate::signatures;
use crate::source::GraphSource;
use crate::status::{self, StatusState};
use crate::upstream::Upstream;
use graph_builder::surface::enforce_limits;

/// The two listening sockets of a policy-engine.
#[derive(Debug)]
pub struct Listeners {
    /// The public API.
    pub service: TcpListener,
    /// `/livez`, `/readyz`, `/metrics`.
    pub status: TcpListener,
}

impl Listeners {
    /// Both listeners on 127.0.0.1 with ports chosen by the kernel (for tests).
    pub fn loopback() -> io::Result<Self> {
        Ok(Self {
            service: TcpListener::bind("127.0.0.1:0")?,
            status: TcpListener::bind("127.0.0.1:0")?,
        })
    }

    /// The addresses actually bound.
    pub fn addresses(&self) -> io::Result<(SocketAddr, SocketAddr)> {
        Ok((self.service.local_addr()?, self.status.local_addr()?))
    }
}

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The metrics could not be registered.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A listener could not be handed to the HTTP server.
    #[error("listening for the {server} server: {source}")]
    Listen {
        /// Which server: `public` or `status`.
        server: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// A server stopped on its own with an error.
    #[error("the {server} server failed: {source}")]
    Server {
        /// Which server: `public` or `status`.
        server: &'static str,
        /// The cause.
        source: io::Error,
    },
}

/// Runs a policy-engine until `shutdown` completes, fed by the in-process build of
/// `settings` (one-process mode) or else by its upstream graph-builder.
pub async fn run(
    settings: Settings,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let metrics = Arc::new(Metrics::new()?);
    let source = GraphSource::new();
    let producer = match &settings.in_process {
        Some(in_process) => InProcess::new(in_process).map(|p| Producer::InProcess(Box::new(p))),
        None => Upstream::new(settings.upstream.clone())
            .map(Producer::Upstream)
            .map_err(|e| ApiError::from(&e)),
    };
    let fetcher = match producer {
        Ok(producer) => Some(tokio::spawn(refresh::refresh_loop(
            producer,
            source.clone(),
            Arc::clone(&metrics),
        ))),
        // Served as the answer to every request (and shown by readiness) until restarted.
        // Clients are not told the registry, paths or settings involved; the log and the
        // status port are.
        Err(error) => {
            tracing::error!("cannot set up the graph producer: {error}");
            let public = ApiError::UpstreamFetch(
                "cannot set up the graph producer; the service log and status port say why"
                    .to_owned(),
            );
            source.report_failure(public, Some(error.to_string()));
            None
        }
    };
    let result = serve(&settings, source, metrics, listeners, shutdown).await;
    if let Some(fetcher) = fetcher {
        fetcher.abort();
    }
    result
}

/// Serves whatever `source` holds until `shutdown` completes; who publishes into the
/// source is the caller's business (the upstream fetcher in [`run`], a test, or an
/// in-process graph-builder).
pub async fn serve(
    settings: &Settings,
    source: GraphSource,
    metrics: Arc<Metrics>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let (signatures, signature_task) =
        signatures::start(&settings.signatures, &source, metrics.registry())?;
    let (public, status) = build(settings, &source, &metrics, listeners, signatures)?;
    // The reference counts build_info once ready.
    let build_info = tokio::spawn(async move {
        source.wait_ready().await;
        metrics
            .build_info
            .with_label_values(&[GIT_COMMIT, VERSION])
            .inc();
    });
    let (public_handle, status_handle) = (public.handle(), status.handle());
    let mut public = tokio::spawn(public);
    let mut status = tokio::spawn(status);
    let outcome = tokio::select! {
        ended = &mut public => Some(("public", ended)),
        ended = &mut status => Some(("status", ended)),
        () = shutdown => None,
    };
    build_info.abort();
    if let Some(task) = signature_task {
        task.abort();
    }
    public_handle.stop(true).await;
    status_handle.stop(true).await;
    match outcome {
        None => Ok(()),
        Some((server, Ok(Ok(())))) => Err(RunError::Server {
            server,
            source: io::Error::other("stopped unexpectedly"),
        }),
        Some((server, Ok(Err(source)))) => Err(RunError::Server { server, source }),
        Some((server, Err(join))) => Err(RunError::Server {
            server,
            source: io::Error::other(join),
        }),
    }
}

/// Builds both servers; synchronous, so that no actix builder (not `Send`) lives in the
/// async caller's state.
fn build(
    settings: &Settings,
    source: &GraphSource,
    metrics: &Arc<Metrics>,
    listeners: Listeners,
    signatures: signatures::serve::SignatureApi,
) -> Result<(Server, Server), RunError> {
    let signatures = web::Data::new(signatures);
    let status_signatures = signatures.clone();
    let listen_error = |server| move |source| RunError::Listen { server, source };
    let api = web::Data::new(ApiState {
        source: source.clone(),
        metrics: Arc::clone(metrics),
        mandatory: settings.mandatory_client_parameters.clone(),
        openapi: Bytes::from(openapi::render(
            &settings.path_prefix,
            &settings.mandatory_client_parameters,
        )),
    });
    let prefix = settings.path_prefix.clone();
    let mut public = HttpServer::new(move || {
        let prefix = prefix.clone();
        App::new()
            .app_data(api.clone())
            .app_data(signatures.clone())
            // Inside CORS, so that refusals carry its headers too.
            .wrap(actix_web::middleware::from_fn(
                enforce_limits::<routes::Refusal>,
            ))
            .wrap(routes::cors())
            .configure(|cfg| signatures::configure(cfg, &prefix))
            .configure(move |cfg| routes::configure(cfg, &prefix))
    })
    // Answers go out in several writes (see `routes::Sliced`); with Nagle's algorithm a
    // write smaller than a segment waits for the client's (delayed) ACK of the previous
    // one, up to 40 ms. Every answer is complete when written, so nothing is gained by
    // coalescing.
    .on_connect(|connection, _| {
        if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {error}");
            }
        }
    })
    // One write per body piece (see `routes::SLICE`); a connection keeps this buffer
    // while it is open.
    .h1_write_buffer_size(routes::SLICE)
    .max_connections(settings.max_connections)
    .max_connection_rate(settings.max_connection_rate)
    .client_request_timeout(settings.client_timeout)
    .disable_signals();
    if let Some(keep_alive) = settings.keep_alive {
        public = public.keep_alive(keep_alive);
    }
    if let Some(workers) = settings.workers {
        public = public.workers(workers);
    }
    let public = public
        .listen(listeners.service)
        .map_err(listen_error("public"))?
        .run();

    let origin = match &settings.in_process {
        Some(p) => {
            let releases = p.releases.describe();
            let graph_data = p
                .graph_data
                .as_ref()
                .map_or("none".to_owned(), |g| g.display().to_string());
            format!("one-process: releases from {releases}, graph-data {graph_data}")
        }
        None => format!("upstream: {}", settings.upstream.url),
    };
    let status_state = web::Data::new(StatusState {
        source: source.clone(),
        metrics: Arc::clone(metrics),
        origin,
    });
    let status = HttpServer::new(move || {
        App::new()
            .app_data(status_state.clone())
            .app_data(status_signatures.clone())
            .wrap(Compress::default())
            .configure(signatures::serve::configure_status)
            .configure(status::configure)
    })
    .workers(1)
    .disable_signals()
    .listen(listeners.status)
    .map_err(listen_error("status"))?
    .run();

    Ok((public, status))
}
