//! Which releases close a cycle in the update graph their `previous`/`next` entries
//! describe, found in linear time, so that the refresh can leave them out (named, with
//! the entry at fault) and assemble the rest instead of failing on one bad image.

use std::collections::HashMap;

use semver::Version;

use crate::assemble::on_arch;
use crate::scrape::{InvalidKind, InvalidRelease, ScrapedRelease};

/// Moves the releases whose `previous`/`next` entries close a cycle to `invalid`, each
/// logged once, so that one bad image cannot stop the graph from assembling.
pub(crate) fn leave_out_cycles(
    releases: &mut Vec<crate::scrape::ScrapedRelease>,
    invalid: &mut Vec<InvalidRelease>,
) {
    let closers = cycle_closers(releases);
    if closers.is_empty() {
        return;
    }
    let mut reasons: Vec<Option<String>> = vec![None; releases.len()];
    for (index, reason) in closers {
        reasons[index] = Some(reason);
    }
    let mut reasons = reasons.into_iter();
    releases.retain(|release| {
        let Some(error) = reasons.next().flatten() else {
            return true;
        };
        tracing::warn!(
            version = %release.version,
            tag = release.tags.first().map_or("", String::as_str),
            digest = %release.manifestref,
            kind = InvalidKind::Cycle.as_str(),
            %error,
            "release image ignored"
        );
        invalid.push(InvalidRelease {
            tag: release.tags.first().cloned().unwrap_or_default(),
            digest: release.manifestref.clone(),
            kind: InvalidKind::Cycle,
            error,
        });
        false
    });
    invalid.sort_by(|a, b| a.tag.cmp(&b.tag));
}

/// The releases whose `previous`/`next` entries close a cycle, by index into `releases`,
/// each with the first such entry; leaving them out makes the rest assemble.
///
/// Linear in nodes and edges: the strongly connected components of the graph the entries
/// describe (iterative Tarjan), then every edge inside a component that does not lead to a
/// higher version (self-loops included) condemns the release that declared it. What stays
/// inside a component leads strictly upwards, so it cannot cycle.
pub(crate) fn cycle_closers(releases: &[ScrapedRelease]) -> Vec<(usize, String)> {
    if all_edges_climb(releases) {
        return Vec::new();
    }
    let mut nodes = Nodes::default();
    for release in releases {
        nodes.id(release.version.clone());
    }
    let mut edges = Vec::new();
    for (declarer, release) in releases.iter().enumerate() {
        let arch = &release.version.build;
        let me = nodes.id(release.version.clone());
        for named in release.previous.iter() {
            edges.push((
                nodes.id(on_arch(named, arch)),
                me,
                declarer,
                "previous",
                named,
            ));
        }
        for named in release.next.iter() {
            edges.push((me, nodes.id(on_arch(named, arch)), declarer, "next", named));
        }
    }
    let component = components(nodes.versions.len(), &edges);
    let mut closers: Vec<(usize, String)> = Vec::new();
    for &(from, to, declarer, field, named) in &edges {
        let (a, b) = (&nodes.versions[from], &nodes.versions[to]);
        if component[from] == component[to]
            && a >= b
            && closers.last().map(|c| c.0) != Some(declarer)
        {
            closers.push((
                declarer,
                format!(
                    "its `{field}` entry {named} makes the edge {a} -> {b}, which closes a cycle"
                ),
            ));
        }
    }
    closers.dedup_by_key(|c| c.0);
    closers
}

#[derive(Default)]
struct Nodes {
    ids: HashMap<Version, usize>,
    versions: Vec<Version>,
}

impl Nodes {
    fn id(&mut self, version: Version) -> usize {
        let next = self.versions.len();
        *self.ids.entry(version).or_insert_with_key(|v| {
            self.versions.push(v.clone());
            next
        })
    }
}

/// Whether every entry names a version of the release's own architecture, strictly older
/// for `previous` and strictly newer for `next`. Then every edge climbs in SemVer order and
/// no cycle can exist, so the full pass (a tenth of the assembly time on a full-scale
/// graph) is not needed: real release metadata is always like this.
fn all_edges_climb(releases: &[ScrapedRelease]) -> bool {
    fn key(v: &Version) -> (u64, u64, u64, &semver::Prerelease) {
        (v.major, v.minor, v.patch, &v.pre)
    }
    releases.iter().all(|r| {
        let own = |named: &Version| named.build.is_empty() || named.build == r.version.build;
        let me = key(&r.version);
        r.previous.iter().all(|p| own(p) && key(p) < me)
            && r.next.iter().all(|n| own(n) && key(n) > me)
    })
}

