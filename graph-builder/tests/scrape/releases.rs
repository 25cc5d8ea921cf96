//! What a scrape finds: releases, components, signatures, lists and indexes, shards,
//! duplicates, pagination, and what a warm re-scrape costs.

use crate::fake::*;
use crate::{populate, scraper, REPO};
use graph_builder::scrape::{InvalidKind, ScrapeError};

#[tokio::test]
async fn scrapes_releases_and_skips_components_and_signatures() {
    let fake = FakeRegistry::start();
    populate(&fake);
    let outcome = scraper(&fake).scrape().await.unwrap();
    let versions: Vec<String> = outcome
        .releases
        .iter()
        .map(|r| r.version.to_string())
        .collect();
    assert_eq!(versions, ["4.14.1+amd64", "4.14.2+amd64", "4.14.3+amd64"]);
    let r = &outcome.releases[2];
    assert_eq!(
        r.payload,
        format!("{}/{REPO}@{}", fake.host(), r.manifestref)
    );
    assert_eq!(r.tags, ["4.14.3-x86_64"]);
    assert_eq!(r.previous.len(), 2);
    assert_eq!(
        r.metadata["io.openshift.upgrades.graph.release.manifestref"],
        r.manifestref
    );
    assert_eq!(
        r.metadata["io.openshift.upgrades.graph.release.arch"],
        "amd64"
    );
    let s = &outcome.stats;
    assert_eq!(
        (s.tags, s.releases, s.signatures, s.not_releases),
        (5, 3, 1, 1)
    );
    assert!(outcome.invalid.is_empty());
    assert!(
        !fake.requests().iter().any(|r| r.contains(".sig")),
        "signature tags are never fetched"
    );
    fake.stop().await;
}

#[tokio::test]
async fn warm_rescrape_costs_one_head_per_tag_and_no_blob() {
    let fake = FakeRegistry::start();
    populate(&fake);
    let scraper = scraper(&fake);
    let cold = scraper.scrape().await.unwrap();
    assert!(cold.stats.blob_requests > 0);
    fake.clear_log();
    let warm = scraper.scrape().await.unwrap();
    assert_eq!(warm.releases, cold.releases);
    assert_eq!(warm.stats.blob_requests, 0);
    assert_eq!(warm.stats.blob_bytes, 0);
    assert_eq!(warm.stats.cache_hits, 4);
    // One tag page, one HEAD per non-signature tag.
    assert_eq!(warm.stats.http_requests, 1 + 4);
    let log = fake.requests();
    assert!(log.iter().all(|r| !r.contains("/blobs/")), "{log:?}");
    assert_eq!(log.iter().filter(|r| r.starts_with("HEAD ")).count(), 4);

    // Without a digest header the HEAD falls back to GET, still without blobs.
    fake.with(|s| s.behaviour.omit_digest = true);
    let again = scraper.scrape().await.unwrap();
    assert_eq!(again.releases, cold.releases);
    assert_eq!(again.stats.blob_requests, 0);

    // A registry that refuses HEAD: GET instead, still without blobs.
    fake.with(|s| {
        s.behaviour.omit_digest = false;
        s.behaviour.refuse_head = true;
    });
    let refused = scraper.scrape().await.unwrap();
    assert_eq!(refused.releases, cold.releases);
    assert_eq!(refused.stats.blob_requests, 0);
    assert_eq!(refused.stats.http_requests, 1 + 4 + 4);
    fake.stop().await;
}

#[tokio::test]
async fn layers_shared_by_component_images_are_scanned_once() {
    let fake = FakeRegistry::start();
    let shared = fake.build(REPO, |b| {
        // The shared layer on top: every image reaches it first, at the same time.
        let shared = b.blob(layer(&[("usr/lib/libshared.so", &[7u8; 300_000])]));
        for i in 0..8 {
            let own = b.blob(layer(&[(&format!("usr/bin/c{i}"), b"x")]));
            let d = b.image_with_layers(DOCKER_MANIFEST, "amd64", &[own, shared.clone()]);
            b.tag(&format!("c{i}"), &d);
        }
        shared.0
    });
    let outcome = scraper(&fake).scrape().await.unwrap();
    assert_eq!(outcome.stats.not_releases, 8);
    // Eight own layers, the shared layer once despite 16 tags in flight, and no config:
    // images without release-metadata need no architecture.
    assert_eq!(outcome.stats.blob_requests, 8 + 1);
    let reads = fake
        .requests()
        .iter()
        .filter(|r| r.contains(&shared))
        .count();
    assert_eq!(reads, 1);
    fake.stop().await;
}

