//! Failures: what is retried, what fails the scrape (a registry that answers nothing),
//! what fails only one tag (reported, its release kept from the last good scrape), and
//! what only marks one image invalid.

use crate::fake::*;
use crate::{one_release, populate, scraper, REPO};
use graph_builder::scrape::Scraper;

fn settings_for(registry: &str) -> graph_builder::scrape::ScrapeSettings {
    graph_builder::scrape::ScrapeSettings {
        registry: registry.to_owned(),
        repository: REPO.to_owned(),
        client: Default::default(),
        ..Default::default()
    }
}
use graph_builder::registry::ErrorKind;
use graph_builder::scrape::ScrapeError;

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
async fn a_persistent_5xx_fails_the_tag_and_its_release_is_kept_from_the_last_good_scrape() {
    let fake = FakeRegistry::start();
    populate(&fake);
    let scraper = scraper(&fake);
    let fail = |fake: &FakeRegistry| {
        fake.with(|s| s.behaviour.fail_always = Some(("/manifests/4.14.2".into(), 500)))
    };
    // Cold: nothing to keep; the tag is reported with the registry's error, the rest publish.
    fail(&fake);
    let cold = scraper.scrape().await.unwrap();
    assert_eq!(cold.releases.len(), 2);
    assert_eq!(cold.failing.len(), 1);
    let failing = &cold.failing[0];
    assert_eq!(failing.tag, "4.14.2-x86_64");
    assert!(failing.kept.is_none());
    assert_eq!(failing.reason, graph_data::keys::chain(&*failing.error));
    let err = &*failing.error;
    let ScrapeError::Registry(registry_error) = err else {
        panic!("{err:?}")
    };
    let ErrorKind::Status { status, errors } = registry_error.kind() else {
        panic!("{err:?}")
    };
    let item = registry_error.item();
    assert_eq!(*status, 500);
    assert_eq!(errors[0].code, "DENIED");
    assert!(item.contains("4.14.2"), "{item}");
    let attempts = fake
        .requests()
        .iter()
        .filter(|r| r.contains("/manifests/4.14.2"))
        .count();
    assert_eq!(attempts, 4);

    // Once read, the release is kept while its tag fails again (warm: a HEAD, retried).
    fake.with(|s| s.behaviour.fail_always = None);
    let good = scraper.scrape().await.unwrap();
    assert_eq!(good.releases.len(), 3);
    assert!(good.failing.is_empty());
    fail(&fake);
    let warm = scraper.scrape().await.unwrap();
    assert_eq!(warm.releases, good.releases);
    assert_eq!(warm.failing.len(), 1);
    assert_eq!(
        warm.failing[0]
            .kept
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("4.14.2+amd64")
    );
    assert!(
        matches!(
            warm.failing[0].error.registry_kind(),
            Some(ErrorKind::Status { status: 500, .. })
        ),
        "{:?}",
        warm.failing[0].error
    );
    fake.stop().await;
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_its_error_body_is_shown() {
    let fake = FakeRegistry::start();
    populate(&fake);
    fake.with(|s| s.behaviour.fail_always = Some(("/manifests/4.14.3".into(), 403)));
    // Cold: nothing to keep, so the tag is reported and the others publish.
    let outcome = scraper(&fake).scrape().await.unwrap();
    assert_eq!(outcome.releases.len(), 2);
    assert_eq!(outcome.failing.len(), 1);
    assert!(outcome.failing[0].kept.is_none());
    let text = outcome.failing[0].error.to_string();
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
    assert!(
        matches!(err.registry_kind(), Some(ErrorKind::DigestMismatch { .. })),
        "{err:?}"
    );
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
    // The layer is the first blob asked for: one 503 answered by a retry, two bodies
    // broken mid-way, then the good one.
    let reads = fake.requests().iter().filter(|r| r.contains(&top)).count();
    assert_eq!(reads, 1 + 2 + 1);
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
            err.registry_kind(),
            Some(ErrorKind::Transport { .. } | ErrorKind::BlobStream(_))
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("4.18.0"), "{err}");
    fake.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let fake = FakeRegistry::start();
    populate(&fake);
    fake.with(|s| {
        s.behaviour.fail_times.insert("/tags/list".into(), 1);
        s.behaviour.retry_after = Some(1);
    });
    let started = std::time::Instant::now();
    scraper(&fake).scrape().await.unwrap();
    // The backoff alone would have waited 200 ms.
    assert!(started.elapsed() >= std::time::Duration::from_millis(950));
    fake.stop().await;
}

