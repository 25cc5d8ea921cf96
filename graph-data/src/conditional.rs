//! Conditional updates: edges that are recommended only when the cluster is not exposed
//! to a named risk, and the risks with their matching rules.
//!
//! The serde shapes here are the wire format and are shared with the
//! graph-data loader, so a risk is validated the same way wherever it comes from.

use semver::Version;
use serde::{Deserialize, Serialize};

/// A group of conditional edges that share one ordered list of risks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionalEdge {
    /// The edges of the group.
    pub edges: Vec<ConditionalUpdateEdge>,
    /// The risks that apply to every edge of the group, in graph-data order.
    pub risks: Vec<Risk>,
}

/// One conditional edge, by version (not by node index).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConditionalUpdateEdge {
    /// Source version.
    pub from: Version,
    /// Target version.
    pub to: Version,
}

/// A known issue that makes an update not recommended for matching clusters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Risk {
    /// Where the risk is explained.
    pub url: String,
    /// Short CamelCase name, shown as the `Recommended=False` reason.
    pub name: String,
    /// Human-readable explanation.
    pub message: String,
    /// How a cluster decides whether it is exposed; the first rule that evaluates wins.
    #[serde(rename = "matchingRules")]
    pub matching_rules: Vec<MatchingRule>,
}

impl Risk {
    /// The fields the CVO requires: non-empty `url`, `name`, `message` and at
    /// least one matching rule. Returns the first problem, naming the field.
    pub fn problem(&self) -> Option<String> {
        for (field, value) in [
            ("url", &self.url),
            ("name", &self.name),
            ("message", &self.message),
        ] {
            if value.trim().is_empty() {
                return Some(format!("field `{field}`: must not be empty"));
            }
        }
        if self.matching_rules.is_empty() {
            return Some("field `matchingRules`: needs at least one rule".to_owned());
        }
        None
    }
}

/// How a cluster evaluates whether a risk applies to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawRule", into = "RawRule")]
pub enum MatchingRule {
    /// The risk applies to every cluster.
    Always,
    /// The risk applies when the PromQL query returns 1.
    PromQL {
        /// The query, evaluated by the cluster against its own monitoring stack.
        promql: String,
    },
}

/// The wire shape of a rule: `{"type":"Always"}` or
/// `{"type":"PromQL","promql":{"promql":"…"}}`. Unknown fields are ignored, as the
/// reference does; unknown types and rules the CVO would prune are refused.
#[derive(Serialize, Deserialize)]
struct RawRule {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    promql: Option<RawPromQl>,
}

#[derive(Serialize, Deserialize)]
struct RawPromQl {
    promql: String,
}

impl TryFrom<RawRule> for MatchingRule {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<Self, Self::Error> {
        match raw.kind.as_str() {
            "Always" => match raw.promql {
                Some(p) if !p.promql.is_empty() => {
                    Err("an `Always` rule must not carry `promql`".to_owned())
                }
                _ => Ok(Self::Always),
            },
            "PromQL" => match raw.promql {
                Some(p) if !p.promql.trim().is_empty() => Ok(Self::PromQL { promql: p.promql }),
                _ => Err("a `PromQL` rule needs a non-empty `promql.promql`".to_owned()),
            },
            other => Err(format!(
                "unknown matching rule type {other:?} (expected `Always` or `PromQL`)"
            )),
        }
    }
}

impl From<MatchingRule> for RawRule {
    fn from(rule: MatchingRule) -> Self {
        match rule {
            MatchingRule::Always => Self {
                kind: "Always".to_owned(),
                promql: None,
            },
            MatchingRule::PromQL { promql } => Self {
                kind: "PromQL".to_owned(),
                promql: Some(RawPromQl { promql }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_serialize_like_the_reference() {
        let rules = vec![
            MatchingRule::Always,
            MatchingRule::PromQL {
                promql: "up == 1".to_owned(),
            },
        ];
        assert_eq!(
            serde_json::to_string(&rules).unwrap(),
            r#"[{"type":"Always"},{"type":"PromQL","promql":{"promql":"up == 1"}}]"#
        );
    }

    #[test]
    fn rules_round_trip_and_ignore_unknown_fields() {
        let rules: Vec<MatchingRule> = serde_json::from_str(
            r#"[{"type":"Always","note":"x"},{"type":"PromQL","promql":{"promql":"a","extra":1}}]"#,
        )
        .unwrap();
        assert_eq!(
            rules,
            vec![
                MatchingRule::Always,
                MatchingRule::PromQL {
                    promql: "a".to_owned()
                }
            ]
        );
    }

    #[test]
    fn rules_the_cvo_would_prune_are_refused() {
        for bad in [
            r#"{"type":"PromQL"}"#,
            r#"{"type":"PromQL","promql":{"promql":""}}"#,
            r#"{"type":"Always","promql":{"promql":"x"}}"#,
            r#"{"type":"Sometimes"}"#,
            r#"{"promql":{"promql":"x"}}"#,
        ] {
            assert!(serde_json::from_str::<MatchingRule>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn risk_problems_name_the_field() {
        let mut risk = Risk {
            url: "https://example.com/r".to_owned(),
            name: "R".to_owned(),
            message: "m".to_owned(),
            matching_rules: vec![MatchingRule::Always],
        };
        assert_eq!(risk.problem(), None);
        risk.message = " ".to_owned();
        assert_eq!(
            risk.problem().unwrap(),
            "field `message`: must not be empty"
        );
        risk.message = "m".to_owned();
        risk.matching_rules.clear();
        assert!(risk.problem().unwrap().contains("matchingRules"));
    }
}
