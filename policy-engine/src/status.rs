//! The status server (SPEC B §1.9): `/livez`, `/readyz` and `/metrics`.
//!
//! Liveness is answered as soon as the server runs. Readiness means a graph is held:
//! the reference reaches the same point by running a self-test request every 10 s,
//! which succeeds exactly once its upstream has served a graph; here the graph source
//! says so directly, without the 10 s delay.

use std::sync::Arc;

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
}

/// Registers the status routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/livez", web::get().to(livez))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn livez() -> HttpResponse {
    HttpResponse::Ok().finish()
}

async fn readyz(state: web::Data<StatusState>) -> HttpResponse {
    let current = state.source.current();
    match (current.snapshot, current.last_error) {
        (Some(_), None) => HttpResponse::Ok().finish(),
        // Still ready (the last good graph is served), but say what is wrong and since when.
        (Some(snapshot), Some((error, at))) => {
            let ago = at.elapsed().unwrap_or_default().as_secs();
            HttpResponse::Ok()
                .content_type("text/plain; charset=utf-8")
                .body(format!(
                    "serving graph revision {}; the last refresh failed {ago} s ago: {error}",
                    snapshot.revision()
                ))
        }
        (None, Some((error, at))) => {
            let ago = at.elapsed().unwrap_or_default().as_secs();
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body(format!("no graph yet: {error} (last attempt {ago} s ago)"))
        }
        (None, None) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("no graph yet: waiting for the first one"),
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
