//! Property tests of the planner against the graph endpoint's own filter: on random
//! graphs (two arches, two channels, random edges and conditional edges), every path is
//! a path of the Cincinnati graph of that channel and arch, it has the fewest hops (a BFS
//! on the filtered graph decides), conditional edges are used only when no recommended
//! path exists, and explain says `recommended` exactly when the filtered graph has the
//! edge.

use std::collections::{HashMap, HashSet, VecDeque};

use graph_data::planner::{self, ChannelView, EdgeKind};
use graph_data::provenance::Provenance;
use graph_data::{
    ConditionalEdge, ConditionalUpdateEdge, Graph, MatchingRule, Metadata, Release, Risk,
};
use proptest::prelude::*;
use semver::Version;

use crate::filter::{self, ARCH_KEY, CHANNELS_KEY};

const ARCHES: [&str; 2] = ["amd64", "arm64"];
const CHANNELS: [&str; 2] = ["a", "b"];

/// (channel bits, arch) per release; (from, to, conditional) per edge, by index.
fn build(releases: &[(u8, usize)], edges: &[(usize, usize, bool)]) -> Graph {
    let mut g = Graph::new();
    let mut ids = Vec::new();
    for (i, &(channels, arch)) in releases.iter().enumerate() {
        let names: Vec<&str> = CHANNELS
            .iter()
            .enumerate()
            .filter(|(c, _)| channels & (1 << c) != 0)
            .map(|(_, n)| *n)
            .collect();
        let mut m = Metadata::new();
        if !names.is_empty() {
            m.insert(CHANNELS_KEY.into(), names.join(","));
        }
        m.insert(ARCH_KEY.into(), ARCHES[arch].into());
        let v = Version::parse(&format!("4.1.{i}+{}", ARCHES[arch])).unwrap();
        ids.push(g.add_release(Release::concrete(v, "p", m)).unwrap());
    }
    let mut conditional = Vec::new();
    for &(f, t, cond) in edges {
        let (f, t) = (f % releases.len(), t % releases.len());
        if f >= t {
            continue;
        }
        if cond {
            conditional.push(ConditionalUpdateEdge {
                from: g.release(ids[f]).version.clone(),
                to: g.release(ids[t]).version.clone(),
            });
        } else {
            g.add_edge(ids[f], ids[t]).unwrap();
        }
    }
    if !conditional.is_empty() {
        g.set_conditional_edges(vec![ConditionalEdge {
            edges: conditional,
            risks: vec![Risk {
                url: "https://example.com/r".into(),
                name: "R".into(),
                message: "m".into(),
                matching_rules: vec![MatchingRule::Always],
            }],
        }]);
    }
    g
}

/// Hop counts from `from` in the filtered graph, over recommended (and conditional)
/// edges.
fn bfs(
    rec: &HashSet<(String, String)>,
    cond: &HashSet<(String, String)>,
    from: &str,
    with_conditional: bool,
) -> HashMap<String, usize> {
    let mut dist = HashMap::from([(from.to_owned(), 0)]);
    let mut queue = VecDeque::from([from.to_owned()]);
    while let Some(u) = queue.pop_front() {
        let d = dist[&u];
        let next: Vec<String> = rec
            .iter()
            .chain(cond.iter().filter(|_| with_conditional))
            .filter(|(f, _)| *f == u)
            .map(|(_, t)| t.clone())
            .collect();
        for v in next {
            if !dist.contains_key(&v) {
                dist.insert(v.clone(), d + 1);
                queue.push_back(v);
            }
        }
    }
    dist
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn paths_are_valid_and_minimal_and_explain_matches_the_graph(
        releases in proptest::collection::vec((0u8..4, 0usize..2), 2..14),
        edges in proptest::collection::vec((0usize..14, 0usize..14, proptest::bool::weighted(0.3)), 0..40),
        channel in 0usize..2,
        arch in 0usize..2,
    ) {
        let graph = build(&releases, &edges);
        let (channel, arch) = (CHANNELS[channel], ARCHES[arch]);
        let served = filter::filter(&graph, channel, arch).unwrap();
        let version = |id| served.release(id).version.to_string();
        let rec: HashSet<(String, String)> = served.edges().map(|(f, t)| (version(f), version(t))).collect();
        let cond: HashSet<(String, String)> = served
            .conditional_edges()
            .iter()
            .flat_map(|g| g.edges.iter().map(|e| (e.from.to_string(), e.to.to_string())))
            .collect();
        let provenance = Provenance::default();
        let view = ChannelView::new(&graph, channel, arch);
        let members: Vec<Version> = served.releases().map(|(_, r)| r.version.clone()).collect();
        prop_assert_eq!(view.versions().len(), members.len());
        for from in &members {
            let rec_dist = bfs(&rec, &cond, &from.to_string(), false);
            let any_dist = bfs(&rec, &cond, &from.to_string(), true);
            for to in &members {
                let x = planner::explain(&graph, &provenance, &view, from, to);
                let pair = (from.to_string(), to.to_string());
                prop_assert_eq!(x.edge == EdgeKind::Recommended, rec.contains(&pair));
                prop_assert_eq!(x.edge == EdgeKind::Conditional, !rec.contains(&pair) && cond.contains(&pair));

                let p = planner::path(&graph, &provenance, &view, from, Some(to));
                match p.paths.first() {
                    None => prop_assert!(!any_dist.contains_key(&to.to_string())),
                    Some(path) => {
                        let mut at = from.to_string();
                        for hop in &path.hops {
                            prop_assert_eq!(&hop.from, &at);
                            let e = (hop.from.clone(), hop.to.clone());
                            match hop.edge {
                                EdgeKind::Recommended => prop_assert!(rec.contains(&e)),
                                EdgeKind::Conditional => prop_assert!(cond.contains(&e) && path.conditional),
                                EdgeKind::None => prop_assert!(false, "a hop without an edge"),
                            }
                            at = hop.to.clone();
                        }
                        prop_assert_eq!(&at, &to.to_string());
                        let best = if path.conditional {
                            prop_assert!(!rec_dist.contains_key(&to.to_string()));
                            any_dist[&to.to_string()]
                        } else {
                            rec_dist[&to.to_string()]
                        };
                        prop_assert_eq!(path.hops.len(), best);
                    }
                }
            }
        }
    }
}
