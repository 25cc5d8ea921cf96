//! Where graph-data comes from, and the one form every source is reduced to: a
//! `graph-data.tar.gz` in memory.
//!
//! A directory is packed into a tarball at each refresh (so files edited on disk take
//! effect at the next refresh, as in the reference), a `.tar.gz` file is read as it is,
//! and a container image is unpacked from the registry when its layers change
//! ([`image`]). The graph is then built from exactly those bytes and the public port
//! serves exactly them, so the tarball a client downloads is the graph-data the served
//! graph was built with, even when the source changes in between. A `signatures/` tree
//! (release signatures) is carried along in the same tarball ([`signatures`]).

pub mod image;
mod pack;
mod signatures;
mod unpack;

use std::path::PathBuf;

use bytes::Bytes;
use graph_data::repo::{GraphData, LoadFailure, TarLimits};

pub use image::{GraphDataImage, GraphDataImageSettings};
pub use pack::pack_dir;

use crate::registry::RegistryError;

/// Why graph-data could not be obtained or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum GraphDataError {
    /// A file or directory of the source cannot be read.
    #[error("cannot read graph-data {}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The graph-data image could not be fetched.
    #[error("cannot fetch the graph-data image {reference}")]
    Registry {
        /// `host/repository:tag`.
        reference: String,
        /// What the registry client met.
        source: RegistryError,
    },
    /// The graph-data image is not usable (no such tag, unexpected manifest, bad layer).
    #[error("graph-data image {reference}: {reason}")]
    Image {
        /// `host/repository:tag`, with the layer digest when one is at fault.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// The content is not valid graph-data; every problem is listed by file and field.
    #[error("graph-data from {source_name}: {failure}")]
    Invalid {
        /// The configured source (path or image reference).
        source_name: String,
        /// What the loader found.
        failure: LoadFailure,
    },
}

/// A configured graph-data source.
#[derive(Debug)]
pub enum GraphDataSource {
    /// A directory (packed at each refresh) or a `.tar.gz` file (read as is); which one is
    /// decided at each refresh, so a path may change kind.
    Path(PathBuf),
    /// A container image in a registry, downloaded again only when its layers change.
    Image(Box<GraphDataImage>),
}

impl GraphDataSource {
    /// The source's current content as a gzip-compressed tarball.
    pub async fn fetch(&self) -> Result<Bytes, GraphDataError> {
        match self {
            GraphDataSource::Path(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || pack::read_path(&path))
                    .await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
            }
            GraphDataSource::Image(image) => image.fetch().await,
        }
    }

    /// The path or image reference, for messages.
    pub fn name(&self) -> String {
        match self {
            GraphDataSource::Path(path) => path.display().to_string(),
            GraphDataSource::Image(image) => image.reference(),
        }
    }
}

/// Parses and validates a tarball fetched from the source named `source_name`.
pub fn load(source_name: &str, tarball: &[u8]) -> Result<GraphData, GraphDataError> {
    graph_data::repo::load_tarball_bytes(tarball, TarLimits::default()).map_err(|failure| {
        GraphDataError::Invalid {
            source_name: source_name.to_owned(),
            failure,
        }
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn write(root: &Path, name: &str, content: &str) {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "version", "1.1.0\n");
        write(dir.path(), "raw/metadata.json", "{}");
        write(
            dir.path(),
            "channels/stable-4.1.yaml",
            "name: stable-4.1\nversions: [4.1.0]\n",
        );
        std::fs::create_dir(dir.path().join("blocked-edges")).unwrap();
        dir
    }

    #[tokio::test]
    async fn a_directory_packs_to_a_loadable_and_stable_tarball() {
        let dir = tree();
        let source = GraphDataSource::Path(dir.path().to_owned());
        let first = source.fetch().await.unwrap();
        let data = load(&source.name(), &first).unwrap();
        assert_eq!(data.channels.len(), 1);
        assert_eq!(
            source.fetch().await.unwrap(),
            first,
            "same content, same bytes"
        );

        // The tarball file itself is a source too.
        let file = dir.path().join("graph-data.tar.gz");
        std::fs::write(&file, &first).unwrap();
        let from_file = GraphDataSource::Path(file);
        assert_eq!(from_file.fetch().await.unwrap(), first);
    }

    #[tokio::test]
    async fn problems_name_the_file() {
        let dir = tree();
        write(
            dir.path(),
            "blocked-edges/4.1.0.yaml",
            "to: 4.1.0\nfrom: [\n",
        );
        let source = GraphDataSource::Path(dir.path().to_owned());
        let err = load(&source.name(), &source.fetch().await.unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("blocked-edges/4.1.0.yaml"), "{err}");

        let missing = GraphDataSource::Path(dir.path().join("nope"));
        let err = missing.fetch().await.unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[tokio::test]
    async fn a_link_out_of_the_tree_is_refused_by_name_and_never_packed() {
        let secret = tempfile::tempdir().unwrap();
        std::fs::write(secret.path().join("config.json"), "registry-password").unwrap();
        let dir = tree();
        std::os::unix::fs::symlink(
            secret.path().join("config.json"),
            dir.path().join("LICENSE"),
        )
        .unwrap();
        let source = GraphDataSource::Path(dir.path().to_owned());
        let err = graph_data::keys::chain(&source.fetch().await.unwrap_err());
        let target = secret.path().canonicalize().unwrap().join("config.json");
        assert_eq!(
            err,
            format!(
                "cannot read graph-data {}: it resolves to {}, outside the graph-data directory",
                dir.path().join("LICENSE").display(),
                target.display()
            )
        );

        // A link that stays inside the tree (as Kubernetes mounts make) is followed.
        std::fs::remove_file(dir.path().join("LICENSE")).unwrap();
        std::fs::write(dir.path().join("raw/LICENSE.txt"), "Apache-2.0").unwrap();
        std::os::unix::fs::symlink("raw/LICENSE.txt", dir.path().join("LICENSE")).unwrap();
        let tarball = source.fetch().await.unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&tarball[..]));
        let mut license = String::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path().unwrap().to_str() == Some("LICENSE") {
                std::io::Read::read_to_string(&mut entry, &mut license).unwrap();
            }
        }
        assert_eq!(license, "Apache-2.0");
    }

    #[tokio::test]
    async fn a_fifo_is_refused_without_blocking() {
        let dir = tree();
        let fifo = dir.path().join("channels/fast-4.1.yaml");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let source = GraphDataSource::Path(dir.path().to_owned());
        let err = graph_data::keys::chain(&source.fetch().await.unwrap_err());
        assert_eq!(
            err,
            format!(
                "cannot read graph-data {}: it is a FIFO, not a regular file",
                fifo.display()
            )
        );
    }
}
