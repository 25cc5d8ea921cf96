//! `blocked-edges/*.yaml`: plain blocks and conditional-update risks.
//!
//! A file is a *plain block* (schema 1.0.0: exactly `to` and `from`) or a *risk*
//! (schema 1.1.0: `to`, `from`, `url`, `name`, `message`, `matchingRules`, extra fields
//! such as `fixedIn` allowed). The reference silently skips a file that is neither, which
//! leaves the edge unblocked; here such a file is an error naming the field.
//! A file carrying any risk field is judged as a risk, so a risk with a missing field is
//! reported as such rather than as a plain block with unknown fields.

use regex::Regex;
use semver::Version;
use serde_yaml_ng::Value;

use super::error::{LoadError, Problem};
use super::yaml::{self, Doc, RegexCache};
use crate::conditional::{MatchingRule, Risk};

/// The fields only a risk has; any of them makes the file a risk.
const RISK_ONLY_FIELDS: [&str; 4] = ["url", "name", "message", "matchingRules"];
const RISK_HINT: &str = "a conditional block needs to, from, url, name, message, matchingRules";
const PLAIN_HINT: &str = "a plain block has exactly to and from";

/// A plain block: every update from a version matching `from` to `to` is removed.
#[derive(Debug, Clone)]
pub struct PlainBlock {
    /// The target version; build metadata (`+s390x`) limits the block to that
    /// architecture.
    pub to: Version,
    /// Source versions, matched unanchored against arch-suffixed versions.
    pub from: Regex,
    /// The file it was read from, relative to the graph-data root.
    pub file: String,
}

/// A conditional block: updates from `from` to `to` are offered only with `risk`.
#[derive(Debug, Clone)]
pub struct ConditionalBlock {
    /// The target version.
    pub to: Version,
    /// Source versions, matched unanchored against arch-suffixed versions.
    pub from: Regex,
    /// The risk, already checked for what the CVO requires.
    pub risk: Risk,
    /// The file it was read from, relative to the graph-data root.
    pub file: String,
}

/// One `blocked-edges/` file.
#[derive(Debug, Clone)]
pub enum BlockedEdge {
    /// Schema 1.0.0 block.
    Plain(PlainBlock),
    /// Schema 1.1.0 risk.
    Conditional(ConditionalBlock),
}

/// Parses one blocked-edges file; `file` is its path relative to the graph-data root.
pub fn parse(file: &str, bytes: &[u8]) -> Result<BlockedEdge, Vec<LoadError>> {
    parse_cached(file, bytes, &mut RegexCache::new())
}

/// [`parse`] sharing compiled `from` regexes across files.
pub(crate) fn parse_cached(
    file: &str,
    bytes: &[u8],
    cache: &mut RegexCache,
) -> Result<BlockedEdge, Vec<LoadError>> {
    let doc = Doc::parse(bytes).map_err(|e| vec![LoadError::new(file, Problem::Yaml(e))])?;
    if RISK_ONLY_FIELDS.iter().any(|f| doc.has(f)) {
        parse_risk(file, &doc, cache)
    } else {
        parse_plain(file, &doc, cache)
    }
}

