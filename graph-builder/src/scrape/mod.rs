//! Turns a repository's tags into releases (B §2.3), keeping a digest-keyed cache across
//! scrapes so that a refresh of an unchanged repository costs the tag listing plus one
//! `HEAD` per tag and no blob download.
//!
//! Contract notes for callers (deviations from the API sketch, kept minimal):
//! - [`ScrapeError`] lives in `registry::error` and is re-exported here.
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
//! What fails a scrape: transport errors, timeouts, 5xx/429 that survive the retries,
//! unexpected 4xx, digest mismatches, and two digests claiming one version. What does not:
//! signature tags, tags that vanish (404) or are malformed, images without release-metadata
//! (skipped and counted), and images we cannot read into (reported in `invalid`).
//!
//! The cache forgets, after each complete scrape, the images no tag points at any more.

mod assemble;
mod cache;
mod image;
mod layout;
pub mod progress;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::{StreamExt as _, TryStreamExt as _};

use crate::registry::auth::{credentials_for, SharedAuth};
use crate::registry::ca::load_ca_directory;
use crate::registry::client::{
    build_http_client, Counters, FetchedManifest, Head, RegistryClient, RetryPolicy,
};
use crate::registry::Target;
pub use crate::registry::{ScrapeError, ScrapeSettings};
pub use assemble::ARCH_KEY;
use assemble::{assemble, is_signature_tag, is_valid_tag, TagResult};
use cache::Cache;
use image::{inspect, Source};
pub use layout::{scrape_oci_layout, LayoutScraper};
use progress::Running;
pub use progress::{ProgressReading, ScrapeProgress};

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
    /// The release-metadata `metadata`, plus the manifestref key and [`ARCH_KEY`].
    pub metadata: BTreeMap<String, String>,
    /// `previous` as in the release-metadata, without the arch.
    pub previous: Vec<semver::Version>,
    /// `next` as in the release-metadata, without the arch.
    pub next: Vec<semver::Version>,
}

/// An image that carries release-metadata we cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRelease {
    /// The tag.
    pub tag: String,
    /// The manifest digest.
    pub digest: String,
    /// What is wrong.
    pub error: String,
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
    /// Tags of per-arch children of a multi payload (B §2.3 step 10).
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
    /// Counters.
    pub stats: ScrapeStats,
}

/// Scrapes one repository, again and again, with a cache that persists between scrapes.
#[derive(Debug)]
pub struct Scraper {
    settings: ScrapeSettings,
    target: Target,
    http: reqwest::Client,
    cache: Cache,
    /// The registry's token (or Basic header), kept across scrapes.
    authorization: SharedAuth,
    retry: RetryPolicy,
    progress: Arc<ScrapeProgress>,
}

impl Scraper {
    /// The progress of the scrape in progress (or of the last one).
    pub fn progress(&self) -> Arc<ScrapeProgress> {
        Arc::clone(&self.progress)
    }

    /// Validates the settings, loads the CA directory and builds the HTTP client.
    pub fn new(settings: ScrapeSettings) -> Result<Self, ScrapeError> {
        if settings.fetch_concurrency == 0 {
            return Err(ScrapeError::InvalidSettings {
                field: "fetch_concurrency",
                value: "0".to_string(),
                reason: "must be at least 1".to_string(),
            });
        }
        let target = Target::parse(&settings.registry, &settings.repository)?;
        let ca = match &settings.root_certificate_dir {
            Some(dir) => load_ca_directory(dir)?,
            None => Default::default(),
        };
        let http = build_http_client(&target.host, &ca)?;
        Ok(Scraper {
            settings,
            target,
            http,
            cache: Cache::default(),
            authorization: Arc::default(),
            retry: RetryPolicy::default(),
            progress: Arc::default(),
        })
    }

    /// Lists the tags and finds every release among them.
    pub async fn scrape(&self) -> Result<ScrapeOutcome, ScrapeError> {
        // Read on every scrape so that a rotated pull secret is picked up.
        let credentials = match &self.settings.credentials_path {
            Some(path) => credentials_for(path, &self.target.host, &self.target.repository)?,
            None => None,
        };
        if self.settings.credentials_path.is_some() && credentials.is_none() {
            tracing::debug!(registry = %self.target.host, "no credentials entry; scraping anonymously");
        }
        let client = RegistryClient::new(
            self.http.clone(),
            self.target.clone(),
            credentials,
            Arc::clone(&self.authorization),
            self.retry,
        );
        let result = self.scrape_with(&client).await;
        let counters = &client.counters;
        let outcome = result.map(|mut outcome| {
            add_counters(&mut outcome.stats, counters);
            outcome
        })?;
        let s = &outcome.stats;
        if outcome.releases.is_empty() {
            tracing::warn!(
                registry = %self.target.host,
                repository = %self.target.repository,
                "the scrape found no release"
            );
        }
        tracing::info!(
            registry = %self.target.host,
            repository = %self.target.repository,
            tags = s.tags,
            releases = s.releases,
            invalid = outcome.invalid.len(),
            signatures = s.signatures,
            not_releases = s.not_releases,
            cache_hits = s.cache_hits,
            http_requests = s.http_requests,
            blob_bytes = s.blob_bytes,
            "scrape finished"
        );
        Ok(outcome)
    }

    async fn scrape_with(&self, client: &RegistryClient) -> Result<ScrapeOutcome, ScrapeError> {
        self.progress.start();
        let _running = Running(&self.progress);
        let tags = client.list_tags().await?;
        self.progress.listed(tags.len());
        let warm = !self.cache.is_empty();
        let repository = &self.target.repository;
        let results: Vec<TagResult> = futures::stream::iter(tags)
            .map(|tag| async move {
                let result = self.scrape_tag(client, tag, warm).await;
                self.progress.tag_done(repository);
                result
            })
            .buffer_unordered(self.settings.fetch_concurrency)
            .try_collect()
            .await?;
        let seen = assemble::digests(&results);
        let target = &self.target;
        let outcome = assemble(
            results,
            |digest| target.payload(digest),
            &self.settings.manifestref_key,
        )?;
        // Only after a complete scrape: images no tag points at any more are forgotten.
        self.cache.retain_images(&seen);
        Ok(outcome)
    }

    async fn scrape_tag(
        &self,
        client: &RegistryClient,
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
            match client.head_manifest(&tag).await? {
                Head::NotFound => None,
                Head::Digest(digest) => {
                    if let Some(outcome) = self.cache.image(&digest) {
                        return Ok(TagResult::cached(tag, digest, outcome));
                    }
                    client
                        .get_manifest(&digest, &format!("{item} manifest {digest}"))
                        .await?
                }
                Head::NoDigest => client.get_manifest(&tag, &item).await?,
            }
        } else {
            client.get_manifest(&tag, &item).await?
        };
        let Some(manifest) = fetched else {
            tracing::info!(%tag, "tag vanished during the scrape; skipping it");
            return Ok(TagResult::Skipped);
        };
        resolve(Source::Registry(client), &self.cache, tag, &manifest).await
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
