//! The last good scrape, and the rules that keep fetch failures from shrinking the graph:
//!
//! - a release disappears only when its tag is no longer listed. A listed tag that cannot
//!   be read (5xx, timeout, 404, a bad body) keeps its release from the last good scrape
//!   and is reported in `failing`; with no last good scrape it is only reported, and the
//!   other releases publish. When no tag at all could be read the whole scrape fails with
//!   the first tag's error: that is the registry failing, not one image;
//! - a tag list that is empty, or less than half as long as the last good one, is held
//!   back once: that scrape returns the last good releases again, and only a second
//!   consecutive shrunken list is believed.
//!
//! The memory is the releases' `Arc`s the digest cache shares, plus tag and digest strings.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use graph_data::keys::chain;
use semver::Version;

use super::cache::{ImageOutcome, ReleaseImage};
use super::collect::{collect, release_version, TagResult};
use super::{ScrapeError, ScrapeOutcome};

/// A listed tag that could not be read.
#[derive(Debug, Clone)]
pub struct FailingTag {
    /// The tag.
    pub tag: String,
    /// Why, on one line.
    pub reason: String,
    /// The version kept from the last good scrape in its place, if it had one.
    pub kept: Option<Version>,
    /// The error itself.
    pub error: Arc<ScrapeError>,
}

impl PartialEq for FailingTag {
    fn eq(&self, other: &Self) -> bool {
        (&self.tag, &self.reason, &self.kept) == (&other.tag, &other.reason, &other.kept)
    }
}

impl Eq for FailingTag {}

/// A tag list that shrank too much to be believed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShrinkHeldBack {
    /// Tags the last good scrape listed.
    pub previous_tags: usize,
    /// Tags listed now.
    pub listed_tags: usize,
}

/// How many distinct releases `failing` tags kept from the last good scrape.
pub fn kept_from_last_good(failing: &[FailingTag]) -> usize {
    let mut kept: Vec<&Version> = failing.iter().filter_map(|f| f.kept.as_ref()).collect();
    kept.sort();
    kept.dedup();
    kept.len()
}

#[derive(Debug, Default)]
struct Memory {
    /// Release tags of the last good scrape: tag -> (manifest digest, image).
    tags: HashMap<String, (String, Arc<ReleaseImage>)>,
    /// The versions it published and their manifest digests.
    versions: BTreeMap<Version, String>,
    /// How many tags it listed; `None` before the first good scrape.
    listed: Option<usize>,
    /// Whether the previous scrape held back a shrunken tag list.
    holding: bool,
}

/// What one scraper remembers of its last good scrape.
#[derive(Debug, Default)]
pub(crate) struct LastGood(Mutex<Memory>);

impl LastGood {
    fn lock(&self) -> MutexGuard<'_, Memory> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last good outcome again when `listed` tags is a shrink to hold back this time;
    /// `None` when the listing is to be scraped (not shrunk, or confirmed a second time).
    pub(crate) fn hold_back(
        &self,
        listed: usize,
        payload: &impl Fn(&str) -> String,
        manifestref_key: &str,
        source: &str,
    ) -> Option<ScrapeOutcome> {
        let mut memory = self.lock();
        let previous = memory.listed?;
        let shrunk = listed.saturating_mul(2) < previous;
        if !shrunk || memory.holding {
            if shrunk {
                tracing::warn!(
                    %source,
                    previous_tags = previous,
                    listed_tags = listed,
                    "the tag list shrank again: publishing it"
                );
            }
            memory.holding = false;
            return None;
        }
        memory.holding = true;
        tracing::warn!(
            %source,
            previous_tags = previous,
            listed_tags = listed,
            "the tag list shrank to less than half: serving the last good releases until the next refresh confirms it"
        );
        let results = memory
            .tags
            .iter()
            .map(|(tag, (digest, image))| {
                TagResult::cached(
                    tag.clone(),
                    digest.clone(),
                    ImageOutcome::Release(Arc::clone(image)),
                )
            })
            .collect();
        let mut outcome = collect(results, payload, manifestref_key, &memory.versions);
        outcome.stats.tags = listed;
        outcome.held_back_shrink = Some(ShrinkHeldBack {
            previous_tags: previous,
            listed_tags: listed,
        });
        Some(outcome)
    }

