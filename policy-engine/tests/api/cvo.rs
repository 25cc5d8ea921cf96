//! Every body the service sends passes the checks the cluster-version operator applies
//! to it: on the fixture and on the reference's conformance graph, for
//! every channel and arch they list.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use crate::harness::{get, Pe, CONFORMANCE, FIXTURE};

/// The problems the CVO would find in a response body; empty when it accepts it.
pub fn cvo_problems(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut fail = |p: String| problems.push(p);
    if doc["version"] != 1 {
        fail("top-level version is not 1".into());
    }
    let nodes = doc["nodes"].as_array().expect("nodes is an array");
    let mut versions = HashSet::new();
    for (i, node) in nodes.iter().enumerate() {
        let version = node["version"].as_str().unwrap_or_default();
        if semver::Version::parse(version).is_err() {
            fail(format!("nodes[{i}].version {version:?} is not SemVer"));
        }
        if !versions.insert(version.to_owned()) {
            fail(format!("nodes[{i}].version {version:?} is not unique"));
        }
        if node["payload"].as_str().is_none_or(str::is_empty) {
            fail(format!("nodes[{i}].payload missing"));
        }
        let metadata = node["metadata"].as_object().expect("metadata is an object");
        if let Some(url) = metadata.get("url") {
            if url.as_str().is_none_or(|u| url::Url::parse(u).is_err()) {
                fail(format!("nodes[{i}].metadata.url {url} is not a URL"));
            }
        }
        if let Some(arch) = metadata.get("release.openshift.io/architecture") {
            if arch != "multi" {
                fail(format!("nodes[{i}] architecture {arch} is not multi"));
            }
        }
        let channels = metadata["io.openshift.upgrades.graph.release.channels"]
            .as_str()
            .unwrap_or_default();
        if channels.is_empty() || channels.split(',').any(|c| c.trim().is_empty()) {
            fail(format!(
                "nodes[{i}] channels {channels:?} empty or with empty entries"
            ));
        }
        if metadata.contains_key("io.openshift.upgrades.graph.release.arch") {
            fail(format!("nodes[{i}] still carries the arch key"));
        }
    }
    let mut edges = HashSet::new();
    for (i, edge) in doc["edges"]
        .as_array()
        .expect("edges is an array")
        .iter()
        .enumerate()
    {
        let pair: Vec<u64> = edge
            .as_array()
            .map(|e| e.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        if pair.len() != 2 || pair.iter().any(|&n| n as usize >= nodes.len()) {
            fail(format!("edges[{i}] {edge} is not two in-range indices"));
            continue;
        }
        edges.insert((
            nodes[pair[0] as usize]["version"]
                .as_str()
                .unwrap()
                .to_owned(),
            nodes[pair[1] as usize]["version"]
                .as_str()
                .unwrap()
                .to_owned(),
        ));
    }
    let mut conditional_pairs = HashSet::new();
    for (g, group) in doc["conditionalEdges"]
        .as_array()
        .expect("array")
        .iter()
        .enumerate()
    {
        let pairs = group["edges"].as_array().unwrap();
        if pairs.is_empty() {
            fail(format!("conditionalEdges[{g}] has no edges"));
        }
        for pair in pairs {
            let (from, to) = (pair["from"].as_str().unwrap(), pair["to"].as_str().unwrap());
            for v in [from, to] {
                if !versions.contains(v) {
                    fail(format!("conditionalEdges[{g}]: {v} is not a node"));
                }
            }
            if edges.contains(&(from.to_owned(), to.to_owned())) {
                fail(format!(
                    "{from} -> {to} is both conditional and unconditional"
                ));
            }
            if !conditional_pairs.insert((from.to_owned(), to.to_owned())) {
                fail(format!("{from} -> {to} is in two conditional groups"));
            }
        }
        for risk in group["risks"].as_array().unwrap() {
            for field in ["url", "name", "message"] {
                if risk[field].as_str().is_none_or(|s| s.trim().is_empty()) {
                    fail(format!("conditionalEdges[{g}] risk without {field}"));
                }
            }
            if risk["url"]
                .as_str()
                .is_some_and(|u| url::Url::parse(u).is_err())
            {
                fail(format!("conditionalEdges[{g}] risk url is not a URL"));
            }
            let rules = risk["matchingRules"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let valid = |r: &Value| match r["type"].as_str() {
                Some("Always") => r.get("promql").is_none(),
                Some("PromQL") => r["promql"]["promql"]
                    .as_str()
                    .is_some_and(|q| !q.is_empty()),
                _ => false,
            };
            if rules.is_empty() || !rules.iter().all(valid) {
                fail(format!(
                    "conditionalEdges[{g}] risk has invalid matchingRules"
                ));
            }
        }
    }
    problems
}

/// Every channel and arch the raw graph lists, plus ones it does not.
fn keys(raw: &[u8]) -> Vec<(String, String)> {
    let doc: Value = serde_json::from_slice(raw).unwrap();
    let mut channels = BTreeSet::from(["no-such-channel".to_owned()]);
    let mut arches = BTreeSet::from(["aarch64".to_owned()]);
    for node in doc["nodes"].as_array().unwrap() {
        let csv = |key: &str| -> Vec<String> {
            node["metadata"][key]
                .as_str()
                .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
                .unwrap_or_default()
        };
        channels.extend(csv("io.openshift.upgrades.graph.release.channels"));
        arches.extend(csv("io.openshift.upgrades.graph.release.arch"));
    }
    channels
        .iter()
        .flat_map(|c| arches.iter().map(move |a| (c.clone(), a.clone())))
        .collect()
}

async fn check_all(raw: &[u8]) -> usize {
    let graph = graph_data::wire::from_json(raw).unwrap();
    let pe = Pe::with_graph(graph, "", "").await;
    let mut non_empty = 0;
    for (channel, arch) in keys(raw) {
        let answer = get(
            &format!("{}/graph?channel={channel}&arch={arch}", pe.base),
            &[("accept", "application/json")],
        )
        .await;
        assert_eq!(answer.status, 200, "{channel} {arch}");
        let doc = answer.json();
        let problems = cvo_problems(&doc);
        assert!(problems.is_empty(), "{channel} {arch}: {problems:#?}");
        non_empty += usize::from(!doc["nodes"].as_array().unwrap().is_empty());
    }
    pe.stop().await;
    non_empty
}

#[tokio::test]
async fn fixture_bodies_pass_the_cvo_checks() {
    assert_eq!(check_all(FIXTURE).await, 8);
}

#[tokio::test]
async fn conformance_bodies_pass_the_cvo_checks() {
    assert!(check_all(CONFORMANCE).await > 50);
}

#[test]
fn the_checker_catches_what_the_cvo_rejects() {
    let bad: Value = serde_json::json!({
        "version": 1,
        "nodes": [
            {"version": "4.1", "payload": "p", "metadata": {
                "io.openshift.upgrades.graph.release.channels": "a,",
                "release.openshift.io/architecture": "amd64"}},
        ],
        "edges": [[0, 1]],
        "conditionalEdges": [{"edges": [{"from": "4.1", "to": "4.2.0"}],
            "risks": [{"url": "", "name": "n", "message": "m",
                       "matchingRules": [{"type": "Always", "promql": {"promql": "x"}}]}]}]
    });
    assert_eq!(cvo_problems(&bad).len(), 8, "{:#?}", cvo_problems(&bad));
}
