//! Conformance with the reference's own parser fixtures (tests/conformance/graph-data-apply,
//! see its README): applying each dated graph-data snapshot to the scraped graph must give
//! the reference's expected graph, and the broken `invalid0` tree must be reported file by
//! file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use graph_data::apply::{apply_all, edge_add_remove};
use graph_data::keys::{CHANNELS_KEY, PREVIOUS_REMOVE_KEY, PREVIOUS_REMOVE_REGEX_KEY};
use graph_data::repo::{load_dir, LoadFailure};
use graph_data::{wire, Graph};
use semver::Version;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance/graph-data-apply")
        .join(name)
}

fn read_graph(path: &Path) -> Graph {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    wire::from_json(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

type Nodes = BTreeMap<Version, (Option<String>, BTreeMap<String, String>)>;

/// Nodes by version with payload and metadata, minus the keys the reference ignores.
fn nodes(g: &Graph) -> Nodes {
    g.releases()
        .map(|(_, r)| {
            let mut metadata = r.metadata.clone();
            metadata.remove(PREVIOUS_REMOVE_REGEX_KEY);
            metadata.remove(PREVIOUS_REMOVE_KEY);
            (r.version.clone(), (r.payload.clone(), metadata))
        })
        .collect()
}

fn edges(g: &Graph) -> BTreeSet<(Version, Version)> {
    g.edges()
        .map(|(f, t)| (g.release(f).version.clone(), g.release(t).version.clone()))
        .collect()
}

/// Runs one dated snapshot and returns (raw, actual, expected) for further checks.
fn compare(snapshot: &str) -> (Graph, Graph, Graph) {
    let dir = fixture(snapshot);
    let raw = read_graph(&dir.join("graph-gb-raw.json"));
    let data =
        load_dir(&dir.join("cincinnati-graph-data")).unwrap_or_else(|e| panic!("{snapshot}: {e}"));
    let mut actual = raw.clone();
    apply_all(&mut actual, &data).unwrap();
    // Guard against a vacuous pass: graph-data must change the scraped graph.
    assert!(
        edges(&actual).len() < edges(&raw).len(),
        "{snapshot}: no edge was removed"
    );
    assert!(actual
        .releases()
        .any(|(_, r)| r.metadata.contains_key(CHANNELS_KEY)));
    let mut expected = read_graph(&dir.join("graph-gb-with-quay-metadata.json"));
    edge_add_remove(&mut expected, &[]).unwrap();

    let (a, e) = (nodes(&actual), nodes(&expected));
    let diff: Vec<String> = e
        .iter()
        .filter(|(v, n)| a.get(*v) != Some(n))
        .map(|(v, n)| format!("expected {v}: {n:?}\n   actual: {:?}", a.get(v)))
        .chain(
            a.keys()
                .filter(|v| !e.contains_key(*v))
                .map(|v| format!("unexpected node {v}")),
        )
        .take(5)
        .collect();
    assert!(
        diff.is_empty(),
        "{snapshot}: nodes differ:\n{}",
        diff.join("\n")
    );

    let (a, e) = (edges(&actual), edges(&expected));
    let missing: Vec<_> = e.difference(&a).take(5).collect();
    let extra: Vec<_> = a.difference(&e).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{snapshot}: edges differ ({} expected, {} actual)\nmissing: {missing:?}\nextra: {extra:?}",
        e.len(),
        a.len()
    );

    // The fixtures' conditional groups were written by a reference version that did not
    // serialize the pairs (`"edges": []`): what they pin is the set of risks.
    let risks = |g: &Graph| -> BTreeSet<String> {
        g.conditional_edges()
            .iter()
            .flat_map(|c| c.risks.iter().map(|r| r.name.clone()))
            .collect()
    };
    assert_eq!(
        risks(&actual),
        risks(&expected),
        "{snapshot}: conditional risks differ"
    );
    (raw, actual, expected)
}

#[test]
fn snapshot_20200220_104838() {
    let (_, actual, _) = compare("20200220.104838");
    assert!(actual.conditional_edges().is_empty());
}

#[test]
fn snapshot_20200319_204124() {
    let (_, actual, _) = compare("20200319.204124");
    assert!(actual.conditional_edges().is_empty());
}

/// The 1.1.0 snapshot has three risks on 4.7.4: two from `4\.6\..*`, one from `.*`. The
/// pairs are checked against the scraped edges, since the fixture does not list them.
#[test]
fn snapshot_20211124_083150() {
    let (raw, actual, _) = compare("20211124.083150");
    let into_474: BTreeSet<(Version, Version)> = edges(&raw)
        .into_iter()
        .filter(|(_, to)| (to.major, to.minor, to.patch) == (4, 7, 4) && to.pre.is_empty())
        .collect();
    assert!(!into_474.is_empty());
    let mut seen = BTreeSet::new();
    for group in actual.conditional_edges() {
        let names: Vec<&str> = group.risks.iter().map(|r| r.name.as_str()).collect();
        for e in &group.edges {
            let from_46 = e.from.major == 4 && e.from.minor == 6;
            let want: &[&str] = if from_46 {
                &[
                    "AuthOAuthProxyLeakedConnections",
                    "VSphereHW14CrossNodeNetworkingError",
                    "VSphereNodeNameChanges",
                ]
            } else {
                &["VSphereNodeNameChanges"]
            };
            assert_eq!(names, want, "{} -> {}", e.from, e.to);
            assert!(
                seen.insert((e.from.clone(), e.to.clone())),
                "pair listed twice"
            );
        }
    }
    assert_eq!(
        seen, into_474,
        "every scraped edge into 4.7.4 becomes conditional"
    );
    let still = edges(&actual);
    assert!(
        seen.iter().all(|p| !still.contains(p)),
        "conditional edges left in `edges`"
    );
}

/// invalid0 has no `channels/` directory and three broken files in `blocked-edges/`:
/// each is one error naming the file, and the missing directory is a fourth.
#[test]
fn invalid0_reports_every_broken_file() {
    let Err(LoadFailure::Invalid(errors)) = load_dir(&fixture("invalid0/cincinnati-graph-data"))
    else {
        panic!("invalid0 must not load")
    };
    let lines: BTreeSet<String> = errors.iter().map(ToString::to_string).collect();
    let expected: BTreeSet<String> = [
        "blocked-edges/invalid.extension: not a `.yaml` file (extension `.extension`): only `.yaml` files are read, so this file would be ignored",
        "blocked-edges/invalid_format.yaml: field `to`: missing, found unknown field `_to` instead (a plain block has exactly to and from; a conditional block needs to, from, url, name, message, matchingRules)",
        "blocked-edges/missing_extension: no extension: only `.yaml` files are read, so this file would be ignored",
        "channels: missing (the directory must exist, even if empty)",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(lines, expected);
    assert_eq!(errors.len(), 4);
}