/// The strongly connected component of each of `n` nodes (Tarjan, without recursion, so
/// a long chain cannot overflow the stack).
fn components<T>(n: usize, edges: &[(usize, usize, T, &str, &Version)]) -> Vec<usize> {
    const UNSEEN: usize = usize::MAX;
    let mut start = vec![0usize; n + 1];
    for e in edges {
        start[e.0 + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut targets = vec![0usize; edges.len()];
    for e in edges {
        targets[fill[e.0]] = e.1;
        fill[e.0] += 1;
    }
    let mut t = Tarjan {
        index: vec![UNSEEN; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        counter: 0,
        calls: Vec::new(),
    };
    let mut component = vec![UNSEEN; n];
    let mut components = 0;
    for root in 0..n {
        if t.index[root] != UNSEEN {
            continue;
        }
        t.visit(root, start[root]);
        while let Some(&(v, next)) = t.calls.last() {
            if next < start[v + 1] {
                t.calls.last_mut().expect("not empty").1 += 1;
                let w = targets[next];
                if t.index[w] == UNSEEN {
                    t.visit(w, start[w]);
                } else if t.on_stack[w] {
                    t.low[v] = t.low[v].min(t.index[w]);
                }
                continue;
            }
            t.calls.pop();
            if let Some(&(parent, _)) = t.calls.last() {
                t.low[parent] = t.low[parent].min(t.low[v]);
            }
            if t.low[v] == t.index[v] {
                while let Some(w) = t.stack.pop() {
                    t.on_stack[w] = false;
                    component[w] = components;
                    if w == v {
                        break;
                    }
                }
                components += 1;
            }
        }
    }
    component
}

/// Tarjan's bookkeeping; `calls` is the explicit call stack (node, next edge to follow).
struct Tarjan {
    index: Vec<usize>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    counter: usize,
    calls: Vec<(usize, usize)>,
}

impl Tarjan {
    fn visit(&mut self, v: usize, first_edge: usize) {
        self.index[v] = self.counter;
        self.low[v] = self.counter;
        self.counter += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        self.calls.push((v, first_edge));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble::assemble;
    use crate::assemble::tests::{release, v};

    #[test]
    fn only_climbing_entries_skip_the_full_pass() {
        let climbing = [
            release("4.1.0+amd64", &[], &["4.1.1"]),
            release("4.1.1+amd64", &["4.1.0", "4.1.0-rc.1"], &[]),
        ];
        assert!(all_edges_climb(&climbing));
        let down = [release("4.1.0+amd64", &["4.1.1"], &[])];
        assert!(!all_edges_climb(&down));
        let same = [release("4.1.0+amd64", &[], &["4.1.0"])];
        assert!(!all_edges_climb(&same));
        let mut other_arch = release("4.1.1+amd64", &[], &[]);
        other_arch.previous = [v("4.1.0+arm64")].into();
        assert!(!all_edges_climb(&[other_arch]));
    }

    fn closers(releases: &[ScrapedRelease]) -> Vec<(String, String)> {
        cycle_closers(releases)
            .into_iter()
            .map(|(i, why)| (releases[i].version.to_string(), why))
            .collect()
    }

    #[test]
    fn the_release_naming_a_newer_version_as_previous_closes_the_cycle() {
        let releases = [
            release("4.1.5+amd64", &["4.1.6"], &[]),
            release("4.1.6+amd64", &["4.1.5"], &[]),
            release("4.1.7+amd64", &["4.1.6"], &[]),
        ];
        assert_eq!(
            closers(&releases),
            [(
                "4.1.5+amd64".to_owned(),
                "its `previous` entry 4.1.6 makes the edge 4.1.6+amd64 -> 4.1.5+amd64, which closes a cycle".to_owned()
            )]
        );
        // Without it the rest assemble, and it stays an abstract node.
        let g = assemble(&releases[1..]).unwrap();
        assert!(g.release(g.find(&v("4.1.5+amd64")).unwrap()).is_abstract());
        assert_eq!(g.edge_count(), 2);
    }

    #[test]
    fn self_loops_long_cycles_and_next_entries_are_found() {
        let releases = [
            release("1.0.0+amd64", &["1.0.0"], &[]),
            release("2.0.0+amd64", &[], &["2.1.0"]),
            release("2.1.0+amd64", &[], &["2.2.0"]),
            release("2.2.0+amd64", &[], &["2.0.0"]),
            // Same versions on another arch: no cycle there.
            release("2.2.0+arm64", &["2.1.0"], &[]),
            release("3.0.0+amd64", &["2.0.0", "2.2.0"], &["3.1.0"]),
        ];
        let found: Vec<String> = closers(&releases).into_iter().map(|c| c.0).collect();
        assert_eq!(found, ["1.0.0+amd64", "2.2.0+amd64"]);
        let kept: Vec<ScrapedRelease> = releases
            .iter()
            .filter(|r| !found.contains(&r.version.to_string()))
            .cloned()
            .collect();
        assert!(closers(&kept).is_empty());
        assemble(&kept).unwrap();
    }

    #[test]
    fn a_long_acyclic_chain_has_no_closer_and_no_deep_recursion() {
        let releases: Vec<ScrapedRelease> = (1..20_000u64)
            .map(|i| {
                let version = format!("1.0.{i}+amd64");
                let previous = format!("1.0.{}", i - 1);
                release(&version, &[previous.as_str()], &[])
            })
            .collect();
        assert!(cycle_closers(&releases).is_empty());
        // Closing it at the far end condemns only the last release.
        let mut closed = releases;
        closed.push(release("1.0.20000+amd64", &["1.0.19999"], &["1.0.0"]));
        let found = closers(&closed);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "1.0.20000+amd64");
    }

    #[test]
    fn left_out_releases_become_invalid_with_their_reason() {
        let mut releases = vec![
            release("1.0.0+amd64", &[], &[]),
            release("1.0.1+amd64", &["1.0.1"], &[]),
        ];
        let mut invalid = Vec::new();
        leave_out_cycles(&mut releases, &mut invalid);
        assert_eq!(releases.len(), 1);
        assert_eq!(
            invalid,
            [InvalidRelease {
                tag: "1.0.1+amd64".to_owned(),
                digest: "sha256:101amd64".to_owned(),
                kind: InvalidKind::Cycle,
                error: "its `previous` entry 1.0.1 makes the edge 1.0.1+amd64 -> 1.0.1+amd64, which closes a cycle".to_owned(),
            }]
        );
    }
}
