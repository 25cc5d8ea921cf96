//! Why a scrape, or one of its tags, failed: the registry client's [`RegistryError`], an
//! OCI layout that cannot be read, or a listed tag whose content is not found. A failure of
//! one tag fails only that tag (its release is kept from the last good scrape); the whole
//! scrape fails when no tag at all could be read. Per-image problems that are not fetch
//! failures (not a release, invalid release-metadata) are not errors: they are outcomes.

use std::path::PathBuf;

use crate::registry::{ErrorKind, RegistryError};

/// Why a scrape or one of its tags failed. A scrape that returns this publishes nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScrapeError {
    /// The registry client failed; the error names registry, repository and item.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A scrape setting cannot be used (zero concurrency, ...).
    #[error("invalid scrape setting `{field}` = {value:?}: {reason}")]
    InvalidSettings {
        /// The `ScrapeSettings` field.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A listed tag, or a blob or child manifest its image names, answers "not found".
    /// Only that tag fails: its release is kept from the last good scrape.
    #[error("{item} is not found, although the repository lists the tag")]
    NotFound {
        /// What was asked for: tag, manifest, and the blob or child.
        item: String,
    },
    /// An OCI image layout directory cannot be read.
    #[error("cannot read OCI image layout {}: {reason}", path.display())]
    Layout {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A blob of an OCI image layout does not hash to its file name.
    #[error("digest mismatch in OCI image layout {}, {item}: expected {expected}, content hashes to {actual}", path.display())]
    LayoutDigestMismatch {
        /// The layout directory.
        path: PathBuf,
        /// What was read.
        item: String,
        /// The digest the layout claims.
        expected: String,
        /// The sha256 of the bytes read.
        actual: String,
    },
    /// A blob of an OCI image layout could not be read to the end, after all retries.
    #[error("reading OCI image layout {}, {item} failed", path.display())]
    LayoutRead {
        /// The layout directory.
        path: PathBuf,
        /// The blob and the image it belongs to.
        item: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl ScrapeError {
    /// The registry client's kind of failure, when the registry client failed.
    pub fn registry_kind(&self) -> Option<&ErrorKind> {
        match self {
            ScrapeError::Registry(error) => Some(error.kind()),
            _ => None,
        }
    }
}