fn parse_plain(
    file: &str,
    doc: &Doc,
    cache: &mut RegexCache,
) -> Result<BlockedEdge, Vec<LoadError>> {
    let mut errors = Vec::new();
    let unknown: Vec<&str> = doc
        .fields
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| *k != "to" && *k != "from")
        .collect();
    // When a required field is missing, unknown fields are most likely its misspelling:
    // say so in the one message instead of reporting them separately.
    let missing_hint = if unknown.is_empty() {
        format!("missing ({PLAIN_HINT}; {RISK_HINT})")
    } else {
        let names: Vec<String> = unknown.iter().map(|k| format!("`{k}`")).collect();
        format!(
            "missing, found unknown field {} instead ({PLAIN_HINT}; {RISK_HINT})",
            names.join(", ")
        )
    };
    let to = required(file, doc, "to", &missing_hint, &mut errors).and_then(|v| {
        yaml::semver_value(v)
            .map_err(|e| errors.push(LoadError::field(file, "to", e)))
            .ok()
    });
    let from = required(file, doc, "from", &missing_hint, &mut errors).and_then(|v| {
        yaml::regex_value(v, cache)
            .map_err(|e| errors.push(LoadError::field(file, "from", e)))
            .ok()
    });
    if doc.has("to") && doc.has("from") {
        for k in unknown {
            errors.push(LoadError::field(
                file,
                k,
                format!("unknown field ({PLAIN_HINT}; {RISK_HINT})"),
            ));
        }
    }
    match (to, from) {
        (Some(to), Some(from)) if errors.is_empty() => Ok(BlockedEdge::Plain(PlainBlock {
            to,
            from,
            file: file.to_owned(),
        })),
        _ => Err(errors),
    }
}

fn parse_risk(
    file: &str,
    doc: &Doc,
    cache: &mut RegexCache,
) -> Result<BlockedEdge, Vec<LoadError>> {
    let mut errors = Vec::new();
    let missing = format!("missing ({RISK_HINT})");
    let to = required(file, doc, "to", &missing, &mut errors).and_then(|v| {
        yaml::semver_value(v)
            .map_err(|e| errors.push(LoadError::field(file, "to", e)))
            .ok()
    });
    let from = required(file, doc, "from", &missing, &mut errors).and_then(|v| {
        yaml::regex_value(v, cache)
            .map_err(|e| errors.push(LoadError::field(file, "from", e)))
            .ok()
    });
    let text = |name: &str, errors: &mut Vec<LoadError>| -> Option<String> {
        required(file, doc, name, &missing, errors).and_then(|v| match yaml::non_empty_str(v) {
            Ok(s) => Some(s.to_owned()),
            Err(e) => {
                errors.push(LoadError::field(file, name, e));
                None
            }
        })
    };
    let url = text("url", &mut errors);
    let name = text("name", &mut errors);
    let message = text("message", &mut errors);
    let rules = required(file, doc, "matchingRules", &missing, &mut errors)
        .and_then(|v| matching_rules(file, v, &mut errors));

    match (to, from, url, name, message, rules) {
        (Some(to), Some(from), Some(url), Some(name), Some(message), Some(matching_rules))
            if errors.is_empty() =>
        {
            Ok(BlockedEdge::Conditional(ConditionalBlock {
                to,
                from,
                risk: Risk {
                    url,
                    name,
                    message,
                    matching_rules,
                },
                file: file.to_owned(),
            }))
        }
        _ => Err(errors),
    }
}

fn required<'d>(
    file: &str,
    doc: &'d Doc,
    name: &str,
    missing: &str,
    errors: &mut Vec<LoadError>,
) -> Option<&'d Value> {
    let v = doc.get(name);
    if v.is_none() {
        errors.push(LoadError::field(file, name, missing));
    }
    v
}

