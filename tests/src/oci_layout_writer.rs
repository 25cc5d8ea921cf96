//! Writes images built by [`crate::images`] into an OCI image layout directory
//! (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), byte for byte as built, so the
//! digests are those a registry would hold. The output is deterministic: blobs are named
//! by content and `index.json` lists tags in sorted order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::images::{Artifact, Image};
use crate::HarnessError;

/// The annotation an OCI layout uses for a tag.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Collects tagged artifacts, then writes the layout with [`OciLayoutWriter::finish`].
#[derive(Debug)]
pub struct OciLayoutWriter {
    root: PathBuf,
    /// Tag → (media type, digest, size) of the tagged manifest.
    tags: BTreeMap<String, (String, String, usize)>,
}

impl OciLayoutWriter {
    /// A writer into `root` (created if missing); existing blobs are kept.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, HarnessError> {
        let root = root.into();
        let blobs = root.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(io("creating", &blobs))?;
        Ok(Self {
            root,
            tags: BTreeMap::new(),
        })
    }

    /// Writes the artifact's blobs and manifests and tags it.
    pub fn add(&mut self, tag: &str, artifact: &Artifact) -> Result<(), HarnessError> {
        let (media_type, digest, size) = match artifact {
            Artifact::Image(image) => {
                self.image(image)?;
                (&image.media_type, &image.digest, image.manifest.len())
            }
            Artifact::Index(index) => {
                for image in &index.images {
                    self.image(image)?;
                }
                self.blob(&index.digest, &index.manifest)?;
                (&index.media_type, &index.digest, index.manifest.len())
            }
        };
        self.tags
            .insert(tag.to_owned(), (media_type.clone(), digest.clone(), size));
        Ok(())
    }

    /// Writes `oci-layout` and `index.json`; returns the layout directory.
    pub fn finish(self) -> Result<PathBuf, HarnessError> {
        let manifests: Vec<serde_json::Value> = self
            .tags
            .iter()
            .map(|(tag, (media_type, digest, size))| {
                json!({
                    "mediaType": media_type,
                    "digest": digest,
                    "size": size,
                    "annotations": { REF_NAME: tag },
                })
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let mut index = serde_json::to_vec_pretty(&index).expect("JSON value");
        index.push(b'\n');
        write(&self.root.join("index.json"), &index)?;
        write(
            &self.root.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        Ok(self.root)
    }

    fn image(&self, image: &Image) -> Result<(), HarnessError> {
        self.blob(&image.config.digest, &image.config.data)?;
        for layer in &image.layers {
            self.blob(&layer.digest, &layer.data)?;
        }
        self.blob(&image.digest, &image.manifest)
    }

    fn blob(&self, digest: &str, data: &[u8]) -> Result<(), HarnessError> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        write(&self.root.join("blobs/sha256").join(hex), data)
    }
}

fn write(path: &Path, data: &[u8]) -> Result<(), HarnessError> {
    std::fs::write(path, data).map_err(io("writing", path))
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HarnessError {
    let path = path.to_owned();
    move |source| HarnessError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::{release_image, Format, Index, ReleaseMetadata};

    #[test]
    fn every_manifest_and_blob_lands_under_its_digest_and_tags_are_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = OciLayoutWriter::new(dir.path()).unwrap();
        let single = release_image(Format::Oci, "amd64", &ReleaseMetadata::new("1.0.1"));
        let index = Index::new(
            Format::Oci,
            ["amd64", "arm64"]
                .map(|a| release_image(Format::Oci, a, &ReleaseMetadata::new("1.0.0")))
                .to_vec(),
        );
        writer.add("b", &single.clone().into()).unwrap();
        writer.add("a", &index.clone().into()).unwrap();
        let root = writer.finish().unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap();
        let entries = json["manifests"].as_array().unwrap();
        assert_eq!(entries[0]["annotations"][REF_NAME], "a");
        assert_eq!(entries[0]["digest"], index.digest.as_str());
        assert_eq!(entries[1]["digest"], single.digest.as_str());
        let blob = |d: &str| root.join("blobs/sha256").join(&d[7..]);
        assert_eq!(std::fs::read(blob(&index.digest)).unwrap(), index.manifest);
        for image in index.images.iter().chain([&single]) {
            assert_eq!(std::fs::read(blob(&image.digest)).unwrap(), image.manifest);
            assert!(blob(&image.config.digest).is_file());
            assert!(blob(&image.layers[0].digest).is_file());
        }
    }
}
