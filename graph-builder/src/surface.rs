//! Limits on requests to the public ports (the policy-engine's API and the graph-builder's
//! public port): the request target, the header block and the number of query
//! parameters, checked before any routing by one middleware ([`enforce_limits`]), with
//! one refusal (kind, status and text, [`Oversize`]) in both; and the metric label of a
//! request's path. Each service only says how a refusal is counted and rendered in its
//! own error type ([`RefuseOversize`]).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{RequestHead, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse};

/// The longest request target (path and query) accepted, in bytes.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;
/// The largest header block accepted (names, values and their separators), in bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most query parameters accepted.
pub const MAX_QUERY_PARAMS: usize = 64;

/// The `uri_path` label of a request whose path matched no route.
pub const OTHER_PATH: &str = "other";

/// Which limit a request exceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Oversize {
    /// The request target (HTTP 414).
    #[error("the request target is {length} bytes long; at most {limit} are accepted")]
    Target {
        /// Its length.
        length: usize,
        /// [`MAX_TARGET_BYTES`].
        limit: usize,
    },
    /// The header block (HTTP 431).
    #[error("the request headers are {length} bytes long; at most {limit} are accepted")]
    Headers {
        /// Their length, as sent.
        length: usize,
        /// [`MAX_HEADER_BYTES`].
        limit: usize,
    },
    /// The query parameters (HTTP 400).
    #[error("the query has more than {limit} parameters")]
    QueryParams {
        /// [`MAX_QUERY_PARAMS`].
        limit: usize,
    },
}

impl Oversize {
    /// The stable machine-readable `kind` of the refusal, the reference's.
    pub fn kind(&self) -> &'static str {
        match self {
            Oversize::Target { .. } => "uri_too_long",
            Oversize::Headers { .. } => "request_headers_too_large",
            Oversize::QueryParams { .. } => "too_many_params",
        }
    }

    /// The HTTP status of the refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Oversize::Target { .. } => StatusCode::URI_TOO_LONG,
            Oversize::Headers { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Oversize::QueryParams { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// The refusal's text: the reference-style prefix of the limit, then which one and
    /// by how much.
    pub fn message(&self) -> String {
        let prefix = match self {
            Oversize::Target { .. } => "request target too long",
            Oversize::Headers { .. } => "request headers too large",
            Oversize::QueryParams { .. } => "too many query parameters",
        };
        format!("{prefix}: {self}")
    }
}

/// How a service answers a request over a limit: counts it as it counts its other
/// errors, and renders it as its error type does.
pub trait RefuseOversize {
    /// The response to `req`, which exceeds `oversize`.
    fn refuse(req: &ServiceRequest, oversize: Oversize) -> HttpResponse;
}

/// The middleware both services wrap their public apps in
/// (`from_fn(enforce_limits::<R>)`): a request over a limit is answered by `R` before
/// any routing; the others go on.
pub async fn enforce_limits<R: RefuseOversize>(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Err(oversize) = check(req.head()) {
        let response = R::refuse(&req, oversize);
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Checks a request head against the limits.
pub fn check(head: &RequestHead) -> Result<(), Oversize> {
    let target = head.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_TARGET_BYTES {
        return Err(Oversize::Target {
            length: target,
            limit: MAX_TARGET_BYTES,
        });
    }
    // `name: value\r\n` per line.
    let headers: usize = head
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers > MAX_HEADER_BYTES {
        return Err(Oversize::Headers {
            length: headers,
            limit: MAX_HEADER_BYTES,
        });
    }
    let query = head.uri.query().unwrap_or_default();
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .take(MAX_QUERY_PARAMS + 1)
        .count();
    if params > MAX_QUERY_PARAMS {
        return Err(Oversize::QueryParams {
            limit: MAX_QUERY_PARAMS,
        });
    }
    Ok(())
}

/// A resource whose requests are counted by route: named after its pattern, which
/// [`uri_path`] then reads without allocating.
pub fn counted(pattern: String) -> actix_web::Resource {
    actix_web::web::resource(&pattern).name(&pattern)
}

/// The `uri_path` label of `req`: the pattern of its route (set by [`counted`]), or
/// [`OTHER_PATH`]. Never the path as sent, which a client can spell in endless ways
/// (percent escapes of any letter), each a new series.
pub fn uri_path(req: &HttpRequest) -> &str {
    req.match_name().unwrap_or(OTHER_PATH)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;
    use proptest::prelude::*;

    use super::*;

    fn config() -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256);
        ProptestConfig::with_cases(cases)
    }

    proptest! {
        #![proptest_config(config())]

        /// A request passes exactly when its target and query are within the limits.
        #[test]
        fn the_query_and_target_limits_are_exact(
            path_len in 1usize..9000,
            params in prop::collection::vec("[a-z]{1,3}(=[a-z0-9%+]{0,4})?", 0..80),
            empties in 0usize..4,
        ) {
            let query = params.join("&") + &"&".repeat(empties);
            let uri = format!("/{}?{query}", "p".repeat(path_len - 1));
            let got = check(TestRequest::with_uri(&uri).to_http_request().head());
            let expected = if uri.len() > MAX_TARGET_BYTES {
                Err(Oversize::Target { length: uri.len(), limit: MAX_TARGET_BYTES })
            } else if params.len() > MAX_QUERY_PARAMS {
                Err(Oversize::QueryParams { limit: MAX_QUERY_PARAMS })
            } else {
                Ok(())
            };
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn each_limit_is_inclusive_and_named() {
        let at = |uri: &str| check(TestRequest::with_uri(uri).to_http_request().head());
        let path = format!("/{}", "a".repeat(MAX_TARGET_BYTES - 1));
        assert_eq!(at(&path), Ok(()));
        assert_eq!(
            at(&format!("{path}b")),
            Err(Oversize::Target {
                length: MAX_TARGET_BYTES + 1,
                limit: MAX_TARGET_BYTES
            })
        );
        let query = |n: usize| format!("/graph?{}", vec!["a=1"; n].join("&"));
        assert_eq!(at(&query(MAX_QUERY_PARAMS)), Ok(()));
        // Empty pairs (`&&`) are not parameters.
        assert_eq!(at(&format!("{}&&&", query(MAX_QUERY_PARAMS))), Ok(()));
        assert_eq!(
            at(&query(MAX_QUERY_PARAMS + 1)),
            Err(Oversize::QueryParams {
                limit: MAX_QUERY_PARAMS
            })
        );
        let with_header = |len: usize| {
            let req = TestRequest::with_uri("/graph")
                .insert_header(("x-big", "v".repeat(len)))
                .to_http_request();
            check(req.head())
        };
        // `x-big: ` and CRLF are 9 bytes of the block.
        assert_eq!(with_header(MAX_HEADER_BYTES - 9), Ok(()));
        assert_eq!(
            with_header(MAX_HEADER_BYTES - 8),
            Err(Oversize::Headers {
                length: MAX_HEADER_BYTES + 1,
                limit: MAX_HEADER_BYTES
            })
        );
    }
}
