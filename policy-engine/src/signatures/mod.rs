//! Release signatures served to the cluster version operator:
//! `GET {prefix}/signatures/<algo>=<digest>/signature-<n>`, the containers/image atomic
//! signature-store layout that `ClusterVersion.spec.signatureStores` points at.
//!
//! - [`SignatureArgs`]: where signatures come from (graph-data's `signatures/` tree, a
//!   directory of signature ConfigMaps, the graph-builder's graph-data tarball) and the
//!   keys they are checked with;
//! - [`refresh`]: reloads and merges every source at each refresh, verifies, publishes
//!   into a [`SignatureState`], and reports the graph's releases without a valid
//!   signature;
//! - [`serve`]: the public route and the status page;
//! - [`coverage`]: how many of the graph's releases are signed, per architecture;
//! - [`verify`]: the OpenPGP check.
//!
//! The store lives in memory: what is served is the exact bytes loaded, so a request
//! never touches the disk and a source changing under a refresh cannot mix two states.

pub mod coverage;
pub mod helper;
pub mod refresh;
pub mod serve;
pub mod verify;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use clap::Args;
use graph_data::signatures::{ImageDigest, SignatureProblem, SignatureStore};
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use url::Url;

pub use refresh::refresh_loop;
pub use serve::configure;

/// The port the graph-builder serves its graph-data tarball on (its public port).
pub const GRAPH_BUILDER_PUBLIC_PORT: u16 = 8090;

/// Where signatures come from and how they are checked.
#[derive(Debug, Clone, Default, Args)]
pub struct SignatureArgs {
    /// A signatures tree laid out as `<algo>/<digest>/signature-<n>` (the reference
    /// metadata-helper's flag); ConfigMap files directly in it are read too.
    #[arg(
        id = "signatures_dir",
        long = "signatures.dir",
        env = "PE_SIGNATURES_DIR",
        value_name = "DIR"
    )]
    pub dir: Option<PathBuf>,
    /// A directory of signature ConfigMaps as `oc adm release mirror` and oc-mirror write
    /// them (`.yaml`, `.yml`, `.json`; `binaryData` keys `sha256-<hex>-<n>`).
    #[arg(
        id = "signatures_configmaps",
        long = "signatures.configmaps",
        env = "PE_SIGNATURES_CONFIGMAPS",
        value_name = "DIR"
    )]
    pub configmaps: Option<PathBuf>,
    /// Graph-data to take the `signatures/` tree from: a directory or a `.tar.gz`, or an
    /// `http(s)://` URL of a graph-builder's graph-data tarball. In one-process mode the
    /// default is `--graph-data`; when fetching the graph from a graph-builder it is that
    /// graph-builder's `{prefix}/graph-data` on its public port (8090). `none` turns it
    /// off.
    #[arg(
        id = "signatures_graph_data",
        long = "signatures.graph-data",
        env = "PE_SIGNATURES_GRAPH_DATA",
        value_name = "DIR|TARBALL|URL|none"
    )]
    pub graph_data: Option<String>,
    /// OpenPGP public keys (armored or binary; a file, or a directory of files) that
    /// signatures must verify with. Without keys, signatures are served unchecked.
    #[arg(
        id = "signatures_public_keys",
        long = "signatures.public-keys",
        env = "PE_SIGNATURES_PUBLIC_KEYS",
        value_name = "FILE|DIR"
    )]
    pub public_keys: Option<PathBuf>,
    /// Verify signatures when keys are given (`false` serves them unchecked anyway).
    #[arg(
        id = "signatures_verify",
        long = "signatures.verify",
        env = "PE_SIGNATURES_VERIFY",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub verify: bool,
    /// Seconds between two reloads of every signature source.
    #[arg(
        id = "signatures_refresh_secs",
        long = "signatures.refresh-secs",
        env = "PE_SIGNATURES_REFRESH_SECS",
        default_value_t = 300
    )]
    pub refresh_secs: u64,
}

/// One configured source, in merge order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureSource {
    /// A `signatures/` tree on disk.
    Tree(PathBuf),
    /// A directory of ConfigMap files.
    ConfigMaps(PathBuf),
    /// Graph-data on disk: the `signatures/` directory of a tree, or of a tarball.
    GraphData(PathBuf),
    /// A graph-data tarball over HTTP.
    GraphDataUrl(Url),
}

/// What the refresh loop reads, validated.
#[derive(Debug, Clone, Default)]
pub struct SignatureSettings {
    /// The sources, merged in this order.
    pub sources: Vec<SignatureSource>,
    /// The keys, when verification is on.
    pub public_keys: Option<PathBuf>,
    /// Pause between reloads.
    pub refresh: Duration,
}

/// Why the signature flags are not usable.
#[derive(Debug, thiserror::Error)]
pub enum SignatureConfigError {
    /// `--signatures.graph-data` is a URL that is not http(s).
    #[error("--signatures.graph-data: `{0}` is neither a path nor an http(s) URL")]
    GraphDataUrl(String),
}

