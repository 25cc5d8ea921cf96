//! Shared pieces of the integration tests: scrape settings for a test registry, the
//! reference's fixture repositories rebuilt as synthetic images, and short assertions.

use std::collections::BTreeMap;

use graph_builder::scrape::ScrapeSettings;
use graph_builder::scrape::{ScrapeOutcome, ScrapedRelease};
use integration_tests::images::release_image;
use integration_tests::{Format, Image, Index, Pusher, ReleaseMetadata, TestRegistry};

pub use graph_data::keys::{ARCH_KEY, MANIFESTREF_KEY, PAYLOAD_ARCH_KEY};

/// Scrape settings for `repository` on `registry` over plain HTTP, no credentials, no
/// extra CA directory.
pub fn settings(registry: &TestRegistry, repository: &str) -> ScrapeSettings {
    ScrapeSettings {
        registry: registry.base_url(),
        repository: repository.to_owned(),
        client: Default::default(),
        fetch_concurrency: 4,
        ..ScrapeSettings::default()
    }
}

/// `major.minor.patch[+build]` parsed, panicking on test typos.
pub fn v(version: &str) -> semver::Version {
    semver::Version::parse(version).expect("a valid version in the test")
}

/// The scraped versions as strings, in outcome order.
pub fn versions(outcome: &ScrapeOutcome) -> Vec<String> {
    outcome
        .releases
        .iter()
        .map(|r| r.version.to_string())
        .collect()
}

/// The release with this exact version (build metadata included).
pub fn release<'a>(outcome: &'a ScrapeOutcome, version: &str) -> &'a ScrapedRelease {
    outcome
        .releases
        .iter()
        .find(|r| r.version == v(version))
        .unwrap_or_else(|| panic!("no release {version} in {:?}", versions(outcome)))
}

/// The metadata a release must carry: what its release-metadata said plus the two keys
/// the scraper adds.
pub fn expected_metadata(
    from_image: &[(&str, &str)],
    manifestref: &str,
    arch: &str,
) -> BTreeMap<String, String> {
    let mut metadata: BTreeMap<String, String> = from_image
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    metadata.insert(MANIFESTREF_KEY.to_owned(), manifestref.to_owned());
    metadata.insert(ARCH_KEY.to_owned(), arch.to_owned());
    metadata
}

/// A release image with `previous` edges and a `url` in its metadata.
pub fn simple_release(format: Format, arch: &str, version: &str, previous: &[&str]) -> Image {
    release_image(format, arch, &simple_metadata(version, previous))
}

/// The release-metadata [`simple_release`] writes.
pub fn simple_metadata(version: &str, previous: &[&str]) -> ReleaseMetadata {
    ReleaseMetadata::new(version)
        .previous(previous)
        .with("url", &format!("https://example.com/errata/{version}"))
}

/// The reference's multi-arch fixture repository (`test-public-multiarch-manual`):
/// 0.0.0 and 0.0.1 amd64 images, 0.0.2 and 0.0.3 manifest lists over amd64+arm64
/// children (release metadata marked `multi`, as real multi payloads are), and 0.0.4 an
/// amd64 image. Every release lists the one before it as `previous`.
#[derive(Debug)]
pub struct MultiArchRepo {
    /// Tag (= version) to the digest it points at.
    pub digests: BTreeMap<String, String>,
    /// The 0.0.2 manifest list, whose children tests may tag on their own.
    pub list_002: Index,
}

/// Pushes [`MultiArchRepo`] into `repository` in Docker media types.
pub async fn push_multi_arch_repo(
    pusher: &Pusher,
    repository: &str,
) -> anyhow::Result<MultiArchRepo> {
    let mut digests = BTreeMap::new();
    for (version, previous) in [("0.0.0", vec![]), ("0.0.1", vec!["0.0.0"])] {
        let image = simple_release(Format::Docker, "amd64", version, &previous);
        digests.insert(
            version.to_owned(),
            pusher.push_image(repository, version, &image).await?,
        );
    }
    let mut list_002 = None;
    for (version, previous) in [("0.0.2", "0.0.1"), ("0.0.3", "0.0.2")] {
        let metadata = multi_child_metadata(version, previous);
        let children = ["amd64", "arm64"]
            .iter()
            .map(|arch| release_image(Format::Docker, arch, &metadata))
            .collect();
        let list = Index::new(Format::Docker, children);
        digests.insert(
            version.to_owned(),
            pusher
                .push(repository, version, &list.clone().into())
                .await?,
        );
        list_002.get_or_insert(list);
    }
    let image = simple_release(Format::Docker, "amd64", "0.0.4", &["0.0.3"]);
    digests.insert(
        "0.0.4".to_owned(),
        pusher.push_image(repository, "0.0.4", &image).await?,
    );
    Ok(MultiArchRepo {
        digests,
        list_002: list_002.expect("0.0.2 was pushed"),
    })
}

/// The release-metadata of each child of a multi payload.
pub fn multi_child_metadata(version: &str, previous: &str) -> ReleaseMetadata {
    simple_metadata(version, &[previous]).with(PAYLOAD_ARCH_KEY, "multi")
}
