//! The HTTP side of the Docker Registry v2 / OCI distribution API: one [`Client`] per
//! repository, built from one [`ClientConfig`], used by the scrape, the graph-data image
//! source and the push tool alike.
//!
//! A [`Client`] lives as long as its user (the scraper keeps one across scrapes): it holds
//! the HTTP client (CA certificates loaded once) and the `Authorization` value, so a token
//! outlives one scrape. A [`Session`] is one pass (one scrape, one download, one push): it
//! reads the credentials file (so a rotated pull secret is picked up) and counts requests.
//!
//! Requests that fail in transport, time out, or get 5xx/429 are retried with the one
//! backoff of [`RetryPolicy`]; 4xx never are. A 401 triggers one re-authentication from the
//! response's challenge (Bearer token or Basic), then the request is sent once more. Every
//! body is read against a limit of [`Limits`] and every request has a total deadline.
//!
//! Redirects are followed here, by hand and at most [`MAX_REDIRECTS`] deep, so that each
//! hop decides afresh whether it carries `Authorization` (see `authorize`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::LOCATION;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::Url;

use super::auth::{credentials_for, Credentials, SharedAuth};
use super::ca::{load_ca_directory, CaCertificates};
use super::error::{
    parse_error_body, ErrorKind, ErrorTally, Limited, RegistryError, RegistryErrorBody,
};
use super::Target;

/// A blob's bytes as they arrive; a failure of the source is a [`BlobReadError`] inside
/// the `io::Error`, so that readers further down (gzip, tar) can tell it from bad content.
pub(crate) type BlobStream = futures::stream::BoxStream<'static, std::io::Result<Bytes>>;

/// Redirects followed for one request before giving up (a blob to its storage is one).
pub(crate) const MAX_REDIRECTS: usize = 5;

/// How long an idle connection is kept for reuse. Requests within a refresh follow each
/// other closely; between refreshes (minutes apart) a kept connection would only hold a
/// socket open on both ends.
const IDLE_CONNECTION: Duration = Duration::from_secs(10);

/// `Docker-Content-Digest`.
pub(crate) const CONTENT_DIGEST: &str = "docker-content-digest";

/// Marks an error of a blob's source (network or disk) inside an `io::Error`, so that it
/// can be told apart from a decoding error after passing through gzip and tar readers.
#[derive(Debug, thiserror::Error)]
#[error("reading the blob from its source failed")]
pub struct BlobReadError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl BlobReadError {
    /// An `io::Error` carrying `error` as a source failure.
    pub fn wrap(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> std::io::Error {
        std::io::Error::other(BlobReadError(error.into()))
    }
}

/// How failed requests are retried: `attempts` tries in all, waiting `base_delay`, then
/// twice that, and so on, between them. The only backoff in the crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub base_delay: Duration,
    /// The longest `Retry-After` honoured, so a registry cannot stall a scrape for long.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // 200 ms, 400 ms, 800 ms between four attempts.
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
    }

    /// Whether another attempt follows attempt number `attempt`.
    pub fn retries_after(&self, attempt: u32) -> bool {
        attempt < self.attempts
    }
}

