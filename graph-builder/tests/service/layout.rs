//! Release images written as an OCI image layout directory (the in-test release source):
//! one gzipped layer holding `release-manifests/release-metadata`, a config naming the
//! architecture, an OCI manifest, and an `index.json` entry tagged with the version.
//! The service reads the layout afresh at each refresh, so adding a release here shows
//! up at the next one.

use std::io::Write as _;
use std::path::Path;

use sha2::{Digest as _, Sha256};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn put_blob(dir: &Path, bytes: &[u8]) -> (String, usize) {
    let hex = hex::encode(Sha256::digest(bytes));
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(&hex), bytes).unwrap();
    (format!("sha256:{hex}"), bytes.len())
}

fn layer(path: &str, content: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, path, content).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

/// Adds (or retags) release `version` on `arch` with these `previous` versions.
pub fn add_release(dir: &Path, version: &str, previous: &[&str], arch: &str) {
    let metadata = serde_json::json!({
        "kind": "cincinnati-metadata-v0",
        "version": version,
        "previous": previous,
        "metadata": {"url": format!("https://example.com/errata/{version}")},
    });
    let (layer_digest, layer_size) = put_blob(
        dir,
        &layer(
            "release-manifests/release-metadata",
            &serde_json::to_vec(&metadata).unwrap(),
        ),
    );
    let config = serde_json::json!({"architecture": arch, "os": "linux"});
    let (config_digest, config_size) = put_blob(dir, &serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}],
    });
    let (digest, size) = put_blob(dir, &serde_json::to_vec(&manifest).unwrap());

    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index_path = dir.join("index.json");
    let mut index: serde_json::Value = std::fs::read(&index_path)
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or_else(|_| serde_json::json!({"schemaVersion": 2, "manifests": []}));
    let tag = format!("{version}-{arch}");
    let entries = index["manifests"].as_array_mut().unwrap();
    entries.retain(|e| e["annotations"]["org.opencontainers.image.ref.name"] != tag.as_str());
    entries.push(serde_json::json!({
        "mediaType": OCI_MANIFEST, "digest": digest, "size": size,
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }));
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}
