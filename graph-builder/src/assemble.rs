//! Assembles the update graph from scraped releases.
//!
//! Every release becomes a node `version+arch`; each `previous` entry becomes an edge into
//! the release and each `next` entry an edge out of it, with the release's arch appended
//! to the named version. Versions named but not scraped become abstract nodes. The graph
//! is a DAG at every step: an edge that would close a cycle fails the assembly, as does a
//! version scraped twice under different digests. The scrape leaves out duplicate
//! versions and `crate::cycles` the releases closing a cycle, so that neither happens
//! because of one bad image.

use graph_data::{Graph, GraphError, Release, ReleaseId};
use semver::{BuildMetadata, Version};

use crate::scrape::ScrapedRelease;

/// Why the scraped releases do not make an update graph.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// Two different payloads claim the same version and architecture.
    #[error("release {version} is scraped twice with different payloads: {first} and {second}")]
    DuplicateVersion {
        /// The version, arch included.
        version: Version,
        /// Payload of the release kept first.
        first: String,
        /// Payload of the other one.
        second: String,
    },
    /// A `previous`/`next` entry of a release would close a cycle.
    #[error("release {release} ({payload}) cannot be added")]
    Cycle {
        /// The release whose metadata names the edge.
        release: Version,
        /// Its payload, to find the image.
        payload: String,
        /// The refused edge (boxed: it holds two versions and errors should stay small).
        source: Box<GraphError>,
    },
}

/// Builds the graph: all releases first (in the order given; the scraper sorts them),
/// then their edges.
pub fn assemble(releases: &[ScrapedRelease]) -> Result<Graph, AssembleError> {
    let mut graph = Graph::new();
    let mut ids = Vec::with_capacity(releases.len());
    for scraped in releases {
        let release = Release::concrete(
            scraped.version.clone(),
            scraped.payload.clone(),
            scraped.metadata.clone(),
        );
        let id = match graph.find(&scraped.version) {
            None => graph
                .add_release(release)
                .expect("version was checked to be new"),
            Some(id) => {
                let existing = graph.release(id);
                if existing.payload != release.payload {
                    return Err(AssembleError::DuplicateVersion {
                        version: scraped.version.clone(),
                        first: existing.payload.clone().unwrap_or_default(),
                        second: scraped.payload.clone(),
                    });
                }
                id
            }
        };
        ids.push(id);
    }
    // An upper bound: an edge named from both ends is added once.
    graph.reserve_edges(
        releases
            .iter()
            .map(|r| r.previous.len() + r.next.len())
            .sum(),
    );
    for (scraped, &id) in releases.iter().zip(&ids) {
        let cycle = |source| AssembleError::Cycle {
            release: scraped.version.clone(),
            payload: scraped.payload.clone(),
            source: Box::new(source),
        };
        let arch = &scraped.version.build;
        for previous in scraped.previous.iter() {
            let from = node_for(&mut graph, previous, arch);
            graph.add_edge(from, id).map_err(cycle)?;
        }
        for next in scraped.next.iter() {
            let to = node_for(&mut graph, next, arch);
            graph.add_edge(id, to).map_err(cycle)?;
        }
    }
    Ok(graph)
}

/// `version` on `arch`: the arch is appended unless the version names its own build.
pub(crate) fn on_arch(version: &Version, arch: &BuildMetadata) -> Version {
    let mut version = version.clone();
    if version.build.is_empty() {
        version.build = arch.clone();
    }
    version
}

/// The node of `version` on `arch` (see [`on_arch`]), added as an abstract release if it
/// was not scraped.
fn node_for(graph: &mut Graph, version: &Version, arch: &BuildMetadata) -> ReleaseId {
    let version = on_arch(version, arch);
    match graph.find(&version) {
        Some(id) => id,
        None => graph
            .add_release(Release::abstract_release(version))
            .expect("version was checked to be new"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;

    pub(crate) fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    /// A release of `version` (its build metadata as the arch) with these edges.
    pub(crate) fn release(version: &str, previous: &[&str], next: &[&str]) -> ScrapedRelease {
        let version = v(version);
        let digest = format!(
            "sha256:{}",
            version.to_string().replace(['.', '+', '-'], "")
        );
        ScrapedRelease {
            arch: version.build.to_string(),
            payload: format!("127.0.0.1:5000/ocp/release@{digest}"),
            manifestref: digest,
            tags: vec![version.to_string()],
            metadata: BTreeMap::new(),
            previous: previous.iter().map(|p| v(p)).collect(),
            next: next.iter().map(|n| v(n)).collect(),
            version,
        }
    }

    fn edges(g: &Graph) -> Vec<(String, String)> {
        let mut e: Vec<_> = g
            .edges()
            .map(|(f, t)| {
                (
                    g.release(f).version.to_string(),
                    g.release(t).version.to_string(),
                )
            })
            .collect();
        e.sort();
        e
    }

    #[test]
    fn previous_and_next_become_arch_annotated_edges() {
        let g = assemble(&[
            release("4.1.0+amd64", &[], &[]),
            release("4.1.1+amd64", &["4.1.0"], &[]),
            release("4.1.1+arm64", &["4.1.0"], &["4.1.2"]),
        ])
        .unwrap();
        assert_eq!(
            edges(&g),
            [
                ("4.1.0+amd64", "4.1.1+amd64"),
                ("4.1.0+arm64", "4.1.1+arm64"),
                ("4.1.1+arm64", "4.1.2+arm64"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        // Versions named but not scraped are abstract nodes.
        assert!(g.release(g.find(&v("4.1.0+arm64")).unwrap()).is_abstract());
        assert!(g.release(g.find(&v("4.1.2+arm64")).unwrap()).is_abstract());
        assert!(!g.release(g.find(&v("4.1.0+amd64")).unwrap()).is_abstract());
        assert_eq!(g.len(), 5);
    }

    #[test]
    fn a_release_scraped_after_being_named_is_concrete() {
        let g = assemble(&[
            release("4.1.1+amd64", &["4.1.0"], &[]),
            release("4.1.0+amd64", &[], &[]),
        ])
        .unwrap();
        assert_eq!(g.len(), 2);
        assert!(g.releases().all(|(_, r)| !r.is_abstract()));
    }

    #[test]
    fn same_payload_twice_is_one_node_different_payloads_fail() {
        let a = release("4.1.0+amd64", &[], &[]);
        assert_eq!(assemble(&[a.clone(), a.clone()]).unwrap().len(), 1);
        let mut b = a.clone();
        b.payload = "127.0.0.1:5000/ocp/release@sha256:other".to_owned();
        let err = assemble(&[a, b]).unwrap_err().to_string();
        assert!(err.contains("4.1.0+amd64"), "{err}");
        assert!(err.contains("sha256:other"), "{err}");
    }

    #[test]
    fn cyclic_metadata_fails_naming_the_release() {
        let err = assemble(&[
            release("0.0.1+amd64", &["0.0.2"], &[]),
            release("0.0.2+amd64", &["0.0.1"], &[]),
        ])
        .unwrap_err();
        assert!(matches!(err, AssembleError::Cycle { .. }), "{err}");
        let text = graph_data::keys::chain(&err);
        assert!(text.contains("would create a cycle"), "{text}");
        assert!(text.starts_with("release 0.0."), "{text}");
    }
}
