//! Packing graph-data files into a deterministic `tar.gz`: a directory on disk, or files
//! collected from image layers.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use graph_data::repo::{ChildKind, RootDir, RootDirError, TarLimits};

use super::GraphDataError;

/// The files a graph-data root contributes (the format's allowlist); `channels/` and
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
        return pack_dir(path).map(Bytes::from);
    }
    // A tarball file: a regular file no larger than the content cap (its content is
    // smaller still once compressed), never a FIFO or device that would not end.
    let cap = TarLimits::default().max_total_bytes;
    if !meta.is_file() || meta.len() > cap {
        return Err(read_error(path)(std::io::Error::other(format!(
            "not a regular file of at most {cap} bytes"
        ))));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, cap + 1), &mut bytes))
        .map_err(read_error(path))?;
    if bytes.len() as u64 > cap {
        return Err(read_error(path)(std::io::Error::other(format!(
            "larger than {cap} bytes"
        ))));
    }
    Ok(Bytes::from(bytes))
}

/// One tarball entry: a file with its bytes, or a directory.
pub(super) type Entries = BTreeMap<String, Option<Vec<u8>>>;

/// Packs the graph-data files under `root` into a tar.gz. Missing files and directories
/// are left out (the loader reports them, by name). Symbolic links are followed only
/// while they stay inside `root` (Kubernetes mounts ConfigMaps and volumes through
/// them); a link out of the tree, a device or a FIFO is an error naming the file, so the
/// tarball (which `/graph-data` serves) never holds anything from outside the tree.
pub fn pack_dir(root: &Path) -> Result<Vec<u8>, GraphDataError> {
    let dir = RootDir::open(root).map_err(read_error(root))?;
    let limits = TarLimits::default();
    let refused = |rel: &str, e: RootDirError| GraphDataError::Read {
        path: root.join(rel),
        source: match e {
            RootDirError::Io(e) => e,
            other => std::io::Error::other(other),
        },
    };
    let mut entries = Entries::new();
    let mut total: u64 = 0;
    let mut keep = |entries: &mut Entries, rel: String, bytes: Vec<u8>| {
        total += bytes.len() as u64;
        if total > limits.max_total_bytes {
            return Err(GraphDataError::Read {
                path: root.join(&rel),
                source: std::io::Error::other(format!(
                    "the graph-data files are above the {} byte limit in all",
                    limits.max_total_bytes
                )),
            });
        }
        entries.insert(rel, Some(bytes));
        Ok(())
    };
    for name in ROOT_FILES {
        if let Some(bytes) = dir
            .read_file(name, limits.max_entry_bytes)
            .map_err(|e| refused(name, e))?
        {
            keep(&mut entries, name.to_owned(), bytes)?;
        }
    }
    for name in YAML_DIRS {
        let Some(listing) = dir
            .list(name, limits.max_entries)
            .map_err(|e| refused(name, e))?
        else {
            continue;
        };
        entries.insert(name.to_owned(), None);
        for child in listing {
            // A name that is not UTF-8 is packed under its lossy form; the loader reports it.
            let child_name = child.name.clone().unwrap_or_else(|shown| shown);
            let rel = format!("{name}/{child_name}");
            match child.kind {
                // A subdirectory is kept empty so the loader can warn that it is ignored.
                Ok(ChildKind::Dir) => {
                    entries.insert(rel, None);
                }
                Ok(ChildKind::File) => {
                    let bytes = child
                        .read(limits.max_entry_bytes)
                        .map_err(|e| refused(&rel, e))?;
                    keep(&mut entries, rel, bytes)?;
                }
                Err(e) => return Err(refused(&rel, e)),
            }
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
