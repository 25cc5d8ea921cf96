//! What one image is: manifest -> layers (top-most first) -> release-metadata ->
//! architecture (from the manifest list's platform, or else from the config blob, read
//! only for an image that holds release-metadata).
//!
//! Works the same over a registry and an OCI layout ([`Source`]). A single-entry manifest
//! list is that entry's architecture, with layers from the child manifest fetched by digest
//! (the reference fetched child digests as blobs); several entries make `multi`, read
//! from the last child like the reference does.

use std::sync::Arc;

use bytes::Bytes;
use graph_data::keys::{chain, PAYLOAD_ARCH_KEY};

use super::cache::{Cache, ImageOutcome, ReleaseImage};
use crate::registry::client::{BlobStream, FetchedManifest, Session};
use crate::registry::manifest::{
    config_architecture, is_sha256_digest, parse_manifest, ImageManifest, Manifest,
};
use crate::registry::verify::verified;
use crate::registry::{ErrorKind, RetryPolicy};
use crate::scrape::layer_scan::{find_release_metadata, LayerError, Scan};
use crate::scrape::oci_layout::OciLayout;
use crate::scrape::release_metadata::parse_release_metadata;
use crate::scrape::ScrapeError;

/// Reads of one layer before a broken stream fails the scrape, on the client's backoff.
const LAYER_ATTEMPTS: u32 = 3;

/// An image's architecture, or where to read it: the config blob is fetched only once
/// the image turns out to hold release-metadata, so the component images a mirror keeps
/// beside the releases cost one blob request less each (a blob is the registry's
/// dearest request: distribution spends about 2 ms of CPU on each).
enum Arch {
    Known(String),
    /// From the config blob of the image; the string names the image for errors.
    FromConfig(String),
}

/// Where images come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    Registry(&'a Session),
    Layout(&'a OciLayout),
}

impl Source<'_> {
    async fn manifest(
        &self,
        digest: &str,
        item: &str,
    ) -> Result<Option<FetchedManifest>, ScrapeError> {
        match self {
            Source::Registry(session) => Ok(session.get_manifest(digest, item).await?),
            Source::Layout(layout) => layout.manifest(digest, item).await,
        }
    }

    async fn small_blob(&self, digest: &str, item: &str) -> Result<Option<Bytes>, ScrapeError> {
        match self {
            Source::Registry(session) => Ok(session.get_small_blob(digest, item).await?),
            Source::Layout(layout) => layout.small_blob(digest, item).await,
        }
    }

    /// The layer's bytes, checked against its digest and the manifest's size as they
    /// arrive: a layer that ends short, runs long or hashes otherwise fails its last read.
    async fn blob_stream(
        &self,
        digest: &str,
        size: Option<u64>,
        item: &str,
    ) -> Result<Option<BlobStream>, ScrapeError> {
        Ok(match self {
            Source::Registry(session) => session.open_blob(digest, size, item).await?,
            Source::Layout(layout) => layout
                .blob_stream(digest, item)
                .await?
                .map(|stream| verified(stream, digest, size)),
        })
    }

    /// The backoff between reads of a broken layer stream.
    fn retry(&self) -> RetryPolicy {
        let base = match self {
            Source::Registry(session) => *session.retry(),
            Source::Layout(_) => RetryPolicy::default(),
        };
        RetryPolicy {
            attempts: LAYER_ATTEMPTS.min(base.attempts),
            ..base
        }
    }

    /// The failure of a layer stream that kept breaking.
    fn stream_broke(&self, item: String, source: std::io::Error) -> ScrapeError {
        match self {
            Source::Registry(session) => session.error(&item, ErrorKind::BlobStream(source)).into(),
            Source::Layout(layout) => ScrapeError::LayoutRead {
                path: layout.root().to_path_buf(),
                item,
                source,
            },
        }
    }
}