    /// Turns the per-tag results of a scrape that listed `listed` tags into its outcome:
    /// failed tags are kept from the last good scrape (or only reported), the rest
    /// collected; the outcome becomes the last good scrape.
    pub(crate) fn finish(
        &self,
        results: Vec<TagResult>,
        listed: usize,
        payload: &impl Fn(&str) -> String,
        manifestref_key: &str,
        source: &str,
    ) -> Result<ScrapeOutcome, ScrapeError> {
        let read_any = results.iter().any(|r| matches!(r, TagResult::Image { .. }));
        // Split once: the failed tags as (tag, error), the rest as they came.
        let mut failed = Vec::new();
        let mut results: Vec<TagResult> = results
            .into_iter()
            .filter_map(|r| match r {
                TagResult::Failed { tag, error } => {
                    failed.push((tag, error));
                    None
                }
                other => Some(other),
            })
            .collect();
        failed.sort_by(|(a, _), (b, _)| a.cmp(b));
        if !read_any {
            if let Some((_, error)) = failed.into_iter().next() {
                return Err(error);
            }
            failed = Vec::new();
        }
        let mut memory = self.lock();
        let mut failing = Vec::with_capacity(failed.len());
        for (tag, error) in failed {
            let reason = chain(&error);
            let kept = memory.tags.get(&tag).map(|(digest, image)| {
                results.push(TagResult::cached(
                    tag.clone(),
                    digest.clone(),
                    ImageOutcome::Release(Arc::clone(image)),
                ));
                release_version(image)
            });
            match &kept {
                Some(version) => tracing::warn!(
                    %source, %tag, kept = %version, error = %reason,
                    "cannot read a listed tag: keeping its release from the last good scrape"
                ),
                None => tracing::warn!(
                    %source, %tag, error = %reason,
                    "cannot read a listed tag, and no earlier scrape read it: it is left out"
                ),
            }
            failing.push(FailingTag {
                tag,
                reason,
                kept,
                error: Arc::new(error),
            });
        }
        let tags = results
            .iter()
            .filter_map(|r| match r {
                TagResult::Image {
                    tag,
                    digest,
                    outcome: ImageOutcome::Release(image),
                    ..
                } => Some((tag.clone(), (digest.clone(), Arc::clone(image)))),
                _ => None,
            })
            .collect();
        let mut outcome = collect(results, payload, manifestref_key, &memory.versions);
        outcome.stats.tags = listed;
        outcome.failing = failing;
        memory.tags = tags;
        memory.versions = outcome
            .releases
            .iter()
            .map(|r| (r.version.clone(), r.manifestref.clone()))
            .collect();
        memory.listed = Some(listed);
        memory.holding = false;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::release_metadata::ReleaseMetadata;

    fn release(tag: &str, digest: &str, version: &str) -> TagResult {
        TagResult::Image {
            tag: tag.into(),
            digest: digest.into(),
            outcome: ImageOutcome::Release(Arc::new(ReleaseImage {
                arch: "amd64".into(),
                metadata: ReleaseMetadata {
                    version: Version::parse(version).unwrap(),
                    previous: Arc::from([]),
                    next: Arc::from([]),
                    metadata: BTreeMap::new(),
                },
            })),
            cache_hit: false,
        }
    }

    fn failed(tag: &str) -> TagResult {
        TagResult::Failed {
            tag: tag.into(),
            error: ScrapeError::NotFound {
                item: format!("tag {tag} manifest"),
            },
        }
    }

    fn finish(last: &LastGood, results: Vec<TagResult>) -> ScrapeOutcome {
        let listed = results.len();
        last.finish(results, listed, &|d: &str| format!("r/x@{d}"), "k", "r/x")
            .unwrap()
    }

    fn versions(outcome: &ScrapeOutcome) -> Vec<String> {
        outcome
            .releases
            .iter()
            .map(|r| r.version.to_string())
            .collect()
    }

    #[test]
    fn a_failing_tag_keeps_its_release_and_an_unlisted_one_goes() {
        let last = LastGood::default();
        let good = finish(
            &last,
            vec![
                release("a", "sha256:a", "1.0.0"),
                release("b", "sha256:b", "1.1.0"),
                release("c", "sha256:c", "1.2.0"),
            ],
        );
        assert_eq!(
            versions(&good),
            ["1.0.0+amd64", "1.1.0+amd64", "1.2.0+amd64"]
        );
        // `b` fails, `c` is no longer listed, `d` is new and fails too.
        let next = finish(
            &last,
            vec![release("a", "sha256:a", "1.0.0"), failed("b"), failed("d")],
        );
        assert_eq!(versions(&next), ["1.0.0+amd64", "1.1.0+amd64"]);
        assert_eq!(next.releases[1].payload, "r/x@sha256:b");
        let failing: Vec<_> = next
            .failing
            .iter()
            .map(|f| (f.tag.as_str(), f.kept.as_ref().map(ToString::to_string)))
            .collect();
        assert_eq!(
            failing,
            [("b", Some("1.1.0+amd64".to_owned())), ("d", None)]
        );
        assert_eq!(
            next.failing[0].reason,
            "tag b manifest is not found, although the repository lists the tag"
        );
        // Still failing a refresh later: still kept.
        let again = finish(&last, vec![release("a", "sha256:a", "1.0.0"), failed("b")]);
        assert_eq!(versions(&again), ["1.0.0+amd64", "1.1.0+amd64"]);
    }

    #[test]
    fn a_cold_failure_is_reported_and_the_rest_publish_but_all_failing_fails() {
        let last = LastGood::default();
        let cold = finish(&last, vec![release("a", "sha256:a", "1.0.0"), failed("b")]);
        assert_eq!(versions(&cold), ["1.0.0+amd64"]);
        assert_eq!(cold.failing.len(), 1);
        assert!(cold.failing[0].kept.is_none());
        let all = last.finish(
            vec![failed("b"), failed("a"), TagResult::Signature],
            3,
            &|d: &str| d.to_owned(),
            "k",
            "r/x",
        );
        assert_eq!(
            all.unwrap_err().to_string(),
            "tag a manifest is not found, although the repository lists the tag"
        );
    }

    #[test]
    fn a_shrunken_tag_list_is_held_back_once() {
        let last = LastGood::default();
        let payload = |d: &str| d.to_owned();
        // Cold: nothing to compare with.
        assert!(last.hold_back(0, &payload, "k", "r/x").is_none());
        let four: Vec<_> = (0..4)
            .map(|i| {
                release(
                    &format!("t{i}"),
                    &format!("sha256:{i}"),
                    &format!("1.{i}.0"),
                )
            })
            .collect();
        finish(&last, four);
        // Half is not less than half.
        assert!(last.hold_back(2, &payload, "k", "r/x").is_none());
        let held = last.hold_back(1, &payload, "k", "r/x").unwrap();
        assert_eq!(held.releases.len(), 4);
        assert_eq!(
            held.held_back_shrink,
            Some(ShrinkHeldBack {
                previous_tags: 4,
                listed_tags: 1
            })
        );
        // The second consecutive shrunken list is believed.
        assert!(last.hold_back(0, &payload, "k", "r/x").is_none());
        // An empty list after a good one is held back too; a normal one clears the hold.
        assert!(last.hold_back(0, &payload, "k", "r/x").is_some());
        assert!(last.hold_back(4, &payload, "k", "r/x").is_none());
        assert!(last.hold_back(0, &payload, "k", "r/x").is_some());
    }

    #[test]
    fn one_version_under_two_digests_keeps_the_published_one() {
        let last = LastGood::default();
        let cold = finish(
            &last,
            vec![
                release("x", "sha256:1", "1.0.0"),
                release("y", "sha256:2", "1.0.0"),
                release("z", "sha256:3", "2.0.0"),
            ],
        );
        // Nothing was published: both are dropped and named, the rest publish.
        assert_eq!(versions(&cold), ["2.0.0+amd64"]);
        let dropped: Vec<_> = cold
            .invalid
            .iter()
            .map(|i| (i.tag.as_str(), i.digest.as_str(), i.kind))
            .collect();
        assert_eq!(
            dropped,
            [
                (
                    "x",
                    "sha256:1",
                    crate::scrape::InvalidKind::DuplicateVersion
                ),
                (
                    "y",
                    "sha256:2",
                    crate::scrape::InvalidKind::DuplicateVersion
                )
            ]
        );
        assert!(
            cold.invalid[0]
                .error
                .contains("tag x (sha256:1), tag y (sha256:2)"),
            "{}",
            cold.invalid[0].error
        );
        // Once one is published, a second image claiming its version is the one dropped.
        finish(&last, vec![release("x", "sha256:1", "1.0.0")]);
        let rogue = finish(
            &last,
            vec![
                release("x", "sha256:1", "1.0.0"),
                release("w", "sha256:9", "1.0.0"),
            ],
        );
        assert_eq!(versions(&rogue), ["1.0.0+amd64"]);
        assert_eq!(rogue.releases[0].manifestref, "sha256:1");
        assert_eq!(rogue.invalid.len(), 1);
        assert_eq!(rogue.invalid[0].digest, "sha256:9");
        assert!(
            rogue.invalid[0]
                .error
                .ends_with("the published sha256:1 is kept"),
            "{}",
            rogue.invalid[0].error
        );
    }
}
