//! A release: one node of the update graph.

use std::collections::BTreeMap;

use semver::Version;

/// Metadata of a release: string keys to string values, kept sorted so that output is
/// deterministic.
pub type Metadata = BTreeMap<String, String>;

/// One node of the update graph.
///
/// A *concrete* release is a release image that was scraped: it has a payload pull spec
/// and metadata. An *abstract* release only has a version: it is named by another
/// release's `previous`/`next` list but was not found in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The SemVer version; in the graph-builder's graph the build metadata is the
    /// architecture (`4.14.3+amd64`).
    pub version: Version,
    /// The payload pull spec (`host[:port]/repository@sha256:…`); `None` for an abstract
    /// release.
    pub payload: Option<String>,
    /// String metadata; always empty for an abstract release.
    pub metadata: Metadata,
}

impl Release {
    /// A release image with its pull spec and metadata.
    pub fn concrete(version: Version, payload: impl Into<String>, metadata: Metadata) -> Self {
        Self {
            version,
            payload: Some(payload.into()),
            metadata,
        }
    }

    /// A release known only by its version.
    pub fn abstract_release(version: Version) -> Self {
        Self {
            version,
            payload: None,
            metadata: Metadata::new(),
        }
    }

    /// Whether this release is known only by its version.
    pub fn is_abstract(&self) -> bool {
        self.payload.is_none()
    }

    /// The architecture carried in the build metadata (`""` when there is none).
    pub fn arch(&self) -> &str {
        self.version.build.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_is_the_build_metadata() {
        let r = Release::abstract_release(Version::parse("4.14.3+amd64").unwrap());
        assert_eq!(r.arch(), "amd64");
        assert!(r.is_abstract());
        let r = Release::concrete(
            Version::parse("4.14.3").unwrap(),
            "q/r@sha256:0",
            Metadata::new(),
        );
        assert_eq!(r.arch(), "");
        assert!(!r.is_abstract());
    }
}
