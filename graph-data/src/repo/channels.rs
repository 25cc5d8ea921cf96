//! `channels/*.yaml`: which versions belong to which channel.
//!
//! Only `name` and `versions` are consumed; `feeder` and `tombstones` belong to the
//! graph-data tooling and are ignored, as are other fields. Every version must be strict
//! SemVer: unlike the reference, which silently drops a channel with one bad entry, every
//! bad entry is reported.

use semver::Version;

use super::error::LoadError;
use super::yaml::{self, Doc};

/// One channel file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// The channel name from the `name` field (not the file name).
    pub name: String,
    /// The versions listed, in file order; a version with build metadata (`4.2.14+amd64`)
    /// applies to that architecture only.
    pub versions: Vec<Version>,
    /// The file it was read from, relative to the graph-data root.
    pub file: String,
}

/// Parses one channel file; `file` is its path relative to the graph-data root.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Channel, Vec<LoadError>> {
    let doc = Doc::parse(bytes).map_err(|e| vec![LoadError::new(file, super::Problem::Yaml(e))])?;
    let mut errors = Vec::new();

    let name = match doc.get("name") {
        None => {
            errors.push(LoadError::field(
                file,
                "name",
                "missing (a channel needs name and versions)",
            ));
            None
        }
        Some(v) => match yaml::non_empty_str(v) {
            Ok(s) => Some(s.to_owned()),
            Err(e) => {
                errors.push(LoadError::field(file, "name", e));
                None
            }
        },
    };

    let mut versions = Vec::new();
    match doc.get("versions") {
        None => errors.push(LoadError::field(
            file,
            "versions",
            "missing (a channel needs name and versions)",
        )),
        Some(serde_yaml_ng::Value::Sequence(items)) => {
            let mut more = 0usize;
            for (i, item) in items.iter().enumerate() {
                match yaml::semver_value(item) {
                    Ok(v) => versions.push(v),
                    // Listed up to the per-file cap, counted beyond it.
                    Err(_) if errors.len() >= super::load::MAX_PROBLEMS_PER_FILE => more += 1,
                    Err(e) => errors.push(LoadError::field(file, format!("versions[{i}]"), e)),
                }
            }
            if more > 0 {
                errors.push(LoadError::field(
                    file,
                    "versions",
                    format!("and {more} more entries that are not SemVer versions"),
                ));
            }
        }
        Some(other) => errors.push(LoadError::field(
            file,
            "versions",
            format!(
                "expected a list of versions, found {}",
                yaml::describe(other)
            ),
        )),
    }

    match name {
        Some(name) if errors.is_empty() => Ok(Channel {
            name,
            versions,
            file: file.to_owned(),
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_versions_are_read_and_feeder_ignored() {
        let c = parse(
            "channels/fast-4.2.yaml",
            b"feeder:\n  name: candidate-4.2\n  delay: PT24H\nname: fast-4.2\nversions:\n- 4.2.0\n- 4.2.14+amd64\ntombstones: []\n",
        )
        .unwrap();
        assert_eq!(c.name, "fast-4.2");
        assert_eq!(
            c.versions,
            vec![
                Version::new(4, 2, 0),
                Version::parse("4.2.14+amd64").unwrap()
            ]
        );
        assert_eq!(c.file, "channels/fast-4.2.yaml");
    }

    #[test]
    fn every_bad_entry_is_named() {
        let errs = parse(
            "channels/x.yaml",
            b"name: x\nversions:\n- 4.2.0\n- 4.2\n- v4.2.1\n",
        )
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].starts_with(
            "channels/x.yaml: field `versions[1]`: expected a string, found a number (4.2)"
        ));
        assert!(text[1].starts_with(
            "channels/x.yaml: field `versions[2]`: \"v4.2.1\" is not a SemVer version"
        ));
    }

    #[test]
    fn missing_fields_and_non_mappings_are_errors() {
        let errs = parse("channels/x.yaml", b"versions: []\n").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().contains("field `name`: missing"));
        let errs = parse("channels/x.yaml", b"name: x\n").unwrap_err();
        assert!(errs[0].to_string().contains("field `versions`: missing"));
        assert!(parse("channels/x.yaml", b"- a\n").is_err());
        assert!(parse("channels/x.yaml", b"").is_err());
        assert!(parse("channels/x.yaml", b"name: x\nversions: 4.2.0\n").is_err());
    }

    #[test]
    fn an_empty_list_is_an_empty_channel_but_a_bare_key_is_not() {
        assert!(parse("channels/x.yaml", b"name: x\nversions: []\n")
            .unwrap()
            .versions
            .is_empty());
        // The reference fails to deserialize `versions:` with nothing under it.
        assert!(parse("channels/x.yaml", b"name: x\nversions:\n").is_err());
    }
}
