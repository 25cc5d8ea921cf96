//! The public API: `{prefix}/graph`, `{prefix}/v1/graph`,
//! `{prefix}/openapi`, `{prefix}/v1/openapi`, CORS, and a 404 with an empty body for
//! anything else.
//!
//! Checks run in the reference's order: Accept, mandatory parameters, query decoding,
//! channel, arch. The body then comes from the current snapshot's cache; only the
//! headers differ between media types and codings.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_cors::Cors;
use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use crate::error::ApiError;
use crate::filter::GraphParams;
use crate::metrics::Metrics;
use crate::negotiate;
use crate::query;
use crate::source::GraphSource;
use graph_builder::surface::{counted, uri_path, Oversize, RefuseOversize};

/// How long a request made before the first graph waits for the first fetch to end;
/// longer than the upstream timeout, so the first attempt always decides.
const FIRST_GRAPH_PATIENCE: Duration = Duration::from_secs(35);

/// What the public handlers share.
#[derive(Debug)]
pub struct ApiState {
    /// The graph being served.
    pub source: GraphSource,
    /// Counters and histograms.
    pub metrics: Arc<Metrics>,
    /// Parameters every graph request must carry.
    pub mandatory: BTreeSet<String>,
    /// The rendered OpenAPI document.
    pub openapi: Bytes,
}

/// Registers the public routes under `prefix` (normalised: empty or `/a/b`).
pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str) {
    for path in ["graph", "v1/graph"] {
        cfg.service(
            counted(format!("{prefix}/{path}"))
                .route(web::get().to(graph))
                .route(web::head().to(graph)),
        );
    }
    for path in ["openapi", "v1/openapi"] {
        cfg.service(web::resource(format!("{prefix}/{path}")).route(web::get().to(openapi)));
    }
    crate::planner::configure(cfg, prefix);
    cfg.default_service(web::to(not_found));
}

/// Requests over the size limits, refused before routing by the shared middleware
/// (`from_fn(enforce_limits::<Refusal>)`), with the error's status and body, counted like
/// any error response.
#[derive(Debug)]
pub struct Refusal;

impl RefuseOversize for Refusal {
    fn refuse(req: &ServiceRequest, oversize: Oversize) -> HttpResponse {
        let error = ApiError::Oversize(oversize);
        if let Some(state) = req.app_data::<web::Data<ApiState>>() {
            state.metrics.count_error(&error);
        }
        tracing::debug!(kind = error.kind(), "{error}");
        actix_web::ResponseError::error_response(&error)
    }
}

/// CORS as the reference sets it: any origin (echoed back), `GET` and `HEAD`.
pub fn cors() -> Cors {
    Cors::default()
        .allow_any_origin()
        .allowed_methods(["GET", "HEAD"])
        .allow_any_header()
        .expose_headers([header::ETAG])
}

async fn graph(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    state.metrics.count_incoming(uri_path(&req));
    let result = serve_graph(&req, &state).await;
    if let Err(error) = &result {
        state.metrics.count_error(error);
        // Server-side causes are logged once where they happen (upstream fetch, body
        // computation), not once per request.
        tracing::debug!(path = req.path(), kind = error.kind(), "{error}");
    }
    result
}

async fn serve_graph(req: &HttpRequest, state: &ApiState) -> Result<HttpResponse, ApiError> {
    // A value that is not visible ASCII cannot name anything we serve.
    let accept = header_list(req, header::ACCEPT).map_err(|_| ApiError::InvalidContentType)?;
    let content_type = negotiate::content_type(accept.as_deref())?;
    query::ensure_present(&state.mandatory, req.query_string())?;
    let params = GraphParams::from_query(&query::decode_only(
        req.query_string(),
        &["channel", "arch"],
    )?)?;
    let timer = state.metrics.serve_duration.start_timer();
    let snapshot = state.source.snapshot(FIRST_GRAPH_PATIENCE).await?;
    let body = snapshot.body(&params.channel, &params.arch).await?;
    timer.observe_duration();

    let accept_encoding = header_list(req, header::ACCEPT_ENCODING).ok().flatten();
    let gzip = negotiate::accepts_gzip(accept_encoding.as_deref());
    let etag = if gzip { &body.etag_gzip } else { &body.etag };
    let if_none_match = header_list(req, header::IF_NONE_MATCH).ok().flatten();
    let fresh = if_none_match.is_some_and(|value| {
        negotiate::none_match(
            Some(&value),
            &[tag_str(&body.etag), tag_str(&body.etag_gzip)],
        )
    });
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    // Header values are built once per body, not per request.
    response
        .insert_header((header::ETAG, etag.clone()))
        // The body depends on both headers.
        .insert_header((
            header::VARY,
            HeaderValue::from_static("Accept, Accept-Encoding"),
        ));
    if fresh {
        return Ok(response.finish());
    }
    response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)));
    Ok(if gzip {
        response
            .insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")))
            .body(Sliced::new(body.gzip.clone()))
    } else {
        response.body(Sliced::new(snapshot.identity(&body).await?))
    })
}