impl SignatureArgs {
    /// The sources: the explicit ones, then graph-data (`in_process_graph_data` in
    /// one-process mode, else derived from the upstream graph URL).
    pub fn settings(
        &self,
        in_process_graph_data: Option<&PathBuf>,
        upstream: Option<&Url>,
    ) -> Result<SignatureSettings, SignatureConfigError> {
        let mut sources = Vec::new();
        if let Some(dir) = &self.dir {
            sources.push(SignatureSource::Tree(dir.clone()));
        }
        if let Some(dir) = &self.configmaps {
            sources.push(SignatureSource::ConfigMaps(dir.clone()));
        }
        match self.graph_data.as_deref() {
            Some("none") | Some("") => {}
            Some(value) if value.contains("://") => match Url::parse(value) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {
                    sources.push(SignatureSource::GraphDataUrl(url))
                }
                _ => return Err(SignatureConfigError::GraphDataUrl(value.to_owned())),
            },
            Some(path) => sources.push(SignatureSource::GraphData(PathBuf::from(path))),
            None => match (in_process_graph_data, upstream) {
                (Some(path), _) => sources.push(SignatureSource::GraphData(path.clone())),
                (None, Some(upstream)) => {
                    if let Some(url) = graph_data_url(upstream) {
                        sources.push(SignatureSource::GraphDataUrl(url));
                    }
                }
                (None, None) => {}
            },
        }
        Ok(SignatureSettings {
            sources,
            public_keys: self.public_keys.clone().filter(|_| self.verify),
            refresh: Duration::from_secs(self.refresh_secs.max(1)),
        })
    }
}

/// The graph-builder's graph-data tarball next to its graph URL: same host, its public
/// port, its prefix (the upstream path without `/v1/graph` or `/graph`) + `/graph-data`.
/// The operator runs both in one pod with the graph-builder's public port on, so this
/// works with its exact command lines.
pub fn graph_data_url(upstream: &Url) -> Option<Url> {
    let mut url = upstream.clone();
    let path = upstream.path().trim_end_matches('/');
    let prefix = path
        .strip_suffix("/v1/graph")
        .or_else(|| path.strip_suffix("/graph"))?;
    url.set_path(&format!("{prefix}/graph-data"));
    url.set_query(None);
    url.set_port(Some(GRAPH_BUILDER_PUBLIC_PORT)).ok()?;
    Some(url)
}

/// A signature that was loaded but is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The digest it is stored under.
    pub digest: ImageDigest,
    /// Where it came from.
    pub origin: String,
    /// Why it is refused.
    pub reason: String,
}

/// What is served, and what the last refresh found.
#[derive(Debug, Clone, Default)]
pub struct Served {
    /// The signatures served.
    pub store: Arc<SignatureStore>,
    /// Signatures that failed verification.
    pub refused: Vec<Refused>,
    /// Files and keys skipped while loading.
    pub problems: Vec<SignatureProblem>,
    /// Per-source load errors of the last refresh (the source's previous signatures are
    /// kept meanwhile).
    pub errors: Vec<String>,
    /// Whether signatures were verified.
    pub verified: bool,
    /// How many refreshes have completed.
    pub refreshes: u64,
    /// The graph's releases without a valid signature (at most
    /// [`refresh::MAX_LISTED`]), sorted by version.
    pub unsigned: Vec<refresh::Unsigned>,
    /// Signed and unsigned releases of the graph, per architecture.
    pub coverage: coverage::Coverage,
}

/// Shared handle on what is served; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SignatureState {
    current: Arc<RwLock<Arc<Served>>>,
}

impl SignatureState {
    /// What is served now.
    pub fn current(&self) -> Arc<Served> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Replaces what is served.
    pub fn publish(&self, served: Served) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(served);
    }
}

/// Registers the signature metrics in `registry` and, when `settings` has sources,
/// starts the refresh loop (abort the handle to stop it). The returned state serves
/// nothing until the first refresh ends.
pub fn start(
    settings: &SignatureSettings,
    graph: &crate::source::GraphSource,
    registry: &Registry,
) -> Result<(serve::SignatureApi, Option<tokio::task::JoinHandle<()>>), prometheus::Error> {
    let api = serve::SignatureApi {
        state: SignatureState::default(),
        metrics: SignatureMetrics::new(registry)?,
    };
    let task = (!settings.sources.is_empty()).then(|| {
        tokio::spawn(refresh_loop(
            settings.clone(),
            api.state.clone(),
            graph.clone(),
            api.metrics.clone(),
        ))
    });
    Ok((api, task))
}