#[tokio::test]
async fn a_zstd_layer_is_reported_not_silently_skipped() {
    let fake = FakeRegistry::start();
    fake.build(REPO, |b| {
        let zstd = b.blob(vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
        let d = b.image_with_layers(DOCKER_MANIFEST, "amd64", &[zstd]);
        b.tag("4.20.0", &d);
    });
    let outcome = scraper(&fake).scrape().await.unwrap();
    assert_eq!(outcome.invalid.len(), 1);
    assert!(
        outcome.invalid[0].error.contains("zstd"),
        "{:?}",
        outcome.invalid
    );
    fake.stop().await;
}

/// A server that answers at once and then sends its body one byte every 100 ms: no read
/// ever stalls, so only the whole-request deadline can stop it (a real registry does not
/// do this on demand).
#[tokio::test]
async fn a_body_trickling_past_the_request_deadline_fails_as_timed_out() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                // Bounded: 20 s at most, far past the 1 s deadline.
                for _ in 0..200 {
                    if socket.write_all(b" ").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
    });
    let mut settings = settings_for(&format!("http://{address}"));
    settings.client.limits.request_deadline = Duration::from_secs(1);
    settings.client.limits.read_timeout = Duration::from_secs(10);
    let err = Scraper::new(settings).unwrap().scrape().await.unwrap_err();
    let Some(ErrorKind::TimedOut {
        deadline,
        read_timeout,
        ..
    }) = err.registry_kind()
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (*deadline, *read_timeout),
        (Duration::from_secs(1), Duration::from_secs(10))
    );
    let message = err.to_string();
    assert!(
        message.contains("tag list page") && message.contains("1s request deadline"),
        "{message}"
    );
    server.abort();
}

/// Replaces the stored bytes of blob `digest` (the manifest still names the old digest
/// and size).
fn serve_instead(fake: &FakeRegistry, digest: &str, bytes: Vec<u8>) -> Blob {
    fake.with(|s| {
        s.repos
            .get_mut(REPO)
            .unwrap()
            .blobs
            .insert(digest.to_string(), Blob::Stored(bytes.into()))
            .unwrap()
    })
}

#[tokio::test]
async fn an_empty_or_truncated_metadata_layer_is_not_remembered_as_plain() {
    let fake = FakeRegistry::start();
    let manifest = one_release(&fake);
    let top = fake.layers_of(REPO, &manifest).pop().unwrap();
    let scraper = scraper(&fake);
    // Empty, then cut at a tar record boundary (a valid, shorter archive once unzipped):
    // neither may make the image "not a release" for the next scrape.
    let whole = serve_instead(&fake, &top, Vec::new());
    let Blob::Stored(bytes) = &whole else {
        unreachable!()
    };
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut unzipped)
        .unwrap();
    let cut = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &unzipped[..512]).unwrap();
        gz.finish().unwrap()
    };
    for (body, expected) in [
        (Vec::new(), format!("blob {top} is 0 bytes")),
        (cut.clone(), format!("blob {top} is {} bytes", cut.len())),
    ] {
        serve_instead(&fake, &top, body);
        let err = scraper.scrape().await.unwrap_err();
        let text = graph_data::keys::chain(&err);
        assert!(
            text.contains(&expected) && text.contains("4.18.0"),
            "{text}"
        );
    }
    serve_instead(&fake, &top, bytes.to_vec());
    let outcome = scraper.scrape().await.unwrap();
    assert_eq!(outcome.releases.len(), 1, "{:?}", outcome.stats);
    fake.stop().await;
}

#[tokio::test]
async fn a_layer_with_the_wrong_content_fails_as_a_digest_mismatch() {
    let fake = FakeRegistry::start();
    let manifest = one_release(&fake);
    let top = fake.layers_of(REPO, &manifest).pop().unwrap();
    let Blob::Stored(bytes) = serve_instead(&fake, &top, Vec::new()) else {
        unreachable!()
    };
    // Same size, other content: a component's layer.
    let mut other = bytes.to_vec();
    let last = other.len() - 1;
    other[last] ^= 0xff;
    let actual = digest_of(&other);
    serve_instead(&fake, &top, other);
    let err = scraper(&fake).scrape().await.unwrap_err();
    let text = graph_data::keys::chain(&err);
    assert!(
        text.contains(&format!("blob {top} hashes to {actual}")),
        "{text}"
    );
    fake.stop().await;
}

#[tokio::test]
async fn endless_empty_tag_pages_end_in_an_error_naming_the_page() {
    let fake = FakeRegistry::start();
    one_release(&fake);
    fake.with(|s| s.behaviour.endless_pages = Some(0));
    let err = tokio::time::timeout(std::time::Duration::from_secs(20), scraper(&fake).scrape())
        .await
        .expect("the listing ends")
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("tag list page") && text.contains("lists no tag but links to another page"),
        "{text}"
    );
    assert_eq!(fake.requests().len(), 1, "{:?}", fake.requests());
    fake.stop().await;
}
