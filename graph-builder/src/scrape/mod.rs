//! Turns a repository's tags into releases, keeping a digest-keyed cache across
//! scrapes so that a refresh of an unchanged repository costs the tag listing plus one
//! `HEAD` per tag and no blob download.
//!
//! Notes for callers:
//! - [`ScrapeError`] wraps the registry client's [`crate::registry::RegistryError`] and adds the scrape's own
//!   failures (layouts, a listed tag whose content is not found).
//! - `ScrapeStats::signatures` counts cosign `.sig`, `.att` and `.sbom` tags.
//! - Images whose release-metadata (or a layer, or a child manifest) is unusable land in
//!   `invalid`; they are not cached, so every scrape reports them again.
//! - [`LayoutScraper`] is to an OCI layout what [`Scraper`] is to a registry (same cache);
//!   [`scrape_oci_layout`] is a one-off `LayoutScraper`.
//! - There is no `/v2/` ping: the first 401 carries the challenge, and the token (or Basic
//!   header) is kept across scrapes until a 401 replaces it. A warm scrape of an unchanged
//!   repository therefore costs exactly the tag pages plus one `HEAD` per non-signature tag
//!   (`stats.http_requests`), and no blob.
//!
//! What fails a scrape: a tag list that cannot be read, and tags that all fail. A tag that
//! fails on its own (transport errors, timeouts, 5xx/429 that survive the retries,
//! unexpected 4xx, digest mismatches, a manifest or blob not found) fails only itself: its
//! release is kept from the last good scrape and the tag is reported in `failing`
//! (`resilience`). A tag list less than half as long as the last good one is held back
//! once. Images we cannot use are reported in `invalid` and left out: unreadable
//! release-metadata, an unknown architecture, metadata that claims channels, one version
//! under two digests (the published one is kept, if any). Signature tags, malformed tags
//! and images without release-metadata are skipped and counted.
//!
//! The cache forgets, after each complete scrape, the images no tag points at any more.
//!
//! Inside: `image` decides what one image is, `layer_scan` searches a layer for the
//! release-metadata file (`release_metadata`, its format), `oci_layout` reads images from
//! a directory instead of a registry, `cache` remembers images by digest, `collect` turns
//! per-tag results into the outcome, `resilience` remembers the last good scrape.

mod cache;
mod collect;
mod error;
mod image;
mod layer_scan;
mod layout;
mod oci_layout;
pub mod progress;
mod release_metadata;
mod resilience;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::StreamExt as _;
use graph_data::keys::MANIFESTREF_KEY;

use crate::registry::client::{Counters, FetchedManifest, Head, Session};
use crate::registry::{Client, ClientConfig};
use cache::Cache;
use collect::{is_signature_tag, is_valid_tag, TagResult};
pub use error::ScrapeError;
use image::{inspect, Source};
pub use layout::{scrape_oci_layout, LayoutScraper};
use progress::Running;
pub use progress::{ProgressReading, ScrapeProgress};
use resilience::LastGood;
pub use resilience::{kept_from_last_good, FailingTag, ShrinkHeldBack};

/// Where and how to scrape release images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeSettings {
    /// `quay.io`, `127.0.0.1:5000`, `http://127.0.0.1:5000`, `https://host:port`; no scheme
    /// means HTTPS.
    pub registry: String,
    /// `ocp/release`.
    pub repository: String,
    /// Credentials, CA directory, retries and limits of the registry client.
    pub client: ClientConfig,
    /// How many tags are processed at once.
    pub fetch_concurrency: usize,
    /// The metadata key that receives the manifest digest.
    pub manifestref_key: String,
}

impl Default for ScrapeSettings {
    fn default() -> Self {
        ScrapeSettings {
            registry: "quay.io".to_string(),
            repository: "openshift-release-dev/ocp-release".to_string(),
            client: ClientConfig {
                ca_dir: Some(PathBuf::from("/etc/pki/ca-trust/extracted")),
                ..ClientConfig::default()
            },
            fetch_concurrency: 16,
            manifestref_key: MANIFESTREF_KEY.to_string(),
        }
    }
}

/// One release found in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapedRelease {
    /// The release version with its build metadata replaced by the arch: `4.14.3+amd64`.
    pub version: semver::Version,
    /// `host[:port]/repository@sha256:...`.
    pub payload: String,
    /// The digest of the manifest (or manifest list / index) as fetched.
    pub manifestref: String,
    /// `amd64`, `arm64`, `ppc64le`, `s390x` or `multi`.
    pub arch: String,
    /// Every tag that pointed at this digest, sorted.
    pub tags: Vec<String>,
    /// The release-metadata `metadata`, plus the manifestref key and the arch key
    /// ([`graph_data::keys::ARCH_KEY`]).
    pub metadata: BTreeMap<String, String>,
    /// `previous` as in the release-metadata, without the arch (shared with the cache).
    pub previous: Arc<[semver::Version]>,
    /// `next` as in the release-metadata, without the arch (shared with the cache).
    pub next: Arc<[semver::Version]>,
}

