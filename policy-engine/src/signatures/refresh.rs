//! Reloading every signature source, verifying, and publishing what is served.
//!
//! Each refresh reads all sources again (files edited on disk, a new graph-data tarball
//! from the graph-builder), merges them in the configured order and, when keys are
//! configured, keeps only the signatures that verify. A source that fails to load keeps
//! its previous signatures until it loads again; keys that fail to load serve nothing
//! (fail closed). Between reloads the loop also notices a new graph and recounts the
//! releases that have no valid signature ([`super::coverage`]).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use graph_data::signatures::{
    load_configmap_dir, load_dir, load_tarball, Loaded, SignatureLimits, StoreBuilder,
};

use super::coverage::{self, Coverage};
use super::verify::Keyring;
use super::{
    Refused, Served, SignatureMetrics, SignatureSettings, SignatureSource, SignatureState,
};
use crate::source::GraphSource;

/// How often a new graph is looked for between reloads.
const GRAPH_CHECK: Duration = Duration::from_secs(5);
/// How soon a refresh that met errors is retried: a graph-builder that has not finished
/// its first refresh does not serve its graph-data yet, and waiting the whole refresh
/// period for it would leave the cluster without signatures for minutes.
const RETRY: Duration = Duration::from_secs(10);
/// Timeout of one graph-data download.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest graph-data tarball downloaded (the graph-data loader's own bound).
const MAX_TARBALL_BYTES: u64 = 256 << 20;
/// Most releases listed as unsigned on the status page (all are counted).
pub const MAX_LISTED: usize = 1000;

/// A release of the graph with no valid signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unsigned {
    /// Its version.
    pub version: String,
    /// Its payload pull spec.
    pub payload: String,
}

/// Reloads signatures every `settings.refresh` and publishes them into `state`, until the
/// task is dropped or aborted.
pub async fn refresh_loop(
    settings: SignatureSettings,
    state: SignatureState,
    graph: GraphSource,
    metrics: SignatureMetrics,
) {
    let http = match reqwest::Client::builder().timeout(FETCH_TIMEOUT).build() {
        Ok(http) => http,
        Err(e) => {
            tracing::error!("cannot build the HTTP client for signature sources: {e}");
            return;
        }
    };
    tracing::info!(sources = ?settings.sources, keys = ?settings.public_keys, "serving release signatures");
    let mut last: Vec<Option<Loaded>> = settings.sources.iter().map(|_| None).collect();
    let mut refreshes = 0;
    loop {
        let started = Instant::now();
        let mut served = reload(&settings, &http, &mut last, &metrics).await;
        refreshes += 1;
        served.refreshes = refreshes;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        metrics.last_refresh.set(now.as_secs_f64());
        metrics.stored.set(served.store.len() as i64);
        metrics.refused.set(served.refused.len() as i64);
        metrics.problems.set(served.problems.len() as i64);
        served.coverage.configured =
            coverage::configured(&settings, served.store.len() + served.refused.len());
        metrics
            .configured
            .set(i64::from(served.coverage.configured));
        let mut graph_revision = recount(&graph, &mut served, &metrics);
        let pause = if served.errors.is_empty() {
            settings.refresh
        } else {
            settings.refresh.min(RETRY)
        };
        state.publish(served);
        // Between reloads, only a new graph changes what is reported.
        while started.elapsed() < pause {
            tokio::time::sleep(GRAPH_CHECK.min(pause)).await;
            let current = graph.current().snapshot.map(|s| s.revision());
            if current != graph_revision {
                let mut served = (*state.current()).clone();
                graph_revision = recount(&graph, &mut served, &metrics);
                state.publish(served);
            }
        }
    }
}

/// Updates `served.unsigned` from the current graph; returns the graph's revision.
fn recount(graph: &GraphSource, served: &mut Served, metrics: &SignatureMetrics) -> Option<u64> {
    let snapshot = graph.current().snapshot?;
    let (per_arch, unsigned) = coverage::count(snapshot.graph(), &served.store);
    metrics
        .releases_without_signature
        .set(unsigned.len() as i64);
    // Architectures that left the graph leave the gauges too.
    metrics.releases_signed.reset();
    metrics.releases_unsigned.reset();
    for (arch, counts) in &per_arch {
        metrics
            .releases_signed
            .with_label_values(&[arch])
            .set(counts.signed as i64);
        metrics
            .releases_unsigned
            .with_label_values(&[arch])
            .set(counts.unsigned as i64);
    }
    served.coverage = Coverage::new(served.coverage.configured, per_arch);
    if !unsigned.is_empty() {
        tracing::info!(
            count = unsigned.len(),
            first = %unsigned[0].version,
            "releases in the graph without a valid signature"
        );
    }
    served.unsigned = unsigned.into_iter().take(MAX_LISTED).collect();
    Some(snapshot.revision())
}

