//! The part of a build that its inputs alone decide, kept for the next build.
//!
//! The graph is a function of the releases (their pull specs name their manifest digests,
//! and a digest names the release-metadata) and of the graph-data tarball; the
//! edge-add-remove settings belong to the pipeline and do not change. So when the next
//! scrape finds the same releases and the graph-data is byte for byte the same, the graph,
//! its JSON and its provenance are those of the last build. What the scrape saw besides
//! the releases (failing tags, images it could not use, a held-back tag list) is taken
//! from the new scrape, so `/status` and the metrics stay current.

use bytes::Bytes;

use super::{BuildFindings, Built, Timings};
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
    /// Its findings; those of the scrape alone are replaced at each reuse.
    findings: BuildFindings,
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
            findings: built.findings.clone(),
            nodes: built.nodes,
            edges: built.edges,
        }
    }

    /// The build of `outcome`, whose inputs are these: logs what a full build logs, and
    /// takes the scrape's own findings from `outcome`. Releases left out for closing a
    /// cycle are decided by the releases, so they stay.
    pub(super) fn reuse(self, outcome: ScrapeOutcome, timings: Timings) -> Built {
        let mut findings = self.findings;
        let cycles: Vec<InvalidRelease> = findings
            .invalid
            .into_iter()
            .filter(|i| i.kind == InvalidKind::Cycle)
            .collect();
        for cycle in &cycles {
            tracing::warn!(tag = %cycle.tag, digest = %cycle.digest, kind = cycle.kind.as_str(), error = %cycle.error, "release image ignored");
        }
        findings.invalid = outcome.invalid;
        if !cycles.is_empty() {
            findings.invalid.extend(cycles);
            findings.invalid.sort_by(|a, b| a.tag.cmp(&b.tag));
        }
        findings.failing = outcome.failing;
        findings.held_back_shrink = outcome.held_back_shrink;
        if let Some((source, _)) = &findings.graph_data_source {
            for warning in &findings.graph_data_warnings {
                tracing::warn!(%source, %warning, "graph-data");
            }
        }
        tracing::debug!(
            releases = findings.raw_releases,
            "releases and graph-data unchanged; the last graph is reused"
        );
        Built {
            graph_json: self.graph_json,
            provenance: self.provenance,
            graph_data: self.graph_data,
            findings,
            nodes: self.nodes,
            edges: self.edges,
            timings,
        }
    }
}
