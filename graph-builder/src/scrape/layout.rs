//! Scraping an OCI image layout directory (A4, air-gapped sites), with the same per-image
//! logic and digest cache as a registry: a re-scrape of an unchanged layout reads
//! `index.json` and the manifests, and no config or layer.

use std::path::{Path, PathBuf};

use futures::StreamExt as _;

use super::cache::Cache;
use super::collect::{digests, is_signature_tag, TagResult};
use super::image::Source;
use super::progress::{Running, ScrapeProgress};
use super::resilience::LastGood;
use super::{add_counters, resolve, ScrapeError, ScrapeOutcome};
use crate::scrape::oci_layout::OciLayout;
use graph_data::keys::MANIFESTREF_KEY;

/// Images inspected at once: disk reads, so fewer than for a registry.
const LAYOUT_CONCURRENCY: usize = 8;

/// Scrapes one OCI layout directory again and again, keeping a digest cache.
#[derive(Debug)]
pub struct LayoutScraper {
    dir: PathBuf,
    payload_repository: String,
    // Boxed: the maps would make the scraper a large value to move around.
    cache: Box<Cache>,
    last_good: LastGood,
    progress: std::sync::Arc<ScrapeProgress>,
}

impl LayoutScraper {
    /// Payloads will be `payload_repository@digest` (e.g. `mirror.example:5000/ocp/release`,
    /// where the images are, or will be, pullable).
    pub fn new(dir: impl Into<PathBuf>, payload_repository: impl Into<String>) -> Self {
        LayoutScraper {
            dir: dir.into(),
            payload_repository: payload_repository.into().trim_end_matches('/').to_string(),
            cache: Box::default(),
            last_good: LastGood::default(),
            progress: std::sync::Arc::default(),
        }
    }

    /// The progress of the scrape in progress (or of the last one).
    pub fn progress(&self) -> std::sync::Arc<ScrapeProgress> {
        std::sync::Arc::clone(&self.progress)
    }

    /// Reads `index.json` and finds every release among the tagged images. Metadata uses
    /// the default manifestref key. Unreadable tags and a shrunken index are handled as
    /// for a registry (kept from the last good scrape, held back once).
    pub async fn scrape(&self) -> Result<ScrapeOutcome, ScrapeError> {
        self.progress.start();
        let _running = Running(&self.progress);
        let layout = OciLayout::open(&self.dir).await?;
        let entries = layout.tags().await?;
        let listed = entries.len();
        self.progress.listed(listed);
        let name = self.dir.display().to_string();
        let payload_repository = &self.payload_repository;
        let payload = |digest: &str| format!("{payload_repository}@{digest}");
        if let Some(held) = self
            .last_good
            .hold_back(listed, &payload, MANIFESTREF_KEY, &name)
        {
            return Ok(held);
        }
        let results: Vec<TagResult> = futures::stream::iter(entries)
            .map(|(tag, digest)| async {
                let result = match self.scrape_tag(&layout, tag.clone(), digest).await {
                    Ok(result) => result,
                    Err(error) => TagResult::Failed { tag, error },
                };
                self.progress.tag_done(&name);
                result
            })
            .buffer_unordered(LAYOUT_CONCURRENCY)
            .collect()
            .await;
        let seen = digests(&results);
        let mut outcome =
            self.last_good
                .finish(results, listed, &payload, MANIFESTREF_KEY, &name)?;
        self.cache.retain_images(&seen);
        add_counters(&mut outcome.stats, &layout.counters);
        Ok(outcome)
    }

    async fn scrape_tag(
        &self,
        layout: &OciLayout,
        tag: String,
        digest: String,
    ) -> Result<TagResult, ScrapeError> {
        if is_signature_tag(&tag) {
            return Ok(TagResult::Signature);
        }
        let item = format!("tag {tag} manifest {digest}");
        // Read and verified even when cached: a layout can be rewritten in place.
        let Some(manifest) = layout.manifest(&digest, &item).await? else {
            return Err(ScrapeError::Layout {
                path: self.dir.join("blobs/sha256"),
                reason: format!("{item}: the manifest blob is missing"),
            });
        };
        resolve(Source::Layout(layout), &self.cache, tag, &manifest).await
    }
}

/// Scrapes an OCI image layout directory once; see [`LayoutScraper`].
pub async fn scrape_oci_layout(
    dir: &Path,
    payload_repository: &str,
) -> Result<ScrapeOutcome, ScrapeError> {
    LayoutScraper::new(dir, payload_repository).scrape().await
}
