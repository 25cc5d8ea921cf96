//! Applying graph-data to small graphs, one rule of applying graph-data per test.

use std::collections::BTreeSet;

use graph_data::apply::{apply, apply_all, edge_add_remove, ApplyError};
use graph_data::keys::{
    ARCH_KEY, CHANNELS_KEY, NEXT_ADD_KEY, NEXT_REMOVE_KEY, PREVIOUS_ADD_KEY, PREVIOUS_REMOVE_KEY,
    PREVIOUS_REMOVE_REGEX_KEY,
};
use graph_data::repo::{load_dir, GraphData};
use graph_data::{Graph, Metadata, Release};
use semver::Version;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// A graph of scraped releases (`4.2.0+amd64` style, arch metadata set) and edges.
fn graph(nodes: &[&str], edges: &[(&str, &str)]) -> Graph {
    let mut g = Graph::new();
    for n in nodes {
        let version = v(n);
        let mut metadata = Metadata::new();
        if !version.build.is_empty() {
            metadata.insert(ARCH_KEY.to_owned(), version.build.to_string());
        }
        g.add_release(Release::concrete(
            version,
            format!("quay.io/r@sha256:{n}"),
            metadata,
        ))
        .unwrap();
    }
    for (f, t) in edges {
        let (f, t) = (g.find(&v(f)).unwrap(), g.find(&v(t)).unwrap());
        g.add_edge(f, t).unwrap();
    }
    g
}

fn set(g: &mut Graph, node: &str, key: &str, value: &str) {
    let id = g.find(&v(node)).unwrap();
    g.metadata_mut(id).insert(key.to_owned(), value.to_owned());
}

fn meta(g: &Graph, node: &str, key: &str) -> Option<String> {
    g.release(g.find(&v(node)).unwrap())
        .metadata
        .get(key)
        .cloned()
}

