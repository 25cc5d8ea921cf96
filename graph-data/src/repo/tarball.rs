//! Reading a graph-data tree from a `graph-data.tar.gz`, safely.
//!
//! The root holds `blocked-edges/`, `channels/`, `LICENSE`, `raw/` and `version`;
//! entries may be prefixed `./`, and one top-level directory wrapping everything (as in
//! GitHub tarballs) is accepted. Nothing is written to disk. Refused, each with an error
//! naming the entry: absolute paths, `..` components, symlinks, hard links, devices and
//! FIFOs, entries above the per-entry size cap, and archives above the total cap, the
//! entry count or the decompressed-size cap. Long-name and PAX records are bounded
//! before they are read ([`crate::bounded_tar`]).

use std::collections::HashSet;
use std::io::Read;
use std::path::Component;

use flate2::read::GzDecoder;
use tar::EntryType;

use crate::bounded_tar::{self, HeaderLimits, Limited, TarError};

use super::error::{LoadError, Problem};
use super::tree::{classify, Content, Entry, Kind, Tree, BLOCKED_EDGES, CHANNELS};

/// Caps on what a tarball may contain.
#[derive(Debug, Clone, Copy)]
pub struct TarLimits {
    /// Largest single entry, in bytes. The largest file of the public graph-data is
    /// 11 KB; a dense YAML document takes about a hundred times its size in memory while
    /// it is parsed (events, then values), so 256 KiB keeps one parse near 30 MB.
    pub max_entry_bytes: u64,
    /// Largest sum of entry sizes, in bytes (what may be held in memory at once).
    pub max_total_bytes: u64,
    /// Most entries.
    pub max_entries: usize,
    /// Most bytes after decompression, headers and padding included (a time bound on
    /// gzip bombs).
    pub max_decompressed_bytes: u64,
    /// Caps on long-name and PAX records.
    pub header: HeaderLimits,
}

impl Default for TarLimits {
    fn default() -> Self {
        Self {
            max_entry_bytes: 256 << 10,
            max_total_bytes: 64 << 20,
            max_entries: 100_000,
            max_decompressed_bytes: 256 << 20,
            header: HeaderLimits::default(),
        }
    }
}

/// An accepted entry, before deciding whether a wrapper directory is stripped.
struct Raw {
    parts: Vec<String>,
    is_dir: bool,
    bytes: Option<Vec<u8>>,
}

/// Whether the format reads the entry at `parts` (relative to the graph-data root).
fn wanted(parts: &[String]) -> bool {
    match parts {
        [f] => f == "version",
        [d, f] => {
            (d == "raw" && f == "metadata.json")
                || ((d == CHANNELS || d == BLOCKED_EDGES) && classify(f) == Kind::Yaml)
        }
        _ => false,
    }
}

/// An error about the archive as a whole, naming the decompression cap when that is why.
fn archive_error(label: &str, error: TarError, limits: &TarLimits) -> LoadError {
    let message = match &error {
        TarError::Io(e) if Limited::<&[u8]>::exceeded(e).is_some() => format!(
            "more than {} bytes after decompression",
            limits.max_decompressed_bytes
        ),
        TarError::Io(e) => format!("not a readable tar.gz: {e}"),
        other => format!("refused tarball: {other}"),
    };
    LoadError::new(label, Problem::Archive(message))
}

