//! The update graph: releases as nodes of a petgraph DAG, indexed by exact version.
//!
//! The graph refuses cycles with an error, never a panic. Cycle checks are cheap in the
//! common case: a cycle needs at least one edge that does not go up in SemVer order, so
//! while every edge goes up (as real update edges do) no search is needed.

use std::collections::{HashMap, HashSet};

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use petgraph::Direction;
use semver::Version;

use crate::conditional::ConditionalEdge;
use crate::error::GraphError;
use crate::release::{Metadata, Release};

/// Stable handle of a release in a [`Graph`]; it stays valid when other releases are
/// removed.
pub type ReleaseId = NodeIndex;

/// The update graph: releases, unconditional edges between them, and conditional edges.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    dag: StableDiGraph<Release, ()>,
    by_version: HashMap<Version, ReleaseId>,
    /// Edges whose source is not lower than their target in SemVer order; while there are
    /// none, no edge that goes up can close a cycle.
    backward_edges: usize,
    conditional_edges: Vec<ConditionalEdge>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of releases.
    pub fn len(&self) -> usize {
        self.dag.node_count()
    }

    /// Whether the graph has no release.
    pub fn is_empty(&self) -> bool {
        self.dag.node_count() == 0
    }

    /// Number of unconditional edges.
    pub fn edge_count(&self) -> usize {
        self.dag.edge_count()
    }

    /// Adds a release; its version (build metadata included) must be new.
    pub fn add_release(&mut self, release: Release) -> Result<ReleaseId, GraphError> {
        if self.by_version.contains_key(&release.version) {
            return Err(GraphError::DuplicateVersion {
                version: release.version,
            });
        }
        let version = release.version.clone();
        let id = self.dag.add_node(release);
        self.by_version.insert(version, id);
        Ok(id)
    }

    /// The release with exactly this version (build metadata included).
    pub fn find(&self, version: &Version) -> Option<ReleaseId> {
        self.by_version.get(version).copied()
    }

    /// The release behind an id.
    ///
    /// # Panics
    /// If the id does not belong to this graph (a programming error, like a bad slice index).
    pub fn release(&self, id: ReleaseId) -> &Release {
        &self.dag[id]
    }

    /// Mutable access to a release's metadata; the version cannot change through it.
    pub fn metadata_mut(&mut self, id: ReleaseId) -> &mut Metadata {
        &mut self.dag[id].metadata
    }

    /// Replaces a release (say an abstract one by the scraped image) keeping its edges.
    pub fn replace_release(&mut self, id: ReleaseId, release: Release) -> Result<(), GraphError> {
        let existing = &mut self.dag[id];
        if existing.version != release.version {
            return Err(GraphError::VersionMismatch {
                existing: existing.version.clone(),
                replacement: release.version,
            });
        }
        *existing = release;
        Ok(())
    }

    /// Every release with its id, in storage order.
    pub fn releases(&self) -> impl Iterator<Item = (ReleaseId, &Release)> + '_ {
        self.dag.node_indices().map(move |id| (id, &self.dag[id]))
    }

    /// Every release id, in storage order.
    pub fn ids(&self) -> Vec<ReleaseId> {
        self.dag.node_indices().collect()
    }

    /// Adds the edge `from -> to`. `Ok(false)` if it was already there; an error if it
    /// would close a cycle.
    pub fn add_edge(&mut self, from: ReleaseId, to: ReleaseId) -> Result<bool, GraphError> {
        if self.dag.find_edge(from, to).is_some() {
            return Ok(false);
        }
        let backward = self.is_backward(from, to);
        if (backward || self.backward_edges > 0)
            && (from == to || petgraph::algo::has_path_connecting(&self.dag, to, from, None))
        {
            return Err(GraphError::WouldCycle {
                from: self.dag[from].version.clone(),
                to: self.dag[to].version.clone(),
            });
        }
        self.dag.add_edge(from, to, ());
        self.backward_edges += usize::from(backward);
        Ok(true)
    }

    /// Removes the edge `from -> to`; `false` if there was none.
    pub fn remove_edge(&mut self, from: ReleaseId, to: ReleaseId) -> bool {
        match self.dag.find_edge(from, to) {
            Some(edge) => {
                self.dag.remove_edge(edge);
                self.backward_edges -= usize::from(self.is_backward(from, to));
                true
            }
            None => false,
        }
    }

    /// Releases with an edge to `id`.
    pub fn parents(&self, id: ReleaseId) -> Vec<ReleaseId> {
        self.dag
            .neighbors_directed(id, Direction::Incoming)
            .collect()
    }

    /// Releases `id` has an edge to.
    pub fn children(&self, id: ReleaseId) -> Vec<ReleaseId> {
        self.dag
            .neighbors_directed(id, Direction::Outgoing)
            .collect()
    }

    /// Every unconditional edge as `(from, to)`, in storage order.
    pub fn edges(&self) -> impl Iterator<Item = (ReleaseId, ReleaseId)> + '_ {
        (&self.dag)
            .edge_references()
            .map(|e| (e.source(), e.target()))
    }

    /// Removes a release and its edges, returning it. Conditional edges that name it are
    /// left to the caller, who knows whether they should go too.
    pub fn remove_release(&mut self, id: ReleaseId) -> Release {
        let backward = self
            .dag
            .edges_directed(id, Direction::Incoming)
            .map(|e| (e.source(), e.target()))
            .chain(
                self.dag
                    .edges_directed(id, Direction::Outgoing)
                    .map(|e| (e.source(), e.target())),
            )
            .filter(|&(from, to)| self.is_backward(from, to))
            .count();
        self.backward_edges -= backward;
        let release = self
            .dag
            .remove_node(id)
            .expect("release id belongs to this graph");
        self.by_version.remove(&release.version);
        release
    }

    /// Keeps only the releases for which `keep` returns true.
    pub fn retain_releases(&mut self, mut keep: impl FnMut(&Release) -> bool) {
        for id in self.ids() {
            if !keep(&self.dag[id]) {
                self.remove_release(id);
            }
        }
    }

    /// The conditional edges, grouped by shared risks.
    pub fn conditional_edges(&self) -> &[ConditionalEdge] {
        &self.conditional_edges
    }

    /// Replaces the conditional edges.
    pub fn set_conditional_edges(&mut self, conditional_edges: Vec<ConditionalEdge>) {
        self.conditional_edges = conditional_edges;
    }

    fn is_backward(&self, from: ReleaseId, to: ReleaseId) -> bool {
        self.dag[from].version >= self.dag[to].version
    }
}

