//! Getting the graph from a graph-builder over HTTP and keeping it fresh.
//!
//! The reference fetches on request and caches the answer for 60 s. Here the refresh loop
//! ([`crate::refresh`]) fetches every `refresh` interval (60 s by default, the same
//! staleness) and publishes into the graph source; requests never wait for the upstream
//! once a graph is held. Until the first success it retries every [`FIRST_GRAPH_RETRY`],
//! so the service becomes ready soon after the graph-builder's first scrape. A body
//! identical to the last one published is not parsed or published again, so the response
//! cache survives.

use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::refresh::{Failure, Produced};
use crate::source::GraphSource;

/// Retry interval while no graph is held.
pub const FIRST_GRAPH_RETRY: Duration = Duration::from_secs(5);

/// Where and how often to fetch the graph.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// The graph-builder's graph URL.
    pub url: String,
    /// Timeout of one fetch, connection to last byte.
    pub timeout: Duration,
    /// Interval between fetches once a graph is held.
    pub refresh: Duration,
    /// Largest answer read; a larger one fails the fetch (the full public graph is tens
    /// of MB).
    pub max_body_bytes: u64,
}

/// The default of [`UpstreamSettings::max_body_bytes`].
pub const DEFAULT_MAX_BODY_BYTES: u64 = 512 * 1024 * 1024;

/// Why one fetch failed; each names the URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP client could not be built (TLS roots, for instance).
    #[error("building the HTTP client for {url}")]
    Client {
        /// The upstream URL.
        url: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// Connection, timeout or body read failure; reqwest's text names the URL.
    #[error(transparent)]
    Transport(reqwest::Error),
    /// The upstream answered with a non-success status.
    #[error("{status}")]
    Status {
        /// The upstream URL.
        url: String,
        /// The status it answered with.
        status: reqwest::StatusCode,
    },
    /// The answer is larger than the limit; reading stopped there.
    #[error("the answer from {url} is larger than {limit} bytes")]
    TooLarge {
        /// The upstream URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The body is not a valid Cincinnati graph.
    #[error(transparent)]
    Parse(graph_data::WireError),
}

impl From<&FetchError> for ApiError {
    fn from(error: &FetchError) -> Self {
        match error {
            FetchError::Parse(_) => ApiError::JsonIn(error.to_string()),
            // Its message names the URL only; the cause says what failed.
            FetchError::Client { .. } => ApiError::UpstreamFetch(graph_data::keys::chain(error)),
            _ => ApiError::UpstreamFetch(error.to_string()),
        }
    }
}

/// The upstream producer: fetches the graph and parses it, off the async workers.
#[derive(Debug)]
pub struct Upstream {
    settings: UpstreamSettings,
    client: reqwest::Client,
}

impl Upstream {
    /// Builds the HTTP client.
    pub fn new(settings: UpstreamSettings) -> Result<Upstream, FetchError> {
        let client = client(&settings)?;
        Ok(Upstream { settings, client })
    }

    /// The graph-builder's graph URL.
    pub fn url(&self) -> &str {
        &self.settings.url
    }

    pub(crate) fn refresh(&self) -> Duration {
        self.settings.refresh
    }

    pub(crate) fn first_graph_retry(&self) -> Duration {
        FIRST_GRAPH_RETRY.min(self.settings.refresh)
    }

    /// Fetches the provenance served next to the graph, when the graph changed or none
    /// is held yet (the planner's explanations).
    pub(crate) async fn sync_provenance(&self, source: &GraphSource, changed: bool) {
        crate::planner::sync_provenance(&self.client, &self.settings.url, source, changed).await;
    }

    /// One fetch: `Unchanged` when the body is the one `last` fingerprints.
    pub(crate) async fn produce(&self, last: Option<&[u8; 32]>) -> Result<Produced, Failure> {
        let url = &self.settings.url;
        let body = fetch(&self.client, url, self.settings.max_body_bytes)
            .await
            .map_err(failure)?;
        let fingerprint: [u8; 32] = Sha256::digest(&body).into();
        if last == Some(&fingerprint) {
            return Ok(Produced::Unchanged);
        }
        // A full-scale graph is hundreds of thousands of edges: parse it on a blocking
        // thread, not on a worker that serves requests.
        let graph = tokio::task::spawn_blocking(move || {
            graph_data::wire::from_json(&body).map_err(FetchError::Parse)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        .map_err(failure)?;
        Ok(Produced::New {
            graph,
            fingerprint,
            provenance: None,
        })
    }
}

fn failure(error: FetchError) -> Failure {
    Failure {
        error: ApiError::from(&error),
        detail: None,
        build_stage: None,
    }
}

fn client(settings: &UpstreamSettings) -> Result<reqwest::Client, FetchError> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    reqwest::Client::builder()
        .default_headers(headers)
        .gzip(true)
        .timeout(settings.timeout)
        .build()
        .map_err(|source| FetchError::Client {
            url: settings.url.clone(),
            source,
        })
}

/// One GET of the upstream graph, returning the (decoded) body of a 2xx answer of at
/// most `limit` bytes.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    limit: u64,
) -> Result<bytes::Bytes, FetchError> {
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(FetchError::Transport)?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status,
        });
    }
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
        limit,
    };
    let expected = response.content_length().unwrap_or(0);
    if expected > limit {
        return Err(too_large());
    }
    // Read chunk by chunk into one buffer sized from the announced length:
    // `Response::bytes` gathers the chunks and then copies them into one more buffer of
    // the full size, twice the memory at the moment the graph is largest (21.5 MB at full
    // scale, before the parse).
    let mut body = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(FetchError::Transport)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(bytes::Bytes::from(body))
}
