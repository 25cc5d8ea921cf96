//! A second source of release images: an OCI image layout directory (`oci-layout`,
//! `index.json`, `blobs/sha256/...`), as `skopeo copy docker://... oci:DIR:TAG` writes it.
//!
//! The tag is the `org.opencontainers.image.ref.name` annotation of an `index.json` entry;
//! an entry may point at a nested index (a multi-arch payload). The layout stores manifest
//! bytes unchanged, so the digests, and hence the releases, are the same as in a registry
//! holding the same images.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt as _;
use serde::Deserialize;

use crate::registry::client::{BlobStream, Counters, FetchedManifest};
use crate::registry::manifest::{is_sha256_digest, sha256_digest, IndexManifest};
use crate::registry::{BlobReadError, Limits};
use crate::scrape::ScrapeError;

/// The annotation that carries the tag.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An opened layout directory.
#[derive(Debug)]
pub(crate) struct OciLayout {
    root: PathBuf,
    pub(crate) counters: Arc<Counters>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutMarker {
    image_layout_version: String,
}

impl OciLayout {
    fn error(path: &Path, reason: impl std::fmt::Display) -> ScrapeError {
        ScrapeError::Layout {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }

    /// Checks the `oci-layout` marker file.
    pub(crate) async fn open(root: &Path) -> Result<OciLayout, ScrapeError> {
        let marker_path = root.join("oci-layout");
        let marker = tokio::fs::read(&marker_path)
            .await
            .map_err(|e| Self::error(&marker_path, e))?;
        let marker: LayoutMarker = serde_json::from_slice(&marker)
            .map_err(|e| Self::error(&marker_path, format!("not an OCI layout marker: {e}")))?;
        if !marker.image_layout_version.starts_with("1.") {
            return Err(Self::error(
                &marker_path,
                format!(
                    "unsupported imageLayoutVersion {}",
                    marker.image_layout_version
                ),
            ));
        }
        Ok(OciLayout {
            root: root.to_path_buf(),
            counters: Arc::default(),
        })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// `(tag, manifest digest)` for every tagged entry of `index.json`.
    pub(crate) async fn tags(&self) -> Result<Vec<(String, String)>, ScrapeError> {
        let path = self.root.join("index.json");
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| Self::error(&path, e))?;
        let index: IndexManifest = serde_json::from_slice(&bytes)
            .map_err(|e| Self::error(&path, format!("not an OCI index: {e}")))?;
        Ok(index
            .manifests
            .into_iter()
            .filter_map(|entry| {
                let name = entry.annotations.get(REF_NAME)?;
                Some((tag_of(name).to_string(), entry.digest))
            })
            .collect())
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, ScrapeError> {
        match digest.strip_prefix("sha256:") {
            Some(hex) if is_sha256_digest(digest) => Ok(self.root.join("blobs/sha256").join(hex)),
            _ => Err(Self::error(
                &self.root,
                format!("malformed digest {digest:?}"),
            )),
        }
    }

    /// Reads a small blob fully and checks its digest; `None` when the file is absent.
    /// Manifests are not counted as blob reads, as for a registry.
    async fn read_verified(
        &self,
        digest: &str,
        item: &str,
        is_blob: bool,
    ) -> Result<Option<Bytes>, ScrapeError> {
        let path = self.blob_path(digest)?;
        let meta = match tokio::fs::metadata(&path).await {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Self::error(&path, e)),
        };
        // Manifests and configs alike: the registry client's larger limit of the two.
        let limits = Limits::default();
        let cap = limits.max_manifest_bytes.max(limits.max_config_bytes);
        if meta.len() > cap {
            return Err(Self::error(
                &path,
                format!("{item} is larger than {cap} bytes"),
            ));
        }
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| Self::error(&path, e))?;
        if is_blob {
            self.counters.blob_requests.fetch_add(1, Ordering::Relaxed);
            self.counters
                .blob_bytes
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(ScrapeError::LayoutDigestMismatch {
                path: self.root.clone(),
                item: item.to_string(),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(Some(Bytes::from(bytes)))
    }

    pub(crate) async fn manifest(
        &self,
        digest: &str,
        item: &str,
    ) -> Result<Option<FetchedManifest>, ScrapeError> {
        Ok(self
            .read_verified(digest, item, false)
            .await?
            .map(|body| FetchedManifest {
                digest: digest.to_string(),
                // The body's `mediaType` decides, as it does for a registry that omits the header.
                content_type: None,
                body,
            }))
    }

    pub(crate) async fn small_blob(
        &self,
        digest: &str,
        item: &str,
    ) -> Result<Option<Bytes>, ScrapeError> {
        self.read_verified(digest, item, true).await
    }

    pub(crate) async fn blob_stream(
        &self,
        digest: &str,
        _item: &str,
    ) -> Result<Option<BlobStream>, ScrapeError> {
        let path = self.blob_path(digest)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Self::error(&path, e)),
        };
        self.counters.blob_requests.fetch_add(1, Ordering::Relaxed);
        let counters = Arc::clone(&self.counters);
        let stream = tokio_util::io::ReaderStream::new(file)
            .map_ok(move |chunk| {
                counters
                    .blob_bytes
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                chunk
            })
            .map_err(BlobReadError::wrap);
        Ok(Some(Box::pin(stream)))
    }
}

/// skopeo writes the bare tag; other tools write a full reference (`host/repo:tag`).
fn tag_of(name: &str) -> &str {
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') && (repo.contains('/') || repo.contains('.')) => {
            tag
        }
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_from_ref_names() {
        assert_eq!(tag_of("4.14.3-x86_64"), "4.14.3-x86_64");
        assert_eq!(tag_of("quay.io/ocp/release:4.14.3"), "4.14.3");
        assert_eq!(tag_of("localhost:5000/r:1.0.0"), "1.0.0");
    }

    #[tokio::test]
    async fn open_requires_the_marker_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = OciLayout::open(dir.path()).await.unwrap_err().to_string();
        assert!(err.contains("oci-layout"), "{err}");
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let layout = OciLayout::open(dir.path()).await.unwrap();
        assert!(layout.blob_path("sha256:../../x").is_err());
        let missing = format!("sha256:{}", "0".repeat(64));
        assert!(layout.manifest(&missing, "m").await.unwrap().is_none());
    }
}