async fn reload(
    settings: &SignatureSettings,
    http: &reqwest::Client,
    last: &mut [Option<Loaded>],
    metrics: &SignatureMetrics,
) -> Served {
    let limits = SignatureLimits::default();
    let mut errors = Vec::new();
    for (source, slot) in settings.sources.iter().zip(last.iter_mut()) {
        match load_source(source, http, limits).await {
            Ok(loaded) => *slot = Some(loaded),
            Err(message) => {
                metrics.load_errors.inc();
                let kept = if slot.is_some() {
                    "keeping its previous signatures"
                } else {
                    "no signatures from it yet"
                };
                tracing::warn!(source = ?source, "cannot load signatures ({kept}): {message}");
                errors.push(message);
            }
        }
    }
    let keys = settings.public_keys.clone();
    let sources: Vec<Loaded> = last
        .iter()
        .flatten()
        .map(|l| Loaded {
            signatures: l.signatures.clone(),
            problems: l.problems.clone(),
        })
        .collect();
    let outcome = tokio::task::spawn_blocking(move || merge_and_verify(sources, keys, limits))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let mut served = outcome;
    served.errors.splice(0..0, errors);
    for refused in &served.refused {
        tracing::warn!(
            digest = %refused.digest,
            origin = %refused.origin,
            "signature refused: {}",
            refused.reason
        );
    }
    for problem in &served.problems {
        tracing::warn!("signature file skipped: {problem}");
    }
    served
}

/// Merges the sources in order and keeps what verifies (everything without keys).
fn merge_and_verify(
    sources: Vec<Loaded>,
    keys: Option<std::path::PathBuf>,
    limits: SignatureLimits,
) -> Served {
    let mut errors = Vec::new();
    let mut builder = StoreBuilder::new(limits);
    for loaded in sources {
        if let Err(e) = builder.add(loaded) {
            errors.push(e.to_string());
        }
    }
    let (mut store, problems) = builder.finish();
    let mut refused = Vec::new();
    let verified = keys.is_some();
    if let Some(path) = keys {
        match Keyring::load(&path) {
            Ok(keyring) => {
                let mut reasons = Vec::new();
                let dropped = store.retain(|digest, signature| {
                    match keyring.verify(&signature.bytes, digest) {
                        Ok(()) => true,
                        Err(e) => {
                            reasons.push(e.to_string());
                            false
                        }
                    }
                });
                // `retain` visits and drops in the same order.
                refused = dropped
                    .into_iter()
                    .zip(reasons)
                    .map(|((digest, signature), reason)| Refused {
                        digest,
                        origin: signature.origin,
                        reason,
                    })
                    .collect();
            }
            Err(e) => {
                // Without the keys nothing can be trusted: serve nothing.
                tracing::error!("cannot load the signature keys, serving no signature: {e}");
                errors.push(e.to_string());
                let dropped = store.retain(|_, _| false);
                refused = dropped
                    .into_iter()
                    .map(|(digest, signature)| Refused {
                        digest,
                        origin: signature.origin,
                        reason: "the public keys cannot be loaded".to_owned(),
                    })
                    .collect();
            }
        }
    }
    refused.sort_by(|a, b| a.origin.cmp(&b.origin));
    Served {
        store: Arc::new(store),
        refused,
        problems,
        errors,
        verified,
        ..Served::default()
    }
}

async fn load_source(
    source: &SignatureSource,
    http: &reqwest::Client,
    limits: SignatureLimits,
) -> Result<Loaded, String> {
    match source {
        SignatureSource::Tree(dir) => {
            let dir = dir.clone();
            blocking(move || load_dir(&dir, &dir.display().to_string(), limits)).await
        }
        SignatureSource::ConfigMaps(dir) => {
            let dir = dir.clone();
            blocking(move || load_configmap_dir(&dir, limits)).await
        }
        SignatureSource::GraphData(path) => {
            let path = path.clone();
            blocking(move || {
                if std::fs::metadata(&path)
                    .map(|m| m.is_dir())
                    .unwrap_or(false)
                {
                    let tree = path.join("signatures");
                    load_dir(&tree, &tree.display().to_string(), limits)
                } else {
                    let bytes = std::fs::read(&path).map_err(|source| {
                        graph_data::signatures::SignatureError::Read {
                            path: path.display().to_string(),
                            source,
                        }
                    })?;
                    load_tarball(&path.display().to_string(), &bytes, limits)
                }
            })
            .await
        }
        SignatureSource::GraphDataUrl(url) => {
            let bytes = fetch(http, url).await?;
            let label = url.to_string();
            blocking(move || load_tarball(&label, &bytes, limits)).await
        }
    }
}

async fn blocking(
    f: impl FnOnce() -> Result<Loaded, graph_data::signatures::SignatureError> + Send + 'static,
) -> Result<Loaded, String> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        .map_err(|e| e.to_string())
}

/// Downloads a graph-data tarball, refusing more than [`MAX_TARBALL_BYTES`].
async fn fetch(http: &reqwest::Client, url: &url::Url) -> Result<Vec<u8>, String> {
    let response = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: {}", response.status()));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("{url}: {e}"))?;
        if body.len() as u64 + chunk.len() as u64 > MAX_TARBALL_BYTES {
            return Err(format!("{url}: more than {MAX_TARBALL_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
