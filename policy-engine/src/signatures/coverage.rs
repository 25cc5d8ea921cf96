//! Signature coverage of the served graph: per architecture, how many of its releases
//! have a valid signature served and how many do not (a cluster refuses to update to an
//! unsigned release), and whether this site serves signatures at all. `/signatures`
//! shows it as `coverage`; the `releases_signed{arch}`, `releases_unsigned{arch}` and
//! `signatures_configured` gauges export it.

use std::collections::BTreeMap;

use graph_data::signatures::{ImageDigest, SignatureStore};
use graph_data::Graph;
use serde::Serialize;

use super::refresh::Unsigned;
use super::{SignatureSettings, SignatureSource};

/// The label of releases whose version carries no architecture.
const NO_ARCH: &str = "unknown";

/// Releases of one architecture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ArchCoverage {
    /// With at least one valid signature served.
    pub signed: usize,
    /// Without one.
    pub unsigned: usize,
}

/// The coverage of the graph last counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Whether this site serves signatures: keys, a signatures tree or a ConfigMap
    /// directory are configured, or a source has provided at least one signature. The
    /// graph-data source that is on by default does not count until it holds one, so a
    /// site that takes its signatures elsewhere is not told its releases are unsigned.
    pub configured: bool,
    /// Releases with a valid signature served.
    pub signed: usize,
    /// Releases without one.
    pub unsigned: usize,
    /// The same per architecture.
    pub per_arch: BTreeMap<String, ArchCoverage>,
}

/// Whether signatures are configured (see [`Coverage::configured`]), given the
/// settings and how many signatures the last load found (served or refused).
pub fn configured(settings: &SignatureSettings, loaded: usize) -> bool {
    settings.public_keys.is_some()
        || settings
            .sources
            .iter()
            .any(|s| matches!(s, SignatureSource::Tree(_) | SignatureSource::ConfigMaps(_)))
        || loaded > 0
}

/// Counts the graph's concrete releases by whether their payload digest has a served
/// signature (a payload named by tag cannot be checked, so it counts as unsigned).
/// Returns the counts per architecture and the unsigned releases, sorted by version.
pub fn count(
    graph: &Graph,
    store: &SignatureStore,
) -> (BTreeMap<String, ArchCoverage>, Vec<Unsigned>) {
    let mut per_arch: BTreeMap<String, ArchCoverage> = BTreeMap::new();
    let mut unsigned = Vec::new();
    for release in graph
        .releases()
        .map(|(_, r)| r)
        .filter(|r| !r.is_abstract())
    {
        let digest = release
            .payload
            .as_deref()
            .and_then(|p| p.rsplit_once('@'))
            .and_then(|(_, d)| ImageDigest::parse(d));
        let signed = digest.is_some_and(|d| !store.signatures(&d).is_empty());
        let arch = match release.arch() {
            "" => NO_ARCH,
            arch => arch,
        };
        let entry = per_arch.entry(arch.to_owned()).or_default();
        if signed {
            entry.signed += 1;
        } else {
            entry.unsigned += 1;
            unsigned.push(Unsigned {
                version: release.version.to_string(),
                payload: release.payload.clone().unwrap_or_default(),
            });
        }
    }
    unsigned.sort_by(|a, b| a.version.cmp(&b.version));
    (per_arch, unsigned)
}

impl Coverage {
    /// The coverage from per-architecture counts.
    pub fn new(configured: bool, per_arch: BTreeMap<String, ArchCoverage>) -> Coverage {
        Coverage {
            configured,
            signed: per_arch.values().map(|c| c.signed).sum(),
            unsigned: per_arch.values().map(|c| c.unsigned).sum(),
            per_arch,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn settings(sources: Vec<SignatureSource>, keys: bool) -> SignatureSettings {
        SignatureSettings {
            sources,
            public_keys: keys.then(|| PathBuf::from("/keys")),
            ..SignatureSettings::default()
        }
    }

    #[test]
    fn configured_means_chosen_by_the_admin_or_holding_a_signature() {
        let derived = vec![SignatureSource::GraphData("/gd".into())];
        assert!(!configured(&settings(derived.clone(), false), 0));
        assert!(configured(&settings(derived.clone(), false), 1));
        assert!(configured(&settings(derived, true), 0));
        assert!(configured(
            &settings(vec![SignatureSource::ConfigMaps("/c".into())], false),
            0
        ));
        assert!(configured(
            &settings(vec![SignatureSource::Tree("/s".into())], false),
            0
        ));
        assert!(!configured(&settings(Vec::new(), false), 0));
    }

    #[test]
    fn releases_are_counted_per_architecture_by_their_payload_digest() {
        use graph_data::signatures::{Loaded, Signature, SignatureLimits, StoreBuilder};
        use graph_data::{Metadata, Release};
        use semver::Version;

        let hex = |c: char| c.to_string().repeat(64);
        let mut graph = Graph::new();
        for (version, payload) in [
            ("4.16.0+amd64", format!("q/r@sha256:{}", hex('a'))),
            ("4.16.1+amd64", format!("q/r@sha256:{}", hex('b'))),
            ("4.16.1+arm64", format!("q/r@sha256:{}", hex('c'))),
            // Named by tag: its digest is unknown, so it cannot be signed.
            ("4.16.2+arm64", "q/r:4.16.2".to_owned()),
        ] {
            let release =
                Release::concrete(Version::parse(version).unwrap(), payload, Metadata::new());
            graph.add_release(release).unwrap();
        }
        graph
            .add_release(Release::abstract_release(
                Version::parse("4.17.0+amd64").unwrap(),
            ))
            .unwrap();
        let mut builder = StoreBuilder::new(SignatureLimits::default());
        let signed = [hex('a'), hex('c')];
        builder
            .add(Loaded {
                signatures: signed
                    .iter()
                    .map(|h| {
                        let digest = ImageDigest::parse(&format!("sha256:{h}")).unwrap();
                        (
                            digest,
                            1,
                            Signature::new(h.clone().into_bytes().into(), "t".to_owned()),
                        )
                    })
                    .collect(),
                problems: Vec::new(),
            })
            .unwrap();
        let (store, _) = builder.finish();

        let (per_arch, unsigned) = count(&graph, &store);
        assert_eq!(
            per_arch,
            BTreeMap::from([
                (
                    "amd64".to_owned(),
                    ArchCoverage {
                        signed: 1,
                        unsigned: 1
                    }
                ),
                (
                    "arm64".to_owned(),
                    ArchCoverage {
                        signed: 1,
                        unsigned: 1
                    }
                ),
            ])
        );
        let versions: Vec<_> = unsigned.iter().map(|u| u.version.as_str()).collect();
        assert_eq!(versions, ["4.16.1+amd64", "4.16.2+arm64"]);
        assert_eq!(unsigned[1].payload, "q/r:4.16.2");
    }

    #[test]
    fn totals_are_the_sum_of_the_architectures() {
        let per_arch = BTreeMap::from([
            (
                "amd64".to_owned(),
                ArchCoverage {
                    signed: 2,
                    unsigned: 1,
                },
            ),
            (
                "arm64".to_owned(),
                ArchCoverage {
                    signed: 0,
                    unsigned: 3,
                },
            ),
        ]);
        let coverage = Coverage::new(true, per_arch);
        assert_eq!(
            serde_json::to_value(&coverage).unwrap(),
            serde_json::json!({
                "configured": true,
                "signed": 2,
                "unsigned": 4,
                "per_arch": {
                    "amd64": {"signed": 2, "unsigned": 1},
                    "arm64": {"signed": 0, "unsigned": 3}
                }
            })
        );
    }
}
