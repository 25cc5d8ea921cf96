//! The full-scale graph, built in-process (no registry): every version the
//! bundled graph-data's channels list, on amd64, arm64, ppc64le, s390x and multi, each
//! release's `previous` being every earlier version of its minor and every version of
//! the minor before (as real payloads list them), then the bundled graph-data applied
//! with the graph-data crate (channels, blocked edges, risks as conditional edges), as the
//! graph-builder's pipeline does. Returns the raw JSON a graph-builder would serve.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use graph_data::{Graph, Metadata, Release};
use semver::Version;

const ARCHES: [&str; 5] = ["amd64", "arm64", "ppc64le", "s390x", "multi"];
use graph_data::keys::{ARCH_KEY, MANIFESTREF_KEY};

/// The raw graph JSON and a one-line description of it.
pub fn build(graph_data_dir: &Path) -> (Vec<u8>, String) {
    let data = graph_data::repo::load(graph_data_dir)
        .unwrap_or_else(|e| panic!("graph-data {}: {e}", graph_data_dir.display()));
    let versions: BTreeSet<Version> = data
        .channels
        .iter()
        .flat_map(|c| c.versions.iter())
        .map(|v| {
            let mut v = v.clone();
            v.build = semver::BuildMetadata::EMPTY;
            v
        })
        .collect();
    let mut by_minor: BTreeMap<(u64, u64), Vec<&Version>> = BTreeMap::new();
    for v in &versions {
        by_minor.entry((v.major, v.minor)).or_default().push(v);
    }
    let mut graph = Graph::new();
    let mut ids = BTreeMap::new();
    for arch in ARCHES {
        for (n, v) in versions.iter().enumerate() {
            let mut metadata = Metadata::new();
            metadata.insert(ARCH_KEY.to_owned(), arch.to_owned());
            let digest = format!(
                "sha256:{:016x}{:048x}",
                n,
                ARCHES.iter().position(|a| *a == arch).unwrap_or(0)
            );
            metadata.insert(MANIFESTREF_KEY.to_owned(), digest.clone());
            metadata.insert(
                "url".to_owned(),
                format!("https://access.redhat.com/errata/RHBA-2024:{}", 1000 + n),
            );
            if arch == "multi" {
                metadata.insert(
                    "release.openshift.io/architecture".to_owned(),
                    "multi".to_owned(),
                );
            }
            let mut version = v.clone();
            version.build =
                semver::BuildMetadata::new(arch).expect("an arch is valid build metadata");
            let payload = format!("quay.io/openshift-release-dev/ocp-release@{digest}");
            let id = graph
                .add_release(Release::concrete(version, payload, metadata))
                .expect("distinct versions");
            ids.insert((arch, v.clone()), id);
        }
    }
    for arch in ARCHES {
        for v in &versions {
            let to = ids[&(arch, v.clone())];
            let same = by_minor[&(v.major, v.minor)].iter().filter(|p| **p < v);
            let before = v
                .minor
                .checked_sub(1)
                .and_then(|m| by_minor.get(&(v.major, m)))
                .into_iter()
                .flatten();
            for previous in same.chain(before) {
                graph
                    .add_edge(ids[&(arch, (*previous).clone())], to)
                    .expect("edges go from lower to higher versions");
            }
        }
    }
    graph_data::apply::apply_all(&mut graph, &data).expect("graph-data applies");
    let json = graph_data::wire::to_json(&graph);
    let summary = format!(
        "full-scale graph: {} versions x {} arches = {} releases, {} edges, {} conditional groups, {:.1} MB raw JSON",
        versions.len(),
        ARCHES.len(),
        graph.len(),
        graph.edge_count(),
        graph.conditional_edges().len(),
        json.len() as f64 / 1e6
    );
    (json, summary)
}