#[tokio::test]
async fn link_pagination_relative_and_absolute() {
    for absolute in [false, true] {
        let fake = FakeRegistry::start();
        populate(&fake);
        fake.with(|s| {
            s.behaviour.page_size = Some(2);
            s.behaviour.absolute_links = absolute;
        });
        let outcome = scraper(&fake).scrape().await.unwrap();
        assert_eq!(outcome.stats.tags, 5);
        assert_eq!(outcome.releases.len(), 3);
        let pages = fake
            .requests()
            .iter()
            .filter(|r| r.contains("/tags/list"))
            .count();
        assert_eq!(pages, 3);
        fake.stop().await;
    }
}

#[tokio::test]
async fn manifest_lists_oci_indexes_and_shards() {
    let fake = FakeRegistry::start();
    let (single, multi) = fake.build(REPO, |b| {
        // Single-entry OCI index: that entry's arch, layers from the child.
        let child = b.release(OCI_MANIFEST, "arm64", &metadata_json("4.15.0", &[], &[]));
        let single = b.list(OCI_INDEX, &[("arm64", &child)]);
        b.tag("4.15.0-aarch64", &single);
        // Multi payload: metadata read from the last child.
        let multi_meta = metadata_json(
            "4.15.0",
            &[],
            &[("release.openshift.io/architecture", "multi")],
        );
        let amd = b.release(DOCKER_MANIFEST, "amd64", &multi_meta);
        let s390 = b.release(DOCKER_MANIFEST, "s390x", &multi_meta);
        let multi = b.list(DOCKER_LIST, &[("amd64", &amd), ("s390x", &s390)]);
        b.tag("4.15.0-multi", &multi);
        // A per-arch shard of the multi payload, tagged on its own: dropped.
        b.tag("4.15.0-multi-s390x", &s390);
        (single, multi)
    });
    let outcome = scraper(&fake).scrape().await.unwrap();
    let found: Vec<(String, String)> = outcome
        .releases
        .iter()
        .map(|r| (r.version.to_string(), r.manifestref.clone()))
        .collect();
    assert_eq!(
        found,
        [
            ("4.15.0+arm64".to_string(), single),
            ("4.15.0+multi".to_string(), multi)
        ]
    );
    assert_eq!(outcome.releases[1].arch, "multi");
    assert_eq!(outcome.stats.shards_dropped, 1);
    fake.stop().await;
}

#[tokio::test]
async fn one_version_on_two_digests_leaves_both_out_naming_every_tag() {
    let fake = FakeRegistry::start();
    let (one, two) = fake.build(REPO, |b| {
        let one = b.release(DOCKER_MANIFEST, "amd64", &metadata_json("4.16.0", &[], &[]));
        let two = b.release(
            DOCKER_MANIFEST,
            "amd64",
            &metadata_json("4.16.0", &[], &[("url", "x")]),
        );
        let other = b.release(DOCKER_MANIFEST, "amd64", &metadata_json("4.16.1", &[], &[]));
        b.tag("first", &one);
        b.tag("second", &two);
        b.tag("alias", &one);
        b.tag("other", &other);
        (one, two)
    });
    let outcome = scraper(&fake).scrape().await.unwrap();
    let versions: Vec<String> = outcome
        .releases
        .iter()
        .map(|r| r.version.to_string())
        .collect();
    assert_eq!(versions, ["4.16.1+amd64"]);
    let left_out: Vec<_> = outcome
        .invalid
        .iter()
        .map(|i| (i.tag.as_str(), i.digest.as_str(), i.kind))
        .collect();
    assert_eq!(
        left_out,
        [
            ("alias", one.as_str(), InvalidKind::DuplicateVersion),
            ("second", two.as_str(), InvalidKind::DuplicateVersion)
        ]
    );
    let error = &outcome.invalid[0].error;
    assert!(
        error.starts_with("version 4.16.0+amd64 is claimed by 2 images: ")
            && error.contains(&format!("tag alias ({one})"))
            && error.contains(&format!("tag second ({two})"))
            && error.ends_with("none was published before, so none is kept"),
        "{error}"
    );
    fake.stop().await;
}

