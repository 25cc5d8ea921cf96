//! Synthetic container images built in memory, byte for byte as a registry stores them:
//! gzip tar layers, config blobs, image manifests and manifest lists / OCI indexes, in
//! Docker schema2 or OCI media types. Release images carry
//! `release-manifests/release-metadata`; component images carry seeded random data.

use std::collections::BTreeMap;
use std::io::Write as _;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest as _, Sha256};

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

/// A layer: the compressed blob plus the digest of its uncompressed tar (the diff id).
#[derive(Debug, Clone)]
pub struct Layer {
    /// The gzip tar as stored in the registry.
    pub blob: Blob,
    /// `sha256:<hex>` of the uncompressed tar, listed in the config's `rootfs.diff_ids`.
    pub diff_id: String,
}

impl Layer {
    /// A gzip tar layer holding regular files (parent directories are added first, in
    /// order, as image builders write them).
    pub fn from_files(format: Format, files: &[(&str, &[u8])]) -> Self {
        Self::from_files_at(format, files, Compression::default())
    }

    fn from_files_at(format: Format, files: &[(&str, &[u8])], level: Compression) -> Self {
        let mut tar = tar::Builder::new(Vec::new());
        let mut dirs_written = std::collections::BTreeSet::new();
        for (path, contents) in files {
            let mut prefix = String::new();
            for part in path
                .split('/')
                .rev()
                .skip(1)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                prefix.push_str(part);
                prefix.push('/');
                if dirs_written.insert(prefix.clone()) {
                    let mut header = tar::Header::new_gnu();
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    append(&mut tar, &mut header, &prefix, &[][..]);
                }
            }
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(contents.len() as u64);
            append(&mut tar, &mut header, path, contents);
        }
        let tar = tar
            .into_inner()
            .expect("writing a tar into memory cannot fail");
        let diff_id = sha256_digest(&tar);
        let mut gz = GzEncoder::new(Vec::with_capacity(tar.len() / 2), level);
        gz.write_all(&tar)
            .expect("compressing into memory cannot fail");
        let compressed = gz.finish().expect("compressing into memory cannot fail");
        Self {
            blob: Blob::new(format.layer_type(), compressed),
            diff_id,
        }
    }

    /// The layer a release image carries: `release-manifests/release-metadata` (plus an
    /// `image-references` file before it, as real payloads have).
    pub fn release_metadata(format: Format, metadata: &ReleaseMetadata) -> Self {
        let references = json!({ "kind": "ImageStream", "apiVersion": "image.openshift.io/v1" });
        Self::from_files(
            format,
            &[
                (
                    "release-manifests/image-references",
                    references.to_string().as_bytes(),
                ),
                (
                    "release-manifests/release-metadata",
                    metadata.to_json().as_bytes(),
                ),
            ],
        )
    }

    /// A layer with one file of `size` random bytes from `rng` (incompressible, so the
    /// blob is about `size` bytes too, like real binaries).
    pub fn random(format: Format, rng: &mut impl RngCore, size: usize) -> Self {
        let mut data = vec![0u8; size];
        rng.fill_bytes(&mut data);
        // Random data does not compress: the fastest level keeps fixture building quick.
        Self::from_files_at(format, &[("usr/bin/component", &data)], Compression::fast())
    }
}

fn append(tar: &mut tar::Builder<Vec<u8>>, header: &mut tar::Header, path: &str, data: &[u8]) {
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    tar.append_data(header, path, data)
        .expect("writing a tar into memory cannot fail");
}

/// The contents of `release-manifests/release-metadata` (SPEC B §2.4).
#[derive(Debug, Clone, Default)]
pub struct ReleaseMetadata {
    /// `version`: SemVer, no leading `v`.
    pub version: String,
    /// `previous`: versions that update to this one.
    pub previous: Vec<String>,
    /// `next`: versions this one updates to.
    pub next: Vec<String>,
    /// `metadata`: string to string.
    pub metadata: BTreeMap<String, String>,
}

impl ReleaseMetadata {
    /// Metadata for `version` with no edges and no metadata map entries.
    pub fn new(version: &str) -> Self {
        Self {
            version: version.to_owned(),
            ..Self::default()
        }
    }

    /// Sets `previous`.
    pub fn previous(mut self, versions: &[&str]) -> Self {
        self.previous = versions.iter().map(|v| (*v).to_owned()).collect();
        self
    }

    /// Sets `next`.
    pub fn next(mut self, versions: &[&str]) -> Self {
        self.next = versions.iter().map(|v| (*v).to_owned()).collect();
        self
    }

    /// Adds one `metadata` entry.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.metadata.insert(key.to_owned(), value.to_owned());
        self
    }

    /// The file as the release tooling writes it.
    pub fn to_json(&self) -> String {
        json!({
            "kind": "cincinnati-metadata-v0",
            "version": self.version,
            "previous": self.previous,
            "next": self.next,
            "metadata": self.metadata,
        })
        .to_string()
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

/// A cosign signature image for `signed_digest`, tagged `sha256-<hex>.sig` by convention
/// ([`signature_tag`]): an OCI manifest whose single layer is a simple-signing JSON
/// payload, not a tar.
pub fn signature_image(signed_digest: &str, reference: &str) -> Image {
    let payload = json!({
        "critical": {
            "identity": { "docker-reference": reference },
            "image": { "docker-manifest-digest": signed_digest },
            "type": "cosign container image signature",
        },
        "optional": null,
    })
    .to_string();
    let layer = Blob::new("application/vnd.dev.cosign.simplesigning.v1+json", payload);
    let config = json!({
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [layer.digest] },
    });
    let config = Blob::new(Format::Oci.config_type(), config.to_string());
    let mut layer_descriptor = layer.descriptor();
    layer_descriptor["annotations"] =
        json!({ "dev.cosignproject.cosign/signature": "MEUCIQDsynthetic" });
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": Format::Oci.manifest_type(),
        "config": config.descriptor(),
        "layers": [layer_descriptor],
    });
    let manifest = Bytes::from(serde_json::to_vec(&manifest).expect("JSON value"));
    Image {
        media_type: Format::Oci.manifest_type().to_owned(),
        digest: sha256_digest(&manifest),
        manifest,
        config,
        layers: vec![layer],
        arch: String::new(),
    }
}

/// The tag cosign gives the signature of `signed_digest`: `sha256-<hex>.sig`.
pub fn signature_tag(signed_digest: &str) -> String {
    format!("{}.sig", signed_digest.replacen(':', "-", 1))
}