/// An image that carries release-metadata we cannot use, left out of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRelease {
    /// The tag.
    pub tag: String,
    /// The manifest digest.
    pub digest: String,
    /// Which rule it broke.
    pub kind: InvalidKind,
    /// What is wrong.
    pub error: String,
}

/// Why a release image is left out: a closed set, so it can label a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InvalidKind {
    /// The image or its release-metadata cannot be used (not SemVer, bad JSON, a broken
    /// layer, ...).
    Image,
    /// Its architecture is not one of [`graph_data::keys::KNOWN_ARCHES`].
    Arch,
    /// Its release-metadata claims channels, which only graph-data may set.
    Channels,
    /// Another image claims the same version and architecture.
    DuplicateVersion,
    /// Its `previous`/`next` entries close a cycle in the update graph.
    Cycle,
}

impl InvalidKind {
    /// Every kind, for metrics that show zeros too.
    pub const ALL: [InvalidKind; 5] = [
        InvalidKind::Image,
        InvalidKind::Arch,
        InvalidKind::Channels,
        InvalidKind::DuplicateVersion,
        InvalidKind::Cycle,
    ];

    /// The name used in `/status` and as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidKind::Image => "image",
            InvalidKind::Arch => "arch",
            InvalidKind::Channels => "channels",
            InvalidKind::DuplicateVersion => "duplicate_version",
            InvalidKind::Cycle => "cycle",
        }
    }
}

/// Counters of one scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    /// Tags listed.
    pub tags: usize,
    /// Releases found (distinct digests).
    pub releases: usize,
    /// Cosign signature/attestation/SBOM tags, skipped unfetched.
    pub signatures: usize,
    /// Tags of readable images without release-metadata.
    pub not_releases: usize,
    /// Tags of per-arch children of a multi payload.
    pub shards_dropped: usize,
    /// Tags answered from the digest cache.
    pub cache_hits: usize,
    /// HTTP requests sent (retries and token requests included).
    pub http_requests: u64,
    /// Blobs requested (configs and layers).
    pub blob_requests: u64,
    /// Blob bytes actually read.
    pub blob_bytes: u64,
}

/// The result of one scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeOutcome {
    /// Releases sorted by version.
    pub releases: Vec<ScrapedRelease>,
    /// Release images that could not be used, sorted by tag.
    pub invalid: Vec<InvalidRelease>,
    /// Listed tags that could not be read, sorted by tag; their releases are kept from
    /// the last good scrape when it had them.
    pub failing: Vec<FailingTag>,
    /// Set when the tag list shrank so much that this outcome is the last good one again.
    pub held_back_shrink: Option<ShrinkHeldBack>,
    /// Counters.
    pub stats: ScrapeStats,
}

/// Scrapes one repository, again and again, with a cache that persists between scrapes.
#[derive(Debug)]
pub struct Scraper {
    fetch_concurrency: usize,
    manifestref_key: String,
    /// Keeps the registry's token (or Basic header) across scrapes.
    client: Client,
    cache: Cache,
    last_good: LastGood,
    progress: Arc<ScrapeProgress>,
}

impl Scraper {
    /// The progress of the scrape in progress (or of the last one).
    pub fn progress(&self) -> Arc<ScrapeProgress> {
        Arc::clone(&self.progress)
    }

    /// Validates the settings, loads the CA directory and builds the registry client.
    pub fn new(settings: ScrapeSettings) -> Result<Self, ScrapeError> {
        if settings.fetch_concurrency == 0 {
            return Err(ScrapeError::InvalidSettings {
                field: "fetch_concurrency",
                value: "0".to_string(),
                reason: "must be at least 1".to_string(),
            });
        }
        let client = Client::new(&settings.registry, &settings.repository, settings.client)?;
        let progress = Arc::new(ScrapeProgress::with_errors(client.error_tally()));
        Ok(Scraper {
            fetch_concurrency: settings.fetch_concurrency,
            manifestref_key: settings.manifestref_key,
            client,
            cache: Cache::default(),
            last_good: LastGood::default(),
            progress,
        })
    }

    /// Lists the tags and finds every release among them.
    pub async fn scrape(&self) -> Result<ScrapeOutcome, ScrapeError> {
        // A session per scrape reads the credentials again, so a rotated pull secret is
        // picked up.
        let session = self.client.session()?;
        let result = self.scrape_with(&session).await;
        let outcome = result.map(|mut outcome| {
            add_counters(&mut outcome.stats, &session.counters);
            outcome
        })?;
        let s = &outcome.stats;
        let target = self.client.target();
        if outcome.releases.is_empty() {
            tracing::warn!(
                registry = %target.host,
                repository = %target.repository,
                "the scrape found no release"
            );
        }
        tracing::info!(
            registry = %target.host,
            repository = %target.repository,
            tags = s.tags,
            releases = s.releases,
            invalid = outcome.invalid.len(),
            failing = outcome.failing.len(),
            signatures = s.signatures,
            not_releases = s.not_releases,
            cache_hits = s.cache_hits,
            http_requests = s.http_requests,
            blob_bytes = s.blob_bytes,
            "scrape finished"
        );
        Ok(outcome)
    }