/// What the client reads at most, and for how long. A registry is outside input: every
/// body is read against one of these and fails with [`ErrorKind::TooLarge`] or
/// [`ErrorKind::TimedOut`] naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest manifest, manifest list or index.
    pub max_manifest_bytes: u64,
    /// Largest image config blob.
    pub max_config_bytes: u64,
    /// Largest error body read (a larger one is not shown).
    pub max_error_body_bytes: u64,
    /// Largest page of the tag list.
    pub max_tag_page_bytes: u64,
    /// Most tags in one repository.
    pub max_tags: u64,
    /// Largest token endpoint answer.
    pub max_token_bytes: u64,
    /// Largest blob read whole (base image layers the push tool copies).
    pub max_blob_bytes: u64,
    /// The deadline of one request, from connecting to the end of its body.
    pub request_deadline: Duration,
    /// The longest wait for the next bytes of a body.
    pub read_timeout: Duration,
    /// The longest wait for a connection.
    pub connect_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_manifest_bytes: 4 * 1024 * 1024,
            max_config_bytes: 4 * 1024 * 1024,
            max_error_body_bytes: 64 * 1024,
            max_tag_page_bytes: 4 * 1024 * 1024,
            max_tags: 1_000_000,
            max_token_bytes: 1024 * 1024,
            max_blob_bytes: 4 * 1024 * 1024 * 1024,
            // A large component layer streamed in full must fit; the refresh has its own
            // timeout above this.
            request_deadline: Duration::from_secs(600),
            read_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
        }
    }
}

/// Everything a [`Client`] is built from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientConfig {
    /// A docker `config.json`, read at the start of every [`Session`].
    pub credentials_path: Option<PathBuf>,
    /// Extra CA certificates (every PEM bundle below it, two levels deep), on top of the
    /// system roots.
    pub ca_dir: Option<PathBuf>,
    /// Retries and backoff.
    pub retry: RetryPolicy,
    /// Size, count and time limits.
    pub limits: Limits,
}

/// The token scope's actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Pull,
    PullPush,
}

impl Access {
    pub(super) fn actions(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::PullPush => "pull,push",
        }
    }
}

/// A registry client for one repository.
#[derive(Debug, Clone)]
pub struct Client {
    pub(super) http: reqwest::Client,
    target: Target,
    config: Arc<ClientConfig>,
    /// Kept across sessions, so a token outlives one scrape; a 401 replaces it.
    pub(super) authorization: SharedAuth,
    pub(super) access: Access,
    /// Errors met, by cause; shared by the clients made from this one.
    errors: Arc<ErrorTally>,
}

impl Client {
    /// A pulling client for `registry` + `repository`: parses the target, loads the CA
    /// directory and builds the HTTP client.
    pub fn new(
        registry: &str,
        repository: &str,
        config: ClientConfig,
    ) -> Result<Client, RegistryError> {
        Client::with_access(registry, repository, config, Access::Pull)
    }

