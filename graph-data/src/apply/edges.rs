//! edge-add-remove: edges added and removed by release metadata.
//!
//! Order, as in the reference: `previous.add`, `next.add`; conditional edges from the
//! graph's edges at that point; then `previous.remove`, `previous.remove_regex`,
//! `next.remove`. Removes therefore win over adds, and an edge that is both blocked and
//! conditional ends up conditional. Versions in the CSV keys get the arch of the release
//! carrying the key. Missing versions and edges are skipped, and so is an added edge that
//! would close a cycle (logged as a warning naming the release, key and edge): one bad
//! metadata value costs that edge, not the whole graph. The consumed keys stay in the
//! metadata (`remove_consumed_metadata = false`).

use std::collections::HashMap;

use regex::Regex;
use semver::{BuildMetadata, Version};

use super::conditional::conditional_edges;
use super::{
    ApplyError, VersionIndex, ARCH_KEY, NEXT_ADD_KEY, NEXT_REMOVE_KEY, PREVIOUS_ADD_KEY,
    PREVIOUS_REMOVE_KEY, PREVIOUS_REMOVE_REGEX_KEY,
};
use crate::graph::{Graph, ReleaseId};
use crate::repo::ConditionalBlock;

/// The value `previous.remove` takes to remove every parent edge.
const REMOVE_ALL: &str = "*";

/// Adds and removes edges as release metadata says, and adds the conditional edges of
/// `risks` to those the graph already has (a graph read from JSON keeps its own).
pub fn edge_add_remove(graph: &mut Graph, risks: &[ConditionalBlock]) -> Result<(), ApplyError> {
    for (id, csv) in with_key(graph, PREVIOUS_ADD_KEY) {
        for from in annotated(graph, id, PREVIOUS_ADD_KEY, &csv)? {
            add(graph, id, PREVIOUS_ADD_KEY, from, id)?;
        }
    }
    for (id, csv) in with_key(graph, NEXT_ADD_KEY) {
        for to in annotated(graph, id, NEXT_ADD_KEY, &csv)? {
            add(graph, id, NEXT_ADD_KEY, id, to)?;
        }
    }

    let versions: HashMap<ReleaseId, String> = graph
        .releases()
        .map(|(id, r)| (id, r.version.to_string()))
        .collect();
    if !risks.is_empty() {
        let index = VersionIndex::new(graph);
        let mut all = graph.conditional_edges().to_vec();
        all.extend(conditional_edges(graph, &index, &versions, risks));
        graph.set_conditional_edges(all);
    }

    for (id, csv) in with_key(graph, PREVIOUS_REMOVE_KEY) {
        if csv.trim() == REMOVE_ALL {
            for parent in graph.parents(id) {
                graph.remove_edge(parent, id);
            }
            continue;
        }
        for from in annotated(graph, id, PREVIOUS_REMOVE_KEY, &csv)? {
            if let Some(from) = graph.find(&from) {
                graph.remove_edge(from, id);
            }
        }
    }

    // Many releases carry the same regex (one per architecture): compile each once.
    let mut compiled: HashMap<String, Regex> = HashMap::new();
    for (id, pattern) in with_key(graph, PREVIOUS_REMOVE_REGEX_KEY) {
        let parents = graph.parents(id);
        if pattern == ".*" {
            for parent in parents {
                graph.remove_edge(parent, id);
            }
            continue;
        }
        if !compiled.contains_key(&pattern) {
            let re = Regex::new(&pattern).map_err(|error| ApplyError::InvalidRegex {
                release: graph.release(id).version.clone(),
                value: pattern.clone(),
                error,
            })?;
            compiled.insert(pattern.clone(), re);
        }
        let re = &compiled[&pattern];
        // The reference matches every release of the graph; only parents can have an
        // edge to remove, so matching the parents gives the same result.
        for parent in parents {
            if re.is_match(&versions[&parent]) {
                graph.remove_edge(parent, id);
            }
        }
    }

    for (id, csv) in with_key(graph, NEXT_REMOVE_KEY) {
        for to in annotated(graph, id, NEXT_REMOVE_KEY, &csv)? {
            if let Some(to) = graph.find(&to) {
                graph.remove_edge(id, to);
            }
        }
    }
    Ok(())
}

/// Releases carrying `key`, with its value, in storage order.
fn with_key(graph: &Graph, key: &str) -> Vec<(ReleaseId, String)> {
    graph
        .releases()
        .filter_map(|(id, r)| r.metadata.get(key).map(|v| (id, v.clone())))
        .collect()
}

/// The versions of a CSV value, each given the arch of release `id` when it has one.
/// Without an arch, an entry that is not SemVer cannot name a release and is skipped;
/// with one, it is an error, as in the reference.
fn annotated(
    graph: &Graph,
    id: ReleaseId,
    key: &'static str,
    csv: &str,
) -> Result<Vec<Version>, ApplyError> {
    let release = graph.release(id);
    let arch = release.metadata.get(ARCH_KEY);
    let mut out = Vec::new();
    for entry in csv.split(',').map(str::trim) {
        let invalid = |error| ApplyError::InvalidVersion {
            release: release.version.clone(),
            key,
            value: entry.to_owned(),
            error,
        };
        match (Version::parse(entry), arch) {
            (Ok(mut v), Some(arch)) => {
                v.build = BuildMetadata::new(arch).map_err(invalid)?;
                out.push(v);
            }
            (Ok(v), None) => out.push(v),
            (Err(e), Some(_)) => return Err(invalid(e)),
            (Err(e), None) => {
                tracing::warn!(release = %release.version, key, entry, "skipping an entry that is not SemVer: {e}");
            }
        }
    }
    Ok(out)
}

/// Adds `from -> to` when both exist; a missing release and an edge that would close a
/// cycle are warnings, and the edge is not added.
fn add(
    graph: &mut Graph,
    id: ReleaseId,
    key: &'static str,
    from: impl Into<Target>,
    to: impl Into<Target>,
) -> Result<(), ApplyError> {
    let (Some(f), Some(t)) = (from.into().resolve(graph), to.into().resolve(graph)) else {
        tracing::warn!(release = %graph.release(id).version, key, "a version it names is not in the graph");
        return Ok(());
    };
    if graph.add_edge(f, t).is_err() {
        let refused = ApplyError::Cycle {
            release: graph.release(id).version.clone(),
            key,
            from: graph.release(f).version.to_string(),
            to: graph.release(t).version.to_string(),
        };
        tracing::warn!(release = %graph.release(id).version, key, "edge not added: {refused}");
    }
    Ok(())
}

/// One end of an edge to add: a release already resolved, or a version to look up.
enum Target {
    Id(ReleaseId),
    Version(Version),
}

impl From<ReleaseId> for Target {
    fn from(id: ReleaseId) -> Self {
        Self::Id(id)
    }
}

impl From<Version> for Target {
    fn from(v: Version) -> Self {
        Self::Version(v)
    }
}

impl Target {
    fn resolve(self, graph: &Graph) -> Option<ReleaseId> {
        match self {
            Self::Id(id) => Some(id),
            Self::Version(v) => graph.find(&v),
        }
    }
}
