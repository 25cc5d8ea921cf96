//! Synthetic container images built in memory, byte for byte as a registry stores them:
//! gzip tar layers, config blobs, image manifests and manifest lists / OCI indexes, in
//! Docker schema2 or OCI media types. Release images carry
//! `release-manifests/release-metadata`; component images carry seeded random data.

mod layer;
mod signature;

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::json;
use sha2::{Digest as _, Sha256};

pub use layer::{Layer, ReleaseMetadata};
pub use signature::{signature_image, signature_tag};

/// Which family of media types an image uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Docker image manifest v2 schema 2 and Docker manifest lists.
    Docker,
    /// OCI image manifests and OCI image indexes.
    Oci,
}

impl Format {
    /// The media type of a single-image manifest.
    pub fn manifest_type(self) -> &'static str {
        match self {
            Format::Docker => "application/vnd.docker.distribution.manifest.v2+json",
            Format::Oci => "application/vnd.oci.image.manifest.v1+json",
        }
    }

    /// The media type of a multi-platform manifest (manifest list / image index).
    pub fn index_type(self) -> &'static str {
        match self {
            Format::Docker => "application/vnd.docker.distribution.manifest.list.v2+json",
            Format::Oci => "application/vnd.oci.image.index.v1+json",
        }
    }

    /// The media type of the image config blob.
    pub fn config_type(self) -> &'static str {
        match self {
            Format::Docker => "application/vnd.docker.container.image.v1+json",
            Format::Oci => "application/vnd.oci.image.config.v1+json",
        }
    }

    /// The media type of a gzip-compressed tar layer.
    pub fn layer_type(self) -> &'static str {
        match self {
            Format::Docker => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Format::Oci => "application/vnd.oci.image.layer.v1.tar+gzip",
        }
    }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A content-addressed blob (config or layer) with its media type.
#[derive(Debug, Clone)]
pub struct Blob {
    /// The media type the manifest gives it.
    pub media_type: String,
    /// `sha256:<hex>` of `data`.
    pub digest: String,
    /// The bytes as stored in the registry.
    pub data: Bytes,
}

impl Blob {
    /// A blob holding `data`.
    pub fn new(media_type: &str, data: impl Into<Bytes>) -> Self {
        let data = data.into();
        Self {
            media_type: media_type.to_owned(),
            digest: sha256_digest(&data),
            data,
        }
    }

    /// The manifest descriptor of this blob.
    fn descriptor(&self) -> serde_json::Value {
        json!({ "mediaType": self.media_type, "size": self.data.len(), "digest": self.digest })
    }
}

/// A single-platform image: manifest, config and layers.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest's media type.
    pub media_type: String,
    /// The manifest bytes as pushed.
    pub manifest: Bytes,
    /// `sha256:<hex>` of the manifest bytes.
    pub digest: String,
    /// The config blob.
    pub config: Blob,
    /// The layer blobs, bottom first.
    pub layers: Vec<Blob>,
    /// The config's `architecture`.
    pub arch: String,
}

/// Builds an [`Image`]: architecture, labels and layers (bottom first).
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    format: Format,
    arch: String,
    labels: BTreeMap<String, String>,
    layers: Vec<Layer>,
}

impl ImageBuilder {
    /// An amd64 linux image with no layers yet.
    pub fn new(format: Format) -> Self {
        Self {
            format,
            arch: "amd64".into(),
            labels: BTreeMap::new(),
            layers: Vec::new(),
        }
    }

    /// Sets the config's `architecture`.
    pub fn arch(mut self, arch: &str) -> Self {
        self.arch = arch.to_owned();
        self
    }

    /// Adds a config label (also a cheap way to make otherwise equal images distinct).
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Adds a layer on top of the previous ones.
    pub fn layer(mut self, layer: Layer) -> Self {
        self.layers.push(layer);
        self
    }

