//! Image manifests as the registry (or an OCI layout) serves them.
//!
//! Four kinds matter: Docker schema2, Docker manifest list, OCI image manifest and OCI index
//! (the reference knew only the Docker pair). The kind is decided by the response
//! `Content-Type`, falling back to the body's `mediaType`, then to its shape.

use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// Docker schema2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The `Accept` header for manifest requests: every kind we understand.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

const KNOWN_MANIFEST_TYPES: [&str; 4] = [
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    OCI_INDEX,
];

const IMAGE_CONFIG_TYPES: [&str; 2] = [
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.config.v1+json",
];

/// A content descriptor (config or layer).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type, when given.
    #[serde(default)]
    pub media_type: Option<String>,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes, when given.
    #[serde(default)]
    pub size: Option<u64>,
}

/// An image manifest (Docker schema2 or OCI).
#[derive(Debug, Clone, Deserialize)]
pub struct ImageManifest {
    /// The config blob.
    pub config: Descriptor,
    /// Layers, bottom-most first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

impl ImageManifest {
    /// Whether the config is a container image config (and not an artifact such as a
    /// signature, an SBOM or a Helm chart). A missing media type is given the benefit of
    /// the doubt.
    pub fn is_container_image(&self) -> bool {
        self.config
            .media_type
            .as_deref()
            .is_none_or(|t| IMAGE_CONFIG_TYPES.contains(&t))
    }
}

/// The platform of an index entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Platform {
    /// GOARCH name.
    #[serde(default)]
    pub architecture: String,
    /// GOOS name.
    #[serde(default)]
    pub os: String,
}

/// One entry of a manifest list / index.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    /// The child's media type.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The child manifest's digest.
    pub digest: String,
    /// The child's platform.
    #[serde(default)]
    pub platform: Option<Platform>,
    /// Annotations (OCI layouts put the tag in `org.opencontainers.image.ref.name`).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl IndexEntry {
    /// Buildkit stores attestations as index entries; they are not platforms.
    pub fn is_attestation(&self) -> bool {
        self.annotations.contains_key("vnd.docker.reference.type")
    }
}

/// A manifest list or OCI index.
#[derive(Debug, Clone, Deserialize)]
pub struct IndexManifest {
    /// The entries in order.
    #[serde(default)]
    pub manifests: Vec<IndexEntry>,
}

/// A parsed manifest.
#[derive(Debug, Clone)]
pub enum Manifest {
    /// Docker schema2 or OCI image manifest.
    Image(ImageManifest),
    /// Docker manifest list or OCI index.
    Index(IndexManifest),
    /// Something we do not scrape (schema1, an artifact type we do not know); the string
    /// is the media type.
    Unsupported(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// Parses a manifest body; `content_type` is the response header, if any.
pub fn parse_manifest(content_type: Option<&str>, body: &[u8]) -> Result<Manifest, String> {
    let header = content_type
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        // Only a manifest media type is trusted: some servers send `application/json`, and
        // Pulp/Satellite `application/x-troff-man`; the body says better.
        .filter(|t| KNOWN_MANIFEST_TYPES.contains(&t.as_str()) || t.contains(".manifest.v1+"));
    let probe: Probe =
        serde_json::from_slice(body).map_err(|e| format!("manifest is not JSON: {e}"))?;
    let media_type = match header.or(probe.media_type) {
        Some(t) => t,
        None if probe.manifests.is_some() => OCI_INDEX.to_string(),
        None if probe.config.is_some() => OCI_MANIFEST.to_string(),
        None => return Ok(Manifest::Unsupported("(no media type)".to_string())),
    };
    match media_type.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => serde_json::from_slice(body)
            .map(Manifest::Image)
            .map_err(|e| format!("invalid {media_type}: {e}")),
        DOCKER_MANIFEST_LIST | OCI_INDEX => serde_json::from_slice(body)
            .map(Manifest::Index)
            .map_err(|e| format!("invalid {media_type}: {e}")),
        _ => Ok(Manifest::Unsupported(media_type)),
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Whether `digest` is a well-formed `sha256:` digest (64 lower-case hex digits); anything
/// else is never used to build a path or URL.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The architecture recorded in an image config blob.
pub fn config_architecture(config: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        architecture: String,
    }
    let config: Config =
        serde_json::from_slice(config).map_err(|e| format!("image config is not JSON: {e}"))?;
    if config.architecture.is_empty() {
        return Err("image config has no `architecture`".to_string());
    }
    Ok(config.architecture)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:aa","size":2},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:bb","size":3}]}"#;

    #[test]
    fn content_type_wins_then_media_type_then_shape() {
        let Manifest::Image(m) = parse_manifest(Some(OCI_MANIFEST), IMAGE.as_bytes()).unwrap()
        else {
            panic!("image expected")
        };
        assert_eq!(m.layers.len(), 1);
        assert!(m.is_container_image());
        assert!(matches!(
            parse_manifest(Some("application/json; charset=utf-8"), IMAGE.as_bytes()),
            Ok(Manifest::Image(_))
        ));
        assert!(matches!(
            parse_manifest(Some("application/x-troff-man"), IMAGE.as_bytes()),
            Ok(Manifest::Image(_))
        ));
        let bare_index = r#"{"manifests":[{"digest":"sha256:cc","platform":{"architecture":"arm64","os":"linux"}}]}"#;
        let Manifest::Index(ix) = parse_manifest(None, bare_index.as_bytes()).unwrap() else {
            panic!("index expected")
        };
        assert_eq!(
            ix.manifests[0].platform.as_ref().unwrap().architecture,
            "arm64"
        );
        assert!(matches!(
            parse_manifest(
                Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
                b"{}"
            ),
            Ok(Manifest::Unsupported(_))
        ));
        assert!(parse_manifest(Some(OCI_MANIFEST), b"{\"layers\":[]}").is_err());
        assert!(parse_manifest(None, b"<html>").is_err());
    }

    #[test]
    fn artifacts_are_not_container_images() {
        let artifact = IMAGE.replace(
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.cncf.helm.config.v1+json",
        );
        let Manifest::Image(m) = parse_manifest(None, artifact.as_bytes()).unwrap() else {
            panic!("image expected")
        };
        assert!(!m.is_container_image());
    }

    #[test]
    fn digests() {
        let d = sha256_digest(b"");
        assert_eq!(
            d,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(is_sha256_digest(&d));
        assert!(!is_sha256_digest("sha256:../../etc/passwd"));
        assert!(!is_sha256_digest(&d.to_uppercase()));
        assert_eq!(
            config_architecture(br#"{"architecture":"s390x"}"#).unwrap(),
            "s390x"
        );
        assert!(config_architecture(b"{}").is_err());
    }
}
