//! The HTTP side of the Docker Registry v2 / OCI distribution API.
//!
//! One `RegistryClient` lives for one scrape: it holds the credentials read for that scrape,
//! the current `Authorization` value and the request counters. Requests that fail in
//! transport, time out, or get 5xx/429 are retried with exponential backoff; 4xx never are.
//! A 401 triggers one re-authentication from the response's challenge (Bearer token or
//! Basic), then the request is sent once more.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::TryStreamExt as _;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::Url;

use super::auth::{parse_challenge, Challenge, Credentials, TokenResponse};
use super::error::{parse_error_body, RegistryErrorBody, ScrapeError};
use super::manifest::{sha256_digest, MANIFEST_ACCEPT};
use super::tags::{next_link, TagPage};
use super::Target;
use crate::layer::SourceError;

/// A blob's bytes as they arrive; errors are [`SourceError`]s.
pub(crate) type BlobStream = futures::stream::BoxStream<'static, std::io::Result<Bytes>>;

/// Largest manifest or config blob we read into memory.
pub(crate) const SMALL_DOCUMENT_CAP: usize = 4 * 1024 * 1024;
/// Largest error body we read.
const ERROR_BODY_CAP: usize = 64 * 1024;
/// Page size asked for when listing tags; the `Link` header is followed regardless.
const TAG_PAGE_SIZE: usize = 1000;
/// A loop guard on `Link` pagination.
const MAX_TAG_PAGES: usize = 100_000;
/// `Docker-Content-Digest`.
const CONTENT_DIGEST: &str = "docker-content-digest";

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
struct Small {
    claimed: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

/// Builds the shared HTTP client: system roots plus `extra` certificates.
pub(crate) fn build_http_client(
    registry: &str,
    extra: Vec<reqwest::Certificate>,
) -> Result<reqwest::Client, ScrapeError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(concat!("graph-builder/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60));
    for cert in extra {
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|source| ScrapeError::HttpClient {
        registry: registry.to_string(),
        source,
    })
}

/// A registry session for one repository.
#[derive(Debug)]
pub(crate) struct RegistryClient {
    http: reqwest::Client,
    target: Target,
    credentials: Option<Credentials>,
    authorization: RwLock<Option<String>>,
    pub(crate) counters: Arc<Counters>,
    retry: RetryPolicy,
}

impl RegistryClient {
    pub(crate) fn new(
        http: reqwest::Client,
        target: Target,
        credentials: Option<Credentials>,
        retry: RetryPolicy,
    ) -> Self {
        RegistryClient {
            http,
            target,
            credentials,
            authorization: RwLock::new(None),
            counters: Arc::default(),
            retry,
        }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    fn repo_url(&self, rest: &str) -> Url {
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
            self.counters.http_requests.fetch_add(1, Ordering::Relaxed);
            match build().send().await {
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
                }
            }
            tokio::time::sleep(self.retry.base_delay * 2u32.pow(attempt - 1)).await;
        }
    }

    /// Sends an authorized request; on 401 re-authenticates once and sends again.
    async fn send(
        &self,
        method: Method,
        url: Url,
        accept: Option<&str>,
        item: &str,
    ) -> Result<Response, ScrapeError> {
        let mut reauthenticated = false;
        loop {
            let authorization = self.authorization.read().expect("lock").clone();
            let response = self
                .execute(item, || {
                    let mut request = self.http.request(method.clone(), url.clone());
                    if let Some(accept) = accept {
                        request = request.header(ACCEPT, accept);
                    }
                    if let Some(value) = &authorization {
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
                return Err(self.unauthorized(
                    item,
                    "the registry rejected our credentials",
                    errors,
                ));
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

    fn protocol(&self, item: &str, reason: String) -> ScrapeError {
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
        *self.authorization.write().expect("lock") = Some(value);
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
                &format!("repository:{}:pull", self.target.repository),
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
            let reason = format!("token endpoint {realm} answered {status}");
            return Err(self.unauthorized(item, &reason, errors));
        }
        let body = self.read_small(response, item).await?;
        serde_json::from_slice::<TokenResponse>(&body)
            .ok()
            .and_then(TokenResponse::into_token)
            .ok_or_else(|| self.unauthorized(item, "the token endpoint returned no token", vec![]))
    }

    /// `GET /v2/`: checks the API and authenticates if the registry asks for it. Credentials
    /// are only ever sent to a registry that asks for them.
    pub(crate) async fn ping(&self) -> Result<(), ScrapeError> {
        let mut url = self.target.base.clone();
        url.set_path("/v2/");
        let response = self.send(Method::GET, url, None, "API check /v2/").await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.status_error(response, "API check /v2/").await)
        }
    }

    /// Every tag, following `Link` pagination wherever it points.
    pub(crate) async fn list_tags(&self) -> Result<Vec<String>, ScrapeError> {
        let mut url = self.repo_url("tags/list");
        url.set_query(Some(&format!("n={TAG_PAGE_SIZE}")));
        let mut tags = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_TAG_PAGES {
            let item = format!("tag list page {url}");
            if !seen.insert(url.clone()) {
                return Err(self.protocol(&item, "pagination loops back".to_string()));
            }
            let response = self
                .send(Method::GET, url.clone(), Some("application/json"), &item)
                .await?;
            if !response.status().is_success() {
                return Err(self.status_error(response, &item).await);
            }
            let link = response
                .headers()
                .get_all(reqwest::header::LINK)
                .iter()
                .find_map(|v| v.to_str().ok().and_then(next_link));
            let body = self.read_small(response, &item).await?;
            let page: TagPage = serde_json::from_slice(&body)
                .map_err(|e| self.protocol(&item, format!("tag list is not JSON: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            match link {
                None => return Ok(tags),
                Some(next) => {
                    url = url
                        .join(&next)
                        .map_err(|e| self.protocol(&item, format!("bad Link {next:?}: {e}")))?;
                }
            }
        }
        Err(self.protocol("tag list", format!("more than {MAX_TAG_PAGES} pages")))
    }

    /// `HEAD /v2/<repo>/manifests/<tag>`: the cheap per-tag check of a warm scrape.
    pub(crate) async fn head_manifest(&self, tag: &str) -> Result<Head, ScrapeError> {
        let item = format!("tag {tag}");
        let url = self.repo_url(&format!("manifests/{tag}"));
        let response = self
            .send(Method::HEAD, url, Some(MANIFEST_ACCEPT), &item)
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(Head::NotFound),
            s if s.is_success() => Ok(header_str(&response, CONTENT_DIGEST)
                .filter(|d| d.starts_with("sha256:"))
                .map_or(Head::NoDigest, Head::Digest)),
            _ => Err(self.status_error(response, &item).await),
        }
    }

    /// GETs a small document in full. A body that breaks mid-way is fetched again, like
    /// any transport error. `None` on 404.
    async fn get_small(
        &self,
        url: Url,
        accept: Option<&str>,
        item: &str,
        is_blob: bool,
    ) -> Result<Option<Small>, ScrapeError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if is_blob {
                self.counters.blob_requests.fetch_add(1, Ordering::Relaxed);
            }
            let response = self.send(Method::GET, url.clone(), accept, item).await?;
            match response.status() {
                StatusCode::NOT_FOUND => return Ok(None),
                s if !s.is_success() => return Err(self.status_error(response, item).await),
                _ => {}
            }
            let claimed = header_str(&response, CONTENT_DIGEST);
            let content_type = header_str(&response, CONTENT_TYPE.as_str());
            match read_capped(response, SMALL_DOCUMENT_CAP).await {
                Ok(Some(body)) => {
                    return Ok(Some(Small {
                        claimed,
                        content_type,
                        body,
                    }))
                }
                Ok(None) => {
                    let reason = format!("response larger than {SMALL_DOCUMENT_CAP} bytes");
                    return Err(self.protocol(item, reason));
                }
                Err(error) if attempt < self.retry.attempts => {
                    tracing::debug!(%item, attempt, error = %error, "retrying a broken body");
                    tokio::time::sleep(self.retry.base_delay * 2u32.pow(attempt - 1)).await;
                }
                Err(source) => {
                    return Err(ScrapeError::Transport {
                        registry: self.target.host.clone(),
                        repository: self.target.repository.clone(),
                        item: item.to_string(),
                        attempts: attempt,
                        source,
                    })
                }
            }
        }
    }

    fn check_digest(&self, item: &str, expected: String, actual: &str) -> Result<(), ScrapeError> {
        if expected == actual {
            return Ok(());
        }
        Err(ScrapeError::DigestMismatch {
            registry: self.target.host.clone(),
            repository: self.target.repository.clone(),
            item: item.to_string(),
            expected,
            actual: actual.to_string(),
        })
    }

    /// Fetches a manifest by tag or digest and verifies its digest: against the reference
    /// when it is a digest, else against `Docker-Content-Digest` when sent. `None` on 404.
    pub(crate) async fn get_manifest(
        &self,
        reference: &str,
        item: &str,
    ) -> Result<Option<FetchedManifest>, ScrapeError> {
        let url = self.repo_url(&format!("manifests/{reference}"));
        let Some(small) = self
            .get_small(url, Some(MANIFEST_ACCEPT), item, false)
            .await?
        else {
            return Ok(None);
        };
        let actual = sha256_digest(&small.body);
        let expected = reference
            .starts_with("sha256:")
            .then(|| reference.to_string())
            .or(small.claimed.filter(|c| c.starts_with("sha256:")));
        if let Some(expected) = expected {
            self.check_digest(item, expected, &actual)?;
        }
        Ok(Some(FetchedManifest {
            digest: actual,
            content_type: small.content_type,
            body: small.body,
        }))
    }

    /// Fetches a small blob (an image config) and verifies it. `None` on 404.
    pub(crate) async fn get_small_blob(
        &self,
        digest: &str,
        item: &str,
    ) -> Result<Option<Bytes>, ScrapeError> {
        let url = self.repo_url(&format!("blobs/{digest}"));
        let Some(small) = self.get_small(url, None, item, true).await? else {
            return Ok(None);
        };
        self.counters
            .blob_bytes
            .fetch_add(small.body.len() as u64, Ordering::Relaxed);
        self.check_digest(item, digest.to_string(), &sha256_digest(&small.body))?;
        Ok(Some(small.body))
    }

    /// Opens a blob as a byte stream; bytes are counted as they arrive. `None` on 404.
    pub(crate) async fn open_blob(
        &self,
        digest: &str,
        item: &str,
    ) -> Result<Option<BlobStream>, ScrapeError> {
        let Some(response) = self.blob_response(digest, item).await? else {
            return Ok(None);
        };
        let counters = Arc::clone(&self.counters);
        let stream = response
            .bytes_stream()
            .map_ok(move |chunk| {
                counters
                    .blob_bytes
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                chunk
            })
            .map_err(SourceError::wrap);
        Ok(Some(Box::pin(stream)))
    }

    async fn blob_response(
        &self,
        digest: &str,
        item: &str,
    ) -> Result<Option<Response>, ScrapeError> {
        let url = self.repo_url(&format!("blobs/{digest}"));
        self.counters.blob_requests.fetch_add(1, Ordering::Relaxed);
        let response = self.send(Method::GET, url, None, item).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(response)),
            _ => Err(self.status_error(response, item).await),
        }
    }

    /// Reads a body of at most `SMALL_DOCUMENT_CAP` bytes.
    async fn read_small(&self, response: Response, item: &str) -> Result<Bytes, ScrapeError> {
        match read_capped(response, SMALL_DOCUMENT_CAP).await {
            Ok(Some(body)) => Ok(body),
            Ok(None) => Err(self.protocol(
                item,
                format!("response larger than {SMALL_DOCUMENT_CAP} bytes"),
            )),
            Err(source) => Err(ScrapeError::Transport {
                registry: self.target.host.clone(),
                repository: self.target.repository.clone(),
                item: item.to_string(),
                attempts: 1,
                source,
            }),
        }
    }
}

fn header_str(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Reads the body, giving up (with `Ok(None)`) once it exceeds `cap` bytes.
async fn read_capped(mut response: Response, cap: usize) -> Result<Option<Bytes>, reqwest::Error> {
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