    /// Serializes the config and the manifest.
    pub fn build(self) -> Image {
        let config = json!({
            "architecture": self.arch,
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": { "Labels": self.labels },
            "rootfs": {
                "type": "layers",
                "diff_ids": self.layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>(),
            },
        });
        let config = Blob::new(self.format.config_type(), config.to_string());
        let layers: Vec<Blob> = self.layers.into_iter().map(|l| l.blob).collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": self.format.manifest_type(),
            "config": config.descriptor(),
            "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        });
        let manifest = Bytes::from(serde_json::to_vec_pretty(&manifest).expect("JSON value"));
        Image {
            media_type: self.format.manifest_type().to_owned(),
            digest: sha256_digest(&manifest),
            manifest,
            config,
            layers,
            arch: self.arch,
        }
    }
}

/// A release image: one small layer holding the release metadata.
pub fn release_image(format: Format, arch: &str, metadata: &ReleaseMetadata) -> Image {
    ImageBuilder::new(format)
        .arch(arch)
        .layer(Layer::release_metadata(format, metadata))
        .build()
}

/// A manifest list (Docker) or image index (OCI) over per-platform images.
#[derive(Debug, Clone)]
pub struct Index {
    /// The index's media type.
    pub media_type: String,
    /// The index bytes as pushed.
    pub manifest: Bytes,
    /// `sha256:<hex>` of the index bytes.
    pub digest: String,
    /// The images it lists, in order.
    pub images: Vec<Image>,
}

impl Index {
    /// An index listing `images` (each with platform linux/<its arch>), in order.
    pub fn new(format: Format, images: Vec<Image>) -> Self {
        let manifests: Vec<serde_json::Value> = images
            .iter()
            .map(|image| {
                json!({
                    "mediaType": image.media_type,
                    "size": image.manifest.len(),
                    "digest": image.digest,
                    "platform": { "architecture": image.arch, "os": "linux" },
                })
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": format.index_type(),
            "manifests": manifests,
        });
        let manifest = Bytes::from(serde_json::to_vec_pretty(&index).expect("JSON value"));
        Self {
            media_type: format.index_type().to_owned(),
            digest: sha256_digest(&manifest),
            manifest,
            images,
        }
    }
}

/// Anything that can be pushed under a tag.
#[derive(Debug, Clone)]
pub enum Artifact {
    /// A single-platform image.
    Image(Image),
    /// A manifest list / image index (its images are pushed by digest first).
    Index(Index),
}

impl Artifact {
    /// The digest of the top-level manifest: what a tag points at.
    pub fn digest(&self) -> &str {
        match self {
            Artifact::Image(image) => &image.digest,
            Artifact::Index(index) => &index.digest,
        }
    }
}

impl From<Image> for Artifact {
    fn from(image: Image) -> Self {
        Artifact::Image(image)
    }
}

impl From<Index> for Artifact {
    fn from(index: Index) -> Self {
        Artifact::Index(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_reference_their_blobs_and_hash_to_their_digest() {
        let image = release_image(Format::Docker, "arm64", &ReleaseMetadata::new("1.0.0"));
        assert_eq!(image.digest, sha256_digest(&image.manifest));
        let manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
        assert_eq!(manifest["mediaType"], Format::Docker.manifest_type());
        assert_eq!(manifest["config"]["digest"], image.config.digest.as_str());
        assert_eq!(
            manifest["layers"][0]["digest"],
            image.layers[0].digest.as_str()
        );
        assert_eq!(manifest["layers"][0]["size"], image.layers[0].data.len());
        let config: serde_json::Value = serde_json::from_slice(&image.config.data).unwrap();
        assert_eq!(config["architecture"], "arm64");
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn an_index_lists_each_image_with_its_platform() {
        let metadata = ReleaseMetadata::new("1.0.0");
        let images = ["amd64", "s390x"].map(|a| release_image(Format::Oci, a, &metadata));
        let index = Index::new(Format::Oci, images.to_vec());
        let json: serde_json::Value = serde_json::from_slice(&index.manifest).unwrap();
        assert_eq!(index.digest, sha256_digest(&index.manifest));
        assert_eq!(json["mediaType"], Format::Oci.index_type());
        for (entry, image) in json["manifests"].as_array().unwrap().iter().zip(&images) {
            assert_eq!(entry["digest"], image.digest.as_str());
            assert_eq!(entry["platform"]["architecture"], image.arch.as_str());
        }
    }
}