/// Parses `matchingRules` with the wire format's own rule type, so a rule is valid here
/// exactly when the CVO would keep it.
fn matching_rules(file: &str, v: &Value, errors: &mut Vec<LoadError>) -> Option<Vec<MatchingRule>> {
    let Value::Sequence(items) = v else {
        errors.push(LoadError::field(
            file,
            "matchingRules",
            format!("expected a list of rules, found {}", yaml::describe(v)),
        ));
        return None;
    };
    if items.is_empty() {
        errors.push(LoadError::field(
            file,
            "matchingRules",
            "needs at least one rule",
        ));
        return None;
    }
    let before = errors.len();
    let rules: Vec<MatchingRule> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            serde_yaml_ng::from_value::<MatchingRule>(item.clone())
                .map_err(|e| {
                    errors.push(LoadError::field(
                        file,
                        format!("matchingRules[{i}]"),
                        e.to_string(),
                    ))
                })
                .ok()
        })
        .collect();
    (errors.len() == before).then_some(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(bytes: &[u8]) -> Vec<String> {
        parse("blocked-edges/f.yaml", bytes)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn plain_block_is_exactly_to_and_from() {
        let BlockedEdge::Plain(b) = parse(
            "blocked-edges/4.2.11-s390x.yaml",
            b"to: 4.2.11-s390x\nfrom: 4\\.2\\..*\n",
        )
        .unwrap() else {
            panic!("not plain")
        };
        assert_eq!(b.to, Version::parse("4.2.11-s390x").unwrap());
        assert_eq!(b.from.as_str(), "4\\.2\\..*");
        assert_eq!(b.file, "blocked-edges/4.2.11-s390x.yaml");
    }

    #[test]
    fn risk_with_extra_fields_is_conditional() {
        let yaml = b"to: 4.11.23\nfrom: .*\nurl: https://example.com/e\nname: DuplicateRelease\nfixedIn: 4.11.24\nautoExtend: {}\nmessage: |-\n  m\nmatchingRules:\n  - type: Always\n  - type: PromQL\n    promql:\n      promql: up == 1\n";
        let BlockedEdge::Conditional(c) = parse("blocked-edges/r.yaml", yaml).unwrap() else {
            panic!("not conditional")
        };
        assert_eq!(c.risk.name, "DuplicateRelease");
        assert_eq!(
            c.risk.matching_rules,
            vec![
                MatchingRule::Always,
                MatchingRule::PromQL {
                    promql: "up == 1".to_owned()
                }
            ]
        );
    }

    #[test]
    fn half_a_risk_names_the_missing_field() {
        let e = errors(b"to: 4.1.10\nfrom: .*\nurl: https://example.com\nmessage: m\nmatchingRules:\n- type: Always\n");
        assert_eq!(
            e,
            vec!["blocked-edges/f.yaml: field `name`: missing (a conditional block needs to, from, url, name, message, matchingRules)"]
        );
    }

    #[test]
    fn risk_fields_are_checked() {
        let e = errors(b"to: 4.1\nfrom: '('\nurl: ''\nname: n\nmessage: m\nmatchingRules: []\n");
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].contains("field `to`: expected a string, found a number"));
        assert!(e[1].contains("field `from`: \"(\" is not a valid regular expression"));
        assert!(e[2].contains("field `url`: must not be empty"));
        assert!(e[3].contains("field `matchingRules`: needs at least one rule"));
        let e = errors(b"to: 4.1.0\nfrom: .*\nurl: u\nname: n\nmessage: m\nmatchingRules:\n- type: PromQL\n- type: Always\n  promql:\n    promql: x\n- type: Sometimes\n");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains(
            "field `matchingRules[0]`: a `PromQL` rule needs a non-empty `promql.promql`"
        ));
        assert!(e[1].contains("field `matchingRules[1]`: an `Always` rule must not carry `promql`"));
        assert!(e[2].contains("field `matchingRules[2]`: unknown matching rule type"));
    }

    #[test]
    fn misspelled_plain_field_is_one_error() {
        assert_eq!(
            errors(b"_to: 4.1.10\nfrom: .*\n"),
            vec!["blocked-edges/f.yaml: field `to`: missing, found unknown field `_to` instead (a plain block has exactly to and from; a conditional block needs to, from, url, name, message, matchingRules)"]
        );
    }

    #[test]
    fn unknown_field_on_a_complete_plain_block_is_an_error() {
        let e = errors(b"to: 4.1.10\nfrom: .*\nfixedIn: 4.1.11\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("blocked-edges/f.yaml: field `fixedIn`: unknown field"));
    }

    #[test]
    fn not_yaml_or_not_a_mapping() {
        assert!(errors(b"to: [\n")[0].contains("invalid YAML"));
        assert!(errors(b"")[0].contains("the file is empty"));
        assert!(errors(b"- to\n")[0].contains("expected a mapping"));
    }
}
