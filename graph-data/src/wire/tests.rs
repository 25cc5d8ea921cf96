use proptest::prelude::*;
use semver::Version;

use super::*;
use crate::conditional::{MatchingRule, Risk};
use crate::release::Metadata;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

/// Three releases inserted out of order, with edges in storage order 0->1, 1->2, 0->2.
fn sample() -> Graph {
    let mut g = Graph::new();
    let mut meta = Metadata::new();
    meta.insert("url".to_owned(), "https://example.com/3".to_owned());
    meta.insert("a".to_owned(), "first".to_owned());
    let c = g
        .add_release(Release::concrete(v("3.0.0"), "image/3.0.0", meta))
        .unwrap();
    let a = g
        .add_release(Release::concrete(
            v("1.0.0"),
            "image/1.0.0",
            Metadata::new(),
        ))
        .unwrap();
    let b = g
        .add_release(Release::abstract_release(v("2.0.0")))
        .unwrap();
    g.add_edge(a, b).unwrap();
    g.add_edge(b, c).unwrap();
    g.add_edge(a, c).unwrap();
    g
}

fn risk(name: &str, rules: Vec<MatchingRule>) -> Risk {
    Risk {
        url: format!("https://example.com/{name}"),
        name: name.to_owned(),
        message: format!("{name} message"),
        matching_rules: rules,
    }
}

#[test]
fn serializes_raw_graph_exactly() {
    assert_eq!(
        text(to_json(&sample())),
        concat!(
            r#"{"nodes":[{"version":"1.0.0","payload":"image/1.0.0","metadata":{}},"#,
            r#"{"version":"2.0.0"},"#,
            r#"{"version":"3.0.0","payload":"image/3.0.0","metadata":{"a":"first","url":"https://example.com/3"}}],"#,
            r#""edges":[[0,1],[0,2],[1,2]],"conditionalEdges":[]}"#
        )
    );
}

#[test]
fn serializes_versioned_graph_with_conditional_edges_exactly() {
    let mut g = sample();
    g.set_conditional_edges(vec![
        ConditionalEdge {
            edges: vec![ConditionalUpdateEdge {
                from: v("2.0.0"),
                to: v("3.0.0"),
            }],
            risks: vec![risk(
                "B",
                vec![
                    MatchingRule::PromQL {
                        promql: "q".to_owned(),
                    },
                    MatchingRule::Always,
                ],
            )],
        },
        ConditionalEdge {
            edges: vec![
                ConditionalUpdateEdge {
                    from: v("1.0.0"),
                    to: v("3.0.0"),
                },
                ConditionalUpdateEdge {
                    from: v("1.0.0"),
                    to: v("2.0.0"),
                },
            ],
            risks: vec![risk("A", vec![MatchingRule::Always])],
        },
    ]);
    let json = text(to_versioned_json(&g));
    assert!(
        json.starts_with(r#"{"version":1,"nodes":[{"version":"1.0.0""#),
        "{json}"
    );
    assert!(
        json.ends_with(concat!(
            r#""edges":[[0,1],[0,2],[1,2]],"conditionalEdges":["#,
            r#"{"edges":[{"from":"1.0.0","to":"2.0.0"},{"from":"1.0.0","to":"3.0.0"}],"#,
            r#""risks":[{"url":"https://example.com/A","name":"A","message":"A message","matchingRules":[{"type":"Always"}]}]},"#,
            r#"{"edges":[{"from":"2.0.0","to":"3.0.0"}],"#,
            r#""risks":[{"url":"https://example.com/B","name":"B","message":"B message","matchingRules":[{"type":"PromQL","promql":{"promql":"q"}},{"type":"Always"}]}]}]}"#
        )),
        "{json}"
    );
    assert_eq!(from_json(json.as_bytes()).unwrap(), g);
}

#[test]
fn round_trips_and_output_is_stable() {
    let g = sample();
    let once = to_json(&g);
    let back = from_json(&once).unwrap();
    assert_eq!(back, g);
    assert_eq!(to_json(&back), once);
    assert_eq!(
        to_versioned_json(&from_json(&to_versioned_json(&g)).unwrap()),
        to_versioned_json(&g)
    );
}

#[test]
fn conditional_edges_default_to_empty_and_unknown_fields_are_ignored() {
    let g = from_json(
        br#"{"nodes":[{"version":"1.0.0","payload":"p","metadata":{"k":"v"},"x":1}],"edges":[],"extra":true}"#,
    )
    .unwrap();
    assert_eq!(g.len(), 1);
    assert!(g.conditional_edges().is_empty());
}

#[test]
fn payload_without_metadata_is_a_concrete_release() {
    let g = from_json(br#"{"nodes":[{"version":"1.0.0","payload":"p"}],"edges":[]}"#).unwrap();
    let (_, r) = g.releases().next().unwrap();
    assert_eq!(r.payload.as_deref(), Some("p"));
    assert!(r.metadata.is_empty());
}

#[test]
fn invalid_documents_are_refused_with_a_reason() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"nodes":[{"version":""}],"edges":[]}"#,
            "nodes[0].version",
        ),
        (
            r#"{"nodes":[{"version":"4.1"}],"edges":[]}"#,
            "nodes[0].version",
        ),
        (
            r#"{"nodes":[{"version":"1.0.0"},{"version":"1.0.0"}],"edges":[]}"#,
            "duplicate release version 1.0.0",
        ),
        (
            r#"{"nodes":[{"version":"1.0.0"}],"edges":[[0,1]]}"#,
            "edges[0]: [0, 1] is out of range for 1 nodes",
        ),
        (
            r#"{"nodes":[{"version":"1.0.0"}],"edges":[[0,-1]]}"#,
            "invalid graph JSON",
        ),
        (
            r#"{"nodes":[{"version":"1.0.0"}],"edges":[[0,0,0]]}"#,
            "invalid graph JSON",
        ),
        (
            r#"{"nodes":[{"version":"1.0.0"},{"version":"2.0.0"}],"edges":[[0,1],[1,0]]}"#,
            "would create a cycle",
        ),
        (
            r#"{"version":2,"nodes":[],"edges":[]}"#,
            "unsupported graph format version 2",
        ),
        (
            r#"{"nodes":[],"edges":[],"conditionalEdges":[{"edges":[{"from":"1.0.0","to":"2.0.0"}],"risks":[]}]}"#,
            "is not a node",
        ),
        (
            r#"{"nodes":[{"version":"1.0.0"},{"version":"2.0.0"}],"edges":[],"conditionalEdges":[{"edges":[{"from":"1.0.0","to":"2.0.0"}],"risks":[{"url":"u","name":"","message":"m","matchingRules":[{"type":"Always"}]}]}]}"#,
            "risks[0]: field `name`",
        ),
        (
            r#"{"nodes":[{"version":"1.0.0"},{"version":"2.0.0"}],"edges":[],"conditionalEdges":[{"edges":[{"from":"1.0.0","to":"2.0.0"}],"risks":[{"url":"u","name":"n","message":"m","matchingRules":[{"type":"PromQL"}]}]}]}"#,
            "promql",
        ),
        (
            r#"{"nodes":[{"version":"1.0.0","payload":"p","metadata":{"k":1}}],"edges":[]}"#,
            "invalid graph JSON",
        ),
        (r#"{"edges":[]}"#, "missing field `nodes`"),
    ];
    for (doc, expected) in cases {
        let err = from_json(doc.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(expected), "{doc}: {err:?} lacks {expected:?}");
    }
}

