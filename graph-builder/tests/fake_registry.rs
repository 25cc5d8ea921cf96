//! Scrapes against the in-process fake registry: the behaviour a real registry will not
//! produce on demand (auth challenges, tiny pages, 503 bursts, lies, broken layers).

mod common;

use std::io::Write as _;

use base64::Engine as _;
use common::*;
use graph_builder::registry::ScrapeError;
use graph_builder::scrape::Scraper;

const REPO: &str = "ocp/release";

/// Three releases, a component image, a signature tag.
fn populate(fake: &FakeRegistry) {
    fake.build(REPO, |b| {
        for (tag, version, previous) in [
            ("4.14.1-x86_64", "4.14.1", vec![]),
            ("4.14.2-x86_64", "4.14.2", vec!["4.14.1"]),
            ("4.14.3-x86_64", "4.14.3", vec!["4.14.1", "4.14.2"]),
        ] {
            let d = b.release(
                DOCKER_MANIFEST,
                "amd64",
                &metadata_json(version, &previous, &[]),
            );
            b.tag(tag, &d);
        }
        let c = b.component("amd64", "etcd");
        b.tag("etcd", &c);
        let sig = b.component("amd64", "signature");
        b.tag("sha256-0123.sig", &sig);
    });
}

fn scraper(fake: &FakeRegistry) -> Scraper {
    Scraper::new(settings(fake, REPO)).unwrap()
}

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
    fake.stop().await;
}

#[tokio::test]
async fn layers_shared_by_component_images_are_scanned_once() {
    let fake = FakeRegistry::start();
    fake.build(REPO, |b| {
        let shared = b.blob(layer(&[("usr/lib/libshared.so", b"x")]));
        for name in ["a", "b", "c"] {
            let own = b.blob(layer(&[(&format!("usr/bin/{name}"), name.as_bytes())]));
            let d = b.image_with_layers(DOCKER_MANIFEST, "amd64", &[shared.clone(), own]);
            b.tag(name, &d);
        }
    });
    let mut settings = settings(&fake, REPO);
    settings.fetch_concurrency = 1;
    let outcome = Scraper::new(settings).unwrap().scrape().await.unwrap();
    assert_eq!(outcome.stats.not_releases, 3);
    // Three configs, three own layers, the shared layer once.
    assert_eq!(outcome.stats.blob_requests, 3 + 3 + 1);
    fake.stop().await;
}

#[tokio::test]
async fn bearer_challenge_with_namespaced_credentials() {
    let fake = FakeRegistry::start();
    populate(&fake);
    fake.with(|s| {
        s.behaviour.bearer = Some(("robot".into(), "s3cret".into()));
        s.behaviour.token = "first-token".into();
    });
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let config = tempfile::NamedTempFile::new().unwrap();
    // The host-wide entry is wrong; the namespaced one (with scheme and slash) must win.
    write!(
        config.as_file(),
        r#"{{"auths": {{"{host}": {{"auth": "{wrong}"}},
                      "https://{host}/ocp/": {{"auth": "{right}"}}}}}}"#,
        host = fake.host(),
        wrong = b64("robot:wrong"),
        right = b64("robot:s3cret"),
    )
    .unwrap();
    let mut settings = settings(&fake, REPO);
    settings.credentials_path = Some(config.path().to_path_buf());
    let scraper = Scraper::new(settings.clone()).unwrap();
    let outcome = scraper.scrape().await.unwrap();
    assert_eq!(outcome.releases.len(), 3);
    let scopes = fake.with(|s| s.token_scopes.clone());
    assert_eq!(scopes, ["repository:ocp/release:pull"]);
    // The token outlives the scrape: a warm scrape is the tag page and one HEAD per tag.
    let warm = scraper.scrape().await.unwrap();
    assert_eq!(warm.stats.http_requests, 1 + 4);
    assert_eq!(fake.with(|s| s.token_scopes.len()), 1);
    // An expired token (the registry forgets it) is replaced on the first 401.
    fake.with(|s| s.behaviour.token = "rotated".into());
    assert_eq!(scraper.scrape().await.unwrap().releases.len(), 3);
    assert!(fake.with(|s| s.token_scopes.len()) >= 2);

    // Without credentials the token endpoint refuses: a clear error naming registry and repo.
    settings.credentials_path = None;
    let err = Scraper::new(settings).unwrap().scrape().await.unwrap_err();
    assert!(matches!(err, ScrapeError::Unauthorized { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&fake.host()) && text.contains(REPO) && text.contains("UNAUTHORIZED"),
        "{text}"
    );
    fake.stop().await;
}

