use std::collections::HashMap;

use graph_data::{ConditionalEdge, ConditionalUpdateEdge, MatchingRule, Metadata, Risk};

use super::*;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn concrete(version: &str, channels: &str, arch: &str) -> Release {
    let mut metadata = Metadata::new();
    metadata.insert(CHANNELS_KEY.to_owned(), channels.to_owned());
    metadata.insert(ARCH_KEY.to_owned(), arch.to_owned());
    metadata.insert("url".to_owned(), format!("https://example.com/{version}"));
    Release::concrete(v(version), format!("r/p@sha256:{version}"), metadata)
}

fn risk(name: &str) -> Risk {
    Risk {
        url: format!("https://example.com/{name}"),
        name: name.to_owned(),
        message: "m".to_owned(),
        matching_rules: vec![MatchingRule::Always],
    }
}

fn pair(from: &str, to: &str) -> ConditionalUpdateEdge {
    ConditionalUpdateEdge {
        from: v(from),
        to: v(to),
    }
}

/// amd64 4.1.0 -> 4.1.1 -> 4.2.0 (4.2.0 only in candidate), s390x 4.1.0 -> 4.1.1,
/// multi 4.1.0 -> 4.1.1, an abstract 4.0.0 -> 4.1.0, and conditional edges.
fn sample() -> Graph {
    let mut g = Graph::new();
    let mut add = |r: Release| g.add_release(r).unwrap();
    let a0 = add(Release::abstract_release(v("4.0.0+amd64")));
    let a1 = add(concrete(
        "4.1.0+amd64",
        "stable-4.1, candidate-4.1",
        "amd64",
    ));
    let a2 = add(concrete("4.1.1+amd64", "stable-4.1,candidate-4.1", "amd64"));
    let a3 = add(concrete("4.2.0+amd64", "candidate-4.1", "amd64"));
    let s1 = add(concrete("4.1.0+s390x", "stable-4.1", "s390x"));
    let s2 = add(concrete("4.1.1+s390x", "stable-4.1", "s390x"));
    let m1 = add(concrete("4.1.0+multi", "stable-4.1", "multi"));
    let m2 = add(concrete("4.1.1+multi", "stable-4.1", "multi"));
    for (f, t) in [(a0, a1), (a1, a2), (a2, a3), (s1, s2), (m1, m2)] {
        g.add_edge(f, t).unwrap();
    }
    g.set_conditional_edges(vec![
        ConditionalEdge {
            edges: vec![
                pair("4.1.0+amd64", "4.2.0+amd64"),
                pair("4.1.0+s390x", "4.1.1+s390x"),
            ],
            risks: vec![risk("A")],
        },
        ConditionalEdge {
            edges: vec![pair("4.1.1+amd64", "4.2.0+amd64")],
            risks: vec![risk("B"), risk("C")],
        },
    ]);
    g
}

fn versions(g: &Graph) -> Vec<String> {
    let mut out: Vec<String> = g.releases().map(|(_, r)| r.version.to_string()).collect();
    out.sort();
    out
}

