//! The three listeners and [`run`], which tests call directly on listeners
//! bound to `127.0.0.1:0`:
//!
//! - main: `{prefix}/graph` and `{prefix}/v1/graph`, the raw graph as `application/json`;
//!   an empty 200 body before the first good graph, as the reference;
//! - public: `{prefix}/graph-data`, the graph-data tarball the served graph was built with;
//! - status: `/liveness`, `/readiness`, `/metrics` ([`crate::status`]).

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::SizedStream;
use actix_web::dev::ServiceRequest;
use actix_web::http::header::{
    AcceptEncoding, Encoding, HeaderValue, ACCEPT, CONTENT_ENCODING, VARY,
};
use actix_web::middleware::Compress;
use actix_web::{
    web, App, HttpMessage as _, HttpRequest, HttpResponse, HttpServer, ResponseError as _,
};
use graph_data::keys::missing_parameters;
use tokio_util::sync::CancellationToken;

use crate::config::{GraphDataSettings, Settings};
use crate::error::ServiceError;
use crate::graph_data_source::{GraphDataImage, GraphDataSource};
use crate::metrics::Metrics;
use crate::refresh::{self, Pipeline, ReleaseSource};
use crate::registry::RegistryError;
use crate::scrape::ScrapeError;
use crate::status::{self, AppState};
use crate::surface::{counted, enforce_limits, uri_path, Oversize, RefuseOversize};

/// How long a graceful shutdown waits for requests in flight.
const SHUTDOWN_SECS: u64 = 5;

/// The one media type the graph-builder serves.
const APPLICATION_JSON: &str = "application/json";

/// The bound sockets, in the order main, public, status.
#[derive(Debug)]
pub struct Listeners {
    /// Serves the graph.
    pub main: TcpListener,
    /// Serves the graph-data tarball.
    pub public: TcpListener,
    /// Serves liveness, readiness and metrics.
    pub status: TcpListener,
}

impl Listeners {
    /// Binds the three addresses of the settings.
    pub fn bind(settings: &Settings) -> Result<Listeners, RunError> {
        let bind = |name: &'static str, address: SocketAddr| {
            TcpListener::bind(address).map_err(|source| RunError::Bind {
                name,
                address,
                source,
            })
        };
        Ok(Listeners {
            main: bind("main", settings.service.main)?,
            public: bind("public", settings.service.public)?,
            status: bind("status", settings.status)?,
        })
    }
}

