//! Image layers as registries store them (gzip tars with deterministic headers) and the
//! release-metadata file a release image's layer carries.

use std::collections::BTreeMap;
use std::io::Write as _;

use flate2::write::GzEncoder;
use flate2::Compression;
use rand::RngCore;
use serde_json::json;

use super::{sha256_digest, Blob, Format};

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

/// The contents of `release-manifests/release-metadata`.
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

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn unpack(layer: &Layer) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&layer.blob.data[..])
            .read_to_end(&mut tar)
            .unwrap();
        let mut entries = Vec::new();
        for entry in tar::Archive::new(&tar[..]).entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            entries.push((path, data));
        }
        (tar, entries)
    }

    #[test]
    fn release_layer_holds_the_metadata_at_the_exact_path_and_its_diff_id() {
        let metadata = ReleaseMetadata::new("4.14.3")
            .previous(&["4.14.2"])
            .with("url", "u");
        let layer = Layer::release_metadata(Format::Oci, &metadata);
        let (tar, entries) = unpack(&layer);

        assert_eq!(layer.diff_id, sha256_digest(&tar));
        assert_eq!(layer.blob.media_type, Format::Oci.layer_type());
        let paths: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "release-manifests/",
                "release-manifests/image-references",
                "release-manifests/release-metadata"
            ]
        );
        let json: serde_json::Value = serde_json::from_slice(&entries[2].1).unwrap();
        assert_eq!(json["kind"], "cincinnati-metadata-v0");
        assert_eq!(json["version"], "4.14.3");
        assert_eq!(json["previous"], json!(["4.14.2"]));
        assert_eq!(json["metadata"], json!({ "url": "u" }));
    }

    #[test]
    fn random_layers_are_reproducible_from_the_seed_and_incompressible() {
        use rand::SeedableRng as _;
        let layer = |seed| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            Layer::random(Format::Docker, &mut rng, 64 * 1024)
        };
        assert_eq!(layer(1).blob.digest, layer(1).blob.digest);
        assert_ne!(layer(1).blob.digest, layer(2).blob.digest);
        assert!(layer(1).blob.data.len() > 64 * 1024);
    }
}
