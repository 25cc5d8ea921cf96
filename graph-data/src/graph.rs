//! The update graph: releases as nodes of a petgraph DAG, indexed by exact version.
//!
//! The graph refuses cycles with an error, never a panic. It keeps a topological order of
//! its releases (every edge goes from a lower to a higher key) and updates it
//! incrementally (Pearce and Kelly's dynamic topological sort): an edge that agrees with
//! the order costs nothing; one that does not is checked and repaired by searching only
//! the releases whose keys lie between its ends. Keys start as the SemVer version, so
//! edges that go up (as real update edges do) never search, and an edge that goes down
//! without closing a cycle reorders a bounded region once instead of making every later
//! edge search the graph.

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

/// A release's place in the topological order.
type OrderKey = (Version, u64);

/// The update graph: releases, unconditional edges between them, and conditional edges.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    dag: StableDiGraph<Release, ()>,
    by_version: HashMap<Version, ReleaseId>,
    /// Topological key of each release, by node index: for every edge `a -> b`,
    /// `order[a] < order[b]`. Starts as (version, creation number), which is unique.
    order: Vec<OrderKey>,
    /// Creation number of the next release.
    created: u64,
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
        // A new release has no edges, so any key is consistent; its version keeps edges
        // that go up free of any search.
        let key = (version.clone(), self.created);
        self.created += 1;
        match self.order.get_mut(id.index()) {
            Some(slot) => *slot = key,
            None => {
                self.order
                    .resize(id.index(), (Version::new(0, 0, 0), u64::MAX));
                self.order.push(key);
            }
        }
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

    /// Makes room for `additional` more edges at once: a graph of hundreds of thousands
    /// of edges grown one by one would hold up to twice the room it needs.
    pub fn reserve_edges(&mut self, additional: usize) {
        self.dag.reserve_exact_edges(additional);
    }

    /// Adds the edge `from -> to`. `Ok(false)` if it was already there; an error if it
    /// would close a cycle.
    pub fn add_edge(&mut self, from: ReleaseId, to: ReleaseId) -> Result<bool, GraphError> {
        if self.dag.find_edge(from, to).is_some() {
            return Ok(false);
        }
        if from == to {
            return Err(self.would_cycle(from, to));
        }
        if self.order[from.index()] > self.order[to.index()] {
            self.reorder(from, to)?;
        }
        self.dag.add_edge(from, to, ());
        Ok(true)
    }

    fn would_cycle(&self, from: ReleaseId, to: ReleaseId) -> GraphError {
        GraphError::WouldCycle {
            from: self.dag[from].version.clone(),
            to: self.dag[to].version.clone(),
        }
    }

    /// Makes room for the edge `from -> to` where `to` is ordered before `from`: finds the
    /// releases reachable from `to` that are ordered before `from` (reaching `from` means
    /// a cycle) and the releases reaching `from` that are ordered after `to`, then hands
    /// their keys out again so that the second group comes before the first. Only
    /// releases between the two keys are visited.
    fn reorder(&mut self, from: ReleaseId, to: ReleaseId) -> Result<(), GraphError> {
        let upper = self.order[from.index()].clone();
        let lower = self.order[to.index()].clone();
        let mut forward = Vec::new();
        let mut seen = HashSet::from([to]);
        let mut stack = vec![to];
        while let Some(n) = stack.pop() {
            forward.push(n);
            for next in self.dag.neighbors_directed(n, Direction::Outgoing) {
                if next == from {
                    return Err(self.would_cycle(from, to));
                }
                if self.order[next.index()] < upper && seen.insert(next) {
                    stack.push(next);
                }
            }
        }
        let mut backward = Vec::new();
        let mut stack = vec![from];
        seen.insert(from);
        while let Some(n) = stack.pop() {
            backward.push(n);
            for prev in self.dag.neighbors_directed(n, Direction::Incoming) {
                if self.order[prev.index()] > lower && seen.insert(prev) {
                    stack.push(prev);
                }
            }
        }
        let by_key =
            |a: &ReleaseId, b: &ReleaseId| self.order[a.index()].cmp(&self.order[b.index()]);
        forward.sort_by(by_key);
        backward.sort_by(by_key);
        let mut keys: Vec<OrderKey> = backward
            .iter()
            .chain(&forward)
            .map(|n| self.order[n.index()].clone())
            .collect();
        keys.sort();
        for (n, key) in backward.iter().chain(&forward).zip(keys) {
            self.order[n.index()] = key;
        }
        Ok(())
    }

    /// Removes the edge `from -> to`; `false` if there was none.
    pub fn remove_edge(&mut self, from: ReleaseId, to: ReleaseId) -> bool {
        match self.dag.find_edge(from, to) {
            // Fewer edges never break a topological order.
            Some(edge) => {
                self.dag.remove_edge(edge);
                true
            }
            None => false,
        }
    }

    /// Whether the edge `from -> to` exists.
    pub fn has_edge(&self, from: ReleaseId, to: ReleaseId) -> bool {
        self.dag.find_edge(from, to).is_some()
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

    /// Gives back the spare capacity its collections grew while the graph was built (up
    /// to half of each: they grow by doubling), for a graph that is now only read, such
    /// as a parsed graph held while it is served. At full scale the conditional edges
    /// alone are 235k pairs of versions in groups built by pushing.
    pub fn shrink_to_fit(&mut self) {
        self.dag.shrink_to_fit();
        self.by_version.shrink_to_fit();
        self.order.shrink_to_fit();
        for group in &mut self.conditional_edges {
            group.edges.shrink_to_fit();
            group.risks.shrink_to_fit();
        }
        self.conditional_edges.shrink_to_fit();
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
        // With the down edge gone, the up edges (and then the down one) are fine again.
        g.add_edge(ids[0], ids[2]).unwrap();
        assert!(matches!(
            g.add_edge(ids[2], ids[0]),
            Err(GraphError::WouldCycle { .. })
        ));
        g.add_edge(ids[2], ids[1]).unwrap();
        g.remove_release(ids[1]);
        assert_eq!(g.find(&v("2.0.0")), None);
        assert_eq!(g.find(&v("3.0.0")), Some(ids[2]));
        // The freed slot is reused with a fresh key.
        let again = g
            .add_release(Release::abstract_release(v("0.5.0")))
            .unwrap();
        g.add_edge(ids[2], again).unwrap();
        assert!(matches!(
            g.add_edge(again, ids[0]),
            Err(GraphError::WouldCycle { .. })
        ));
    }

    /// Whether `to` can reach `from` by a plain search: the reference answer.
    fn reaches(g: &Graph, from: ReleaseId, to: ReleaseId) -> bool {
        petgraph::algo::has_path_connecting(&g.dag, from, to, None)
    }

    proptest::proptest! {
        /// Any sequence of edge additions and removals: an edge is refused exactly when
        /// it would close a cycle, and the kept order stays topological.
        #[test]
        fn cycle_check_matches_a_plain_search(
            ops in proptest::collection::vec((0usize..12, 0usize..12, proptest::bool::weighted(0.15)), 0..120)
        ) {
            let names: Vec<String> = (0..12).map(|i| format!("{}.0.0", i % 6 + 1) + if i < 6 { "+a" } else { "+b" }).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let (mut g, ids) = graph(&refs);
            for (a, b, remove) in ops {
                let (a, b) = (ids[a], ids[b]);
                if remove {
                    let had = g.has_edge(a, b);
                    proptest::prop_assert_eq!(g.remove_edge(a, b), had);
                    continue;
                }
                let existed = g.has_edge(a, b);
                let cycle = a == b || (!existed && reaches(&g, b, a));
                match g.add_edge(a, b) {
                    Ok(added) => {
                        proptest::prop_assert!(!cycle);
                        proptest::prop_assert_eq!(added, !existed);
                    }
                    Err(GraphError::WouldCycle { .. }) => proptest::prop_assert!(cycle),
                    Err(e) => proptest::prop_assert!(false, "{e}"),
                }
                for (x, y) in g.edges() {
                    proptest::prop_assert!(g.order[x.index()] < g.order[y.index()]);
                }
            }
        }
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
