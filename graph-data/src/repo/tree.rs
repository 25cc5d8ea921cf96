//! The files of a graph-data tree as the loader sees them, whatever the source
//! (a directory on disk or a tarball), and the directory reading rules (SPEC B §3.4).
//!
//! Only what the format reads is kept: `version`, `raw/metadata.json` and the direct
//! children of `channels/` and `blocked-edges/` (non-recursive). Files the rules would
//! not read are listed but their content is not kept.

use std::fs;
use std::io;
use std::path::Path;

use super::error::{LoadError, Problem};

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
    /// Reads the tree rooted at directory `root`.
    pub(crate) fn from_dir(root: &Path) -> Self {
        let mut tree = Tree::default();
        tree.version = tree.read_file(root, "version");
        tree.raw_metadata = tree.read_file(root, "raw/metadata.json");
        tree.channels = tree.read_listing(root, CHANNELS);
        tree.blocked_edges = tree.read_listing(root, BLOCKED_EDGES);
        tree
    }

    fn read_file(&mut self, root: &Path, rel: &str) -> Option<Vec<u8>> {
        match fs::read(root.join(rel)) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                self.errors.push(LoadError::new(rel, Problem::Read(e)));
                None
            }
        }
    }

    fn read_listing(&mut self, root: &Path, dir: &str) -> Option<Vec<Entry>> {
        let listing = match fs::read_dir(root.join(dir)) {
            Ok(listing) => listing,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                self.errors.push(LoadError::new(dir, Problem::Read(e)));
                return Some(Vec::new());
            }
        };
        let mut entries = Vec::new();
        for item in listing {
            let item = match item {
                Ok(item) => item,
                Err(e) => {
                    self.errors.push(LoadError::new(dir, Problem::Read(e)));
                    continue;
                }
            };
            let name = item.file_name().to_string_lossy().into_owned();
            let rel = format!("{dir}/{name}");
            if item.file_name().to_str().is_none() {
                self.errors.push(LoadError::new(
                    rel,
                    Problem::UnexpectedFile {
                        reason: "the file name is not UTF-8".to_owned(),
                    },
                ));
                continue;
            }
            // `metadata` follows symlinks, so a link to a file counts as that file.
            let content = match fs::metadata(item.path()) {
                Ok(m) if m.is_dir() => Content::Dir,
                Ok(_) if classify(&name) == Kind::Yaml => match fs::read(item.path()) {
                    Ok(bytes) => Content::Yaml(bytes),
                    Err(e) => {
                        self.errors.push(LoadError::new(rel, Problem::Read(e)));
                        continue;
                    }
                },
                Ok(_) => Content::NotRead,
                Err(e) => {
                    self.errors.push(LoadError::new(rel, Problem::Read(e)));
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
