//! The one place that maps request errors to HTTP: a status and the
//! reference's stable `kind`, in a `{"kind","value"}` JSON body. Counting
//! errors in metrics is the handler's business, not this conversion's.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// Why a request to the graph-builder is refused.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The Accept header names nothing we serve.
    #[error("invalid Content-Type requested")]
    InvalidContentType,
    /// Mandatory query parameters are absent (sorted).
    #[error("mandatory client parameters missing: {}", .0.join(", "))]
    MissingParams(Vec<String>),
    /// The graph-data tarball is not available.
    #[error("failed to open file: unable to open {0}")]
    FileOpen(&'static str),
    /// The request target, header block or query is over its limit.
    #[error("{}", .0.message())]
    Oversize(crate::surface::Oversize),
}

impl ServiceError {
    /// The stable machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ServiceError::InvalidContentType => "invalid_content_type",
            ServiceError::MissingParams(_) => "missing_params",
            ServiceError::FileOpen(_) => "file_open_err",
            ServiceError::Oversize(o) => o.kind(),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    kind: &'a str,
    value: String,
}

impl ResponseError for ServiceError {
    fn status_code(&self) -> StatusCode {
        match self {
            ServiceError::InvalidContentType => StatusCode::NOT_ACCEPTABLE,
            ServiceError::MissingParams(_) => StatusCode::BAD_REQUEST,
            ServiceError::FileOpen(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ServiceError::Oversize(o) => o.status(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(Body {
            kind: self.kind(),
            value: self.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_statuses_and_texts_are_the_reference_ones() {
        let cases = [
            (
                ServiceError::InvalidContentType,
                406,
                "invalid_content_type",
                "invalid Content-Type requested",
            ),
            (
                ServiceError::MissingParams(vec!["arch".into(), "channel".into()]),
                400,
                "missing_params",
                "mandatory client parameters missing: arch, channel",
            ),
            (
                ServiceError::FileOpen("graph-data tarball"),
                500,
                "file_open_err",
                "failed to open file: unable to open graph-data tarball",
            ),
            (
                ServiceError::Oversize(crate::surface::Oversize::Target {
                    length: 9000,
                    limit: 8192,
                }),
                414,
                "uri_too_long",
                "request target too long: the request target is 9000 bytes long; at most 8192 are accepted",
            ),
            (
                ServiceError::Oversize(crate::surface::Oversize::Headers {
                    length: 17000,
                    limit: 16384,
                }),
                431,
                "request_headers_too_large",
                "request headers too large: the request headers are 17000 bytes long; at most 16384 are accepted",
            ),
            (
                ServiceError::Oversize(crate::surface::Oversize::QueryParams { limit: 64 }),
                400,
                "too_many_params",
                "too many query parameters: the query has more than 64 parameters",
            ),
        ];
        for (error, status, kind, value) in cases {
            assert_eq!(error.status_code().as_u16(), status);
            assert_eq!(error.kind(), kind);
            assert_eq!(error.to_string(), value);
        }
    }
}
