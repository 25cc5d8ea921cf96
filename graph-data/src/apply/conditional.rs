//! Conditional edges from conditional blocks (SPEC B §3.6, §3.7 step 2).
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
pub(super) fn conditional_edges(
    graph: &Graph,
    index: &VersionIndex,
    versions: &HashMap<ReleaseId, String>,
    risks: &[ConditionalBlock],
) -> Vec<ConditionalEdge> {
    let mut pairs: HashMap<(ReleaseId, ReleaseId), Vec<usize>> = HashMap::new();
    for (i, block) in risks.iter().enumerate() {
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
                    pairs.entry((from, to)).or_default().push(i);
                }
            }
        }
    }
    let mut groups: BTreeMap<Vec<usize>, Vec<ConditionalUpdateEdge>> = BTreeMap::new();
    for ((from, to), risk_indices) in pairs {
        groups
            .entry(risk_indices)
            .or_default()
            .push(ConditionalUpdateEdge {
                from: graph.release(from).version.clone(),
                to: graph.release(to).version.clone(),
            });
    }
    groups
        .into_iter()
        .map(|(risk_indices, mut edges)| {
            edges.sort_unstable();
            ConditionalEdge {
                edges,
                risks: risk_indices
                    .iter()
                    .map(|&i| risks[i].risk.clone())
                    .collect(),
            }
        })
        .collect()
}
