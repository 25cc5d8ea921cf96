//! The graph-data repository format: `version`, `raw/metadata.json`,
//! `channels/*.yaml`, `blocked-edges/*.yaml`, read from a directory or a tarball,
//! validated, with every problem reported by file and field.

mod blocked_edges;
mod channels;
mod error;
mod load;
mod raw;
mod root_dir;
mod tarball;
mod tree;
mod version;
mod yaml;

use semver::Version;

pub use blocked_edges::{parse as parse_blocked_edge, BlockedEdge, ConditionalBlock, PlainBlock};
pub use channels::{parse as parse_channel, Channel};
pub use error::{LoadError, LoadFailure, LoadWarning, Problem};
pub use load::{
    load, load_dir, load_tarball, load_tarball_bytes, load_tarball_reader, validate, Validation,
};
pub use raw::{parse as parse_raw_metadata, RawEntry};
pub use root_dir::{Child, ChildKind, RootDir, RootDirError};
pub use tarball::TarLimits;
pub use version::{parse as parse_schema_version, SchemaVersion, KNOWN_MINOR};

/// A parsed and validated graph-data tree.
///
/// Lists are in file-name order (raw metadata in file order), so applying the same tree
/// twice gives the same graph.
#[derive(Debug, Clone)]
pub struct GraphData {
    /// The schema version from the `version` file.
    pub schema_version: Version,
    /// One entry per channel file.
    pub channels: Vec<Channel>,
    /// Plain blocked edges (schema 1.0.0 files).
    pub blocks: Vec<PlainBlock>,
    /// Conditional-update risks (schema 1.1.0 files).
    pub risks: Vec<ConditionalBlock>,
    /// `raw/metadata.json` entries.
    pub raw_metadata: Vec<RawEntry>,
    /// Notable things that do not make the tree invalid (newer schema minor, ignored
    /// subdirectories).
    pub warnings: Vec<LoadWarning>,
}
