//! `raw/metadata.json`: extra metadata merged into releases by version.
//!
//! Shape: `{ "<version>": { "<key>": "<value>", ... }, ... }`. The reference skips
//! non-SemVer keys with a warning; here they are errors naming the key, as are values
//! that are not strings.

use std::collections::BTreeMap;

use semver::Version;
use serde_json::Value;

use super::error::{LoadError, Problem};

/// The path of the file relative to the graph-data root.
pub const FILE: &str = "raw/metadata.json";

/// Metadata to merge into every release of one version (all architectures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The version; build metadata, if written, is ignored when matching releases.
    pub version: Version,
    /// Keys and values to merge (an existing key gets `,<value>` appended).
    pub metadata: BTreeMap<String, String>,
}

/// Parses the content of `raw/metadata.json`; entries keep file order.
pub fn parse(bytes: &[u8]) -> Result<Vec<RawEntry>, Vec<LoadError>> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| vec![LoadError::new(FILE, Problem::Json(e.to_string()))])?;
    let Value::Object(top) = value else {
        return Err(vec![LoadError::new(
            FILE,
            Problem::Json("expected an object of versions".to_owned()),
        )]);
    };
    let mut errors = Vec::new();
    let mut more = 0usize;
    let mut entries = Vec::with_capacity(top.len());
    for (key, inner) in top {
        let version = Version::parse(&key)
            .map_err(|e| {
                if errors.len() >= super::load::MAX_PROBLEMS_PER_FILE {
                    more += 1;
                    return;
                }
                errors.push(LoadError::field(
                    FILE,
                    format!("{key:?}"),
                    format!("not a SemVer version: {e}"),
                ))
            })
            .ok();
        let Value::Object(inner) = inner else {
            if errors.len() >= super::load::MAX_PROBLEMS_PER_FILE {
                more += 1;
                continue;
            }
            errors.push(LoadError::field(
                FILE,
                format!("{key:?}"),
                "expected an object of metadata keys and string values",
            ));
            continue;
        };
        let mut metadata = BTreeMap::new();
        for (k, v) in inner {
            match v {
                Value::String(s) => {
                    metadata.insert(k, s);
                }
                // Listed up to the per-file cap, counted beyond it.
                _ if errors.len() >= super::load::MAX_PROBLEMS_PER_FILE => more += 1,
                other => errors.push(LoadError::field(
                    FILE,
                    format!("{key:?}.{k}"),
                    format!("expected a string value, found {other}"),
                )),
            }
        }
        if let Some(version) = version {
            entries.push(RawEntry { version, metadata });
        }
    }
    if more > 0 {
        errors.push(LoadError::new(
            FILE,
            Problem::Json(format!("and {more} more problems in this file")),
        ));
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_file_order() {
        let e = parse(br#"{"4.1.0-rc.6": {"k": "a"}, "4.1.0": {"k": "b", "j": "c"}}"#).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].version, Version::parse("4.1.0-rc.6").unwrap());
        assert_eq!(e[1].metadata.get("j").map(String::as_str), Some("c"));
        assert!(parse(b"{\n}\n").unwrap().is_empty());
    }

    #[test]
    fn non_semver_keys_and_non_string_values_are_named() {
        let e: Vec<String> = parse(br#"{"4.1": {"k": "a"}, "4.2.0": {"k": 1}, "4.3.0": []}"#)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("raw/metadata.json: field `\"4.1\"`: not a SemVer version"));
        assert!(e[1].starts_with(
            "raw/metadata.json: field `\"4.2.0\".k`: expected a string value, found 1"
        ));
        assert!(e[2].contains("`\"4.3.0\"`: expected an object"));
    }

    #[test]
    fn not_json_or_not_an_object() {
        assert!(parse(b"{").unwrap_err()[0]
            .to_string()
            .contains("invalid JSON"));
        assert!(parse(b"[]").unwrap_err()[0]
            .to_string()
            .contains("expected an object"));
    }
}
