//! The `version` file: the schema version of the graph-data tree.
//!
//! Major 1 is the only schema we know. Minors up to 2 are fully understood; a later minor
//! is accepted (as the reference does) with a warning that its features may be ignored.

use semver::Version;

use super::error::Problem;

/// The newest minor of schema 1 whose features this implementation knows.
pub const KNOWN_MINOR: u64 = 2;

/// A parsed `version` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaVersion {
    /// The schema version.
    pub version: Version,
    /// Set when the minor is newer than [`KNOWN_MINOR`].
    pub warning: Option<String>,
}

/// Parses the content of the `version` file. Surrounding whitespace (the trailing newline
/// of the real file) is accepted.
pub fn parse(bytes: &[u8]) -> Result<SchemaVersion, Problem> {
    let text = std::str::from_utf8(bytes).map_err(|_| Problem::NotUtf8)?;
    let text = text.trim();
    let version = Version::parse(text)
        .map_err(|e| Problem::Schema(format!("{text:?} is not a SemVer version: {e}")))?;
    if version.major != 1 {
        return Err(Problem::Schema(format!(
            "schema version {version} is not supported (only major version 1 is known)"
        )));
    }
    let warning = (version.minor > KNOWN_MINOR).then(|| {
        format!(
            "schema version {version} is newer than 1.{KNOWN_MINOR}; features it adds are not \
             understood and will be ignored"
        )
    });
    Ok(SchemaVersion { version, warning })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_file_with_newline_is_accepted() {
        let v = parse(b"1.1.0\n").unwrap();
        assert_eq!(v.version, Version::new(1, 1, 0));
        assert_eq!(v.warning, None);
        assert_eq!(parse(b"1.2.0").unwrap().warning, None);
    }

    #[test]
    fn newer_minor_is_accepted_with_a_warning() {
        let v = parse(b"1.3.0\n").unwrap();
        assert_eq!(v.version, Version::new(1, 3, 0));
        assert!(v.warning.unwrap().contains("newer than 1.2"));
    }

    #[test]
    fn other_majors_and_garbage_are_refused() {
        for bad in [&b"2.0.0\n"[..], b"0.9.0", b"1.1", b"v1.1.0", b"", b"\xff"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(b"2.0.0")
            .unwrap_err()
            .to_string()
            .contains("only major version 1"));
    }
}
