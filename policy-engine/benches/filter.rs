//! Cold-path cost at the scale of the full public graph, CPU only: a synthetic
//! graph of 18 minors x 60 patches x 5 arches (5400 releases, ~210k edges) is parsed
//! from the graph-builder's JSON, then one (channel, arch) body is filtered, serialized,
//! gzipped and hashed, as the first request for a key after a new graph does.

use std::time::Instant;

use graph_data::{Graph, Metadata, Release};
use policy_engine::cache::Body;
use policy_engine::filter::{filter, ARCH_KEY, CHANNELS_KEY};
use semver::Version;

const ARCHES: [&str; 5] = ["amd64", "arm64", "ppc64le", "s390x", "multi"];
const MINORS: u64 = 18;
const PATCHES: u64 = 60;

fn synthetic() -> Graph {
    let mut g = Graph::new();
    let mut ids = std::collections::HashMap::new();
    for arch in ARCHES {
        for minor in 1..=MINORS {
            for patch in 0..PATCHES {
                // A release is in the channels of its minor and of the next one, as
                // real releases are.
                let channels: Vec<String> = [minor, minor + 1]
                    .iter()
                    .flat_map(|m| ["candidate", "fast", "stable"].map(|c| format!("{c}-4.{m}")))
                    .collect();
                let mut metadata = Metadata::new();
                metadata.insert(CHANNELS_KEY.to_owned(), channels.join(","));
                metadata.insert(ARCH_KEY.to_owned(), arch.to_owned());
                metadata.insert(
                    "url".to_owned(),
                    format!("https://example.com/4.{minor}.{patch}"),
                );
                let version = Version::parse(&format!("4.{minor}.{patch}+{arch}")).unwrap();
                let payload = format!("quay.example/ocp/release@sha256:{minor:032}{patch:032}");
                let id = g
                    .add_release(Release::concrete(version, payload, metadata))
                    .unwrap();
                ids.insert((arch, minor, patch), id);
            }
        }
    }
    for arch in ARCHES {
        for minor in 1..=MINORS {
            for patch in 0..PATCHES {
                let from = ids[&(arch, minor, patch)];
                for later in patch + 1..PATCHES {
                    g.add_edge(from, ids[&(arch, minor, later)]).unwrap();
                }
                if minor < MINORS {
                    for next in PATCHES - 10..PATCHES {
                        g.add_edge(from, ids[&(arch, minor + 1, next)]).unwrap();
                    }
                }
            }
        }
    }
    g
}

fn main() {
    let t = Instant::now();
    let graph = synthetic();
    let built = t.elapsed();
    let raw = graph_data::wire::to_json(&graph);
    let t = Instant::now();
    let parsed = graph_data::wire::from_json(&raw).unwrap();
    let parse = t.elapsed();
    println!(
        "graph: {} releases, {} edges, {:.1} MB raw JSON; built in {built:.2?}, parsed in {parse:.2?}",
        parsed.len(),
        parsed.edge_count(),
        raw.len() as f64 / 1e6
    );
    for (channel, arch) in [("stable-4.18", "amd64"), ("candidate-4.10", "multi")] {
        let t = Instant::now();
        let filtered = filter(&parsed, channel, arch).unwrap();
        let filtering = t.elapsed();
        let t = Instant::now();
        let (body, identity) = Body::new(&filtered).unwrap();
        println!(
            "{channel} {arch}: {} nodes, {} edges, {} KB body ({} KB gzip); filter {filtering:.2?}, serialize+gzip+hash {:.2?}",
            filtered.len(),
            filtered.edge_count(),
            identity.len() / 1024,
            body.gzip.len() / 1024,
            t.elapsed()
        );
    }
}
