//! Scrapes after the first one: an unchanged repository costs the tag listing and one
//! manifest request per tag with no blob downloads; a new tag costs only its own blobs;
//! a failed image is not cached; a registry that went away fails the scrape instead of
//! yielding a truncated result.

use graph_builder::scrape::Scraper;
use integration_tests::images::{signature_image, signature_tag};
use integration_tests::{Format, ImageBuilder, Layer, Pusher, RegistryOptions, TestRegistry};

use crate::support::{push_multi_arch_repo, settings, simple_release, versions};

/// A repository with every kind of tag: images, manifest lists, a non-release image
/// and a signature.
async fn mixed_repository(registry: &TestRegistry) -> anyhow::Result<usize> {
    let pusher = Pusher::new(registry);
    let repo = push_multi_arch_repo(&pusher, "mixed").await?;
    let component = ImageBuilder::new(Format::Docker)
        .layer(Layer::from_files(
            Format::Docker,
            &[("usr/bin/etcd", b"\x7fELF")],
        ))
        .build();
    pusher.push_image("mixed", "0.0.4-etcd", &component).await?;
    let signed = &repo.digests["0.0.4"];
    let signature = signature_image(signed, "quay.io/ocp/release:0.0.4");
    pusher
        .push_image("mixed", &signature_tag(signed), &signature)
        .await?;
    Ok(repo.digests.len() + 2)
}

#[tokio::test]
async fn unchanged_repository_costs_one_request_per_tag_and_no_blobs() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let tags = mixed_repository(&registry).await?;
    let scraper = Scraper::new(settings(&registry, "mixed"))?;

    let cold = scraper.scrape().await?;
    let warm = scraper.scrape().await?;

    assert!(cold.stats.blob_requests > 0);
    assert_eq!(versions(&warm), versions(&cold));
    assert_eq!(warm.releases.len(), 5);
    assert_eq!(
        (
            warm.stats.tags,
            warm.stats.not_releases,
            warm.stats.signatures
        ),
        (tags, 1, 1)
    );
    assert_eq!((warm.stats.blob_requests, warm.stats.blob_bytes), (0, 0));
    // One tag-list page (the registry returns all 7 tags at once) plus one manifest check
    // per tag; signature tags are recognised by name and cost nothing.
    let checked = tags - warm.stats.signatures;
    assert_eq!(warm.stats.cache_hits, checked, "{:?}", warm.stats);
    assert_eq!(
        warm.stats.http_requests,
        1 + checked as u64,
        "{:?}",
        warm.stats
    );
    Ok(())
}

#[tokio::test]
async fn a_new_tag_costs_only_its_own_blobs() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let pusher = Pusher::new(&registry);
    let first = simple_release(Format::Docker, "amd64", "4.6.0", &[]);
    pusher.push_image("growing", "4.6.0", &first).await?;
    let scraper = Scraper::new(settings(&registry, "growing"))?;
    scraper.scrape().await?;

    let second = simple_release(Format::Docker, "amd64", "4.6.1", &["4.6.0"]);
    pusher.push_image("growing", "4.6.1", &second).await?;
    let outcome = scraper.scrape().await?;

    assert_eq!(versions(&outcome), ["4.6.0+amd64", "4.6.1+amd64"]);
    let new_blob_bytes = second.layers[0].data.len() as u64;
    // The new image's config may be read too; the old image's blobs are not.
    let at_most = new_blob_bytes + second.config.data.len() as u64;
    assert!(
        (new_blob_bytes..=at_most).contains(&outcome.stats.blob_bytes),
        "read {} blob bytes, expected the new layer ({new_blob_bytes}) and at most its config",
        outcome.stats.blob_bytes
    );
    Ok(())
}

#[tokio::test]
async fn registry_stopped_between_scrapes_fails_the_scrape() -> anyhow::Result<()> {
    let mut registry = TestRegistry::start(RegistryOptions::anonymous())?;
    mixed_repository(&registry).await?;
    let scraper = Scraper::new(settings(&registry, "mixed"))?;
    assert_eq!(scraper.scrape().await?.releases.len(), 5);

    registry.stop();
    let result = scraper.scrape().await;

    let error = match result {
        Ok(outcome) => panic!(
            "a scrape of a stopped registry returned {:?}",
            versions(&outcome)
        ),
        Err(error) => error,
    };
    let message = error.to_string();
    assert!(
        message.contains(&registry.host_port()),
        "no registry in: {message}"
    );
    assert!(message.contains("mixed"), "no repository in: {message}");
    Ok(())
}

#[tokio::test]
async fn a_missing_layer_is_not_cached_and_the_release_appears_once_the_layer_is_back(
) -> anyhow::Result<()> {
    // The reference caches a placeholder `0.0.0` release when a fetch fails.
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let pusher = Pusher::new(&registry);
    let good = simple_release(Format::Docker, "amd64", "4.8.0", &[]);
    pusher.push_image("repair", "4.8.0", &good).await?;
    let broken = simple_release(Format::Docker, "amd64", "4.8.1", &["4.8.0"]);
    pusher.push_image("repair", "4.8.1", &broken).await?;
    let layer = &broken.layers[0];
    pusher.delete_blob("repair", &layer.digest).await?;
    let scraper = Scraper::new(settings(&registry, "repair"))?;

    // A layer the registry no longer has fails that tag, reported by tag and layer
    // digest, rather than failing the scrape or vanishing silently; with no earlier scrape
    // there is nothing to keep in its place.
    let first = scraper.scrape().await?;
    assert_eq!(versions(&first), ["4.8.0+amd64"]);
    assert!(first.invalid.is_empty(), "{:?}", first.invalid);
    assert_eq!(first.failing.len(), 1, "{:?}", first.failing);
    let failing = &first.failing[0];
    assert_eq!((failing.tag.as_str(), &failing.kept), ("4.8.1", &None));
    assert!(
        failing.reason.contains(&layer.digest) && failing.reason.contains(&broken.digest),
        "{}",
        failing.reason
    );

    pusher.push_blob("repair", layer).await?;
    let repaired = scraper.scrape().await?;
    assert_eq!(versions(&repaired), ["4.8.0+amd64", "4.8.1+amd64"]);
    assert!(repaired.invalid.is_empty(), "{:?}", repaired.invalid);
    assert!(repaired.failing.is_empty(), "{:?}", repaired.failing);
    Ok(())
}
