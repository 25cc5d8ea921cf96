//! Per-tag results -> the scrape outcome: tags grouped by digest, versions checked for
//! duplicates, releases sorted, counters summed.

use std::collections::BTreeMap;
use std::sync::Arc;

use graph_data::keys::ARCH_KEY;
use semver::{BuildMetadata, Version};

use super::cache::{ImageOutcome, ReleaseImage};
use super::ScrapeError;
use super::{InvalidRelease, ScrapeOutcome, ScrapeStats, ScrapedRelease};

/// What happened to one tag.
#[derive(Debug)]
pub(crate) enum TagResult {
    /// A cosign `.sig`/`.att`/`.sbom` tag: never fetched.
    Signature,
    /// The tag disappeared between listing and fetching, or is malformed.
    Skipped,
    /// The tag's image.
    Image {
        tag: String,
        digest: String,
        outcome: ImageOutcome,
        cache_hit: bool,
    },
}

impl TagResult {
    /// An image whose outcome came from the digest cache.
    pub(crate) fn cached(tag: String, digest: String, outcome: ImageOutcome) -> Self {
        Self::Image {
            tag,
            digest,
            outcome,
            cache_hit: true,
        }
    }
}

/// Whether `tag` is a cosign signature, attestation or SBOM tag.
pub(crate) fn is_signature_tag(tag: &str) -> bool {
    [".sig", ".att", ".sbom"].iter().any(|s| tag.ends_with(s))
}

/// Whether `tag` is a well-formed tag (distribution spec: `[\w][\w.-]{0,127}`), and so safe
/// to put in a URL path.
pub(crate) fn is_valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

/// The manifest digests the tags point at.
pub(crate) fn digests(results: &[TagResult]) -> std::collections::HashSet<String> {
    results
        .iter()
        .filter_map(|r| match r {
            TagResult::Image { digest, .. } => Some(digest.clone()),
            _ => None,
        })
        .collect()
}

/// Folds the tag results into releases; `payload` turns a digest into a pull spec.
pub(crate) fn collect(
    results: Vec<TagResult>,
    payload: impl Fn(&str) -> String,
    manifestref_key: &str,
) -> Result<ScrapeOutcome, ScrapeError> {
    let mut stats = ScrapeStats {
        tags: results.len(),
        ..ScrapeStats::default()
    };
    let mut by_digest: BTreeMap<String, (Arc<ReleaseImage>, Vec<String>)> = BTreeMap::new();
    let mut invalid = Vec::new();
    for result in results {
        let TagResult::Image {
            tag,
            digest,
            outcome,
            cache_hit,
        } = result
        else {
            if matches!(result, TagResult::Signature) {
                stats.signatures += 1;
            }
            continue;
        };
        stats.cache_hits += usize::from(cache_hit);
        match outcome {
            ImageOutcome::Release(image) => {
                by_digest
                    .entry(digest)
                    .or_insert_with(|| (image, Vec::new()))
                    .1
                    .push(tag);
            }
            ImageOutcome::NotRelease(_) => stats.not_releases += 1,
            ImageOutcome::ShardDropped => stats.shards_dropped += 1,
            ImageOutcome::Invalid(error) => invalid.push(InvalidRelease { tag, digest, error }),
        }
    }
    let mut by_version: BTreeMap<Version, ScrapedRelease> = BTreeMap::new();
    for (digest, (image, mut tags)) in by_digest {
        tags.sort();
        tags.dedup();
        let release = scraped_release(&digest, &image, tags, &payload, manifestref_key);
        if let Some(first) = by_version.get(&release.version) {
            return Err(ScrapeError::DuplicateVersion {
                version: release.version.to_string(),
                first_tag: first.tags[0].clone(),
                first_digest: first.manifestref.clone(),
                second_tag: release.tags[0].clone(),
                second_digest: release.manifestref,
            });
        }
        by_version.insert(release.version.clone(), release);
    }
    invalid.sort_by(|a, b| a.tag.cmp(&b.tag));
    let releases: Vec<ScrapedRelease> = by_version.into_values().collect();
    stats.releases = releases.len();
    Ok(ScrapeOutcome {
        releases,
        invalid,
        stats,
    })
}

