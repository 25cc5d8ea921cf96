//! The status server: `/livez`, `/readyz`, `/metrics` and `/status` (a JSON document:
//! the graph served, the last failure, and in one-process mode the graph-builder's facts
//! about the build, the same document parts as the graph-builder's `/status`).
//!
//! Liveness is answered as soon as the server runs. Readiness means a graph is held:
//! the reference reaches the same point by running a self-test request every 10 s,
//! which succeeds exactly once its upstream has served a graph; here the graph source
//! says so directly, without the 10 s delay.

use std::sync::Arc;
use std::time::SystemTime;

use actix_web::{web, HttpResponse};

use crate::metrics::Metrics;
use crate::source::GraphSource;

/// What the status handlers share.
#[derive(Debug, Clone)]
pub struct StatusState {
    /// The graph source whose state decides readiness.
    pub source: GraphSource,
    /// The metrics to export.
    pub metrics: Arc<Metrics>,
    /// Where graphs come from, in words (`one-process: ...` or `upstream: URL`).
    pub origin: String,
}

/// Registers the status routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/livez", web::get().to(livez))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/status", web::get().to(status));
}

/// The `/status` document of the policy-engine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusDocument {
    /// `policy-engine`.
    pub service: &'static str,
    /// The version built.
    pub version: &'static str,
    /// The git commit built from.
    pub git_commit: &'static str,
    /// Whether a graph is served (readiness).
    pub ready: bool,
    /// Why not, when not ready (the readiness body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_ready: Option<String>,
    /// One-process mode: why the graph served is degraded (tags that cannot be read, a
    /// held-back tag list shrink); the readiness body says it too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
    /// Where graphs come from.
    pub origin: String,
    /// The graph served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served: Option<ServedGraph>,
    /// The last failed refresh (fetch or build), until one succeeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// One-process mode: the refresh, releases, graph-data and built graph.
    #[serde(flatten)]
    pub build: graph_builder::report::BuildReport,
}

/// The graph being served.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct ServedGraph {
    /// Its revision here (1, 2, ... at each new graph).
    pub revision: u64,
    /// Its nodes.
    pub nodes: usize,
}

/// A failed refresh.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct LastError {
    /// What failed, with its cause.
    pub message: String,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Seconds ago.
    pub age_seconds: u64,
}

impl StatusDocument {
    /// The document as of now.
    pub fn of(state: &StatusState) -> StatusDocument {
        let current = state.source.current();
        let ready = current.snapshot.is_some();
        let message = current.failure_message();
        let not_ready = (!ready).then(|| {
            not_ready(
                current
                    .last_error
                    .as_ref()
                    .map(|(_, at)| *at)
                    .zip(message.as_deref()),
                &state.origin,
            )
        });
        StatusDocument {
            service: "policy-engine",
            version: crate::metrics::VERSION,
            git_commit: crate::metrics::GIT_COMMIT,
            ready,
            not_ready,
            degraded: state.source.board().degraded_reason(),
            origin: state.origin.clone(),
            served: current.snapshot.as_ref().map(|s| ServedGraph {
                revision: s.revision(),
                nodes: s.graph().len(),
            }),
            last_error: current.last_error.as_ref().map(|(_, at)| LastError {
                message: message.clone().unwrap_or_default(),
                at: graph_builder::report::rfc3339(*at),
                age_seconds: at.elapsed().unwrap_or_default().as_secs(),
            }),
            build: state.source.board().report(),
        }
    }
}

async fn status(state: web::Data<StatusState>) -> HttpResponse {
    HttpResponse::Ok().json(StatusDocument::of(&state))
}

async fn livez() -> HttpResponse {
    HttpResponse::Ok().finish()
}

async fn readyz(state: web::Data<StatusState>) -> HttpResponse {
    let current = state.source.current();
    let message = current.failure_message();
    match (
        current.snapshot,
        current.last_error.map(|(_, at)| at).zip(message),
    ) {
        (Some(_), None) => match state.source.board().degraded_reason() {
            // Ready, but the graph keeps releases of unreadable tags or a held-back list.
            Some(reason) => HttpResponse::Ok()
                .content_type("text/plain; charset=utf-8")
                .body(reason),
            None => HttpResponse::Ok().finish(),
        },
        // Still ready (the last good graph is served), but say what is wrong and since when.
        (Some(snapshot), Some((at, error))) => {
            let ago = at.elapsed().unwrap_or_default().as_secs();
            HttpResponse::Ok()
                .content_type("text/plain; charset=utf-8")
                .body(format!(
                    "serving graph revision {}; the last refresh failed {ago} s ago: {error}",
                    snapshot.revision()
                ))
        }
        (None, last_error) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body(not_ready(
                last_error.as_ref().map(|(at, e)| (*at, e.as_str())),
                &state.origin,
            )),
    }
}

/// What is missing while no graph is held: the last attempt's error (or that none has
/// ended yet) and where graphs come from, so the body alone says what to fix.
fn not_ready(last_error: Option<(SystemTime, &str)>, origin: &str) -> String {
    match last_error {
        Some((at, error)) => {
            let ago = at.elapsed().unwrap_or_default().as_secs();
            format!("no graph yet: {error} (last attempt {ago} s ago; {origin})")
        }
        None => format!("no graph yet: waiting for the first one ({origin})"),
    }
}

async fn metrics(state: web::Data<StatusState>) -> HttpResponse {
    match state.metrics.render() {
        Ok(text) => HttpResponse::Ok()
            .content_type(prometheus::TEXT_FORMAT)
            .body(text),
        Err(error) => {
            tracing::error!("rendering metrics: {error}");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body(format!("rendering metrics: {error}"))
        }
    }
}