    pub(crate) fn with_access(
        registry: &str,
        repository: &str,
        config: ClientConfig,
        access: Access,
    ) -> Result<Client, RegistryError> {
        let target = Target::parse(registry, repository)?;
        if config.retry.attempts == 0 {
            return Err(RegistryError::setup(ErrorKind::InvalidSetting {
                field: "retry attempts",
                value: "0".to_string(),
                reason: "must be at least 1".to_string(),
            }));
        }
        let ca = match &config.ca_dir {
            Some(dir) => load_ca_directory(dir)?,
            None => CaCertificates::default(),
        };
        // System roots plus the CA directory's certificates, verified as `tls` describes.
        let tls = super::tls::client_config(&ca).map_err(|e| {
            RegistryError::setup(ErrorKind::InvalidSetting {
                field: "CA directory",
                value: ca.describe(),
                reason: format!("cannot set up TLS: {e}"),
            })
        })?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .user_agent(concat!("graph-builder/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.limits.connect_timeout)
            .read_timeout(config.limits.read_timeout)
            // Followed in `Session::execute`, which decides per hop about credentials.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(IDLE_CONNECTION)
            .build()
            .map_err(|source| {
                RegistryError::new(&target.host, "", "", ErrorKind::HttpClient(source))
            })?;
        Ok(Client {
            http,
            target,
            config: Arc::new(config),
            authorization: Arc::default(),
            access,
            errors: Arc::default(),
        })
    }

    /// The same registry, CA certificates and settings for another repository, with a
    /// token of its own.
    pub fn for_repository(&self, repository: &str) -> Result<Client, RegistryError> {
        let target = Target {
            url_credentials: self.target.url_credentials.clone(),
            ..Target::parse(self.target.base.as_str(), repository)?
        };
        Ok(Client {
            target,
            authorization: Arc::default(),
            ..self.clone()
        })
    }

    /// The registry and repository.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The errors this client (and those made from it) met, by cause.
    pub fn error_tally(&self) -> Arc<ErrorTally> {
        Arc::clone(&self.errors)
    }

    /// The settings it was built from.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Starts a pass: reads the credentials file, if any.
    pub(crate) fn session(&self) -> Result<Session, RegistryError> {
        let credentials = match &self.config.credentials_path {
            Some(path) => credentials_for(path, &self.target.host, &self.target.repository)
                .map_err(|kind| self.error("credentials", kind))?,
            None => None,
        }
        .or_else(|| self.target.url_credentials.clone());
        if self.config.credentials_path.is_some() && credentials.is_none() {
            tracing::debug!(registry = %self.target.host, "no credentials entry; going anonymously");
        }
        Ok(Session {
            client: self.clone(),
            credentials,
            counters: Arc::default(),
        })
    }

    fn error(&self, item: &str, kind: ErrorKind) -> RegistryError {
        self.errors.count(kind.cause());
        RegistryError::new(&self.target.host, &self.target.repository, item, kind)
    }
}

/// Request counters, shared with the blob streams so bytes are counted as they arrive.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) http_requests: AtomicU64,
    pub(crate) blob_requests: AtomicU64,
    pub(crate) blob_bytes: AtomicU64,
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

/// One pass over a repository: the credentials read for it and its request counters.
#[derive(Debug)]
pub(crate) struct Session {
    pub(super) client: Client,
    pub(super) credentials: Option<Credentials>,
    pub(crate) counters: Arc<Counters>,
}

impl Session {
    pub(crate) fn target(&self) -> &Target {
        &self.client.target
    }

    pub(super) fn limits(&self) -> &Limits {
        &self.client.config.limits
    }

    pub(crate) fn retry(&self) -> &RetryPolicy {
        &self.client.config.retry
    }

    pub(super) fn repo_url(&self, rest: &str) -> Url {
        let target = self.target();
        let path = format!("/v2/{}/{rest}", target.repository);
        let mut url = target.base.clone();
        url.set_path(&path);
        url
    }

    /// An error about `item` of this repository.
    pub(crate) fn error(&self, item: &str, kind: ErrorKind) -> RegistryError {
        self.client.error(item, kind)
    }

    pub(super) fn protocol(&self, item: &str, reason: String) -> RegistryError {
        self.error(item, ErrorKind::Protocol(reason))
    }

    /// A transport error after `attempts`; a timeout says which limit it hit.
    pub(super) fn transport(
        &self,
        item: &str,
        attempts: u32,
        source: reqwest::Error,
    ) -> RegistryError {
        let limits = self.limits();
        let kind = if source.is_timeout() {
            ErrorKind::TimedOut {
                deadline: limits.request_deadline,
                read_timeout: limits.read_timeout,
                attempts,
                source,
            }
        } else {
            ErrorKind::Transport { attempts, source }
        };
        self.error(item, kind)
    }

    /// Sends `method url` (built per hop and attempt by `build`), following redirects:
    /// any of them for GET and HEAD, the method-keeping 307 and 308 for the rest. A
    /// redirect without a usable `Location` is returned as it is.
    pub(super) async fn execute(
        &self,
        item: &str,
        method: &Method,
        url: &Url,
        build: impl Fn(&Url) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let mut url = url.clone();
        let mut hops = 0;
        loop {
            let response = self.execute_once(item, || build(&url)).await?;
            let Some(next) = redirect_target(method, &response, &url) else {
                return Ok(response);
            };
            hops += 1;
            if hops > MAX_REDIRECTS {
                let reason = format!("redirected more than {MAX_REDIRECTS} times");
                return Err(self.protocol(item, reason));
            }
            tracing::debug!(%item, status = %response.status(), to = %next, "following a redirect");
            url = next;
        }
    }

    /// Sends with retries on transport errors, 5xx and 429; returns any other response.
    async fn execute_once(
        &self,
        item: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let retry = *self.retry();
        let deadline = self.limits().request_deadline;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = !retry.retries_after(attempt);
            let mut delay = retry.delay(attempt);
            self.counters.http_requests.fetch_add(1, Ordering::Relaxed);
            match build().timeout(deadline).send().await {
                Err(source) if is_certificate_error(&source) => {
                    let reason = super::tls::refusal(&source).unwrap_or_default();
                    return Err(self.error(item, ErrorKind::Certificate { reason }));
                }
                Err(source) if last || source.is_builder() || source.is_redirect() => {
                    return Err(self.transport(item, attempt, source));
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
                    delay = delay.max(retry_after(&response, retry.max_retry_after));
                }
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// Reads a whole body of at most `limit` bytes, once (no retry).
    pub(super) async fn read_limited(
        &self,
        response: Response,
        item: &str,
        what: Limited,
        limit: u64,
    ) -> Result<Bytes, RegistryError> {
        match read_capped(response, limit).await {
            Ok(Some(body)) => Ok(body),
            Ok(None) => Err(self.error(item, ErrorKind::TooLarge { what, limit })),
            Err(source) => Err(self.transport(item, 1, source)),
        }
    }

    pub(super) async fn read_error_body(&self, response: Response) -> Vec<RegistryErrorBody> {
        match read_capped(response, self.limits().max_error_body_bytes).await {
            Ok(Some(body)) => parse_error_body(&body),
            _ => Vec::new(),
        }
    }
}

/// Whether a refused certificate is somewhere in the chain.
pub(crate) fn is_certificate_error(error: &reqwest::Error) -> bool {
    super::tls::refusal(error).is_some()
}

/// Where a redirect of `method` sends it, if `response` is one we follow.
fn redirect_target(method: &Method, response: &Response, from: &Url) -> Option<Url> {
    let status = response.status();
    let follows = match status {
        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => true,
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::SEE_OTHER => {
            method == Method::GET || method == Method::HEAD
        }
        _ => false,
    };
    if !follows {
        return None;
    }
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    from.join(location)
        .ok()
        .filter(|to| matches!(to.scheme(), "http" | "https"))
}

/// A `Retry-After` in seconds, capped at `max`.
fn retry_after(response: &Response, max: Duration) -> Duration {
    let seconds = header_str(response, "retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_secs(seconds).min(max)
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
    cap: u64,
) -> Result<Option<Bytes>, reqwest::Error> {
    if response.content_length().is_some_and(|len| len > cap) {
        return Ok(None);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if (body.len() + chunk.len()) as u64 > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_delay() {
        let retry = RetryPolicy::default();
        let delays: Vec<_> = (1..=4).map(|a| retry.delay(a)).collect();
        assert_eq!(
            delays,
            [200, 400, 800, 1600].map(Duration::from_millis).to_vec()
        );
        assert!(retry.retries_after(3) && !retry.retries_after(4));
        // No overflow panic, however many attempts are configured.
        assert_eq!(
            RetryPolicy {
                attempts: 100,
                ..retry
            }
            .delay(100),
            Duration::from_millis(200).saturating_mul(u32::MAX)
        );
    }

    #[test]
    fn zero_attempts_is_refused() {
        let config = ClientConfig {
            retry: RetryPolicy {
                attempts: 0,
                ..RetryPolicy::default()
            },
            ..ClientConfig::default()
        };
        let error = Client::new("http://127.0.0.1:1", "r", config).unwrap_err();
        assert!(
            matches!(
                error.kind(),
                ErrorKind::InvalidSetting {
                    field: "retry attempts",
                    ..
                }
            ),
            "{error:?}"
        );
    }
}
