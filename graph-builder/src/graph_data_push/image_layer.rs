//! The graph-data layer: one gzip tar, built so that an unchanged tree gives the same bytes
//! (entries sorted, mtime 0, uid/gid 0, fixed modes, no gzip timestamp or file name).

use std::collections::BTreeMap;
use std::io::{Read, Write as _};
use std::path::{Component, Path};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::PushError;
use crate::graph_data_source::pack_dir;
use crate::registry::manifest::sha256_digest;

/// Where the oc-mirror layout keeps graph-data in the image.
pub const OC_MIRROR_ROOT: &str = "var/lib/cincinnati-graph-data";

/// A built layer: the compressed bytes and the digest of the uncompressed tar (`diff_id`).
#[derive(Debug, Clone)]
pub struct Layer {
    /// The gzip tar.
    pub gzip: Vec<u8>,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
}

/// Files and directories of a graph-data tree, by relative path; `None` is a directory.
type Files = BTreeMap<String, Option<Vec<u8>>>;

/// Builds the layer from a graph-data directory or `graph-data.tar.gz`, its files placed
/// under `prefix` (`""` for the image root). Only the files the service reads are taken
/// from a directory (the same packing as the graph-builder's directory source).
pub fn build_layer(source: &Path, prefix: &str) -> Result<Layer, PushError> {
    build_layer_with_signatures(source, prefix, &super::SignatureInputs::default())
}

/// [`build_layer`], with the `signatures/` tree merged with `signatures` (see
/// [`super::SignatureInputs`]).
pub fn build_layer_with_signatures(
    source: &Path,
    prefix: &str,
    signatures: &super::SignatureInputs,
) -> Result<Layer, PushError> {
    let read_error = |e: std::io::Error| PushError::Read {
        path: source.to_owned(),
        reason: e.to_string(),
    };
    let tarball = if source.is_dir() {
        pack_dir(source).map_err(|e| PushError::Read {
            path: source.to_owned(),
            reason: e.to_string(),
        })?
    } else {
        std::fs::read(source).map_err(read_error)?
    };
    let mut files = read_tarball(&tarball).map_err(read_error)?;
    super::signatures::merge(&mut files, source, signatures)?;
    let tar = write_tar(&files, prefix).map_err(read_error)?;
    let diff_id = sha256_digest(&tar);
    // Level 6 is what gzip uses by default; flate2's header carries no time or name.
    let mut encoder = GzEncoder::new(Vec::new(), Compression::new(6));
    encoder.write_all(&tar).map_err(read_error)?;
    let gzip = encoder.finish().map_err(read_error)?;
    Ok(Layer { gzip, diff_id })
}

/// Reads a (gzip) tar's regular files and directories, paths normalised (no `./`).
fn read_tarball(bytes: &[u8]) -> std::io::Result<Files> {
    let reader: Box<dyn Read> = if bytes.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let mut archive = tar::Archive::new(reader);
    let mut files = Files::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let parts: Vec<String> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        if parts.is_empty() || path.components().any(|c| c == Component::ParentDir) {
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_file() {
            let mut content = Vec::new();
            entry.read_to_end(&mut content)?;
            files.insert(parts.join("/"), Some(content));
        } else if kind.is_dir() {
            files.insert(parts.join("/"), None);
        }
    }
    Ok(files)
}

/// Writes `files` under `prefix`, with every parent directory listed before its children.
fn write_tar(files: &Files, prefix: &str) -> std::io::Result<Vec<u8>> {
    let mut all = Files::new();
    let prefix = prefix.trim_matches('/');
    for (path, content) in files {
        let full = if prefix.is_empty() {
            path.clone()
        } else {
            format!("{prefix}/{path}")
        };
        let mut parent = full.as_str();
        while let Some((dir, _)) = parent.rsplit_once('/') {
            all.entry(dir.to_owned()).or_insert(None);
            parent = dir;
        }
        all.insert(full, content.clone());
    }
    if !prefix.is_empty() {
        all.entry(prefix.to_owned()).or_insert(None);
    }
    let mut builder = tar::Builder::new(Vec::new());
    // BTreeMap order puts `a` before `a/b`; a directory sorts before its content.
    for (path, content) in &all {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match content {
            Some(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, path, bytes.as_slice())?;
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, format!("{path}/"), std::io::empty())?;
            }
        }
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) {
        std::fs::create_dir_all(dir.join("channels")).unwrap();
        std::fs::create_dir_all(dir.join("blocked-edges")).unwrap();
        std::fs::write(dir.join("version"), "1.0.0\n").unwrap();
        std::fs::write(
            dir.join("channels/stable-4.14.yaml"),
            "name: stable-4.14\nversions: []\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("blocked-edges/4.14.1.yaml"),
            "to: 4.14.1\nfrom: .*\n",
        )
        .unwrap();
    }

    fn paths(layer: &Layer) -> Vec<(String, u64, u64, u64)> {
        let tar = flate2::read::GzDecoder::new(&layer.gzip[..]);
        tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                let path = e.path().unwrap().display().to_string();
                (path, h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap())
            })
            .collect()
    }

    #[test]
    fn layers_are_deterministic_and_placed_under_the_prefix() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        tree(a.path());
        tree(b.path());
        // Different mtimes and an unrelated file must not change the layer.
        std::fs::write(b.path().join("README.md"), "not graph-data").unwrap();
        let la = build_layer(a.path(), OC_MIRROR_ROOT).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let lb = build_layer(b.path(), OC_MIRROR_ROOT).unwrap();
        assert_eq!(la.gzip, lb.gzip);
        assert_eq!(la.diff_id, lb.diff_id);

        let entries = paths(&la);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "var/",
                "var/lib/",
                "var/lib/cincinnati-graph-data/",
                "var/lib/cincinnati-graph-data/blocked-edges/",
                "var/lib/cincinnati-graph-data/blocked-edges/4.14.1.yaml",
                "var/lib/cincinnati-graph-data/channels/",
                "var/lib/cincinnati-graph-data/channels/stable-4.14.yaml",
                "var/lib/cincinnati-graph-data/version",
            ]
        );
        assert!(entries.iter().all(|e| (e.1, e.2, e.3) == (0, 0, 0)));

        let flat = build_layer(a.path(), "").unwrap();
        let names: Vec<String> = paths(&flat).into_iter().map(|e| e.0).collect();
        assert_eq!(names[0], "blocked-edges/");
        assert!(names.contains(&"version".to_string()));
        assert_ne!(flat.diff_id, la.diff_id);
    }

    #[test]
    fn a_tarball_gives_the_same_layer_as_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        tree(dir.path());
        let tarball = dir.path().join("graph-data.tar.gz");
        std::fs::write(&tarball, pack_dir(dir.path()).unwrap()).unwrap();
        let from_dir = build_layer(dir.path(), "").unwrap();
        let from_tarball = build_layer(&tarball, "").unwrap();
        assert_eq!(from_dir.diff_id, from_tarball.diff_id);
    }
}