fn edges(g: &Graph) -> BTreeSet<(String, String)> {
    g.edges()
        .map(|(f, t)| {
            (
                g.release(f).version.to_string(),
                g.release(t).version.to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(f, t)| ((*f).to_owned(), (*t).to_owned()))
        .collect()
}

/// Loads a tree made of `files` (path relative to the root, content) plus an empty
/// `raw/metadata.json` and `version` 1.1.0 unless given.
fn data(files: &[(&str, &str)]) -> GraphData {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in ["channels", "blocked-edges", "raw"] {
        std::fs::create_dir(root.join(d)).unwrap();
    }
    std::fs::write(root.join("version"), "1.1.0\n").unwrap();
    std::fs::write(root.join("raw/metadata.json"), "{}").unwrap();
    for (path, content) in files {
        std::fs::write(root.join(path), content).unwrap();
    }
    load_dir(root).unwrap_or_else(|e| panic!("{e}"))
}

const RISK: &str = "url: https://example.com/r\nmessage: m\nmatchingRules:\n- type: Always\n";

#[test]
fn channel_csv_has_the_reference_order() {
    let mut g = graph(&["4.9.0+amd64"], &[]);
    let names = [
        "stable-4.9",
        "stable-4.10",
        "fast-4.9",
        "eus-4.10",
        "candidate-4.10",
        "fast-4.10",
        "candidate-4.9",
    ];
    let files: Vec<(String, String)> = names
        .iter()
        .map(|n| {
            (
                format!("channels/{n}.yaml"),
                format!("name: {n}\nversions: [4.9.0]\n"),
            )
        })
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    apply(&mut g, &data(&files));
    assert_eq!(
        meta(&g, "4.9.0+amd64", CHANNELS_KEY).unwrap(),
        "candidate-4.10,eus-4.10,fast-4.10,stable-4.10,candidate-4.9,fast-4.9,stable-4.9"
    );
}

#[test]
fn channel_entry_with_build_names_one_arch() {
    let mut g = graph(&["4.2.14+amd64", "4.2.14+s390x", "4.2.13+amd64"], &[]);
    apply(
        &mut g,
        &data(&[
            (
                "channels/a-4.2.yaml",
                "name: a-4.2\nversions: [4.2.14, 4.2.14+amd64]\n",
            ),
            (
                "channels/b-4.2.yaml",
                "name: b-4.2\nversions: [4.2.14+amd64, 4.2.13-s390x]\n",
            ),
        ]),
    );
    // Listed twice in a-4.2 (plain and +amd64), the release is in it once.
    assert_eq!(
        meta(&g, "4.2.14+amd64", CHANNELS_KEY).unwrap(),
        "a-4.2,b-4.2"
    );
    assert_eq!(meta(&g, "4.2.14+s390x", CHANNELS_KEY).unwrap(), "a-4.2");
    // A `-s390x` prerelease in a channel matches only that literal prerelease.
    assert_eq!(meta(&g, "4.2.13+amd64", CHANNELS_KEY), None);
}

#[test]
fn plain_block_targets_every_arch_one_arch_or_the_legacy_s390x() {
    let nodes = [
        "4.2.11+amd64",
        "4.2.11+s390x",
        "4.2.11-s390x+s390x",
        "4.2.11-s390x+amd64",
        "4.3.29+amd64",
        "4.3.29+s390x",
    ];
    let mut g = graph(&nodes, &[]);
    apply(
        &mut g,
        &data(&[
            ("blocked-edges/4.2.11.yaml", "to: 4.2.11\nfrom: a\n"),
            (
                "blocked-edges/4.2.11-s390x.yaml",
                "to: 4.2.11-s390x\nfrom: b\n",
            ),
            (
                "blocked-edges/4.3.29-s390x.yaml",
                "to: 4.3.29+s390x\nfrom: c\n",
            ),
        ]),
    );
    let got: Vec<Option<String>> = nodes
        .iter()
        .map(|n| meta(&g, n, PREVIOUS_REMOVE_REGEX_KEY))
        .collect();
    let want = [Some("a"), Some("a"), Some("b"), None, None, Some("c")];
    assert_eq!(got, want.map(|w| w.map(String::from)));
}

#[test]
fn last_plain_block_by_file_name_wins() {
    let mut g = graph(
        &["4.1.1+amd64", "4.1.2+amd64", "4.2.0+amd64"],
        &[
            ("4.1.1+amd64", "4.2.0+amd64"),
            ("4.1.2+amd64", "4.2.0+amd64"),
        ],
    );
    let d = data(&[
        ("blocked-edges/4.2.0-b.yaml", "to: 4.2.0\nfrom: 4\\.1\\.2\n"),
        ("blocked-edges/4.2.0-a.yaml", "to: 4.2.0\nfrom: 4\\.1\\.1\n"),
    ]);
    apply_all(&mut g, &d).unwrap();
    assert_eq!(
        meta(&g, "4.2.0+amd64", PREVIOUS_REMOVE_REGEX_KEY).unwrap(),
        "4\\.1\\.2"
    );
    assert_eq!(edges(&g), pairs(&[("4.1.1+amd64", "4.2.0+amd64")]));
}

#[test]
fn an_edge_both_blocked_and_conditional_ends_up_conditional() {
    let mut g = graph(
        &["4.1.0+amd64", "4.1.0+s390x", "4.2.0+amd64", "4.2.0+s390x"],
        &[
            ("4.1.0+amd64", "4.2.0+amd64"),
            ("4.1.0+s390x", "4.2.0+s390x"),
        ],
    );
    let risk = format!("to: 4.2.0\nfrom: 4\\.1\\..*[+]amd64\nname: R\n{RISK}");
    let d = data(&[
        ("blocked-edges/4.2.0.yaml", "to: 4.2.0\nfrom: .*\n"),
        ("blocked-edges/4.2.0-R.yaml", &risk),
    ]);
    apply_all(&mut g, &d).unwrap();
    assert!(edges(&g).is_empty());
    let c = g.conditional_edges();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].risks[0].name, "R");
    assert_eq!(c[0].edges.len(), 1);
    assert_eq!(
        (c[0].edges[0].from.to_string(), c[0].edges[0].to.to_string()),
        ("4.1.0+amd64".into(), "4.2.0+amd64".into())
    );
    // The risk's removal regex is appended to the plain block's.
    assert_eq!(
        meta(&g, "4.2.0+s390x", PREVIOUS_REMOVE_REGEX_KEY).unwrap(),
        ".*|4\\.1\\..*[+]amd64"
    );
}