/// Decides what the image behind `manifest` is. `Err` only for fetch failures, which fail
/// this tag (transport, 5xx after retries, digest mismatches, a blob not found).
pub(crate) async fn inspect(
    source: Source<'_>,
    cache: &Cache,
    tag: &str,
    manifest: &FetchedManifest,
) -> Result<ImageOutcome, ScrapeError> {
    let item = format!("tag {tag} manifest {}", manifest.digest);
    let parsed = match parse_manifest(manifest.content_type.as_deref(), &manifest.body) {
        Ok(parsed) => parsed,
        Err(reason) => return Ok(ImageOutcome::Invalid(reason)),
    };
    let (arch, image) = match parsed {
        Manifest::Unsupported(media_type) => {
            return Ok(ImageOutcome::NotRelease(format!(
                "manifest media type {media_type}"
            )))
        }
        Manifest::Image(image) => {
            if !image.is_container_image() {
                return Ok(ImageOutcome::NotRelease(
                    "an artifact, not a container image".into(),
                ));
            }
            (Arch::FromConfig(item.clone()), image)
        }
        Manifest::Index(index) => {
            let entries: Vec<_> = index
                .manifests
                .iter()
                .filter(|e| !e.is_attestation())
                .collect();
            let Some(child) = entries.last() else {
                return Ok(ImageOutcome::NotRelease("an empty manifest list".into()));
            };
            if !is_sha256_digest(&child.digest) {
                return Ok(ImageOutcome::Invalid(format!(
                    "malformed child digest {:?}",
                    child.digest
                )));
            }
            let child_item = format!("{item} child {}", child.digest);
            let Some(fetched) = source.manifest(&child.digest, &child_item).await? else {
                return Err(ScrapeError::NotFound { item: child_item });
            };
            let image = match parse_manifest(fetched.content_type.as_deref(), &fetched.body) {
                Ok(Manifest::Image(image)) => image,
                Ok(_) => {
                    return Ok(ImageOutcome::Invalid(format!(
                        "child {} is not an image manifest",
                        child.digest
                    )))
                }
                Err(reason) => {
                    return Ok(ImageOutcome::Invalid(format!(
                        "child {}: {reason}",
                        child.digest
                    )))
                }
            };
            let platform_arch = child.platform.as_ref().map(|p| p.architecture.clone());
            let arch = match platform_arch.filter(|a| !a.is_empty()) {
                _ if entries.len() > 1 => Arch::Known("multi".to_string()),
                Some(arch) => Arch::Known(arch),
                None => Arch::FromConfig(child_item),
            };
            (arch, image)
        }
    };
    if image.layers.is_empty() {
        return Ok(ImageOutcome::NotRelease("an image without layers".into()));
    }
    if let Some(bad) = image.layers.iter().find(|l| !is_sha256_digest(&l.digest)) {
        return Ok(ImageOutcome::Invalid(format!(
            "malformed layer digest {:?}",
            bad.digest
        )));
    }
    for layer in image.layers.iter().rev() {
        if cache.layer_is_plain(&layer.digest, &manifest.digest) {
            continue;
        }
        let _reading = cache.reading_layer(&layer.digest, layer.size).await;
        // Another image may have scanned it while we waited.
        if cache.layer_is_plain(&layer.digest, &manifest.digest) {
            continue;
        }
        let layer_item = format!("{item} layer {}", layer.digest);
        let retry = source.retry();
        let mut attempt = 0;
        let scanned = loop {
            attempt += 1;
            let Some(stream) = source
                .blob_stream(&layer.digest, layer.size, &layer_item)
                .await?
            else {
                return Err(ScrapeError::NotFound { item: layer_item });
            };
            match find_release_metadata(stream, layer.size).await {
                // A stream that broke mid-way is read again from the start, like any
                // transport error; what was read is not kept.
                Err(LayerError::Source(e)) if retry.retries_after(attempt) => {
                    tracing::debug!(%layer_item, attempt, error = %chain(&e), "retrying layer");
                    tokio::time::sleep(retry.delay(attempt)).await;
                }
                scanned => break scanned,
            }
        };
        match scanned {
            Ok(Scan::Metadata(bytes)) => {
                let metadata = match parse_release_metadata(&bytes) {
                    Ok(metadata) => metadata,
                    Err(e) => {
                        let reason = format!("layer {}: {}", layer.digest, chain(&e));
                        return Ok(ImageOutcome::Invalid(reason));
                    }
                };
                let arch = match arch {
                    Arch::Known(arch) => arch,
                    Arch::FromConfig(item) => match image_arch(source, &image, &item).await? {
                        Ok(arch) => arch,
                        Err(reason) => return Ok(ImageOutcome::Invalid(reason)),
                    },
                };
                return Ok(release(arch, cache.share_lists(metadata)));
            }
            // Only a layer read to its end and verified gets here: a body cut short or
            // empty fails its check instead of passing for a layer without metadata.
            Ok(Scan::Nothing) => cache.mark_layer_plain(&layer.digest, &manifest.digest),
            // Lower layers' metadata is deleted, as a runtime would see the image; not
            // remembered as plain, since the next image may stack it differently.
            Ok(Scan::Deleted) => {
                return Ok(ImageOutcome::NotRelease(format!(
                    "layer {} deletes release-manifests/release-metadata (a whiteout)",
                    layer.digest
                )))
            }
            Err(LayerError::Source(source_error)) => {
                return Err(source.stream_broke(layer_item, source_error));
            }
            Err(e) => {
                return Ok(ImageOutcome::Invalid(format!(
                    "layer {}: {}",
                    layer.digest,
                    chain(&e)
                )))
            }
        }
    }
    Ok(ImageOutcome::NotRelease(
        "no release-metadata in any layer".into(),
    ))
}

fn release(
    arch: String,
    metadata: crate::scrape::release_metadata::ReleaseMetadata,
) -> ImageOutcome {
    let is_shard = metadata.metadata.get(PAYLOAD_ARCH_KEY).map(String::as_str) == Some("multi")
        && arch != "multi";
    if is_shard {
        ImageOutcome::ShardDropped
    } else {
        ImageOutcome::Release(Arc::new(ReleaseImage { arch, metadata }))
    }
}

/// The architecture from the config blob; `Ok(Err(..))` when the image is unusable.
async fn image_arch(
    source: Source<'_>,
    image: &ImageManifest,
    item: &str,
) -> Result<Result<String, String>, ScrapeError> {
    if !is_sha256_digest(&image.config.digest) {
        return Ok(Err(format!(
            "malformed config digest {:?}",
            image.config.digest
        )));
    }
    let config_item = format!("{item} config {}", image.config.digest);
    match source
        .small_blob(&image.config.digest, &config_item)
        .await?
    {
        None => Err(ScrapeError::NotFound { item: config_item }),
        Some(config) => Ok(config_architecture(&config)),
    }
}