/// The signature metrics, in the policy-engine's registry (bounded labels: the request
/// outcome only, never a digest or a path).
#[derive(Debug, Clone)]
pub struct SignatureMetrics {
    /// Requests by outcome: `served`, `not_modified`, `does_not_exist`, `invalid_params`.
    pub requests: IntCounterVec,
    /// Signatures served.
    pub stored: IntGauge,
    /// Signatures refused by verification.
    pub refused: IntGauge,
    /// Files or keys skipped while loading.
    pub problems: IntGauge,
    /// Releases of the served graph with no valid signature.
    pub releases_without_signature: IntGauge,
    /// `releases_signed{arch}`: releases of the served graph with a valid signature.
    pub releases_signed: IntGaugeVec,
    /// `releases_unsigned{arch}`: releases of the served graph without one.
    pub releases_unsigned: IntGaugeVec,
    /// `signatures_configured`: 1 when this site serves signatures (see
    /// [`coverage::Coverage::configured`]), else 0.
    pub configured: IntGauge,
    /// Source loads that failed.
    pub load_errors: IntCounter,
    /// When the last refresh ended (epoch seconds).
    pub last_refresh: Gauge,
}

impl SignatureMetrics {
    /// Creates and registers the metrics.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new("signatures_requests_total", "Signature requests by outcome"),
            &["outcome"],
        )?;
        let stored = IntGauge::new("signatures_served", "Signatures being served")?;
        let refused = IntGauge::new(
            "signatures_refused",
            "Signatures loaded but not served because verification failed",
        )?;
        let problems = IntGauge::new(
            "signatures_skipped_files",
            "Signature files or ConfigMap keys skipped at the last load",
        )?;
        let releases_without_signature = IntGauge::new(
            "releases_without_signature",
            "Releases of the served graph that have no valid signature",
        )?;
        let releases_signed = IntGaugeVec::new(
            Opts::new(
                "releases_signed",
                "Releases of the served graph with a valid signature served, per architecture",
            ),
            &["arch"],
        )?;
        let releases_unsigned = IntGaugeVec::new(
            Opts::new(
                "releases_unsigned",
                "Releases of the served graph without a valid signature, per architecture",
            ),
            &["arch"],
        )?;
        let configured = IntGauge::new(
            "signatures_configured",
            "1 when signature keys, a signatures tree or ConfigMaps are configured, or a source provided a signature",
        )?;
        let load_errors = IntCounter::new(
            "signatures_load_errors_total",
            "Signature source loads that failed",
        )?;
        let last_refresh = Gauge::new(
            "signatures_last_refresh_timestamp_seconds",
            "When signatures were last reloaded (epoch seconds)",
        )?;
        for outcome in ["served", "not_modified", "does_not_exist", "invalid_params"] {
            requests.with_label_values(&[outcome]);
        }
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(stored.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(problems.clone()))?;
        registry.register(Box::new(releases_without_signature.clone()))?;
        registry.register(Box::new(releases_signed.clone()))?;
        registry.register(Box::new(releases_unsigned.clone()))?;
        registry.register(Box::new(configured.clone()))?;
        registry.register(Box::new(load_errors.clone()))?;
        registry.register(Box::new(last_refresh.clone()))?;
        Ok(Self {
            requests,
            stored,
            refused,
            problems,
            releases_without_signature,
            releases_signed,
            releases_unsigned,
            configured,
            load_errors,
            last_refresh,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_builder_tarball_is_next_to_its_graph() {
        for (upstream, expected) in [
            (
                "http://localhost:8080/v1/graph",
                "http://localhost:8090/graph-data",
            ),
            ("http://gb:8080/graph", "http://gb:8090/graph-data"),
            (
                "https://gb.example/api/upgrades_info/v1/graph?x=1",
                "https://gb.example:8090/api/upgrades_info/graph-data",
            ),
        ] {
            let url = graph_data_url(&Url::parse(upstream).unwrap()).unwrap();
            assert_eq!(url.as_str(), expected);
        }
        assert!(graph_data_url(&Url::parse("http://gb:8080/other").unwrap()).is_none());
    }

    #[test]
    fn sources_in_merge_order() {
        let args = SignatureArgs {
            dir: Some("/s".into()),
            configmaps: Some("/c".into()),
            graph_data: None,
            public_keys: Some("/k".into()),
            verify: true,
            refresh_secs: 0,
        };
        let upstream = Url::parse("http://127.0.0.1:8080/v1/graph").unwrap();
        let s = args.settings(None, Some(&upstream)).unwrap();
        assert_eq!(
            s.sources,
            [
                SignatureSource::Tree("/s".into()),
                SignatureSource::ConfigMaps("/c".into()),
                SignatureSource::GraphDataUrl(
                    Url::parse("http://127.0.0.1:8090/graph-data").unwrap()
                ),
            ]
        );
        assert_eq!(s.public_keys, Some("/k".into()));
        assert_eq!(s.refresh, Duration::from_secs(1));
        let gd = PathBuf::from("/gd");
        let s = args.settings(Some(&gd), Some(&upstream)).unwrap();
        assert_eq!(s.sources[2], SignatureSource::GraphData("/gd".into()));

        let off = SignatureArgs {
            graph_data: Some("none".into()),
            verify: false,
            ..args.clone()
        };
        let s = off.settings(Some(&gd), Some(&upstream)).unwrap();
        assert_eq!(s.sources.len(), 2);
        assert_eq!(s.public_keys, None);
        let bad = SignatureArgs {
            graph_data: Some("ftp://x/y".into()),
            ..args
        };
        assert!(bad.settings(None, None).is_err());
    }
}
