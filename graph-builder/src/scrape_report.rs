//! The `/status` parts that say how far the graph served trusts the last scrape: the
//! listed tags that could not be read (and the releases kept for them), a tag list shrink
//! held back, and the one-line `degraded: …` reason readiness and `/status` give.

use serde::Serialize;

use crate::report::ReleasesReport;
use crate::scrape::{FailingTag, ShrinkHeldBack};

/// How many failing tags the degraded reason names before it only counts.
const DEGRADED_TAGS_SHOWN: usize = 5;

/// A listed tag that could not be read.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailingTagReport {
    /// The tag.
    pub tag: String,
    /// Why.
    pub reason: String,
    /// The version kept from the last good scrape in its place, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
}

/// A tag list held back because it shrank too much.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ShrinkReport {
    /// Tags the last good scrape listed.
    pub previous_tags: usize,
    /// Tags listed now.
    pub listed_tags: usize,
}

impl From<ShrinkHeldBack> for ShrinkReport {
    fn from(held: ShrinkHeldBack) -> Self {
        ShrinkReport {
            previous_tags: held.previous_tags,
            listed_tags: held.listed_tags,
        }
    }
}

/// The failing tags as `/status` shows them.
pub(crate) fn failing_reports(failing: &[FailingTag]) -> Vec<FailingTagReport> {
    failing
        .iter()
        .map(|f| FailingTagReport {
            tag: f.tag.clone(),
            reason: f.reason.clone(),
            kept: f.kept.as_ref().map(ToString::to_string),
        })
        .collect()
}

/// Why a graph built from `releases` is degraded, on one line; `None` when it is not.
pub(crate) fn degraded_reason(releases: &ReleasesReport) -> Option<String> {
    let mut parts = Vec::new();
    if !releases.failing_tags.is_empty() {
        let tags: Vec<&str> = releases
            .failing_tags
            .iter()
            .take(DEGRADED_TAGS_SHOWN)
            .map(|f| f.tag.as_str())
            .collect();
        let more = releases.failing_tags.len().saturating_sub(tags.len());
        parts.push(format!(
            "{} listed tag(s) cannot be read ({}{}), {} release(s) kept from the last good scrape",
            releases.failing_tags.len(),
            tags.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            releases.kept_from_last_good
        ));
    }
    if let Some(shrink) = &releases.held_back_shrink {
        parts.push(format!(
            "the tag list shrank from {} to {} tags and is held back until the next refresh confirms it",
            shrink.previous_tags, shrink.listed_tags
        ));
    }
    (!parts.is_empty()).then(|| format!("degraded: {} (see /status)", parts.join("; ")))
}
