//! Images built in code: gzipped tar layers, release-metadata, configs, manifests and lists.

use std::io::Write as _;

use super::{digest_of, Blob, Repo, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};

/// A gzipped tar layer holding `files`.
pub fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, *content).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// Release-metadata JSON: `version`, `previous` and `extra` metadata keys.
pub fn metadata_json(version: &str, previous: &[&str], extra: &[(&str, &str)]) -> Vec<u8> {
    let metadata: serde_json::Map<String, serde_json::Value> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "kind": "cincinnati-metadata-v0",
        "version": version,
        "previous": previous,
        "metadata": metadata,
    }))
    .unwrap()
}

/// Builds images into a repository of the fake (or any `Repo`).
#[derive(Debug)]
pub struct ImageBuilder<'a> {
    /// The repository written to.
    pub repo: &'a mut Repo,
}

impl ImageBuilder<'_> {
    /// Stores `bytes`; their (digest, length).
    pub fn blob(&mut self, bytes: Vec<u8>) -> (String, usize) {
        let digest = digest_of(&bytes);
        let len = bytes.len();
        self.repo
            .blobs
            .insert(digest.clone(), Blob::Stored(bytes.into()));
        (digest, len)
    }

    /// Stores a manifest; its digest.
    pub fn manifest(&mut self, media_type: &str, json: serde_json::Value) -> String {
        let bytes = serde_json::to_vec_pretty(&json).unwrap();
        let digest = digest_of(&bytes);
        self.repo
            .manifests
            .insert(digest.clone(), (media_type.to_string(), bytes.into()));
        digest
    }

    /// Points `tag` at `digest` (moved to the end of the listing).
    pub fn tag(&mut self, tag: &str, digest: &str) {
        self.repo.tags.retain(|(t, _)| t != tag);
        self.repo.tags.push((tag.to_string(), digest.to_string()));
    }

    /// An image manifest over already-stored layers (bottom first).
    pub fn image_with_layers(
        &mut self,
        media_type: &str,
        arch: &str,
        layers: &[(String, usize)],
    ) -> String {
        let (config_type, layer_type) = if media_type == OCI_MANIFEST {
            (
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        } else {
            (
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        };
        let config =
            serde_json::to_vec(&serde_json::json!({"architecture": arch, "os": "linux"})).unwrap();
        let (config_digest, config_len) = self.blob(config);
        let layers: Vec<_> = layers
            .iter()
            .map(|(d, len)| serde_json::json!({"mediaType": layer_type, "digest": d, "size": len}))
            .collect();
        self.manifest(
            media_type,
            serde_json::json!({
                "schemaVersion": 2,
                "mediaType": media_type,
                "config": {"mediaType": config_type, "digest": config_digest, "size": config_len},
                "layers": layers,
            }),
        )
    }

    /// A release image: a base layer, then the metadata layer on top.
    pub fn release(&mut self, media_type: &str, arch: &str, metadata: &[u8]) -> String {
        let base = self.blob(layer(&[("etc/os-release", b"ID=fake\n")]));
        let top = self.blob(layer(&[
            ("release-manifests/image-references", b"{}"),
            ("release-manifests/release-metadata", metadata),
        ]));
        self.image_with_layers(media_type, arch, &[base, top])
    }

    /// A component image: no release-metadata.
    pub fn component(&mut self, arch: &str, name: &str) -> String {
        let base = self.blob(layer(&[("etc/os-release", b"ID=fake\n")]));
        let own = self.blob(layer(&[(&format!("usr/bin/{name}"), name.as_bytes())]));
        self.image_with_layers(DOCKER_MANIFEST, arch, &[base, own])
    }

    /// A manifest list over (arch, child digest).
    pub fn list(&mut self, media_type: &str, children: &[(&str, &str)]) -> String {
        let child_type = if media_type == OCI_INDEX {
            OCI_MANIFEST
        } else {
            DOCKER_MANIFEST
        };
        let manifests: Vec<_> = children
            .iter()
            .map(|(arch, digest)| {
                let size = self.repo.manifests[*digest].1.len();
                serde_json::json!({
                    "mediaType": child_type, "digest": digest, "size": size,
                    "platform": {"architecture": arch, "os": "linux"}
                })
            })
            .collect();
        self.manifest(
            media_type,
            serde_json::json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}),
        )
    }
}