/// Graphs are equal when they hold the same releases, the same edges (by version) and
/// the same conditional edges, whatever their storage order, as the reference compares
/// them.
impl PartialEq for Graph {
    fn eq(&self, other: &Self) -> bool {
        fn edge_set(g: &Graph) -> HashSet<(&Version, &Version)> {
            g.edges()
                .map(|(f, t)| (&g.release(f).version, &g.release(t).version))
                .collect()
        }
        fn conditional_set(g: &Graph) -> HashSet<(&crate::ConditionalUpdateEdge, &[crate::Risk])> {
            g.conditional_edges
                .iter()
                .flat_map(|c| c.edges.iter().map(move |e| (e, c.risks.as_slice())))
                .collect()
        }
        self.len() == other.len()
            && self.releases().all(|(_, r)| {
                other
                    .find(&r.version)
                    .is_some_and(|o| other.release(o) == r)
            })
            && edge_set(self) == edge_set(other)
            && conditional_set(self) == conditional_set(other)
    }
}

impl Eq for Graph {}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn graph(versions: &[&str]) -> (Graph, Vec<ReleaseId>) {
        let mut g = Graph::new();
        let ids = versions
            .iter()
            .map(|s| g.add_release(Release::abstract_release(v(s))).unwrap())
            .collect();
        (g, ids)
    }

    #[test]
    fn duplicate_versions_are_refused_but_builds_differ() {
        let (mut g, _) = graph(&["4.1.0+amd64", "4.1.0+arm64"]);
        let err = g
            .add_release(Release::abstract_release(v("4.1.0+amd64")))
            .unwrap_err();
        assert_eq!(
            err,
            GraphError::DuplicateVersion {
                version: v("4.1.0+amd64")
            }
        );
        assert_eq!(g.len(), 2);
    }

    #[test]
    fn edges_are_deduplicated() {
        let (mut g, ids) = graph(&["1.0.0", "2.0.0"]);
        assert!(g.add_edge(ids[0], ids[1]).unwrap());
        assert!(!g.add_edge(ids[0], ids[1]).unwrap());
        assert_eq!(g.edge_count(), 1);
    }

    #[test]
    fn cycles_are_errors_in_both_directions() {
        let (mut g, ids) = graph(&["1.0.0", "2.0.0", "3.0.0"]);
        g.add_edge(ids[0], ids[1]).unwrap();
        g.add_edge(ids[1], ids[2]).unwrap();
        let err = g.add_edge(ids[2], ids[0]).unwrap_err();
        assert_eq!(
            err,
            GraphError::WouldCycle {
                from: v("3.0.0"),
                to: v("1.0.0")
            }
        );
        assert!(matches!(
            g.add_edge(ids[1], ids[1]),
            Err(GraphError::WouldCycle { .. })
        ));
        // A backward edge that closes no cycle is fine, and later forward edges are
        // checked for real.
        let (mut g, ids) = graph(&["1.0.0", "2.0.0", "3.0.0"]);
        g.add_edge(ids[2], ids[0]).unwrap();
        assert!(g.add_edge(ids[1], ids[2]).is_ok());
        assert!(matches!(
            g.add_edge(ids[0], ids[1]),
            Err(GraphError::WouldCycle { .. })
        ));
        assert_eq!(g.edge_count(), 2);
    }

    #[test]
    fn removals_keep_the_cycle_bookkeeping() {
        let (mut g, ids) = graph(&["1.0.0", "2.0.0", "3.0.0"]);
        g.add_edge(ids[2], ids[0]).unwrap();
        assert!(g.remove_edge(ids[2], ids[0]));
        assert!(!g.remove_edge(ids[2], ids[0]));
        assert_eq!(g.backward_edges, 0);
        g.add_edge(ids[2], ids[1]).unwrap();
        g.remove_release(ids[1]);
        assert_eq!(g.backward_edges, 0);
        assert_eq!(g.find(&v("2.0.0")), None);
        assert_eq!(g.find(&v("3.0.0")), Some(ids[2]));
    }

    #[test]
    fn parents_children_and_replacement() {
        let (mut g, ids) = graph(&["1.0.0", "2.0.0", "3.0.0"]);
        g.add_edge(ids[0], ids[2]).unwrap();
        g.add_edge(ids[1], ids[2]).unwrap();
        let mut parents = g.parents(ids[2]);
        parents.sort();
        assert_eq!(parents, vec![ids[0], ids[1]]);
        assert_eq!(g.children(ids[0]), vec![ids[2]]);
        let concrete = Release::concrete(v("3.0.0"), "r/p@sha256:3", Metadata::new());
        g.replace_release(ids[2], concrete.clone()).unwrap();
        assert_eq!(g.release(ids[2]), &concrete);
        assert_eq!(g.parents(ids[2]).len(), 2);
        let other = Release::abstract_release(v("4.0.0"));
        assert!(matches!(
            g.replace_release(ids[2], other),
            Err(GraphError::VersionMismatch { .. })
        ));
    }

    #[test]
    fn retain_releases_drops_their_edges() {
        let (mut g, ids) = graph(&["1.0.0", "2.0.0", "3.0.0"]);
        g.add_edge(ids[0], ids[1]).unwrap();
        g.add_edge(ids[1], ids[2]).unwrap();
        g.retain_releases(|r| r.version != v("2.0.0"));
        assert_eq!(g.len(), 2);
        assert_eq!(g.edge_count(), 0);
        assert_eq!(g.find(&v("3.0.0")), Some(ids[2]));
    }
}
