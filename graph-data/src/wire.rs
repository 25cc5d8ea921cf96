//! The Cincinnati graph JSON wire format.
//!
//! Output order is deterministic: nodes sorted by SemVer, edges by index pair,
//! conditional edges sorted within a group and groups by their first edge. Risks keep
//! their order, which is meaningful. Input is validated: node versions are strict SemVer
//! and unique, edge indices are in range, the edges form a DAG, conditional edges name
//! nodes and every risk carries what the CVO requires.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::conditional::{ConditionalEdge, ConditionalUpdateEdge};
use crate::error::WireError;
use crate::graph::{Graph, ReleaseId};
use crate::release::Release;

/// The only graph format version there is; sent as the top-level `version` by the
/// policy-engine.
pub const FORMAT_VERSION: u64 = 1;

/// The graph in the raw form the graph-builder serves: no top-level `version`.
pub fn to_json(graph: &Graph) -> Vec<u8> {
    let mut out = Vec::new();
    write_json(graph, &mut out).expect("writing to a Vec cannot fail");
    out
}

/// [`to_json`] written to `writer` as it is produced, so a caller can compress or hash
/// the full-scale graph (tens of MB) without holding it whole.
pub fn write_json(graph: &Graph, writer: impl std::io::Write) -> std::io::Result<()> {
    serialize(graph, None, writer)
}

/// The graph in the form the policy-engine serves: `{"version":1,"nodes",…}`.
pub fn to_versioned_json(graph: &Graph) -> Vec<u8> {
    let mut out = Vec::new();
    serialize(graph, Some(FORMAT_VERSION), &mut out).expect("writing to a Vec cannot fail");
    out
}

/// Parses and validates a Cincinnati graph document (raw or versioned).
pub fn from_json(bytes: &[u8]) -> Result<Graph, WireError> {
    let doc: InGraph = serde_json::from_slice(bytes)?;
    if let Some(format) = doc.version.filter(|&v| v != FORMAT_VERSION) {
        return Err(WireError::UnsupportedFormat(format));
    }
    let mut graph = Graph::new();
    let mut ids = Vec::with_capacity(doc.nodes.len());
    for (index, node) in doc.nodes.into_iter().enumerate() {
        let version =
            semver::Version::parse(&node.version).map_err(|source| WireError::InvalidVersion {
                index,
                value: node.version.clone(),
                source,
            })?;
        let release = match node.payload {
            Some(payload) => Release::concrete(version, payload, node.metadata.unwrap_or_default()),
            None => Release::abstract_release(version),
        };
        ids.push(graph.add_release(release)?);
    }
    for (index, &[from, to]) in doc.edges.iter().enumerate() {
        let lookup = |i: u64| usize::try_from(i).ok().and_then(|i| ids.get(i).copied());
        let (Some(f), Some(t)) = (lookup(from), lookup(to)) else {
            return Err(WireError::EdgeOutOfRange {
                index,
                from,
                to,
                nodes: ids.len(),
            });
        };
        graph.add_edge(f, t)?;
    }
    for (group, conditional) in doc.conditional_edges.iter().enumerate() {
        for (index, edge) in conditional.edges.iter().enumerate() {
            for version in [&edge.from, &edge.to] {
                if graph.find(version).is_none() {
                    return Err(WireError::UnknownConditionalVersion {
                        group,
                        index,
                        version: version.clone(),
                    });
                }
            }
        }
        for (index, risk) in conditional.risks.iter().enumerate() {
            if let Some(problem) = risk.problem() {
                return Err(WireError::InvalidRisk {
                    group,
                    index,
                    problem,
                });
            }
        }
    }
    graph.set_conditional_edges(doc.conditional_edges);
    // A parsed graph is read until the next one replaces it.
    graph.shrink_to_fit();
    Ok(graph)
}

fn serialize(
    graph: &Graph,
    version: Option<u64>,
    writer: impl std::io::Write,
) -> std::io::Result<()> {
    let mut order: Vec<(ReleaseId, &Release)> = graph.releases().collect();
    order.sort_unstable_by(|a, b| a.1.version.cmp(&b.1.version));
    // Positions by node index, and edges as u32 pairs in a list of exactly their number:
    // at full scale (412k edges) this is 3 MB held while the JSON is written, where
    // usize pairs in a list grown by doubling were 8.
    let bound = order
        .iter()
        .map(|(id, _)| id.index() + 1)
        .max()
        .unwrap_or(0);
    let mut position = vec![0u32; bound];
    for (i, (id, _)) in order.iter().enumerate() {
        position[id.index()] = u32::try_from(i).expect("fewer than 2^32 releases");
    }
    let mut edges: Vec<[u32; 2]> = Vec::with_capacity(graph.edge_count());
    edges.extend(
        graph
            .edges()
            .map(|(from, to)| [position[from.index()], position[to.index()]]),
    );
    edges.sort_unstable();
    let mut conditional_edges: Vec<OutConditional<'_>> = graph
        .conditional_edges()
        .iter()
        .map(|c| {
            let mut group: Vec<&ConditionalUpdateEdge> = c.edges.iter().collect();
            group.sort_unstable();
            OutConditional {
                edges: group,
                risks: &c.risks,
            }
        })
        .collect();
    conditional_edges.sort_by(|a, b| a.edges.first().cmp(&b.edges.first()));
    let doc = OutGraph {
        version,
        nodes: order
            .iter()
            .map(|(_, r)| OutNode {
                version: &r.version,
                payload: r.payload.as_deref(),
                metadata: r.payload.as_ref().map(|_| &r.metadata),
            })
            .collect(),
        edges,
        conditional_edges,
    };
    // Every value is a string, an integer or a map with string keys: only the writer
    // can fail.
    serde_json::to_writer(writer, &doc).map_err(std::io::Error::from)
}

#[derive(Serialize)]
struct OutGraph<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    nodes: Vec<OutNode<'a>>,
    edges: Vec<[u32; 2]>,
    #[serde(rename = "conditionalEdges")]
    conditional_edges: Vec<OutConditional<'a>>,
}

#[derive(Serialize)]
struct OutNode<'a> {
    version: &'a semver::Version,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a BTreeMap<String, String>>,
}

#[derive(Serialize)]
struct OutConditional<'a> {
    edges: Vec<&'a ConditionalUpdateEdge>,
    risks: &'a [crate::conditional::Risk],
}

#[derive(Deserialize)]
struct InGraph {
    #[serde(default)]
    version: Option<u64>,
    nodes: Vec<InNode>,
    edges: Vec<[u64; 2]>,
    #[serde(default, rename = "conditionalEdges")]
    conditional_edges: Vec<ConditionalEdge>,
}

/// A node as sent: without `payload` it is an abstract release (the reference's
/// graph-builder emits those for versions named by `previous`/`next` but not scraped).
#[derive(Deserialize)]
struct InNode {
    version: String,
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

#[cfg(test)]
mod tests;
