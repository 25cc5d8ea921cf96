//! Field access on parsed YAML documents, with messages that name the field and say
//! what was found instead of what was expected.
//!
//! The graph-data files are parsed to a generic YAML value first (not straight into
//! structs) so that every problem of a file can be reported, each with its field.

use semver::Version;
use serde_yaml_ng::{Mapping, Value};

/// A top-level YAML mapping with string keys, in document order.
pub(crate) struct Doc {
    pub(crate) fields: Vec<(String, Value)>,
}

impl Doc {
    /// Parses `bytes` as a YAML document whose top level is a mapping with string keys.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        let value: Value = serde_yaml_ng::from_slice(bytes).map_err(|e| e.to_string())?;
        match value {
            Value::Mapping(m) => Self::from_mapping(m),
            Value::Null => Err("the file is empty (expected a mapping of fields)".to_owned()),
            other => Err(format!(
                "expected a mapping of fields, found {}",
                describe(&other)
            )),
        }
    }

    fn from_mapping(m: Mapping) -> Result<Self, String> {
        let mut fields = Vec::with_capacity(m.len());
        for (k, v) in m {
            match k {
                Value::String(k) => fields.push((k, v)),
                other => {
                    return Err(format!(
                        "field names must be strings, found {}",
                        describe(&other)
                    ))
                }
            }
        }
        Ok(Self { fields })
    }

    /// The value of field `name`, if present.
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Whether field `name` is present.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// A short description of a YAML value for error messages (`a number (4.1)`).
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".to_owned(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n}); quote it to make it a string"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(t) => format!("a tagged value ({})", t.tag),
    }
}

/// `v` as a string, or a message saying what it is instead.
pub(crate) fn as_str(v: &Value) -> Result<&str, String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(format!("expected a string, found {}", describe(other))),
    }
}

/// `v` as a non-empty (after trimming) string.
pub(crate) fn non_empty_str(v: &Value) -> Result<&str, String> {
    let s = as_str(v)?;
    if s.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(s)
    }
}

/// `s` as a strict SemVer version (no `v` prefix, no surrounding space).
pub(crate) fn semver(s: &str) -> Result<Version, String> {
    Version::parse(s).map_err(|e| format!("{s:?} is not a SemVer version: {e}"))
}

/// `v` as a strict SemVer version.
pub(crate) fn semver_value(v: &Value) -> Result<Version, String> {
    semver(as_str(v)?)
}

/// Compiled regexes by pattern: the ~1700 blocked-edges files of the real data use about
/// a hundred distinct `from` patterns, and compiling dominates loading time.
pub(crate) type RegexCache = std::collections::HashMap<String, regex::Regex>;

/// `v` as a Rust `regex`, compiled once per distinct pattern.
pub(crate) fn regex_value(v: &Value, cache: &mut RegexCache) -> Result<regex::Regex, String> {
    let s = as_str(v)?;
    if let Some(re) = cache.get(s) {
        return Ok(re.clone());
    }
    let re = regex::Regex::new(s)
        .map_err(|e| format!("{s:?} is not a valid regular expression: {e}"))?;
    cache.insert(s.to_owned(), re.clone());
    Ok(re)
}
