//! Getting the graph from a graph-builder over HTTP (SPEC B §1.11) and keeping it fresh.
//!
//! The reference fetches on request and caches the answer for 60 s. Here a background
//! task fetches every `refresh` interval (60 s by default, the same staleness) and
//! publishes into the [`GraphSource`]; requests never wait for the upstream once a graph
//! is held. Until the first success it retries every [`FIRST_GRAPH_RETRY`], so the
//! service becomes ready soon after the graph-builder's first scrape. A body identical
//! to the last one published is not published again, so the response cache survives.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::source::GraphSource;

/// Largest graph document accepted from the upstream (decoded): the full public graph
/// is about 22 MB.
pub const MAX_GRAPH_BYTES: u64 = 512 << 20;

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
}

/// Why one fetch failed; each names the URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP client could not be built (TLS roots, for instance).
    #[error("building the HTTP client for {url}: {source}")]
    Client {
        /// The upstream URL.
        url: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// Connection, timeout or body read failure; reqwest's text names the URL.
    #[error("{source}")]
    Transport {
        /// The cause.
        source: reqwest::Error,
    },
    /// The upstream answered with a non-success status.
    #[error("{status}")]
    Status {
        /// The upstream URL.
        url: String,
        /// The status it answered with.
        status: reqwest::StatusCode,
    },
    /// The body is larger than [`MAX_GRAPH_BYTES`].
    #[error("the graph from {url} is larger than {limit} bytes")]
    TooLarge {
        /// The upstream URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The body is not a valid Cincinnati graph.
    #[error("{source}")]
    Parse {
        /// The upstream URL.
        url: String,
        /// Why the body is not a graph.
        source: graph_data::WireError,
    },
}

impl From<&FetchError> for ApiError {
    fn from(error: &FetchError) -> Self {
        match error {
            FetchError::Parse { .. } => ApiError::JsonIn(error.to_string()),
            _ => ApiError::UpstreamFetch(error.to_string()),
        }
    }
}

/// Fetches the graph now and then, publishing each new one into `source`, until the
/// task is dropped or aborted.
pub async fn refresh_loop(settings: UpstreamSettings, source: GraphSource, metrics: Arc<Metrics>) {
    let client = match client(&settings) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!("{error}");
            source.report_failure(ApiError::from(&error));
            return;
        }
    };
    tracing::info!(url = %settings.url, "waiting for the first graph from the upstream graph-builder");
    let mut last_digest = None;
    loop {
        metrics.upstream_requests.inc();
        match fetch(&client, &settings.url).await {
            Ok(body) => {
                // Hashing and parsing a full graph take tens of milliseconds of CPU: on
                // the blocking pool, so that no request waits behind them.
                let (url, published) = (settings.url.clone(), source.clone());
                let outcome = tokio::task::spawn_blocking(move || {
                    let digest: [u8; 32] = Sha256::digest(&body).into();
                    if last_digest == Some(digest) {
                        return Ok(None);
                    }
                    parse_and_publish(&url, body, &published).map(|()| Some(digest))
                })
                .await;
                let changed = matches!(outcome, Ok(Ok(Some(_))));
                match outcome {
                    Ok(Ok(Some(digest))) => last_digest = Some(digest),
                    Ok(Ok(None)) => {
                        tracing::debug!(url = %settings.url, "upstream graph unchanged");
                        source.clear_failure();
                    }
                    Ok(Err(error)) => fail(&source, &metrics, &settings.url, &error),
                    Err(join) => {
                        tracing::error!(url = %settings.url, "parsing the upstream graph: {join}");
                        metrics.upstream_errors.inc();
                        source.report_failure(ApiError::JsonIn(format!("parsing task: {join}")));
                    }
                }
                crate::planner::sync_provenance(&client, &settings.url, &source, changed).await;
            }
            Err(error) => fail(&source, &metrics, &settings.url, &error),
        }
        let pause = if source.is_ready() {
            settings.refresh
        } else {
            FIRST_GRAPH_RETRY.min(settings.refresh)
        };
        tokio::time::sleep(pause).await;
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

/// One GET of the upstream graph, returning the (decoded) body of a 2xx answer.
pub async fn fetch(client: &reqwest::Client, url: &str) -> Result<bytes::Bytes, FetchError> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|source| FetchError::Transport { source })?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status,
        });
    }
    // Read chunk by chunk into one buffer: `Response::bytes` gathers the chunks and then
    // copies them into one more buffer of the full size, twice the memory at the moment
    // the graph is largest (21.5 MB at full scale, before the parse).
    let mut response = response;
    let expected = response.content_length().unwrap_or(0).min(MAX_GRAPH_BYTES);
    let mut body = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| FetchError::Transport { source })?
    {
        if (body.len() + chunk.len()) as u64 > MAX_GRAPH_BYTES {
            return Err(FetchError::TooLarge {
                url: url.to_owned(),
                limit: MAX_GRAPH_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(bytes::Bytes::from(body))
}

fn parse_and_publish(
    url: &str,
    body: bytes::Bytes,
    source: &GraphSource,
) -> Result<(), FetchError> {
    let graph = graph_data::wire::from_json(&body).map_err(|e| FetchError::Parse {
        url: url.to_owned(),
        source: e,
    })?;
    // The raw document is no longer needed: free it before the new snapshot is built.
    drop(body);
    let (nodes, edges) = (graph.len(), graph.edge_count());
    match source.publish(graph) {
        Ok(revision) => {
            tracing::info!(url, revision, nodes, edges, "serving a new graph");
        }
        // Only the empty-body gzip can fail here; keep the last graph and say so.
        Err(error) => {
            tracing::error!(url, "cannot serve the new graph: {error}");
            source.report_failure(error);
        }
    }
    Ok(())
}

fn fail(source: &GraphSource, metrics: &Metrics, url: &str, error: &FetchError) {
    metrics.upstream_errors.inc();
    source.report_failure(ApiError::from(error));
    if source.is_ready() {
        tracing::warn!(
            url,
            "upstream fetch failed, still serving the last good graph: {error}"
        );
    } else {
        tracing::warn!(url, "upstream fetch failed, no graph to serve yet: {error}");
    }
}
