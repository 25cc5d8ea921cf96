//! An OCI image layout holding the same images as a registry yields the same releases.

use std::path::Path;

use crate::fake::*;
use crate::REPO;
use graph_builder::scrape::ScrapeError;
use graph_builder::scrape::{scrape_oci_layout, LayoutScraper, Scraper};

/// Writes `repo` as an OCI layout, one `index.json` entry per tag (skopeo's shape).
fn write_layout(repo: &Repo, dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let hex = |d: &str| d.strip_prefix("sha256:").unwrap().to_string();
    for (digest, (_, body)) in &repo.manifests {
        std::fs::write(blobs.join(hex(digest)), body).unwrap();
    }
    for (digest, blob) in &repo.blobs {
        let Blob::Stored(bytes) = blob else {
            panic!("stored blobs only")
        };
        std::fs::write(blobs.join(hex(digest)), bytes).unwrap();
    }
    let manifests: Vec<_> = repo
        .tags
        .iter()
        .map(|(tag, digest)| {
            let (media_type, body) = &repo.manifests[digest];
            serde_json::json!({
                "mediaType": media_type, "digest": digest, "size": body.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag}
            })
        })
        .collect();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[tokio::test]
async fn a_layout_and_a_registry_with_the_same_images_agree() {
    let fake = FakeRegistry::start();
    fake.build(REPO, |b| {
        for (tag, version) in [("4.16.1-x86_64", "4.16.1"), ("4.16.2-x86_64", "4.16.2")] {
            let d = b.release(
                OCI_MANIFEST,
                "amd64",
                &metadata_json(version, &["4.16.0"], &[]),
            );
            b.tag(tag, &d);
        }
        let multi_meta = metadata_json(
            "4.16.2",
            &[],
            &[("release.openshift.io/architecture", "multi")],
        );
        let amd = b.release(OCI_MANIFEST, "amd64", &multi_meta);
        let arm = b.release(OCI_MANIFEST, "arm64", &multi_meta);
        let index = b.list(OCI_INDEX, &[("amd64", &amd), ("arm64", &arm)]);
        b.tag("4.16.2-multi", &index);
        let c = b.component("amd64", "etcd");
        b.tag("etcd", &c);
        b.tag("sha256-abc.sig", &c);
    });
    let from_registry = Scraper::new(settings(&fake, REPO))
        .unwrap()
        .scrape()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    fake.with(|s| write_layout(&s.repos[REPO], dir.path()));
    let payload_repo = format!("{}/{REPO}", fake.host());
    let from_layout = scrape_oci_layout(dir.path(), &payload_repo).await.unwrap();

    assert_eq!(from_layout.releases, from_registry.releases);
    assert_eq!(from_layout.releases.len(), 3);
    assert_eq!(from_layout.stats.not_releases, 1);
    assert_eq!(from_layout.stats.signatures, 1);
    assert!(from_layout.stats.blob_requests > 0);
    fake.stop().await;
}

#[tokio::test]
async fn a_corrupt_layout_blob_is_a_digest_error_naming_the_layout() {
    let fake = FakeRegistry::start();
    let digest = fake.build(REPO, |b| {
        let d = b.release(DOCKER_MANIFEST, "amd64", &metadata_json("1.0.0", &[], &[]));
        b.tag("1.0.0", &d);
        d
    });
    let dir = tempfile::tempdir().unwrap();
    fake.with(|s| write_layout(&s.repos[REPO], dir.path()));
    let path = dir
        .path()
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    std::fs::write(&path, b"{}").unwrap();
    let err = scrape_oci_layout(dir.path(), "x/y").await.unwrap_err();
    assert!(
        matches!(err, ScrapeError::LayoutDigestMismatch { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    fake.stop().await;
}

#[tokio::test]
async fn a_warm_layout_rescrape_reads_no_config_or_layer() {
    let fake = FakeRegistry::start();
    crate::populate(&fake);
    let dir = tempfile::tempdir().unwrap();
    fake.with(|s| write_layout(&s.repos[REPO], dir.path()));
    let scraper = LayoutScraper::new(dir.path(), "mirror.example/ocp/release");
    let cold = scraper.scrape().await.unwrap();
    assert_eq!(cold.releases.len(), 3);
    assert!(cold.stats.blob_requests > 0);
    let warm = scraper.scrape().await.unwrap();
    assert_eq!(warm.releases, cold.releases);
    assert_eq!((warm.stats.blob_requests, warm.stats.blob_bytes), (0, 0));
    assert_eq!(warm.stats.cache_hits, 4);
    assert!(warm.releases[0]
        .payload
        .starts_with("mirror.example/ocp/release@sha256:"));
    fake.stop().await;
}
