//! The errors a graph request can end in, and the one place that maps them to an HTTP
//! status and the reference's `{"kind": …, "value": …}` body.
//!
//! The conversion is pure: the handler counts errors in the metrics before returning
//! them, so rendering an error never has side effects.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use graph_builder::surface::Oversize;
use serde::Serialize;

/// Why a graph request failed; `kind()` and the `Display` prefix are the wire contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The `Accept` header names nothing the service can produce.
    #[error("invalid Content-Type requested")]
    InvalidContentType,
    /// Mandatory client parameters are absent (sorted names).
    #[error("mandatory client parameters missing: {}", .0.join(", "))]
    MissingParams(Vec<String>),
    /// A client parameter is malformed, or the query string does not decode.
    #[error("invalid client parameters: {0}")]
    InvalidParams(String),
    /// The upstream graph could not be fetched (transport error or non-2xx status).
    #[error("failed to fetch upstream graph: {0}")]
    UpstreamFetch(String),
    /// The upstream answered with something that is not a valid graph.
    #[error("failed to deserialize JSON: {0}")]
    JsonIn(String),
    /// A version could not be rewritten without its arch build identifier.
    #[error("failed to process version: {0}")]
    ArchVersion(String),
    /// Filtering failed for another reason.
    #[error("failed to execute plugins: {0}")]
    PluginExecution(String),
    /// The response body could not be produced.
    #[error("failed to serialize JSON: {0}")]
    JsonOut(String),
    /// The requested thing (a release signature) is not there.
    #[error("does not exist: {0}")]
    DoesNotExist(String),
    /// The request target, header block or query is over its limit (kind, status and
    /// text are the graph-builder's, [`Oversize`]).
    #[error("{}", .0.message())]
    Oversize(Oversize),
}

impl ApiError {
    /// The stable machine-readable kind, as the reference names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidContentType => "invalid_content_type",
            Self::MissingParams(_) => "missing_params",
            Self::InvalidParams(_) => "invalid_params",
            Self::UpstreamFetch(_) => "failed_upstream_fetch",
            Self::JsonIn(_) => "failed_json_in",
            Self::ArchVersion(_) => "arch_version_error",
            Self::PluginExecution(_) => "failed_plugin_execution",
            Self::JsonOut(_) => "failed_json_out",
            Self::DoesNotExist(_) => "does_not_exist",
            Self::Oversize(o) => o.kind(),
        }
    }

    /// The HTTP status the reference answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidContentType => StatusCode::NOT_ACCEPTABLE,
            Self::MissingParams(_) | Self::InvalidParams(_) => StatusCode::BAD_REQUEST,
            Self::DoesNotExist(_) => StatusCode::NOT_FOUND,
            Self::Oversize(o) => o.status(),
            Self::UpstreamFetch(_)
            | Self::JsonIn(_)
            | Self::ArchVersion(_)
            | Self::PluginExecution(_)
            | Self::JsonOut(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    kind: &'a str,
    value: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let body = ErrorBody {
            kind: self.kind(),
            value: self.to_string(),
        };
        HttpResponse::build(self.status()).json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_statuses_and_prefixes_match_the_reference() {
        let cases = [
            (
                ApiError::InvalidContentType,
                406,
                "invalid_content_type",
                "invalid Content-Type requested",
            ),
            (
                ApiError::MissingParams(vec!["arch".into(), "channel".into()]),
                400,
                "missing_params",
                "mandatory client parameters missing: arch, channel",
            ),
            (
                ApiError::InvalidParams("x".into()),
                400,
                "invalid_params",
                "invalid client parameters: x",
            ),
            (
                ApiError::UpstreamFetch("503 Service Unavailable".into()),
                500,
                "failed_upstream_fetch",
                "failed to fetch upstream graph: 503 Service Unavailable",
            ),
            (
                ApiError::JsonIn("x".into()),
                500,
                "failed_json_in",
                "failed to deserialize JSON: x",
            ),
            (
                ApiError::ArchVersion("x".into()),
                500,
                "arch_version_error",
                "failed to process version: x",
            ),
            (
                ApiError::PluginExecution("x".into()),
                500,
                "failed_plugin_execution",
                "failed to execute plugins: x",
            ),
            (
                ApiError::JsonOut("x".into()),
                500,
                "failed_json_out",
                "failed to serialize JSON: x",
            ),
            (
                ApiError::DoesNotExist("signature x".into()),
                404,
                "does_not_exist",
                "does not exist: signature x",
            ),
            (
                ApiError::Oversize(Oversize::Target {
                    length: 9000,
                    limit: 8192,
                }),
                414,
                "uri_too_long",
                "request target too long: the request target is 9000 bytes long; at most 8192 are accepted",
            ),
            (
                ApiError::Oversize(Oversize::Headers {
                    length: 17000,
                    limit: 16384,
                }),
                431,
                "request_headers_too_large",
                "request headers too large: the request headers are 17000 bytes long; at most 16384 are accepted",
            ),
            (
                ApiError::Oversize(Oversize::QueryParams { limit: 64 }),
                400,
                "too_many_params",
                "too many query parameters: the query has more than 64 parameters",
            ),
        ];
        for (err, status, kind, value) in cases {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
            assert_eq!(err.kind(), kind);
            assert_eq!(err.to_string(), value);
            let response = err.error_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(
                response.headers().get("content-type").unwrap(),
                "application/json"
            );
        }
    }
}