/// Reads a gzip-compressed tarball into a [`Tree`]. `label` names the archive in errors
/// that belong to no entry (a corrupt stream, a cap on the whole archive).
pub(crate) fn read(label: &str, reader: impl Read, limits: TarLimits) -> Tree {
    let mut tree = Tree::default();
    let mut raws = Vec::new();
    let mut archive = tar::Archive::new(Limited::new(
        GzDecoder::new(reader),
        limits.max_decompressed_bytes,
    ));
    let mut total: u64 = 0;
    let entries = match bounded_tar::entries(&mut archive, limits.header) {
        Ok(entries) => entries,
        Err(e) => {
            tree.errors.push(archive_error(label, e, &limits));
            return tree;
        }
    };
    for (count, entry) in entries.enumerate() {
        if count >= limits.max_entries {
            tree.errors.push(LoadError::new(
                label,
                Problem::Archive(format!("more than {} entries", limits.max_entries)),
            ));
            break;
        }
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                tree.errors.push(archive_error(label, e, &limits));
                break;
            }
        };
        // An entry with an empty name is still named, by its place in the archive.
        let shown = if entry.path.is_empty() {
            format!("{label} entry {} (empty name)", count + 1)
        } else {
            entry.shown()
        };
        let refuse = |why: String| {
            LoadError::new(
                shown.clone(),
                Problem::Archive(format!("refused tarball entry: {why}")),
            )
        };
        let is_dir = match entry.kind {
            EntryType::Regular | EntryType::Continuous => false,
            EntryType::Directory => true,
            EntryType::Symlink | EntryType::Link => {
                tree.errors.push(refuse("links are not allowed".to_owned()));
                continue;
            }
            other => {
                tree.errors.push(refuse(format!(
                    "entry type {other:?} is not a file or directory"
                )));
                continue;
            }
        };
        let size = entry.size;
        if size > limits.max_entry_bytes {
            tree.errors.push(refuse(format!(
                "{size} bytes is above the {} byte limit per file",
                limits.max_entry_bytes
            )));
            continue;
        }
        total = total.saturating_add(size);
        if total > limits.max_total_bytes {
            tree.errors.push(LoadError::new(
                label,
                Problem::Archive(format!(
                    "content above the {} byte limit for the whole archive",
                    limits.max_total_bytes
                )),
            ));
            break;
        }
        let parts = match parts(&entry.path) {
            Ok(parts) => parts,
            Err(why) => {
                tree.errors.push(refuse(why));
                continue;
            }
        };
        if parts.is_empty() {
            continue;
        }
        let keep = !is_dir && (wanted(&parts) || wanted(&parts[1..]));
        let bytes = if keep {
            let mut buf = Vec::with_capacity(size as usize);
            if let Err(e) = (&mut entry.data)
                .take(limits.max_entry_bytes + 1)
                .read_to_end(&mut buf)
            {
                if Limited::<&[u8]>::exceeded(&e).is_some() {
                    tree.errors
                        .push(archive_error(label, TarError::Io(e), &limits));
                    break;
                }
                tree.errors.push(LoadError::new(shown, Problem::Read(e)));
                continue;
            }
            Some(buf)
        } else {
            None
        };
        raws.push(Raw {
            parts,
            is_dir,
            bytes,
        });
    }
    place(&mut tree, raws);
    tree
}

/// Splits an entry path into normal components, refusing absolute paths and `..`.
fn parts(path: &[u8]) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(path).map_err(|_| "the path is not UTF-8".to_owned())?;
    let mut parts = Vec::new();
    for c in std::path::Path::new(text).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => return Err("the path contains `..`".to_owned()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("the path is absolute".to_owned())
            }
        }
    }
    Ok(parts)
}

/// Puts accepted entries into the tree, stripping one wrapping directory when the root
/// has no `version` and every entry sits under the same top-level directory.
fn place(tree: &mut Tree, mut raws: Vec<Raw>) {
    let at_root = raws
        .iter()
        .any(|r| r.parts.len() == 1 && r.parts[0] == "version");
    let first = raws.first().map(|r| r.parts[0].clone());
    let wrapped = !at_root
        && first.as_ref().is_some_and(|f| {
            raws.iter().all(|r| &r.parts[0] == f)
                && raws
                    .iter()
                    .any(|r| r.parts.len() == 2 && r.parts[1] == "version")
        });
    if wrapped {
        for r in &mut raws {
            r.parts.remove(0);
        }
    }
    let mut channels: Option<Vec<Entry>> = None;
    let mut blocked: Option<Vec<Entry>> = None;
    // Names already placed, per directory: a set keeps 100k entries linear.
    let mut seen: HashSet<(bool, String)> = HashSet::new();
    for r in raws {
        let Raw {
            parts,
            is_dir,
            bytes,
        } = r;
        match parts.as_slice() {
            [f] if f == "version" && !is_dir => tree.version = bytes,
            [d, f] if d == "raw" && f == "metadata.json" && !is_dir => tree.raw_metadata = bytes,
            [d] if is_dir && (d == CHANNELS || d == BLOCKED_EDGES) => {
                let slot = if d == CHANNELS {
                    &mut channels
                } else {
                    &mut blocked
                };
                slot.get_or_insert_with(Vec::new);
            }
            [d, rest @ ..] if d == CHANNELS || d == BLOCKED_EDGES => {
                let slot = if d == CHANNELS {
                    &mut channels
                } else {
                    &mut blocked
                };
                let list = slot.get_or_insert_with(Vec::new);
                let Some(name) = rest.first() else { continue };
                let content = if is_dir || rest.len() > 1 {
                    Content::Dir
                } else {
                    bytes.map_or(Content::NotRead, Content::Yaml)
                };
                // A subdirectory shows up once per entry inside it: keep one.
                if seen.insert((d == CHANNELS, name.clone())) {
                    list.push(Entry {
                        name: name.clone(),
                        content,
                    });
                }
            }
            _ => {}
        }
    }
    for list in [&mut channels, &mut blocked].into_iter().flatten() {
        list.sort_by(|a, b| a.name.cmp(&b.name));
    }
    tree.channels = channels;
    tree.blocked_edges = blocked;
}