#[test]
fn conformance_graphs_round_trip() {
    let root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/conformance/graph-data-apply"
    );
    for snapshot in ["20200220.104838", "20200319.204124", "20211124.083150"] {
        for file in ["graph-gb-raw.json", "graph-gb-with-quay-metadata.json"] {
            let path = format!("{root}/{snapshot}/{file}");
            let bytes = std::fs::read(&path).unwrap();
            let g = from_json(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
            let expected: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(
                g.len(),
                expected["nodes"].as_array().unwrap().len(),
                "{path}"
            );
            assert_eq!(
                g.edge_count(),
                expected["edges"].as_array().unwrap().len(),
                "{path}"
            );
            assert_eq!(from_json(&to_json(&g)).unwrap(), g, "{path}");
        }
    }
}

/// A parsed graph is held while it is served: its conditional edges, grown by pushing
/// while parsing, keep no spare capacity, and the graph is the one parsed.
#[test]
fn a_parsed_graph_keeps_no_spare_capacity() {
    let mut edges = String::new();
    for i in 0..100 {
        if i > 0 {
            edges.push(',');
        }
        edges.push_str(&format!(r#"{{"from":"1.0.{i}","to":"2.0.0"}}"#));
    }
    let nodes: Vec<String> = (0..100)
        .map(|i| format!(r#"{{"version":"1.0.{i}"}}"#))
        .chain([r#"{"version":"2.0.0"}"#.to_owned()])
        .collect();
    let risk = r#"{"url":"u","name":"N","message":"m","matchingRules":[{"type":"Always"}]}"#;
    let doc = format!(
        r#"{{"nodes":[{}],"edges":[],"conditionalEdges":[{{"edges":[{edges}],"risks":[{risk}]}}]}}"#,
        nodes.join(",")
    );
    let g = from_json(doc.as_bytes()).unwrap();
    let group = &g.conditional_edges()[0];
    assert_eq!(group.edges.len(), 100);
    assert_eq!(group.edges.capacity(), 100);
    assert_eq!(g.conditional_edges().len(), 1);
    assert_eq!(from_json(&to_json(&g)).unwrap(), g);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
    ))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = from_json(&bytes);
    }

    #[test]
    fn arbitrary_graph_shaped_json_never_panics(
        versions in proptest::collection::vec("[0-9]{1,2}\\.[0-9]\\.[0-9](-[a-z0-9.]{1,4})?(\\+[a-z0-9]{1,5})?", 0..8),
        edges in proptest::collection::vec((0u64..10, 0u64..10), 0..16),
    ) {
        let nodes: Vec<_> = versions.iter().map(|v| serde_json::json!({"version": v, "payload": "p", "metadata": {}})).collect();
        let doc = serde_json::json!({"nodes": nodes, "edges": edges.iter().map(|(a, b)| [a, b]).collect::<Vec<_>>()});
        if let Ok(g) = from_json(doc.to_string().as_bytes()) {
            // Whatever is accepted serializes and reads back to the same graph.
            prop_assert_eq!(from_json(&to_json(&g)).unwrap(), g);
        }
    }
}
