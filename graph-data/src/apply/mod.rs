//! Applying graph-data to a scraped graph, as pure functions in the reference's order:
//!
//! 1. [`apply`]: raw metadata, plain blocked edges, conditional blocks (their
//!    `previous.remove_regex` part), channels: everything the reference's graph-data
//!    parser writes into release metadata;
//! 2. [`edge_add_remove`]: `previous/next.add`, conditional edges (computed before any
//!    removal), then `previous.remove`, `previous.remove_regex`, `next.remove`.
//!
//! [`apply_all`] runs both, which is what the graph-builder does after a scrape.

mod channels;
mod conditional;
mod edges;
mod metadata;

use std::collections::HashMap;

use semver::{BuildMetadata, Version};

use crate::graph::{Graph, ReleaseId};
use crate::repo::GraphData;

pub use channels::sort_channels;
pub use edges::edge_add_remove;

// The keys live in `crate::keys`, shared with both services.
use crate::keys::{
    ARCH_KEY, CHANNELS_KEY, NEXT_ADD_KEY, NEXT_REMOVE_KEY, PREVIOUS_ADD_KEY, PREVIOUS_REMOVE_KEY,
    PREVIOUS_REMOVE_REGEX_KEY,
};

/// Why graph-data could not be applied to a graph.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A `previous.add`/`next.add` edge would close a cycle. Not returned by
    /// [`edge_add_remove`], which skips that edge and logs this as a warning.
    #[error("release {release}: `{key}` adds the edge {from} -> {to}, which would create a cycle")]
    Cycle {
        /// The release carrying the key.
        release: Version,
        /// The metadata key.
        key: &'static str,
        /// Source of the refused edge (a version, rendered: keeps the error small).
        from: String,
        /// Target of the refused edge.
        to: String,
    },
    /// A version list in metadata has an entry that is not SemVer.
    #[error("release {release}: `{key}` entry {value:?} is not a SemVer version: {error}")]
    InvalidVersion {
        /// The release carrying the key.
        release: Version,
        /// The metadata key.
        key: &'static str,
        /// The offending entry.
        value: String,
        /// Why it does not parse.
        error: semver::Error,
    },
    /// A `previous.remove_regex` value that is not a valid regex.
    #[error(
        "release {release}: `{PREVIOUS_REMOVE_REGEX_KEY}` {value:?} is not a valid regex: {error}"
    )]
    InvalidRegex {
        /// The release carrying the key.
        release: Version,
        /// The offending value.
        value: String,
        /// Why it does not compile.
        error: regex::Error,
    },
}

/// Writes what graph-data says into release metadata: raw metadata, plain blocks,
/// conditional blocks' removal regexes, channels. Conditional edges themselves are
/// computed later by [`edge_add_remove`], from `data.risks`.
pub fn apply(graph: &mut Graph, data: &GraphData) {
    let index = VersionIndex::new(graph);
    metadata::apply_raw(graph, &index, &data.raw_metadata);
    metadata::apply_plain_blocks(graph, &data.blocks);
    metadata::apply_risk_removals(graph, &index, &data.risks);
    channels::apply_channels(graph, &index, &data.channels);
}

/// [`apply`] then [`edge_add_remove`] with the tree's risks: the graph-builder's whole
/// graph-data step.
pub fn apply_all(graph: &mut Graph, data: &GraphData) -> Result<(), ApplyError> {
    apply(graph, data);
    edge_add_remove(graph, &data.risks)
}

/// Releases by version without build metadata, so `4.2.14` finds `4.2.14+amd64`,
/// `4.2.14+s390x` and a plain `4.2.14`.
pub(crate) struct VersionIndex {
    by_base: HashMap<Version, Vec<ReleaseId>>,
}

impl VersionIndex {
    pub(crate) fn new(graph: &Graph) -> Self {
        let mut by_base: HashMap<Version, Vec<ReleaseId>> = HashMap::with_capacity(graph.len());
        for (id, release) in graph.releases() {
            by_base.entry(base(&release.version)).or_default().push(id);
        }
        Self { by_base }
    }

    /// Every release whose version equals `v` ignoring build metadata.
    pub(crate) fn any_build(&self, v: &Version) -> &[ReleaseId] {
        self.by_base.get(&base(v)).map_or(&[], Vec::as_slice)
    }
}

/// `v` without build metadata.
pub fn base(v: &Version) -> Version {
    let mut v = v.clone();
    v.build = BuildMetadata::EMPTY;
    v
}
