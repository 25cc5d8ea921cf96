//! `GET|HEAD {prefix}/signatures/<algo>=<digest>/signature-<n>` on the public port, and
//! `/signatures` on the status port (what is served, refused, skipped, the releases of
//! the graph without a valid signature, and the coverage per architecture).
//!
//! Answers as the reference metadata-helper does: an algorithm other than `sha256` or
//! the legacy `sha` is `invalid_params` (400); anything else not in the store, including
//! malformed digests, `signature-0`, huge numbers and traversal attempts, is
//! `does_not_exist` (404). Nothing is read from disk at request time, so no path can
//! reach a file.

use std::borrow::Cow;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use graph_data::signatures::{parse_signature_name, Algorithm, ImageDigest};
use serde::Serialize;

use super::{SignatureMetrics, SignatureState};
use crate::error::ApiError;
use crate::negotiate;

/// What the signature handler shares.
#[derive(Debug, Clone)]
pub struct SignatureApi {
    /// What is served.
    pub state: SignatureState,
    /// Counters.
    pub metrics: SignatureMetrics,
}

/// Registers the public signature route under `prefix` (normalised: empty or `/a/b`).
/// Must come before a default service.
pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str) {
    cfg.service(
        web::resource(format!("{prefix}/signatures/{{digest}}/{{signature}}"))
            .route(web::get().to(signature))
            .route(web::head().to(signature)),
    );
}

/// Registers `/signatures` on the status server.
pub fn configure_status(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/signatures").route(web::get().to(status)));
}

/// Longest piece of a request echoed back in an error.
const ECHO: usize = 160;

fn echo(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(ECHO) {
        Some((at, _)) => Cow::Owned(format!("{}…", &text[..at])),
        None => Cow::Borrowed(text),
    }
}

async fn signature(req: HttpRequest, api: web::Data<SignatureApi>) -> HttpResponse {
    let outcome = lookup(&req, &api);
    let label = match &outcome {
        Ok(response) if response.status().as_u16() == 304 => "not_modified",
        Ok(_) => "served",
        Err(ApiError::InvalidParams(_)) => "invalid_params",
        Err(_) => "does_not_exist",
    };
    api.metrics.requests.with_label_values(&[label]).inc();
    outcome.unwrap_or_else(|error| {
        tracing::debug!(path = req.path(), kind = error.kind(), "{error}");
        actix_web::ResponseError::error_response(&error)
    })
}

fn lookup(req: &HttpRequest, api: &SignatureApi) -> Result<HttpResponse, ApiError> {
    let info = req.match_info();
    let (Some(digest), Some(name)) = (info.get("digest"), info.get("signature")) else {
        return Err(ApiError::DoesNotExist("signature".to_owned()));
    };
    let missing = || ApiError::DoesNotExist(format!("signature {}/{}", echo(digest), echo(name)));
    let (algorithm, hex) = digest.split_once('=').ok_or_else(missing)?;
    let algorithm = Algorithm::parse(algorithm).ok_or_else(|| {
        ApiError::InvalidParams(format!("algo not supported: {}", echo(algorithm)))
    })?;
    let digest = ImageDigest::new(algorithm, hex).ok_or_else(missing)?;
    let index = parse_signature_name(name).ok_or_else(missing)?;
    let served = api.state.current();
    let signature = served.store.get(&digest, index).ok_or_else(missing)?;
    let if_none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if negotiate::none_match(if_none_match, &[&signature.etag]) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, signature.etag.as_str()))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((header::ETAG, signature.etag.as_str()))
        .body(signature.bytes.clone()))
}

#[derive(Serialize)]
struct Status<'a> {
    /// `loading` before the first refresh ends, `ok` when the last one met no error,
    /// `errors` otherwise.
    state: &'static str,
    refreshes: u64,
    verified: bool,
    signatures: usize,
    digests: usize,
    bytes: u64,
    refused: Vec<RefusedView<'a>>,
    skipped: Vec<String>,
    errors: &'a [String],
    releases_without_signature: usize,
    unsigned: &'a [super::refresh::Unsigned],
    /// Signed and unsigned releases of the graph, per architecture, and whether this
    /// site serves signatures at all.
    coverage: &'a super::coverage::Coverage,
}

#[derive(Serialize)]
struct RefusedView<'a> {
    digest: String,
    origin: &'a str,
    reason: &'a str,
}

async fn status(api: web::Data<SignatureApi>) -> HttpResponse {
    let served = api.state.current();
    let state = match (served.refreshes, served.errors.is_empty()) {
        (0, _) => "loading",
        (_, true) => "ok",
        (_, false) => "errors",
    };
    let body = Status {
        state,
        refreshes: served.refreshes,
        verified: served.verified,
        signatures: served.store.len(),
        digests: served.store.digests().count(),
        bytes: served.store.total_bytes(),
        refused: served
            .refused
            .iter()
            .take(super::refresh::MAX_LISTED)
            .map(|r| RefusedView {
                digest: r.digest.to_string(),
                origin: &r.origin,
                reason: &r.reason,
            })
            .collect(),
        skipped: served
            .problems
            .iter()
            .take(super::refresh::MAX_LISTED)
            .map(ToString::to_string)
            .collect(),
        errors: &served.errors,
        releases_without_signature: served.coverage.unsigned,
        unsigned: &served.unsigned,
        coverage: &served.coverage,
    };
    HttpResponse::Ok().json(body)
}
