//! Per-tag results -> the scrape outcome: tags grouped by digest, releases that would
//! poison the graph dropped (an unknown architecture, metadata that claims channels, one
//! version under two digests), releases sorted, counters summed.

use std::collections::BTreeMap;
use std::sync::Arc;

use graph_data::keys::{is_known_arch, ARCH_KEY, CHANNELS_KEY};
use semver::{BuildMetadata, Version};

use super::cache::{ImageOutcome, ReleaseImage};
use super::ScrapeError;
use super::{InvalidKind, InvalidRelease, ScrapeOutcome, ScrapeStats, ScrapedRelease};

/// How much of a registry-supplied string an error message quotes.
const QUOTE_CHARS: usize = 64;

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
    /// The tag is listed but could not be read (5xx, timeout, 404, a bad body).
    Failed { tag: String, error: ScrapeError },
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

/// Folds the tag results into releases; `payload` turns a digest into a pull spec and
/// `published` holds the digest each version had in the last good scrape. Failed tags are
/// not expected here (the caller has dealt with them) and are ignored.
pub(crate) fn collect(
    results: Vec<TagResult>,
    payload: impl Fn(&str) -> String,
    manifestref_key: &str,
    published: &BTreeMap<Version, String>,
) -> ScrapeOutcome {
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
            ImageOutcome::Invalid(error) => invalid.push(InvalidRelease {
                tag,
                digest,
                kind: InvalidKind::Image,
                error,
            }),
        }
    }
    let mut by_version: BTreeMap<Version, Vec<ScrapedRelease>> = BTreeMap::new();
    for (digest, (image, mut tags)) in by_digest {
        tags.sort();
        tags.dedup();
        if let Some((kind, error)) = poison(&image) {
            invalid.push(InvalidRelease {
                tag: tags.swap_remove(0),
                digest,
                kind,
                error,
            });
            continue;
        }
        let release = scraped_release(&digest, &image, tags, &payload, manifestref_key);
        by_version
            .entry(release.version.clone())
            .or_default()
            .push(release);
    }
    let mut releases = Vec::with_capacity(by_version.len());
    for (version, mut claimants) in by_version {
        if claimants.len() == 1 {
            releases.extend(claimants);
            continue;
        }
        // Keep the image already published under this version, if it is one of them:
        // a rogue push cannot replace it, nor make it disappear.
        let kept = published.get(&version).and_then(|digest| {
            let index = claimants.iter().position(|c| &c.manifestref == digest)?;
            Some(claimants.swap_remove(index))
        });
        let all: Vec<String> = claimants
            .iter()
            .chain(kept.iter())
            .map(|c| format!("tag {} ({})", c.tags[0], c.manifestref))
            .collect();
        let outcome = match &kept {
            Some(k) => format!("the published {} is kept", k.manifestref),
            None => "none was published before, so none is kept".to_owned(),
        };
        for dropped in claimants {
            invalid.push(InvalidRelease {
                tag: dropped.tags[0].clone(),
                digest: dropped.manifestref,
                kind: InvalidKind::DuplicateVersion,
                error: format!(
                    "version {version} is claimed by {} images: {}; {outcome}",
                    all.len(),
                    all.join(", ")
                ),
            });
        }
        releases.extend(kept);
    }
    invalid.sort_by(|a, b| a.tag.cmp(&b.tag));
    stats.releases = releases.len();
    ScrapeOutcome {
        releases,
        invalid,
        failing: Vec::new(),
        held_back_shrink: None,
        stats,
    }
}

/// Why a release image must not enter the graph even though its metadata parses: an
/// architecture that is not a real one, or metadata that claims channels (channels come
/// from graph-data only).
fn poison(image: &ReleaseImage) -> Option<(InvalidKind, String)> {
    if !is_known_arch(&image.arch) {
        return Some((
            InvalidKind::Arch,
            format!(
                "architecture {:?} is not a known architecture",
                quote(&image.arch)
            ),
        ));
    }
    if image.metadata.metadata.contains_key(CHANNELS_KEY) {
        return Some((
            InvalidKind::Channels,
            format!(
                "release-metadata `metadata` sets {CHANNELS_KEY}; channels come from graph-data only"
            ),
        ));
    }
    None
}

/// At most [`QUOTE_CHARS`] characters of `text`, marked when cut.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The version a release image is published as: its own, with the arch as build metadata.
pub(crate) fn release_version(image: &ReleaseImage) -> Version {
    let mut version = image.metadata.version.clone();
    // Arches are checked against the known list before publishing; those are valid build
    // identifiers ([0-9a-z]+).
    version.build = BuildMetadata::new(&image.arch).unwrap_or(BuildMetadata::EMPTY);
    version
}

fn scraped_release(
    digest: &str,
    image: &ReleaseImage,
    tags: Vec<String>,
    payload: &impl Fn(&str) -> String,
    manifestref_key: &str,
) -> ScrapedRelease {
    let version = release_version(image);
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
        previous: Arc::clone(&image.metadata.previous),
        next: Arc::clone(&image.metadata.next),
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
                previous: [Version::new(4, 13, 0)].into(),
                next: Arc::from([]),
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
            &BTreeMap::new(),
        );
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
    fn unknown_arches_and_claimed_channels_drop_only_that_release() {
        let mut claims = image("4.14.5", "amd64");
        if let ImageOutcome::Release(image) = &mut claims {
            Arc::make_mut(image)
                .metadata
                .metadata
                .insert(CHANNELS_KEY.to_owned(), "stable-4.14".to_owned());
        }
        let huge = "x".repeat(100_000);
        let outcome = collect(
            vec![
                tagged("good", "sha256:1", image("4.14.3", "amd64")),
                tagged("comma", "sha256:2", image("4.14.3", "amd64,arm64")),
                tagged("huge", "sha256:3", image("4.14.4", &huge)),
                tagged("claims", "sha256:4", claims),
            ],
            |d| d.to_owned(),
            "k",
            &BTreeMap::new(),
        );
        assert_eq!(outcome.releases.len(), 1);
        assert_eq!(outcome.releases[0].tags, ["good"]);
        let invalid: Vec<_> = outcome
            .invalid
            .iter()
            .map(|i| (i.tag.as_str(), i.kind))
            .collect();
        assert_eq!(
            invalid,
            [
                ("claims", InvalidKind::Channels),
                ("comma", InvalidKind::Arch),
                ("huge", InvalidKind::Arch)
            ]
        );
        assert_eq!(
            outcome.invalid[1].error,
            r#"architecture "amd64,arm64" is not a known architecture"#
        );
        // A huge value is quoted in part, never whole.
        assert!(
            outcome.invalid[2].error.len() < 200,
            "{}",
            outcome.invalid[2].error
        );
        assert!(outcome.invalid[0].error.contains(CHANNELS_KEY));
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
