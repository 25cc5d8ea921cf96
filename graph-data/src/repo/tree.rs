//! The files of a graph-data tree as the loader sees them, whatever the source
//! (a directory on disk or a tarball), and the directory reading rules.
//!
//! Only what the format reads is kept: `version`, `raw/metadata.json` and the direct
//! children of `channels/` and `blocked-edges/` (non-recursive). Files the rules would
//! not read are listed but their content is not kept.

use std::path::Path;

use super::error::{LoadError, Problem};
use super::root_dir::{ChildKind, RootDir};
use super::tarball::TarLimits;

/// The two directories of YAML files.
pub(crate) const CHANNELS: &str = "channels";
/// See [`CHANNELS`].
pub(crate) const BLOCKED_EDGES: &str = "blocked-edges";

/// The content the loader needs, read from a source.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    /// The `version` file, if present.
    pub(crate) version: Option<Vec<u8>>,
    /// `raw/metadata.json`, if present.
    pub(crate) raw_metadata: Option<Vec<u8>>,
    /// `channels/` children sorted by name; `None` when the directory is absent.
    pub(crate) channels: Option<Vec<Entry>>,
    /// `blocked-edges/` children sorted by name; `None` when the directory is absent.
    pub(crate) blocked_edges: Option<Vec<Entry>>,
    /// Problems met while reading the source.
    pub(crate) errors: Vec<LoadError>,
}

/// One child of `channels/` or `blocked-edges/`.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The file name (no directory).
    pub(crate) name: String,
    /// What was found.
    pub(crate) content: Content,
}

/// What a directory child is.
#[derive(Debug)]
pub(crate) enum Content {
    /// A `.yaml` file and its bytes.
    Yaml(Vec<u8>),
    /// A file the rules do not read (its kind decides whether that is an error).
    NotRead,
    /// A subdirectory (directories are read non-recursively).
    Dir,
}

/// How the directory rules treat a file name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Parsed as YAML.
    Yaml,
    /// Bookkeeping (`OWNERS`, `README.md`, dotfiles): skipped without a word.
    Bookkeeping,
    /// Anything else: an error, with the reason.
    Unexpected(String),
}

/// Classifies a file name found in `channels/` or `blocked-edges/`.
pub(crate) fn classify(name: &str) -> Kind {
    if name.starts_with('.')
        || matches!(name, "OWNERS" | "_OWNERS" | "OWNERS_ALIASES")
        || name.starts_with("README")
    {
        return Kind::Bookkeeping;
    }
    match name.rsplit_once('.') {
        Some((stem, "yaml")) if !stem.is_empty() => Kind::Yaml,
        Some((_, "yml")) => Kind::Unexpected(
            "extension `.yml` is not read (the reference reads `.yaml` only): rename it to `.yaml`".to_owned(),
        ),
        Some((_, ext)) => Kind::Unexpected(format!(
            "not a `.yaml` file (extension `.{ext}`): only `.yaml` files are read, so this file would be ignored"
        )),
        None => Kind::Unexpected(
            "no extension: only `.yaml` files are read, so this file would be ignored".to_owned(),
        ),
    }
}

impl Tree {
    /// Reads the tree rooted at directory `root`, never outside it (see [`RootDir`]), with
    /// the tarball caps on file size, total size and entries.
    pub(crate) fn from_dir(root: &Path) -> Self {
        let mut tree = Tree::default();
        let dir = match RootDir::open(root) {
            Ok(dir) => dir,
            Err(e) => {
                tree.errors.push(LoadError::new(".", Problem::Read(e)));
                return tree;
            }
        };
        let mut reader = DirReader {
            dir,
            limits: TarLimits::default(),
            total: 0,
        };
        tree.version = reader.read_file(&mut tree.errors, "version");
        tree.raw_metadata = reader.read_file(&mut tree.errors, "raw/metadata.json");
        tree.channels = reader.read_listing(&mut tree.errors, CHANNELS);
        tree.blocked_edges = reader.read_listing(&mut tree.errors, BLOCKED_EDGES);
        tree
    }
}

/// A directory being read, with the bytes read so far.
struct DirReader {
    dir: RootDir,
    limits: TarLimits,
    total: u64,
}

impl DirReader {
    fn read_file(&mut self, errors: &mut Vec<LoadError>, rel: &str) -> Option<Vec<u8>> {
        match self.dir.read_file(rel, self.limits.max_entry_bytes) {
            Ok(Some(bytes)) => self.count(errors, rel, bytes),
            Ok(None) => None,
            Err(e) => {
                errors.push(LoadError::new(rel, e.into()));
                None
            }
        }
    }

    /// Adds a file to the total read, refusing it past the cap.
    fn count(&mut self, errors: &mut Vec<LoadError>, rel: &str, bytes: Vec<u8>) -> Option<Vec<u8>> {
        self.total += bytes.len() as u64;
        if self.total > self.limits.max_total_bytes {
            errors.push(LoadError::new(
                rel,
                Problem::Refused(format!(
                    "the graph-data files are above the {} byte limit in all",
                    self.limits.max_total_bytes
                )),
            ));
            return None;
        }
        Some(bytes)
    }

    fn read_listing(&mut self, errors: &mut Vec<LoadError>, dir: &str) -> Option<Vec<Entry>> {
        let listing = match self.dir.list(dir, self.limits.max_entries) {
            Ok(Some(listing)) => listing,
            Ok(None) => return None,
            Err(e) => {
                errors.push(LoadError::new(dir, e.into()));
                return Some(Vec::new());
            }
        };
        let mut entries = Vec::new();
        for child in listing {
            let name = match &child.name {
                Ok(name) => name.clone(),
                Err(shown) => {
                    errors.push(LoadError::new(
                        format!("{dir}/{shown}"),
                        Problem::UnexpectedFile {
                            reason: "the file name is not UTF-8".to_owned(),
                        },
                    ));
                    continue;
                }
            };
            let rel = format!("{dir}/{name}");
            // Links are followed only while they stay inside the root.
            let content = match child.kind {
                Ok(ChildKind::Dir) => Content::Dir,
                Ok(ChildKind::File) if classify(&name) == Kind::Yaml => {
                    match child.read(self.limits.max_entry_bytes) {
                        Ok(bytes) => match self.count(errors, &rel, bytes) {
                            Some(bytes) => Content::Yaml(bytes),
                            None => continue,
                        },
                        Err(e) => {
                            errors.push(LoadError::new(rel, e.into()));
                            continue;
                        }
                    }
                }
                Ok(ChildKind::File) => Content::NotRead,
                Err(e) => {
                    errors.push(LoadError::new(rel, e.into()));
                    continue;
                }
            };
            entries.push(Entry { name, content });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Some(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_the_directory_rules() {
        assert_eq!(classify("4.1.10.yaml"), Kind::Yaml);
        for skip in [
            "OWNERS",
            "_OWNERS",
            "OWNERS_ALIASES",
            "README.md",
            "README",
            ".gitkeep",
        ] {
            assert_eq!(classify(skip), Kind::Bookkeeping, "{skip}");
        }
        for bad in [
            "missing_extension",
            "invalid.extension",
            "a.yml",
            "a.yaml.bak",
            ".yaml2",
        ] {
            if bad.starts_with('.') {
                continue;
            }
            assert!(matches!(classify(bad), Kind::Unexpected(_)), "{bad}");
        }
        assert!(matches!(classify("a.yml"), Kind::Unexpected(r) if r.contains("rename it")));
    }
}