    async fn scrape_with(&self, session: &Session) -> Result<ScrapeOutcome, ScrapeError> {
        self.progress.start();
        let _running = Running(&self.progress);
        let tags = session.list_tags().await?;
        let listed = tags.len();
        self.progress.listed(listed);
        let target = self.client.target();
        let source = format!("{}/{}", target.host, target.repository);
        let payload = |digest: &str| target.payload(digest);
        if let Some(held) =
            self.last_good
                .hold_back(listed, &payload, &self.manifestref_key, &source)
        {
            return Ok(held);
        }
        let warm = !self.cache.is_empty();
        let repository = &target.repository;
        let results: Vec<TagResult> = futures::stream::iter(tags)
            .map(|tag| async move {
                let result = match self.scrape_tag(session, tag.clone(), warm).await {
                    Ok(result) => result,
                    // Named like the registry client's errors: registry, repository, item.
                    Err(ScrapeError::NotFound { item }) => TagResult::Failed {
                        tag,
                        error: ScrapeError::NotFound {
                            item: format!(
                                "registry {}, repository {repository}, {item}",
                                target.host
                            ),
                        },
                    },
                    Err(error) => TagResult::Failed { tag, error },
                };
                self.progress.tag_done(repository);
                result
            })
            .buffer_unordered(self.fetch_concurrency)
            .collect()
            .await;
        let seen = collect::digests(&results);
        let outcome =
            self.last_good
                .finish(results, listed, &payload, &self.manifestref_key, &source)?;
        // Only after a complete scrape: images no tag points at any more are forgotten.
        self.cache.retain_images(&seen);
        Ok(outcome)
    }

    async fn scrape_tag(
        &self,
        session: &Session,
        tag: String,
        warm: bool,
    ) -> Result<TagResult, ScrapeError> {
        if is_signature_tag(&tag) {
            return Ok(TagResult::Signature);
        }
        if !is_valid_tag(&tag) {
            tracing::warn!(?tag, "the registry listed a malformed tag; skipping it");
            return Ok(TagResult::Skipped);
        }
        let item = format!("tag {tag}");
        // Cold: GET straight away. Warm: HEAD gives the digest, which is usually cached.
        let fetched = if warm {
            match session.head_manifest(&tag).await? {
                Head::NotFound => None,
                Head::Digest(digest) => {
                    if let Some(outcome) = self.cache.image(&digest) {
                        return Ok(TagResult::cached(tag, digest, outcome));
                    }
                    session
                        .get_manifest(&digest, &format!("{item} manifest {digest}"))
                        .await?
                }
                Head::NoDigest => session.get_manifest(&tag, &item).await?,
            }
        } else {
            session.get_manifest(&tag, &item).await?
        };
        // Listed but not found: a registry that lost the manifest, or a tag removed during
        // the scrape. Either way the next listing decides whether the release goes.
        let Some(manifest) = fetched else {
            return Err(ScrapeError::NotFound {
                item: format!("{item} manifest"),
            });
        };
        resolve(Source::Registry(session), &self.cache, tag, &manifest).await
    }
}

/// What one tag's manifest is: from the digest cache, or inspected, logged and cached.
pub(crate) async fn resolve(
    source: Source<'_>,
    cache: &Cache,
    tag: String,
    manifest: &FetchedManifest,
) -> Result<TagResult, ScrapeError> {
    let digest = manifest.digest.clone();
    if let Some(outcome) = cache.image(&digest) {
        return Ok(TagResult::cached(tag, digest, outcome));
    }
    let outcome = inspect(source, cache, &tag, manifest).await?;
    log_outcome(&tag, &digest, &outcome);
    cache.store_image(&digest, &outcome);
    Ok(TagResult::Image {
        tag,
        digest,
        outcome,
        cache_hit: false,
    })
}

pub(crate) fn log_outcome(tag: &str, digest: &str, outcome: &cache::ImageOutcome) {
    match outcome {
        cache::ImageOutcome::NotRelease(reason) => {
            tracing::debug!(%tag, %digest, %reason, "not a release image")
        }
        cache::ImageOutcome::Invalid(error) => {
            tracing::warn!(%tag, %digest, %error, "invalid release image")
        }
        cache::ImageOutcome::ShardDropped => {
            tracing::debug!(%tag, %digest, "per-arch shard of a multi payload")
        }
        cache::ImageOutcome::Release(_) => {}
    }
}

pub(crate) fn add_counters(stats: &mut ScrapeStats, counters: &Counters) {
    stats.http_requests = counters.http_requests.load(Ordering::Relaxed);
    stats.blob_requests = counters.blob_requests.load(Ordering::Relaxed);
    stats.blob_bytes = counters.blob_bytes.load(Ordering::Relaxed);
}