fn scraped_release(
    digest: &str,
    image: &ReleaseImage,
    tags: Vec<String>,
    payload: &impl Fn(&str) -> String,
    manifestref_key: &str,
) -> ScrapedRelease {
    let mut version = image.metadata.version.clone();
    // The arch is a valid build identifier: GOARCH names are [0-9a-z]+.
    version.build = BuildMetadata::new(&image.arch).unwrap_or(BuildMetadata::EMPTY);
    let mut metadata = image.metadata.metadata.clone();
    metadata.insert(manifestref_key.to_string(), digest.to_string());
    metadata.insert(ARCH_KEY.to_string(), image.arch.clone());
    ScrapedRelease {
        version,
        payload: payload(digest),
        manifestref: digest.to_string(),
        arch: image.arch.clone(),
        tags,
        metadata,
        previous: image.metadata.previous.clone(),
        next: image.metadata.next.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::release_metadata::ReleaseMetadata;

    fn image(version: &str, arch: &str) -> ImageOutcome {
        ImageOutcome::Release(Arc::new(ReleaseImage {
            arch: arch.into(),
            metadata: ReleaseMetadata {
                version: Version::parse(version).unwrap(),
                previous: vec![Version::new(4, 13, 0)],
                next: vec![],
                metadata: [("url".to_string(), "u".to_string())].into(),
            },
        }))
    }

    fn tagged(tag: &str, digest: &str, outcome: ImageOutcome) -> TagResult {
        TagResult::Image {
            tag: tag.into(),
            digest: digest.into(),
            outcome,
            cache_hit: false,
        }
    }

    #[test]
    fn tags_on_one_digest_make_one_release() {
        let outcome = collect(
            vec![
                tagged("b", "sha256:1", image("4.14.3", "amd64")),
                tagged("a", "sha256:1", image("4.14.3", "amd64")),
                tagged("m", "sha256:2", image("4.14.3+whatever", "multi")),
                tagged(
                    "c",
                    "sha256:3",
                    ImageOutcome::NotRelease("component".into()),
                ),
                tagged("d", "sha256:4", ImageOutcome::Invalid("bad kind".into())),
                TagResult::Signature,
                TagResult::Skipped,
            ],
            |d| format!("r.example/ocp@{d}"),
            "manifestref",
        )
        .unwrap();
        assert_eq!(outcome.releases.len(), 2);
        let amd = &outcome.releases[0];
        assert_eq!(amd.version.to_string(), "4.14.3+amd64");
        assert_eq!(amd.tags, ["a", "b"]);
        assert_eq!(amd.payload, "r.example/ocp@sha256:1");
        assert_eq!(amd.metadata["manifestref"], "sha256:1");
        assert_eq!(amd.metadata[ARCH_KEY], "amd64");
        assert_eq!(amd.metadata["url"], "u");
        assert_eq!(outcome.releases[1].version.to_string(), "4.14.3+multi");
        assert_eq!(outcome.invalid[0].digest, "sha256:4");
        let s = &outcome.stats;
        assert_eq!(
            (s.tags, s.releases, s.signatures, s.not_releases),
            (7, 2, 1, 1)
        );
    }

    #[test]
    fn one_version_on_two_digests_is_an_error_naming_both() {
        let err = collect(
            vec![
                tagged("x", "sha256:1", image("4.14.3", "amd64")),
                tagged("y", "sha256:2", image("4.14.3", "amd64")),
            ],
            |d| d.to_string(),
            "k",
        )
        .unwrap_err()
        .to_string();
        for needle in ["4.14.3+amd64", "x", "y", "sha256:1", "sha256:2"] {
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn signature_tags() {
        assert!(is_signature_tag("sha256-abc.sig"));
        assert!(is_signature_tag("sha256-abc.att"));
        assert!(is_signature_tag("sha256-abc.sbom"));
        assert!(!is_signature_tag("4.14.3-signed"));
    }

    #[test]
    fn tag_syntax() {
        for ok in ["4.14.3-x86_64", "latest", "_x", "a.b-c_d"] {
            assert!(is_valid_tag(ok), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in ["", "../x", ".hidden", "-x", "a/b", "a?b", long.as_str()] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
    }
}
