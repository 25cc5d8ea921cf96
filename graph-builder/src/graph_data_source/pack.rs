//! Packing graph-data files into a deterministic `tar.gz`: a directory on disk, or files
//! collected from image layers.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;

use super::GraphDataError;

/// The files a graph-data root contributes (SPEC B §3.1 allowlist); `channels/` and
/// `blocked-edges/` are read one level deep, as the loader does.
pub(super) const ROOT_FILES: [&str; 3] = ["version", "LICENSE", "raw/metadata.json"];
pub(super) const YAML_DIRS: [&str; 2] = ["channels", "blocked-edges"];

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> GraphDataError + '_ {
    move |source| GraphDataError::Read {
        path: path.to_owned(),
        source,
    }
}

pub(super) fn read_path(path: &Path) -> Result<Bytes, GraphDataError> {
    let meta = std::fs::metadata(path).map_err(read_error(path))?;
    if meta.is_dir() {
        pack_dir(path).map(Bytes::from)
    } else {
        std::fs::read(path)
            .map(Bytes::from)
            .map_err(read_error(path))
    }
}

/// One tarball entry: a file with its bytes, or a directory.
pub(super) type Entries = BTreeMap<String, Option<Vec<u8>>>;

/// Packs the graph-data files under `root` into a tar.gz. Missing files and directories
/// are left out (the loader reports them, by name); symbolic links are followed, since
/// Kubernetes mounts ConfigMaps and volumes through them.
pub fn pack_dir(root: &Path) -> Result<Vec<u8>, GraphDataError> {
    std::fs::read_dir(root).map_err(read_error(root))?;
    let mut entries = Entries::new();
    for name in ROOT_FILES {
        let path = root.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                entries.insert(name.to_owned(), Some(bytes));
            }
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
        entries.insert(dir.to_owned(), None);
        for child in listing {
            let child = child.map_err(read_error(&dir_path))?;
            let path = child.path();
            let entry = format!("{dir}/{}", child.file_name().to_string_lossy());
            // A subdirectory is kept empty so the loader can warn that it is ignored.
            let content = if std::fs::metadata(&path)
                .map_err(read_error(&path))?
                .is_dir()
            {
                None
            } else {
                Some(std::fs::read(&path).map_err(read_error(&path))?)
            };
            entries.insert(entry, content);
        }
    }
    super::signatures::pack(root, &mut entries)?;
    pack_entries(&entries).map_err(read_error(root))
}

/// Writes `entries` (sorted by name) as a tar.gz. Entries carry no timestamps or owners,
/// so the same content packs to the same bytes.
pub(super) fn pack_entries(entries: &Entries) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (name, content) in entries {
        let mut header = tar::Header::new_gnu();
        match content {
            Some(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(bytes.len() as u64);
                tar.append_data(&mut header, name, bytes.as_slice())?;
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, name, std::io::empty())?;
            }
        }
    }
    tar.into_inner()?.finish()
}
