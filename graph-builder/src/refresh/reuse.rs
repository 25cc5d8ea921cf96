//! The part of a build that its inputs alone decide, kept for the next build.
//!
//! The graph is a function of the releases (their pull specs name their manifest digests,
//! and a digest names the release-metadata) and of the graph-data tarball; the
//! edge-add-remove settings belong to the pipeline and do not change. So when the next
//! scrape finds the same releases and the graph-data is byte for byte the same, the graph,
//! its JSON and its provenance are those of the last build. What the scrape saw besides
//! the releases (failing tags, images it could not use, a held-back tag list) is taken
//! from the new scrape, so `/status` and the metrics stay current.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{Built, Timings};
use crate::graph_json::GraphJson;
use crate::scrape::{InvalidKind, InvalidRelease, ScrapeOutcome};

/// What the last build made of its inputs.
#[derive(Debug, Clone)]
pub(super) struct Reusable {
    /// The inputs' digest (`inputs_digest`).
    pub(super) inputs: [u8; 32],
    graph_json: GraphJson,
    provenance: Bytes,
    graph_data: Option<Bytes>,
    graph_data_source: Option<(String, String)>,
    graph_data_warnings: Vec<String>,
    /// Releases left out because their entries close a cycle: decided by the releases.
    cycles: Vec<InvalidRelease>,
    raw_releases: usize,
    per_arch: BTreeMap<String, usize>,
    nodes: usize,
    edges: usize,
}

impl Reusable {
    /// Keeps what `built`'s inputs decided.
    pub(super) fn new(inputs: [u8; 32], built: &Built) -> Reusable {
        Reusable {
            inputs,
            graph_json: built.graph_json.clone(),
            provenance: built.provenance.clone(),
            graph_data: built.graph_data.clone(),
            graph_data_source: built.graph_data_source.clone(),
            graph_data_warnings: built.graph_data_warnings.clone(),
            cycles: built
                .invalid
                .iter()
                .filter(|i| i.kind == InvalidKind::Cycle)
                .cloned()
                .collect(),
            raw_releases: built.raw_releases,
            per_arch: built.per_arch.clone(),
            nodes: built.nodes,
            edges: built.edges,
        }
    }

    /// The build of `outcome`, whose inputs are these: logs what a full build logs, and
    /// takes the scrape's own findings from `outcome`.
    pub(super) fn reuse(self, outcome: ScrapeOutcome, timings: Timings) -> Built {
        let mut invalid = outcome.invalid;
        for cycle in &self.cycles {
            tracing::warn!(tag = %cycle.tag, digest = %cycle.digest, kind = cycle.kind.as_str(), error = %cycle.error, "release image ignored");
        }
        if !self.cycles.is_empty() {
            invalid.extend(self.cycles);
            invalid.sort_by(|a, b| a.tag.cmp(&b.tag));
        }
        if let Some((source, _)) = &self.graph_data_source {
            for warning in &self.graph_data_warnings {
                tracing::warn!(%source, %warning, "graph-data");
            }
        }
        tracing::debug!(
            releases = self.raw_releases,
            "releases and graph-data unchanged; the last graph is reused"
        );
        Built {
            graph_json: self.graph_json,
            provenance: self.provenance,
            graph_data: self.graph_data,
            raw_releases: self.raw_releases,
            per_arch: self.per_arch,
            invalid,
            failing: outcome.failing,
            held_back_shrink: outcome.held_back_shrink,
            graph_data_source: self.graph_data_source,
            graph_data_warnings: self.graph_data_warnings,
            nodes: self.nodes,
            edges: self.edges,
            timings,
        }
    }
}
