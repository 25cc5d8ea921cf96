//! Where graph-data comes from, and the one form every source is reduced to: a
//! `graph-data.tar.gz` in memory.
//!
//! A directory is packed into a tarball at each refresh (so files edited on disk take
//! effect at the next refresh, as in the reference), a `.tar.gz` file is read as it is.
//! The graph is then built from exactly those bytes and the public port serves exactly
//! them, so the tarball a client downloads is the graph-data the served graph was built
//! with, even when the directory changes in between.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use graph_data::repo::{GraphData, LoadFailure, TarLimits};

/// The files a graph-data root contributes (SPEC B §3.1 allowlist); `channels/` and
/// `blocked-edges/` are read one level deep, as the loader does.
const ROOT_FILES: [&str; 3] = ["version", "LICENSE", "raw/metadata.json"];
const YAML_DIRS: [&str; 2] = ["channels", "blocked-edges"];

/// Why graph-data could not be obtained or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum GraphDataError {
    /// A file or directory of the source cannot be read.
    #[error("cannot read graph-data {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The content is not valid graph-data; every problem is listed by file and field.
    #[error("graph-data from {}: {failure}", path.display())]
    Invalid {
        /// The configured source.
        path: PathBuf,
        /// What the loader found.
        failure: LoadFailure,
    },
}

/// A configured graph-data source.
#[derive(Debug, Clone)]
pub enum GraphDataSource {
    /// A directory (packed at each refresh) or a `.tar.gz` file (read as is); which one is
    /// decided at each refresh, so a path may change kind.
    Path(PathBuf),
}

impl GraphDataSource {
    /// The source's current content as a gzip-compressed tarball.
    pub async fn fetch(&self) -> Result<Bytes, GraphDataError> {
        match self {
            GraphDataSource::Path(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_path(&path))
                    .await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
            }
        }
    }

    /// Parses and validates a tarball fetched from this source.
    pub fn load(&self, tarball: &[u8]) -> Result<GraphData, GraphDataError> {
        graph_data::repo::load_tarball_bytes(tarball, TarLimits::default()).map_err(|failure| {
            GraphDataError::Invalid {
                path: self.path().to_owned(),
                failure,
            }
        })
    }

    /// The configured path, for messages.
    pub fn path(&self) -> &Path {
        match self {
            GraphDataSource::Path(path) => path,
        }
    }
}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> GraphDataError + '_ {
    move |source| GraphDataError::Read {
        path: path.to_owned(),
        source,
    }
}

fn read_path(path: &Path) -> Result<Bytes, GraphDataError> {
    let meta = std::fs::metadata(path).map_err(read_error(path))?;
    if meta.is_dir() {
        pack_dir(path).map(Bytes::from)
    } else {
        std::fs::read(path)
            .map(Bytes::from)
            .map_err(read_error(path))
    }
}

/// Packs the graph-data files under `root` into a tar.gz. Missing files and directories
/// are left out (the loader reports them, by name); symbolic links are followed, since
/// Kubernetes mounts ConfigMaps and volumes through them. Entries carry no timestamps
/// or owners, so the same content packs to the same bytes.
pub fn pack_dir(root: &Path) -> Result<Vec<u8>, GraphDataError> {
    std::fs::read_dir(root).map_err(read_error(root))?;
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let mut add = |name: &str, bytes: Option<&[u8]>| -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        match bytes {
            Some(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(bytes.len() as u64);
                tar.append_data(&mut header, name, bytes)
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, name, std::io::empty())
            }
        }
    };
    for name in ROOT_FILES {
        let path = root.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => add(name, Some(&bytes)).map_err(read_error(&path))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(read_error(&path)(e)),
        }
    }
    for dir in YAML_DIRS {
        let dir_path = root.join(dir);
        let listing = match std::fs::read_dir(&dir_path) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(read_error(&dir_path)(e)),
        };
        add(dir, None).map_err(read_error(&dir_path))?;
        let mut children = Vec::new();
        for child in listing {
            let child = child.map_err(read_error(&dir_path))?;
            children.push(child.file_name().to_string_lossy().into_owned());
        }
        children.sort();
        for name in children {
            let path = dir_path.join(&name);
            let entry = format!("{dir}/{name}");
            if std::fs::metadata(&path)
                .map_err(read_error(&path))?
                .is_dir()
            {
                // Kept as an empty directory so the loader can warn that it is ignored.
                add(&entry, None).map_err(read_error(&path))?;
            } else {
                let bytes = std::fs::read(&path).map_err(read_error(&path))?;
                add(&entry, Some(&bytes)).map_err(read_error(&path))?;
            }
        }
    }
    tar.into_inner()
        .and_then(GzEncoder::finish)
        .map_err(read_error(root))
}

#[cfg(test)]
mod tests {
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
        let data = source.load(&first).unwrap();
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
        let err = source
            .load(&source.fetch().await.unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("blocked-edges/4.1.0.yaml"), "{err}");

        let missing = GraphDataSource::Path(dir.path().join("nope"));
        let err = missing.fetch().await.unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