/// Why the service could not start or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A listen address is unavailable.
    #[error("cannot bind the {name} listener to {address}")]
    Bind {
        /// `main`, `public` or `status`.
        name: &'static str,
        /// The address.
        address: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The release source settings are unusable (registry URL, CA directory, …).
    #[error("cannot set up the release source")]
    ReleaseSource(#[source] Box<ScrapeError>),
    /// The graph-data image settings are unusable (registry URL, CA directory, …).
    #[error("cannot set up the graph-data image source")]
    GraphDataSource(#[source] RegistryError),
    /// The metrics registry refused a metric (a bug).
    #[error("cannot register the metrics")]
    Metrics(#[source] prometheus::Error),
    /// A listener failed.
    #[error("the {name} listener failed")]
    Serve {
        /// `main`, `public` or `status`.
        name: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Routing settings the main and public handlers need.
#[derive(Debug)]
struct Routes {
    mandatory_client_parameters: BTreeSet<String>,
}

/// Runs the refresh loop and the three listeners until `shutdown` completes, then stops
/// them gracefully (requests in flight are answered).
pub async fn run(
    settings: Settings,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let state = web::Data::new(AppState::new(Metrics::new().map_err(RunError::Metrics)?));
    let pipeline = Arc::new(Pipeline::new(
        ReleaseSource::new(&settings.releases).map_err(|e| RunError::ReleaseSource(Box::new(e)))?,
        match &settings.graph_data {
            None => None,
            Some(GraphDataSettings::Path(path)) => Some(GraphDataSource::Path(path.clone())),
            Some(GraphDataSettings::Image(image)) => Some(GraphDataSource::Image(Box::new(
                GraphDataImage::new((**image).clone()).map_err(RunError::GraphDataSource)?,
            ))),
        },
        settings.edge_add_remove,
    ));
    state.board.watch_progress(pipeline.releases.progress());
    let stop = CancellationToken::new();
    let refresher = tokio::spawn(refresh::run(
        pipeline,
        state.clone().into_inner(),
        settings.refresh,
        stop.clone(),
    ));
    let watcher_state = state.clone();
    tokio::spawn(async move {
        // A panic in the refresh loop leaves a service that will never refresh again:
        // say so through liveness, as the reference's panic hook does.
        if let Err(e) = refresher.await {
            if e.is_panic() {
                watcher_state.set_live(false);
                tracing::error!("the refresh loop panicked; liveness is now false");
            }
        }
    });

    let prefix = settings.service.path_prefix.clone();
    let routes = web::Data::new(Routes {
        mandatory_client_parameters: settings.service.mandatory_client_parameters.clone(),
    });
    let serve_err = |name| move |source| RunError::Serve { name, source };

    let (s, r, p) = (state.clone(), routes.clone(), prefix.clone());
    let main = HttpServer::new(move || {
        App::new()
            .app_data(s.clone())
            .app_data(r.clone())
            .wrap(actix_web::middleware::from_fn(enforce_limits::<Refusal>))
            .wrap(Compress::default())
            .service(counted(format!("{p}/graph")).route(web::get().to(graph)))
            .service(counted(format!("{p}/v1/graph")).route(web::get().to(graph)))
            // Next to the graph, so a policy-engine finds it from its upstream graph URL.
            .route(&format!("{p}/provenance"), web::get().to(provenance))
            .route(&format!("{p}/v1/provenance"), web::get().to(provenance))
    })
    .keep_alive(Duration::from_secs(10))
    .shutdown_timeout(SHUTDOWN_SECS)
    .disable_signals()
    .listen(listeners.main)
    .map_err(serve_err("main"))?
    .run();

    let (s, p) = (state.clone(), prefix);
    let public = HttpServer::new(move || {
        App::new()
            .app_data(s.clone())
            .wrap(actix_web::middleware::from_fn(enforce_limits::<Refusal>))
            .route(&format!("{p}/graph-data"), web::get().to(graph_data))
            .route(&format!("{p}/provenance"), web::get().to(provenance))
    })
    .workers(1)
    .shutdown_timeout(SHUTDOWN_SECS)
    .disable_signals()
    .listen(listeners.public)
    .map_err(serve_err("public"))?
    .run();

    let s = state.clone();
    let status_server = HttpServer::new(move || {
        App::new()
            .app_data(s.clone())
            .wrap(Compress::default())
            .configure(status::routes)
    })
    .workers(1)
    .shutdown_timeout(SHUTDOWN_SECS)
    .disable_signals()
    .listen(listeners.status)
    .map_err(serve_err("status"))?
    .run();

    let handles = [main.handle(), public.handle(), status_server.handle()];
    let servers = futures::future::try_join3(
        async { main.await.map_err(serve_err("main")) },
        async { public.await.map_err(serve_err("public")) },
        async { status_server.await.map_err(serve_err("status")) },
    );
    tokio::pin!(servers);
    let outcome = tokio::select! {
        () = shutdown => None,
        result = &mut servers => Some(result.map(|_| ())),
    };
    tracing::info!("shutting down");
    stop.cancel();
    // The servers only act on a stop request while they are polled: drive both.
    let stop_all = futures::future::join_all(handles.iter().map(|h| h.stop(true)));
    match outcome {
        Some(result) => {
            stop_all.await;
            result
        }
        None => futures::future::join(stop_all, servers).await.1.map(|_| ()),
    }
}

/// Requests over the size limits, refused before routing: counted like any error.
struct Refusal;

impl RefuseOversize for Refusal {
    fn refuse(req: &ServiceRequest, oversize: Oversize) -> HttpResponse {
        let mut error = ServiceError::Oversize(oversize);
        if let Some(state) = req.app_data::<web::Data<AppState>>() {
            error = refuse(state, error);
        }
        error.error_response()
    }
}

/// Counts an error response, then returns it for actix to render.
fn refuse(state: &AppState, error: ServiceError) -> ServiceError {
    state
        .metrics
        .response_errors_total
        .with_label_values(&[error.status_code().as_str(), error.kind()])
        .inc();
    error
}

/// The reference's Accept rule for the graph-builder: absent, exactly
/// `application/json`, or anything with a `*` segment (`*/*`, `*`, `application/*`).
/// Lists, parameters and the Cincinnati v1 media type are refused.
fn acceptable(accept: Option<&HeaderValue>) -> bool {
    match accept.map(HeaderValue::to_str) {
        None => true,
        Some(Ok(value)) => value == APPLICATION_JSON || value.split('/').any(|s| s == "*"),
        Some(Err(_)) => false,
    }
}

async fn graph(
    req: HttpRequest,
    state: web::Data<AppState>,
    routes: web::Data<Routes>,
) -> Result<HttpResponse, ServiceError> {
    state
        .metrics
        .incoming_requests_total
        .with_label_values(&[uri_path(&req)])
        .inc();
    if !acceptable(req.headers().get(ACCEPT)) {
        return Err(refuse(&state, ServiceError::InvalidContentType));
    }
    let missing = missing_parameters(&routes.mandatory_client_parameters, req.query_string());
    if !missing.is_empty() {
        return Err(refuse(&state, ServiceError::MissingParams(missing)));
    }
    // Before the first good graph: an empty 200, as the reference answers.
    let Some(published) = state.current() else {
        return Ok(HttpResponse::Ok().content_type(APPLICATION_JSON).finish());
    };
    let json = &published.graph_json;
    let mut response = HttpResponse::Ok();
    response
        .content_type(APPLICATION_JSON)
        .insert_header((VARY, "accept-encoding"));
    // The same choice the compression middleware makes for the other routes; a response
    // that is already coded passes it untouched.
    let gzip = Encoding::gzip();
    let wants_gzip = req.get_header::<AcceptEncoding>().is_some_and(|accepted| {
        accepted.negotiate([gzip.clone(), Encoding::identity()].iter()) == Some(gzip)
    });
    Ok(if wants_gzip {
        response
            .insert_header((CONTENT_ENCODING, "gzip"))
            .body(json.gzip().clone())
    } else {
        response.body(SizedStream::new(json.len(), json.plain_chunks()))
    })
}

async fn graph_data(state: web::Data<AppState>) -> Result<HttpResponse, ServiceError> {
    match state.current().and_then(|p| p.graph_data.clone()) {
        Some(tarball) => Ok(HttpResponse::Ok()
            .content_type("application/gzip")
            .body(tarball)),
        None => Err(refuse(
            &state,
            ServiceError::FileOpen(
                "the graph-data tarball: no graph has been built with graph-data yet",
            ),
        )),
    }
}

/// The provenance of the graph being served (why edges are missing), for the
/// policy-engine's planner; same graph revision as `/graph` at the time of the request.
async fn provenance(state: web::Data<AppState>) -> Result<HttpResponse, ServiceError> {
    match state.current() {
        Some(p) => Ok(HttpResponse::Ok()
            .content_type(APPLICATION_JSON)
            .body(p.provenance.clone())),
        None => Err(refuse(
            &state,
            ServiceError::FileOpen("the provenance: no graph has been built yet"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_rule() {
        let ok = |v: &str| acceptable(Some(&HeaderValue::from_str(v).unwrap()));
        assert!(acceptable(None));
        for v in ["application/json", "*/*", "*", "application/*"] {
            assert!(ok(v), "{v}");
        }
        for v in [
            "application/vnd.redhat.cincinnati.v1+json",
            "application/json, text/plain",
            "application/json; charset=utf-8",
            "text/html",
            "app/anything-really",
        ] {
            assert!(!ok(v), "{v}");
        }
    }
}