fn edges(g: &Graph) -> Vec<(String, String)> {
    let mut out: Vec<_> = g
        .edges()
        .map(|(f, t)| {
            (
                g.release(f).version.to_string(),
                g.release(t).version.to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn channel_and_arch_keep_listed_concrete_releases_and_strip_the_arch() {
    let g = filter(&sample(), "candidate-4.1", "amd64").unwrap();
    assert_eq!(versions(&g), ["4.1.0", "4.1.1", "4.2.0"]);
    assert_eq!(
        edges(&g),
        [
            ("4.1.0".into(), "4.1.1".into()),
            ("4.1.1".into(), "4.2.0".into())
        ]
    );
    for (_, r) in g.releases() {
        assert!(!r.metadata.contains_key(ARCH_KEY), "{r:?}");
        assert!(r.metadata.contains_key(CHANNELS_KEY));
    }
    let groups = g.conditional_edges();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].edges, vec![pair("4.1.0", "4.2.0")]);
    assert_eq!(groups[1].edges, vec![pair("4.1.1", "4.2.0")]);
    assert_eq!(groups[1].risks, vec![risk("B"), risk("C")]);
}

#[test]
fn conditional_pairs_touching_removed_releases_and_empty_groups_go() {
    // 4.2.0 is not in stable-4.1: every amd64 pair goes, so does the second group.
    let g = filter(&sample(), "stable-4.1", "amd64").unwrap();
    assert_eq!(versions(&g), ["4.1.0", "4.1.1"]);
    assert!(g.conditional_edges().is_empty());
}

#[test]
fn s390x_keeps_its_own_releases_and_conditional_pairs() {
    let g = filter(&sample(), "stable-4.1", "s390x").unwrap();
    assert_eq!(versions(&g), ["4.1.0", "4.1.1"]);
    assert_eq!(edges(&g), [("4.1.0".into(), "4.1.1".into())]);
    assert_eq!(g.conditional_edges().len(), 1);
    assert_eq!(g.conditional_edges()[0].edges, vec![pair("4.1.0", "4.1.1")]);
}

#[test]
fn multi_is_an_arch_like_any_other() {
    let g = filter(&sample(), "stable-4.1", "multi").unwrap();
    assert_eq!(versions(&g), ["4.1.0", "4.1.1"]);
    assert_eq!(g.edge_count(), 1);
    for (_, r) in g.releases() {
        assert_eq!(
            r.payload.as_deref(),
            Some(&*format!("r/p@sha256:{}+multi", r.version))
        );
    }
}

#[test]
fn unknown_channel_and_unknown_arch_give_an_empty_graph() {
    assert!(filter(&sample(), "stable-9.9", "amd64").unwrap().is_empty());
    let g = filter(&sample(), "stable-4.1", "aarch64").unwrap();
    assert!(g.is_empty());
    assert!(g.conditional_edges().is_empty());
}

#[test]
fn only_the_build_identifier_equal_to_the_arch_is_stripped() {
    assert_eq!(strip_arch(&v("4.1.0+amd64"), "amd64").unwrap(), v("4.1.0"));
    assert_eq!(
        strip_arch(&v("4.1.0-rc.1+x.amd64.y"), "amd64").unwrap(),
        v("4.1.0-rc.1+x.y")
    );
    assert_eq!(
        strip_arch(&v("4.1.0+amd64x"), "amd64").unwrap(),
        v("4.1.0+amd64x")
    );
    assert_eq!(strip_arch(&v("4.1.0"), "amd64").unwrap(), v("4.1.0"));
}

#[test]
fn versions_that_collide_once_stripped_are_an_arch_version_error() {
    let mut g = Graph::new();
    g.add_release(concrete("4.1.0+amd64", "c", "amd64"))
        .unwrap();
    g.add_release(concrete("4.1.0", "c", "amd64")).unwrap();
    let err = filter(&g, "c", "amd64").unwrap_err();
    assert_eq!(err.kind(), "arch_version_error");
    assert!(
        err.to_string().contains("duplicate release version 4.1.0"),
        "{err}"
    );
}

fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn params_are_validated_channel_first_with_the_reference_messages() {
    let ok = GraphParams::from_query(&query(&[("channel", "stable-4.1"), ("version", "x")]));
    assert_eq!(
        ok.unwrap(),
        GraphParams {
            channel: "stable-4.1".into(),
            arch: "amd64".into()
        }
    );
    let err = GraphParams::from_query(&query(&[("channel", "x"), ("arch", "x86_64")]));
    assert_eq!(
        err.unwrap_err().to_string(),
        "invalid client parameters: arch 'x86_64' does not match regex '^[0-9a-z]+$'"
    );
    for bad in [
        "invalid:channel",
        "invalid=channel",
        "Stable",
        "fast-4 9",
        "",
    ] {
        let err = GraphParams::from_query(&query(&[("channel", bad), ("arch", "x_y")]));
        assert_eq!(
            err.unwrap_err().to_string(),
            format!(
                "invalid client parameters: channel '{bad}' does not match regex '^[0-9a-z\\-\\.]+$'"
            )
        );
    }
    let err = GraphParams::from_query(&query(&[("arch", "amd64")])).unwrap_err();
    assert_eq!(err, ApiError::MissingParams(vec!["channel".into()]));
    let aarch = GraphParams::from_query(&query(&[("channel", "a"), ("arch", "aarch64")]));
    assert_eq!(aarch.unwrap().arch, "aarch64");
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    const CHANNELS: [&str; 3] = ["stable-4.1", "fast-4.1", "candidate-4.2"];
    const ARCHES: [&str; 3] = ["amd64", "s390x", "multi"];

    /// Graphs of up to 12 releases over 3 channels and 3 arches, some abstract, with
    /// forward edges and conditional pairs drawn among them.
    fn graphs() -> impl Strategy<Value = Graph> {
        let release = (
            0u64..6,
            0usize..3,
            proptest::bits::u8::between(0, 3),
            any::<bool>(),
        );
        (
            proptest::collection::vec(release, 1..12),
            proptest::collection::vec((0usize..12, 0usize..12), 0..30),
            proptest::collection::vec((0usize..12, 0usize..12), 0..8),
        )
            .prop_map(|(releases, edges, pairs)| {
                let mut g = Graph::new();
                let mut ids = Vec::new();
                for (patch, arch, channel_bits, is_abstract) in releases {
                    let arch = ARCHES[arch];
                    let version = v(&format!("4.1.{patch}+{arch}"));
                    let channels: Vec<&str> = (0..3)
                        .filter(|i| channel_bits & (1 << i) != 0)
                        .map(|i| CHANNELS[i])
                        .collect();
                    let release = if is_abstract {
                        Release::abstract_release(version)
                    } else {
                        let mut r = concrete(&version.to_string(), &channels.join(","), arch);
                        r.version = version;
                        r
                    };
                    if let Ok(id) = g.add_release(release) {
                        ids.push(id);
                    }
                }
                for (a, b) in edges {
                    let (Some(&f), Some(&t)) = (ids.get(a), ids.get(b)) else {
                        continue;
                    };
                    if g.release(f).version < g.release(t).version {
                        g.add_edge(f, t).unwrap();
                    }
                }
                let pairs: Vec<ConditionalUpdateEdge> = pairs
                    .into_iter()
                    .filter_map(|(a, b)| {
                        Some(ConditionalUpdateEdge {
                            from: g.release(*ids.get(a)?).version.clone(),
                            to: g.release(*ids.get(b)?).version.clone(),
                        })
                    })
                    .collect();
                if !pairs.is_empty() {
                    g.set_conditional_edges(vec![ConditionalEdge {
                        edges: pairs,
                        risks: vec![risk("R")],
                    }]);
                }
                g
            })
    }

    proptest! {
        /// Whatever the graph, a filtered graph only holds concrete releases of the
        /// channel and arch, without the arch key or the arch build identifier, and its
        /// conditional edges name only its own releases (what the CVO requires).
        #[test]
        fn filtered_graphs_are_consistent(g in graphs(), c in 0usize..3, a in 0usize..3) {
            let (channel, arch) = (CHANNELS[c], ARCHES[a]);
            let out = filter(&g, channel, arch).unwrap();
            let expected = g
                .releases()
                .filter(|(_, r)| {
                    !r.is_abstract()
                        && csv_contains(r, CHANNELS_KEY, channel)
                        && csv_contains(r, ARCH_KEY, arch)
                })
                .count();
            prop_assert_eq!(out.len(), expected);
            for (_, r) in out.releases() {
                prop_assert!(r.version.build.is_empty());
                prop_assert!(!r.metadata.contains_key(ARCH_KEY));
                prop_assert!(csv_contains(r, CHANNELS_KEY, channel));
            }
            for group in out.conditional_edges() {
                prop_assert!(!group.edges.is_empty());
                for e in &group.edges {
                    prop_assert!(out.find(&e.from).is_some() && out.find(&e.to).is_some());
                }
            }
            let kept_edges = g
                .edges()
                .filter(|&(f, t)| {
                    [f, t].iter().all(|&id| {
                        let r = g.release(id);
                        !r.is_abstract()
                            && csv_contains(r, CHANNELS_KEY, channel)
                            && csv_contains(r, ARCH_KEY, arch)
                    })
                })
                .count();
            prop_assert_eq!(out.edge_count(), kept_edges);
        }
    }
}