#[test]
fn pairs_with_the_same_risks_share_a_group() {
    let mut g = graph(
        &["4.1.0+amd64", "4.1.1+amd64", "4.2.0+amd64"],
        &[
            ("4.1.0+amd64", "4.2.0+amd64"),
            ("4.1.1+amd64", "4.2.0+amd64"),
        ],
    );
    let a = format!("to: 4.2.0\nfrom: .*\nname: A\n{RISK}");
    let b = format!("to: 4.2.0\nfrom: 4\\.1\\.1\nname: B\n{RISK}");
    apply_all(
        &mut g,
        &data(&[("blocked-edges/a.yaml", &a), ("blocked-edges/b.yaml", &b)]),
    )
    .unwrap();
    let mut groups: Vec<(Vec<String>, Vec<String>)> = g
        .conditional_edges()
        .iter()
        .map(|c| {
            (
                c.risks.iter().map(|r| r.name.clone()).collect(),
                c.edges.iter().map(|e| e.from.to_string()).collect(),
            )
        })
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        vec![
            (vec!["A".into()], vec!["4.1.0+amd64".into()]),
            (vec!["A".into(), "B".into()], vec!["4.1.1+amd64".into()])
        ]
    );
}

#[test]
fn raw_metadata_is_merged_into_every_arch_and_appended() {
    let mut g = graph(&["4.1.0+amd64", "4.1.0+s390x", "4.1.1+amd64"], &[]);
    set(&mut g, "4.1.0+amd64", "k", "old");
    g.add_release(Release::abstract_release(v("4.1.0+arm64")))
        .unwrap();
    apply(
        &mut g,
        &data(&[("raw/metadata.json", r#"{"4.1.0": {"k": "new"}}"#)]),
    );
    assert_eq!(meta(&g, "4.1.0+amd64", "k").unwrap(), "old,new");
    assert_eq!(meta(&g, "4.1.0+s390x", "k").unwrap(), "new");
    assert_eq!(meta(&g, "4.1.1+amd64", "k"), None);
    assert_eq!(
        meta(&g, "4.1.0+arm64", "k"),
        None,
        "abstract releases get no metadata"
    );
}

#[test]
fn a_cycle_from_previous_add_costs_that_edge_only() {
    let mut g = graph(
        &["1.0.0+amd64", "2.0.0+amd64", "3.0.0+amd64"],
        &[("1.0.0+amd64", "2.0.0+amd64")],
    );
    let d = data(&[(
        "raw/metadata.json",
        &format!(
            r#"{{"1.0.0": {{"{PREVIOUS_ADD_KEY}": "2.0.0"}}, "3.0.0": {{"{PREVIOUS_ADD_KEY}": "1.0.0"}}}}"#
        ),
    )]);
    apply_all(&mut g, &d).unwrap();
    let has = |g: &Graph, from: &str, to: &str| {
        g.has_edge(g.find(&v(from)).unwrap(), g.find(&v(to)).unwrap())
    };
    assert!(
        !has(&g, "2.0.0+amd64", "1.0.0+amd64"),
        "the cycle was closed"
    );
    assert!(has(&g, "1.0.0+amd64", "2.0.0+amd64"));
    // The other release's add still applies.
    assert!(has(&g, "1.0.0+amd64", "3.0.0+amd64"));
    assert_eq!(g.edge_count(), 2);
}

#[test]
fn adds_get_the_arch_of_the_release_and_removes_win() {
    let mut g = graph(
        &["1.0.0+amd64", "1.0.0+s390x", "2.0.0+amd64", "3.0.0+amd64"],
        &[],
    );
    set(&mut g, "2.0.0+amd64", PREVIOUS_ADD_KEY, "1.0.0, 0.9.0");
    set(&mut g, "2.0.0+amd64", NEXT_ADD_KEY, "3.0.0");
    set(&mut g, "1.0.0+amd64", NEXT_ADD_KEY, "3.0.0");
    set(&mut g, "3.0.0+amd64", PREVIOUS_REMOVE_KEY, "1.0.0");
    edge_add_remove(&mut g, &[]).unwrap();
    assert_eq!(
        edges(&g),
        pairs(&[
            ("1.0.0+amd64", "2.0.0+amd64"),
            ("2.0.0+amd64", "3.0.0+amd64")
        ])
    );
    set(&mut g, "2.0.0+amd64", NEXT_REMOVE_KEY, "3.0.0");
    edge_add_remove(&mut g, &[]).unwrap();
    assert_eq!(edges(&g), pairs(&[("1.0.0+amd64", "2.0.0+amd64")]));
}

#[test]
fn star_and_dot_star_remove_every_parent() {
    let nodes = ["1.0.0+amd64", "1.1.0+amd64", "2.0.0+amd64", "3.0.0+amd64"];
    let all = [
        ("1.0.0+amd64", "2.0.0+amd64"),
        ("1.1.0+amd64", "2.0.0+amd64"),
        ("1.0.0+amd64", "3.0.0+amd64"),
        ("1.1.0+amd64", "3.0.0+amd64"),
        ("2.0.0+amd64", "3.0.0+amd64"),
    ];
    let mut g = graph(&nodes, &all);
    set(&mut g, "2.0.0+amd64", PREVIOUS_REMOVE_KEY, " * ");
    edge_add_remove(&mut g, &[]).unwrap();
    assert_eq!(edges(&g), pairs(&all[2..]));
    let mut g = graph(&nodes, &all);
    set(&mut g, "3.0.0+amd64", PREVIOUS_REMOVE_REGEX_KEY, ".*");
    edge_add_remove(&mut g, &[]).unwrap();
    assert_eq!(edges(&g), pairs(&all[..2]));
}

#[test]
fn remove_regex_is_unanchored_against_arch_suffixed_versions() {
    let nodes = ["4.1.1+amd64", "4.1.10+amd64", "4.2.0+amd64"];
    let all = [
        ("4.1.1+amd64", "4.2.0+amd64"),
        ("4.1.10+amd64", "4.2.0+amd64"),
    ];
    let mut g = graph(&nodes, &all);
    set(
        &mut g,
        "4.2.0+amd64",
        PREVIOUS_REMOVE_REGEX_KEY,
        "4\\.1\\.1[+]",
    );
    edge_add_remove(&mut g, &[]).unwrap();
    assert_eq!(edges(&g), pairs(&all[1..]));
    let mut g = graph(&nodes, &all);
    set(&mut g, "4.2.0+amd64", PREVIOUS_REMOVE_REGEX_KEY, "1\\.1");
    edge_add_remove(&mut g, &[]).unwrap();
    assert!(edges(&g).is_empty());
    let mut g = graph(&nodes, &all);
    set(&mut g, "4.2.0+amd64", PREVIOUS_REMOVE_REGEX_KEY, "(");
    assert!(matches!(
        edge_add_remove(&mut g, &[]),
        Err(ApplyError::InvalidRegex { .. })
    ));
}

#[test]
fn a_bad_version_in_an_annotated_list_is_an_error() {
    let mut g = graph(&["1.0.0+amd64", "2.0.0+amd64"], &[]);
    set(&mut g, "2.0.0+amd64", PREVIOUS_ADD_KEY, "1.0.0,");
    let err = edge_add_remove(&mut g, &[]).unwrap_err();
    assert!(
        matches!(err, ApplyError::InvalidVersion { ref value, .. } if value.is_empty()),
        "{err}"
    );
}

/// A quirk of the reference, kept: a risk whose `to` carries an arch yields pairs for that arch
/// only, while its removal regex applies to every arch of the version.
#[test]
fn a_risk_to_with_an_arch_is_conditional_for_that_arch_and_removed_for_all() {
    let mut g = graph(
        &["4.1.0+amd64", "4.1.0+s390x", "4.2.0+amd64", "4.2.0+s390x"],
        &[
            ("4.1.0+amd64", "4.2.0+amd64"),
            ("4.1.0+s390x", "4.2.0+s390x"),
        ],
    );
    let risk = format!("to: 4.2.0+amd64\nfrom: .*\nname: R\n{RISK}");
    apply_all(&mut g, &data(&[("blocked-edges/r.yaml", &risk)])).unwrap();
    assert!(edges(&g).is_empty());
    let c = g.conditional_edges();
    assert_eq!(c.len(), 1);
    let got: Vec<String> = c[0]
        .edges
        .iter()
        .map(|e| format!("{}->{}", e.from, e.to))
        .collect();
    assert_eq!(got, ["4.1.0+amd64->4.2.0+amd64"]);
}