/// The largest piece of a body handed to actix-web at once, and the size of its HTTP/1
/// write buffer (set where the server is built): actix copies each piece into that
/// buffer and writes the buffer out once it holds this much, so each piece is one write.
/// At actix's default of 32 KiB the 75 KB conformance body took three writes and a
/// 484 KB body fifteen, each a syscall and a TCP push (the sockets are `TCP_NODELAY`).
/// Against nginx at 64 connections, 64 KiB and 96 KiB pieces both served more requests
/// per second than 32 KiB, 96 KiB the most for bodies that then fit one write. It stays
/// under actix's retention limit (128 KiB): past it, the buffer is freed and allocated
/// again after every write. Whole bodies handed over at once grow every connection's
/// buffer to the body's size, a large allocation per request.
pub const SLICE: usize = 96 * 1024;

/// A held body served in [`SLICE`]-sized pieces of the same allocation (no copy); the
/// length is known, so the answer keeps its `Content-Length`.
struct Sliced(Bytes);

impl Sliced {
    fn new(bytes: Bytes) -> Self {
        Self(bytes)
    }
}

impl MessageBody for Sliced {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.0.len() as u64)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let rest = &mut self.get_mut().0;
        if rest.is_empty() {
            return Poll::Ready(None);
        }
        let piece = rest.split_to(rest.len().min(SLICE));
        Poll::Ready(Some(Ok(piece)))
    }
}

/// An entity tag we made: always visible ASCII.
fn tag_str(tag: &HeaderValue) -> &str {
    tag.to_str().unwrap_or_default()
}

/// All values of a header joined as one list (RFC 9110 §5.3), borrowed in the common
/// single-value case; an error if one is not visible ASCII.
fn header_list(
    req: &HttpRequest,
    name: HeaderName,
) -> Result<Option<Cow<'_, str>>, header::ToStrError> {
    let mut values = req.headers().get_all(name);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    let mut joined = Cow::Borrowed(first.to_str()?);
    for value in values {
        let owned = joined.to_mut();
        owned.push(',');
        owned.push_str(value.to_str()?);
    }
    Ok(Some(joined))
}

async fn openapi(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(negotiate::JSON)
        .body(state.openapi.clone())
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    tracing::debug!(method = %req.method(), path = req.path(), "no route for this path");
    HttpResponse::NotFound().finish()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use actix_web::{test, App};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Counts the events at WARN or above.
    struct Loud(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Loud {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if *event.metadata().level() <= tracing::Level::WARN {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A client probing paths (or sending oversized requests) cannot fill the log:
    /// nothing per request is logged at WARN or above.
    #[actix_web::test]
    async fn probes_and_refusals_log_nothing_at_warn() {
        let loud = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry().with(Loud(Arc::clone(&loud)));
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    graph_builder::surface::enforce_limits::<Refusal>,
                ))
                .configure(|cfg| configure(cfg, "/api")),
        )
        .await;
        let long = format!("/api/graph?{}", "a=1&".repeat(100));
        for uri in ["/probe", "/.env", "/api/nope?x=1", "/wp-login.php", &long] {
            let response =
                test::call_service(&app, test::TestRequest::with_uri(uri).to_request()).await;
            assert!(response.status().is_client_error(), "{uri}");
        }
        assert_eq!(loud.load(Ordering::Relaxed), 0);
    }
}