#[tokio::test]
async fn a_listed_tag_without_a_manifest_is_reported_and_the_rest_publish() {
    let fake = FakeRegistry::start();
    populate(&fake);
    fake.build(REPO, |b| {
        b.repo.tags.push(("ghost".into(), digest_of(b"gone")))
    });
    let outcome = scraper(&fake).scrape().await.unwrap();
    assert_eq!(outcome.releases.len(), 3);
    assert_eq!(outcome.stats.tags, 6);
    let failing: Vec<_> = outcome
        .failing
        .iter()
        .map(|f| (f.tag.as_str(), f.kept.is_some()))
        .collect();
    assert_eq!(failing, [("ghost", false)]);
    assert!(
        matches!(&*outcome.failing[0].error, ScrapeError::NotFound { item } if item.ends_with(", repository ocp/release, tag ghost manifest") && item.starts_with("registry 127.0.0.1:")),
        "{:?}",
        outcome.failing[0].error
    );
    fake.stop().await;
}

#[tokio::test]
async fn invalid_metadata_is_listed_with_tag_digest_and_field() {
    let fake = FakeRegistry::start();
    let digest = fake.build(REPO, |b| {
        let d = b.release(
            DOCKER_MANIFEST,
            "amd64",
            br#"{"kind":"cincinnati-metadata-v0","version":"4.15"}"#,
        );
        b.tag("bad", &d);
        d
    });
    let outcome = scraper(&fake).scrape().await.unwrap();
    assert!(outcome.releases.is_empty());
    assert_eq!(outcome.invalid[0].digest, digest);
    assert!(
        outcome.invalid[0].error.contains("`version`"),
        "{}",
        outcome.invalid[0].error
    );
    fake.stop().await;
}

#[tokio::test]
async fn the_cache_forgets_images_no_tag_points_at() {
    let fake = FakeRegistry::start();
    populate(&fake);
    let scraper = scraper(&fake);
    scraper.scrape().await.unwrap();
    let etcd = fake.with(|s| {
        let repo = s.repos.get_mut(REPO).unwrap();
        let i = repo.tags.iter().position(|(t, _)| t == "etcd").unwrap();
        repo.tags.remove(i).1
    });
    let without = scraper.scrape().await.unwrap();
    assert_eq!(
        (without.stats.not_releases, without.stats.blob_requests),
        (0, 0)
    );
    // Tagged again: inspected again, since the cache let it go.
    fake.build(REPO, |b| b.tag("etcd", &etcd));
    let again = scraper.scrape().await.unwrap();
    assert_eq!(again.stats.not_releases, 1);
    assert_eq!(again.stats.cache_hits, 3);
    assert!(again.stats.blob_requests > 0);
    fake.stop().await;
}

#[tokio::test]
async fn malformed_tags_are_never_requested() {
    let fake = FakeRegistry::start();
    populate(&fake);
    fake.build(REPO, |b| {
        b.repo
            .tags
            .push(("../../v2/_catalog".into(), digest_of(b"x")))
    });
    let outcome = scraper(&fake).scrape().await.unwrap();
    assert_eq!(outcome.releases.len(), 3);
    assert!(!fake.requests().iter().any(|r| r.contains("_catalog")));
    fake.stop().await;
}

#[tokio::test]
async fn release_metadata_deleted_by_a_whiteout_above_is_not_a_release() {
    let fake = FakeRegistry::start();
    populate(&fake);
    fake.build(REPO, |b| {
        let release = b.blob(layer(&[(
            "release-manifests/release-metadata",
            &metadata_json("4.14.9", &[], &[])[..],
        )]));
        // A derived image: its top layer deletes the metadata (an opaque directory).
        let top = b.blob(layer(&[("release-manifests/.wh..wh..opq", b"")]));
        let digest = b.image_with_layers(DOCKER_MANIFEST, "amd64", &[release, top]);
        b.tag("derived", &digest);
    });
    let outcome = scraper(&fake).scrape().await.unwrap();
    let versions: Vec<String> = outcome
        .releases
        .iter()
        .map(|r| r.version.to_string())
        .collect();
    assert_eq!(versions, ["4.14.1+amd64", "4.14.2+amd64", "4.14.3+amd64"]);
    assert_eq!(outcome.stats.not_releases, 2, "etcd and the derived image");
    assert!(outcome.invalid.is_empty(), "{:?}", outcome.invalid);
    fake.stop().await;
}
