//! Errors of the graph model and of the JSON wire format.

use semver::Version;

/// A change to the graph that the model refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// A release with this exact version (build metadata included) is already in the graph.
    #[error("duplicate release version {version}")]
    DuplicateVersion {
        /// The version that was added twice.
        version: Version,
    },
    /// The edge would close a cycle; the update graph must stay a DAG.
    #[error("edge {from} -> {to} would create a cycle")]
    WouldCycle {
        /// Source of the refused edge.
        from: Version,
        /// Target of the refused edge.
        to: Version,
    },
    /// A release may only be replaced by one with the same version.
    #[error("cannot replace release {existing} with release {replacement}: versions differ")]
    VersionMismatch {
        /// Version of the release in the graph.
        existing: Version,
        /// Version of the offered replacement.
        replacement: Version,
    },
}

/// A Cincinnati graph document that cannot be turned into a [`crate::Graph`].
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The bytes are not JSON of the expected shape.
    #[error("invalid graph JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The top-level `version` names a graph format this crate does not know.
    #[error("unsupported graph format version {0} (only 1 is known)")]
    UnsupportedFormat(u64),
    /// `nodes[index].version` is empty or not strict SemVer.
    #[error("nodes[{index}].version: {value:?} is not a SemVer version: {source}")]
    InvalidVersion {
        /// Position of the node in `nodes`.
        index: usize,
        /// The offending string.
        value: String,
        /// Why it does not parse.
        source: semver::Error,
    },
    /// `edges[index]` points outside `nodes`.
    #[error("edges[{index}]: [{from}, {to}] is out of range for {nodes} nodes")]
    EdgeOutOfRange {
        /// Position of the edge in `edges`.
        index: usize,
        /// Source index as sent.
        from: u64,
        /// Target index as sent.
        to: u64,
        /// Number of nodes in the document.
        nodes: usize,
    },
    /// A conditional edge names a version that is not a node of the document.
    #[error("conditionalEdges[{group}].edges[{index}]: version {version} is not a node")]
    UnknownConditionalVersion {
        /// Position of the group in `conditionalEdges`.
        group: usize,
        /// Position of the edge in the group.
        index: usize,
        /// The version that has no node.
        version: Version,
    },
    /// A risk lacks a field the CVO requires.
    #[error("conditionalEdges[{group}].risks[{index}]: {problem}")]
    InvalidRisk {
        /// Position of the group in `conditionalEdges`.
        group: usize,
        /// Position of the risk in the group.
        index: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// The nodes and edges do not form a valid release graph.
    #[error(transparent)]
    Graph(#[from] GraphError),
}
