//! Conditional edges from conditional blocks.
//!
//! For each block (file order) and each release matching its `to`, every current parent
//! whose arch-suffixed version matches `from` (unanchored; `.*` means every parent)
//! gives a pair carrying the block's risk. A pair named by several blocks carries all
//! their risks in block order; pairs with the same risk list form one group.

use std::collections::{BTreeMap, HashMap};

use crate::conditional::{ConditionalEdge, ConditionalUpdateEdge};
use crate::graph::{Graph, ReleaseId};
use crate::repo::ConditionalBlock;

use super::VersionIndex;

/// Computes the conditional edge groups for `risks` on the graph's current edges.
///
/// At public-graph scale there are a few hundred thousand pairs: they are kept as
/// `(from, to, block)` triples (12 bytes) and grouped by sorting, not as a map from pair
/// to a list of blocks (one allocation per pair), and each group's edges are sized
/// exactly, since groups live as long as the graph.
pub(super) fn conditional_edges(
    graph: &Graph,
    index: &VersionIndex,
    versions: &HashMap<ReleaseId, String>,
    risks: &[ConditionalBlock],
) -> Vec<ConditionalEdge> {
    let mut matches: Vec<(ReleaseId, ReleaseId, u32)> = Vec::new();
    for (i, block) in risks.iter().enumerate() {
        let i = u32::try_from(i).expect("fewer than 2^32 conditional blocks");
        let exact;
        // `to` without build metadata names every architecture; with it, one node.
        let targets: &[ReleaseId] = if block.to.build.is_empty() {
            index.any_build(&block.to)
        } else {
            exact = graph.find(&block.to);
            exact.as_slice()
        };
        let all = block.from.as_str() == ".*";
        for &to in targets {
            for from in graph.parents(to) {
                if all || block.from.is_match(&versions[&from]) {
                    matches.push((from, to, i));
                }
            }
        }
    }
    // Blocks are visited in order, so after sorting each pair's blocks are in block order.
    matches.sort_unstable();
    let mut groups: BTreeMap<Vec<u32>, Vec<(ReleaseId, ReleaseId)>> = BTreeMap::new();
    for run in matches.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let blocks: Vec<u32> = run.iter().map(|&(_, _, i)| i).collect();
        groups.entry(blocks).or_default().push((run[0].0, run[0].1));
    }
    drop(matches);
    groups
        .into_iter()
        .map(|(blocks, pairs)| {
            let mut edges: Vec<ConditionalUpdateEdge> = Vec::with_capacity(pairs.len());
            edges.extend(pairs.into_iter().map(|(from, to)| ConditionalUpdateEdge {
                from: graph.release(from).version.clone(),
                to: graph.release(to).version.clone(),
            }));
            edges.sort_unstable();
            ConditionalEdge {
                edges,
                risks: blocks
                    .iter()
                    .map(|&i| risks[i as usize].risk.clone())
                    .collect(),
            }
        })
        .collect()
}
