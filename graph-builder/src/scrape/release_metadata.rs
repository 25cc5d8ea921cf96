//! The `release-manifests/release-metadata` file of a release image:
//! `kind` must be exactly `cincinnati-metadata-v0`, `version` strict SemVer, `previous` and
//! `next` lists of SemVer, `metadata` a map of strings to strings; unknown top-level fields
//! are ignored.

use std::collections::BTreeMap;
use std::sync::Arc;

use semver::Version;
use serde::Deserialize;

/// The only `kind` we accept.
pub const METADATA_KIND: &str = "cincinnati-metadata-v0";
/// Where the file lives inside the image.
pub const METADATA_PATH: &str = "release-manifests/release-metadata";

/// A parsed release-metadata file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseMetadata {
    /// The release version as written (build metadata included, if any).
    pub version: Version,
    /// Versions that update to this one. Shared: a release's architectures usually list
    /// the same versions, and the scrape's cache and outcome hold the same list.
    pub previous: Arc<[Version]>,
    /// Versions this one updates to.
    pub next: Arc<[Version]>,
    /// Free-form string metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Why a release-metadata file is unusable; names the offending field.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Not JSON of the expected shape (this includes non-string `metadata` values).
    #[error("release-metadata is not valid JSON of the expected shape")]
    Json(#[from] serde_json::Error),
    /// `kind` is not `cincinnati-metadata-v0`.
    #[error("release-metadata `kind` is {0:?}, expected {METADATA_KIND:?}")]
    Kind(String),
    /// A version string is not SemVer.
    #[error("release-metadata `{field}` value {value:?} is not SemVer")]
    Version {
        /// `version`, `previous[i]` or `next[i]`.
        field: String,
        /// The string found.
        value: String,
        /// The parser's complaint.
        #[source]
        source: semver::Error,
    },
}

#[derive(Deserialize)]
struct Raw {
    kind: String,
    version: String,
    #[serde(default)]
    previous: Option<Vec<String>>,
    #[serde(default)]
    next: Option<Vec<String>>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

fn version(field: String, value: &str) -> Result<Version, MetadataError> {
    Version::parse(value).map_err(|source| MetadataError::Version {
        field,
        value: value.to_string(),
        source,
    })
}

/// Parsed into a list of exactly the right length: at full scale the `previous` lists
/// hold hundreds of thousands of versions, and a list grown by doubling would carry up to
/// twice that.
fn versions(name: &str, values: Option<Vec<String>>) -> Result<Arc<[Version]>, MetadataError> {
    let values = values.unwrap_or_default();
    let mut parsed = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        parsed.push(version(format!("{name}[{i}]"), v)?);
    }
    Ok(parsed.into())
}

/// Parses a release-metadata file.
pub fn parse_release_metadata(bytes: &[u8]) -> Result<ReleaseMetadata, MetadataError> {
    let raw: Raw = serde_json::from_slice(bytes)?;
    if raw.kind != METADATA_KIND {
        return Err(MetadataError::Kind(raw.kind));
    }
    Ok(ReleaseMetadata {
        version: version("version".to_string(), &raw.version)?,
        previous: versions("previous", raw.previous)?,
        next: versions("next", raw.next)?,
        metadata: raw.metadata.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file_and_ignores_unknown_fields() {
        let m = parse_release_metadata(
            br#"{"kind":"cincinnati-metadata-v0","version":"4.16.15",
                 "previous":["4.15.18","4.16.9"],"next":[],"extra":{"x":1},
                 "metadata":{"url":"https://example.com/errata"}}"#,
        )
        .unwrap();
        assert_eq!(m.version, Version::new(4, 16, 15));
        assert_eq!(
            *m.previous,
            [Version::new(4, 15, 18), Version::new(4, 16, 9)]
        );
        assert!(m.next.is_empty());
        assert_eq!(m.metadata["url"], "https://example.com/errata");
    }

    #[test]
    fn optional_fields_may_be_absent_or_null() {
        let m = parse_release_metadata(
            br#"{"kind":"cincinnati-metadata-v0","version":"1.0.0-rc.1","previous":null}"#,
        )
        .unwrap();
        assert!(m.previous.is_empty() && m.next.is_empty() && m.metadata.is_empty());
    }

    #[test]
    fn rejections_name_the_field() {
        let err = |json: &str| {
            // As the invalid-release list shows it: the message, then its cause.
            graph_data::keys::chain(&parse_release_metadata(json.as_bytes()).unwrap_err())
        };
        assert!(err(r#"{"kind":"cincinnati-metadata-v1","version":"1.0.0"}"#).contains("kind"));
        assert!(
            err(r#"{"kind":"cincinnati-metadata-v0","version":"v1.0.0"}"#).contains("`version`")
        );
        assert!(
            err(r#"{"kind":"cincinnati-metadata-v0","version":"1.0.0","next":["1.0"]}"#)
                .contains("`next[0]`")
        );
        assert!(
            err(r#"{"kind":"cincinnati-metadata-v0","version":"1.0.0","metadata":{"a":1}}"#)
                .contains("JSON")
        );
        assert!(err(r#"{"version":"1.0.0"}"#).contains("kind"));
    }
}
