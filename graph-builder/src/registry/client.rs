//! The HTTP side of the Docker Registry v2 / OCI distribution API.
//!
//! One `RegistryClient` lives for one scrape: it holds the credentials read for that scrape
//! and the request counters; the `Authorization` value is shared with the scraper so that a
//! token outlives the scrape. Requests that fail in
//! transport, time out, or get 5xx/429 are retried with exponential backoff; 4xx never are.
//! A 401 triggers one re-authentication from the response's challenge (Bearer token or
//! Basic), then the request is sent once more.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::Url;

use super::auth::{
    lookup_keys, parse_challenge, AuthHeader, Challenge, Credentials, SharedAuth, TokenResponse,
};
use super::error::{parse_error_body, RegistryErrorBody, ScrapeError};
use super::Target;

/// A blob's bytes as they arrive; errors are [`crate::layer::SourceError`]s.
pub(crate) type BlobStream = futures::stream::BoxStream<'static, std::io::Result<Bytes>>;

/// Largest manifest or config blob we read into memory.
pub(crate) const SMALL_DOCUMENT_CAP: usize = 4 * 1024 * 1024;
/// The longest `Retry-After` we honour.
const MAX_RETRY_AFTER_SECS: u64 = 10;
/// Largest error body we read.
const ERROR_BODY_CAP: usize = 64 * 1024;
/// `Docker-Content-Digest`.
pub(crate) const CONTENT_DIGEST: &str = "docker-content-digest";

/// Request counters, shared with the blob streams so bytes are counted as they arrive.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) http_requests: AtomicU64,
    pub(crate) blob_requests: AtomicU64,
    pub(crate) blob_bytes: AtomicU64,
}

/// How failed requests are retried: `attempts` tries in all, waiting `base_delay`,
/// then twice that, and so on, between them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub(crate) attempts: u32,
    pub(crate) base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // 200 ms, 400 ms, 800 ms between four attempts.
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(200),
        }
    }
}

/// What a `HEAD` on a manifest said.
#[derive(Debug)]
pub(crate) enum Head {
    /// The manifest exists and its digest is this.
    Digest(String),
    /// The manifest exists but the registry did not say its digest.
    NoDigest,
    /// 404: the tag is gone.
    NotFound,
}

/// A manifest as fetched, with its verified digest.
#[derive(Debug, Clone)]
pub(crate) struct FetchedManifest {
    pub(crate) digest: String,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Bytes,
}

/// A small document and the headers that matter.
pub(crate) struct Small {
    pub(crate) claimed: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Bytes,
}

/// Builds the shared HTTP client: system roots plus the CA directory's certificates,
/// verified as [`super::tls`] describes.
pub(crate) fn build_http_client(
    registry: &str,
    ca: &super::ca::CaCertificates,
) -> Result<reqwest::Client, ScrapeError> {
    let tls = super::tls::client_config(ca).map_err(|e| ScrapeError::InvalidSettings {
        field: "root_certificate_dir",
        value: ca.describe(),
        reason: format!("cannot set up TLS: {e}"),
    })?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .user_agent(concat!("graph-builder/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|source| ScrapeError::HttpClient {
            registry: registry.to_string(),
            source,
        })
}

/// A registry session for one repository.
#[derive(Debug)]
pub(crate) struct RegistryClient {
    http: reqwest::Client,
    pub(super) target: Target,
    credentials: Option<Credentials>,
    /// Shared with the `Scraper`, so a token outlives one scrape; a 401 replaces it.
    authorization: SharedAuth,
    pub(crate) counters: Arc<Counters>,
    pub(super) retry: RetryPolicy,
    /// The token scope's actions: `pull`, or `pull,push` for the push client.
    pub(super) actions: &'static str,
}