#[tokio::test]
async fn credentials_for_an_anonymous_registry_are_harmless() {
    let fake = FakeRegistry::start();
    populate(&fake);
    let config = tempfile::NamedTempFile::new().unwrap();
    write!(
        config.as_file(),
        r#"{{"auths": {{"{}": {{"auth": "dTpw"}}}}}}"#,
        fake.host()
    )
    .unwrap();
    let mut settings = settings(&fake, REPO);
    settings.credentials_path = Some(config.path().to_path_buf());
    let outcome = Scraper::new(settings).unwrap().scrape().await.unwrap();
    assert_eq!(outcome.releases.len(), 3);
    assert!(fake.with(|s| s.token_scopes.is_empty()));
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
async fn a_503_burst_is_retried() {
    let fake = FakeRegistry::start();
    populate(&fake);
    fake.with(|s| {
        s.behaviour.fail_times.insert("/manifests/4.14.2".into(), 2);
        s.behaviour.fail_times.insert("/tags/list".into(), 1);
    });
    let outcome = scraper(&fake).scrape().await.unwrap();
    assert_eq!(outcome.releases.len(), 3);
    let retried = fake
        .requests()
        .iter()
        .filter(|r| r.contains("/manifests/4.14.2"))
        .count();
    assert_eq!(retried, 3);
    fake.stop().await;
}

#[tokio::test]
async fn a_persistent_5xx_fails_the_scrape_instead_of_dropping_the_release() {
    let fake = FakeRegistry::start();
    populate(&fake);
    fake.with(|s| s.behaviour.fail_always = Some(("/manifests/4.14.2".into(), 500)));
    let err = scraper(&fake).scrape().await.unwrap_err();
    let ScrapeError::Registry {
        status,
        errors,
        item,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*status, 500);
    assert_eq!(errors[0].code, "DENIED");
    assert!(item.contains("4.14.2"), "{item}");
    let attempts = fake
        .requests()
        .iter()
        .filter(|r| r.contains("/manifests/4.14.2"))
        .count();
    assert_eq!(attempts, 4);
    fake.stop().await;
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_its_error_body_is_shown() {
    let fake = FakeRegistry::start();
    populate(&fake);
    fake.with(|s| s.behaviour.fail_always = Some(("/manifests/4.14.3".into(), 403)));
    let err = scraper(&fake).scrape().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("403") && text.contains("DENIED: the fake says no"),
        "{text}"
    );
    assert!(
        text.contains("tag 4.14.3-x86_64") && text.contains(REPO),
        "{text}"
    );
    let attempts = fake
        .requests()
        .iter()
        .filter(|r| r.contains("/manifests/4.14.3"))
        .count();
    assert_eq!(attempts, 1);
    fake.stop().await;
}

#[tokio::test]
async fn a_lying_digest_header_fails_the_scrape() {
    let fake = FakeRegistry::start();
    populate(&fake);
    fake.with(|s| s.behaviour.lie_about_digest = true);
    let err = scraper(&fake).scrape().await.unwrap_err();
    assert!(matches!(err, ScrapeError::DigestMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains(&digest_of(b"a lie")), "{err}");
    fake.stop().await;
}

#[tokio::test]
async fn a_broken_gzip_layer_makes_an_invalid_release_not_a_failed_scrape() {
    let fake = FakeRegistry::start();
    populate(&fake);
    let digest = fake.build(REPO, |b| {
        let mut broken = layer(&[("release-manifests/release-metadata", &[b'x'; 4096])]);
        broken.truncate(broken.len() / 2);
        let broken = b.blob(broken);
        let d = b.image_with_layers(DOCKER_MANIFEST, "amd64", &[broken]);
        b.tag("4.14.4-x86_64", &d);
        d
    });
    let outcome = scraper(&fake).scrape().await.unwrap();
    assert_eq!(outcome.releases.len(), 3);
    assert_eq!(outcome.invalid.len(), 1);
    let invalid = &outcome.invalid[0];
    assert_eq!(
        (invalid.tag.as_str(), invalid.digest.as_str()),
        ("4.14.4-x86_64", digest.as_str())
    );
    assert!(invalid.error.contains("tar"), "{}", invalid.error);
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
async fn a_vanished_tag_is_skipped() {
    let fake = FakeRegistry::start();
    populate(&fake);
    fake.build(REPO, |b| {
        b.repo.tags.push(("ghost".into(), digest_of(b"gone")))
    });
    let outcome = scraper(&fake).scrape().await.unwrap();
    assert_eq!(outcome.releases.len(), 3);
    assert_eq!(outcome.stats.tags, 6);
    fake.stop().await;
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
async fn one_version_on_two_digests_fails_naming_both_tags() {
    let fake = FakeRegistry::start();
    fake.build(REPO, |b| {
        let one = b.release(DOCKER_MANIFEST, "amd64", &metadata_json("4.16.0", &[], &[]));
        let two = b.release(
            DOCKER_MANIFEST,
            "amd64",
            &metadata_json("4.16.0", &[], &[("url", "x")]),
        );
        b.tag("first", &one);
        b.tag("second", &two);
        b.tag("alias", &one);
    });
    let err = scraper(&fake).scrape().await.unwrap_err();
    let ScrapeError::DuplicateVersion {
        version,
        first_tag,
        second_tag,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(version, "4.16.0+amd64");
    let mut tags = [first_tag.as_str(), second_tag.as_str()];
    tags.sort();
    assert!(
        tags == ["alias", "second"] || tags == ["first", "second"],
        "{tags:?}"
    );
    fake.stop().await;
}

fn one_release(fake: &FakeRegistry) -> String {
    fake.build(REPO, |b| {
        let d = b.release(DOCKER_MANIFEST, "amd64", &metadata_json("4.18.0", &[], &[]));
        b.tag("4.18.0", &d);
        d
    })
}

#[tokio::test]
async fn broken_blob_bodies_are_read_again() {
    let fake = FakeRegistry::start();
    let manifest = one_release(&fake);
    let top = fake.layers_of(REPO, &manifest).pop().unwrap();
    fake.with(|s| {
        s.behaviour.break_blobs.insert(top.clone(), 2);
        s.behaviour.fail_times.insert("/blobs/".into(), 1);
    });
    let outcome = scraper(&fake).scrape().await.unwrap();
    assert_eq!(outcome.releases.len(), 1);
    let reads = fake.requests().iter().filter(|r| r.contains(&top)).count();
    assert_eq!(reads, 3);
    // The config body breaks once too: fetched again.
    let fake = FakeRegistry::start();
    one_release(&fake);
    fake.with(|s| s.behaviour.break_blobs.insert("*".into(), 1));
    assert_eq!(scraper(&fake).scrape().await.unwrap().releases.len(), 1);
}

#[tokio::test]
async fn a_blob_stream_that_keeps_breaking_fails_the_scrape() {
    let fake = FakeRegistry::start();
    one_release(&fake);
    fake.with(|s| s.behaviour.break_blobs.insert("*".into(), 100));
    let err = scraper(&fake).scrape().await.unwrap_err();
    assert!(
        matches!(
            err,
            ScrapeError::Transport { .. } | ScrapeError::BlobStream { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("4.18.0"), "{err}");
    fake.stop().await;
}