impl RegistryClient {
    pub(crate) fn new(
        http: reqwest::Client,
        target: Target,
        credentials: Option<Credentials>,
        authorization: SharedAuth,
        retry: RetryPolicy,
    ) -> Self {
        RegistryClient {
            http,
            target,
            credentials,
            authorization,
            counters: Arc::default(),
            retry,
            actions: "pull",
        }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    pub(super) fn repo_url(&self, rest: &str) -> Url {
        let path = format!("/v2/{}/{rest}", self.target.repository);
        let mut url = self.target.base.clone();
        url.set_path(&path);
        url
    }

    /// Sends with retries on transport errors, 5xx and 429; returns any other response.
    async fn execute(
        &self,
        item: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, ScrapeError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.attempts;
            let mut delay = self.retry.base_delay * 2u32.pow(attempt - 1);
            self.counters.http_requests.fetch_add(1, Ordering::Relaxed);
            match build().send().await {
                Err(source) if is_certificate_error(&source) => {
                    return Err(ScrapeError::Certificate {
                        registry: self.target.host.clone(),
                        repository: self.target.repository.clone(),
                        item: item.to_string(),
                        reason: super::tls::refusal(&source).unwrap_or_default(),
                    });
                }
                Err(source) if last || source.is_builder() || source.is_redirect() => {
                    return Err(ScrapeError::Transport {
                        registry: self.target.host.clone(),
                        repository: self.target.repository.clone(),
                        item: item.to_string(),
                        attempts: attempt,
                        source,
                    });
                }
                Err(error) => {
                    tracing::debug!(%item, attempt, error = %error, "retrying after transport error");
                }
                Ok(response) => {
                    let status = response.status();
                    let transient =
                        status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    if !transient || last {
                        return Ok(response);
                    }
                    tracing::debug!(%item, attempt, %status, "retrying after transient status");
                    delay = delay.max(retry_after(&response));
                }
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends an authorized request; on 401 re-authenticates once and sends again.
    pub(super) async fn send(
        &self,
        method: Method,
        url: Url,
        accept: Option<&str>,
        item: &str,
    ) -> Result<Response, ScrapeError> {
        self.send_with(method, url, item, |request| match accept {
            Some(accept) => request.header(ACCEPT, accept),
            None => request,
        })
        .await
    }

    /// [`Self::send`] with headers and body set by `customize` (called once per attempt).
    pub(super) async fn send_with(
        &self,
        method: Method,
        url: Url,
        item: &str,
        customize: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, ScrapeError> {
        let mut reauthenticated = false;
        loop {
            let authorization = self.authorization.read().expect("lock").clone();
            let response = self
                .execute(item, || {
                    let mut request = customize(self.http.request(method.clone(), url.clone()));
                    if let Some(AuthHeader(value)) = &authorization {
                        request = request.header(AUTHORIZATION, value);
                    }
                    request
                })
                .await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            if reauthenticated {
                let errors = read_error_body(response).await;
                let reason = self.refusal("the registry refused the request");
                return Err(self.unauthorized(item, &reason, errors));
            }
            reauthenticated = true;
            self.authenticate(&response, item).await?;
        }
    }

    fn unauthorized(
        &self,
        item: &str,
        reason: &str,
        errors: Vec<RegistryErrorBody>,
    ) -> ScrapeError {
        ScrapeError::Unauthorized {
            registry: self.target.host.clone(),
            repository: self.target.repository.clone(),
            item: item.to_string(),
            reason: reason.to_string(),
            errors,
        }
    }

    /// Says whether credentials were sent, and if not, which config.json keys were tried.
    fn refusal(&self, what: &str) -> String {
        match &self.credentials {
            Some(c) => format!("{what} with the credentials of user {:?}", c.username),
            None => format!(
                "{what} to an anonymous client; no credentials entry matched (keys tried: {})",
                lookup_keys(&self.target.host, &self.target.repository).join(", ")
            ),
        }
    }

    pub(super) fn protocol(&self, item: &str, reason: String) -> ScrapeError {
        ScrapeError::Protocol {
            registry: self.target.host.clone(),
            repository: self.target.repository.clone(),
            item: item.to_string(),
            reason,
        }
    }

    /// Turns a non-success response into an error carrying the registry's error body.
    pub(crate) async fn status_error(&self, response: Response, item: &str) -> ScrapeError {
        let status = response.status().as_u16();
        ScrapeError::Registry {
            registry: self.target.host.clone(),
            repository: self.target.repository.clone(),
            item: item.to_string(),
            status,
            errors: read_error_body(response).await,
        }
    }

    /// Answers a 401 challenge: fetch a token, or set Basic credentials.
    async fn authenticate(&self, response: &Response, item: &str) -> Result<(), ScrapeError> {
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let value = match challenge {
            None => {
                return Err(self.unauthorized(
                    item,
                    "401 without a usable WWW-Authenticate",
                    vec![],
                ))
            }
            Some(Challenge::Basic) => match &self.credentials {
                Some(credentials) => credentials.basic_header(),
                None => {
                    return Err(self.unauthorized(
                        item,
                        "the registry asks for Basic auth and no credentials are configured",
                        vec![],
                    ))
                }
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                format!(
                    "Bearer {}",
                    self.fetch_token(&realm, service.as_deref(), item).await?
                )
            }
        };
        *self.authorization.write().expect("lock") = Some(AuthHeader(value));
        Ok(())
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        item: &str,
    ) -> Result<String, ScrapeError> {
        let mut url = Url::parse(realm)
            .map_err(|e| self.protocol(item, format!("token realm {realm:?} is not a URL: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair(
                "scope",
                &format!("repository:{}:{}", self.target.repository, self.actions),
            );
        }
        let response = self
            .execute(&format!("token from {realm}"), || {
                let request = self.http.get(url.clone());
                match &self.credentials {
                    Some(c) => request.basic_auth(&c.username, Some(&c.password)),
                    None => request,
                }
            })
            .await?;
        if !response.status().is_success() {
            let status = response.status();
            let errors = read_error_body(response).await;
            let reason = self.refusal(&format!("token endpoint {realm} answered {status}"));
            return Err(self.unauthorized(item, &reason, errors));
        }
        let body = self.read_small(response, item).await?;
        serde_json::from_slice::<TokenResponse>(&body)
            .ok()
            .and_then(TokenResponse::into_token)
            .ok_or_else(|| self.unauthorized(item, "the token endpoint returned no token", vec![]))
    }
}

/// Whether a refused certificate is somewhere in the chain.
pub(crate) fn is_certificate_error(error: &reqwest::Error) -> bool {
    super::tls::refusal(error).is_some()
}

/// A `Retry-After` in seconds, capped so a registry cannot stall the scrape for long.
fn retry_after(response: &Response) -> Duration {
    let seconds = header_str(response, "retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_secs(seconds.min(MAX_RETRY_AFTER_SECS))
}

pub(crate) fn header_str(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Reads the body, giving up (with `Ok(None)`) once it exceeds `cap` bytes.
pub(crate) async fn read_capped(
    mut response: Response,
    cap: usize,
) -> Result<Option<Bytes>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Ok(None);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

async fn read_error_body(response: Response) -> Vec<RegistryErrorBody> {
    match read_capped(response, ERROR_BODY_CAP).await {
        Ok(Some(body)) => parse_error_body(&body),
        _ => Vec::new(),
    }
}
