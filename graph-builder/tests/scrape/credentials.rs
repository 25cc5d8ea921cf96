//! Where credentials go: only to the registry origin. Blobs redirected to storage on
//! another origin, a `Link` or upload `Location` naming another origin, and a token realm
//! on another origin are all reached without `Authorization`; the second fake plays the
//! other origin and records what it was sent.

use std::io::Write as _;

use base64::Engine as _;
use bytes::Bytes;
use graph_builder::registry::push::PushClient;
use graph_builder::registry::{ClientConfig, ErrorKind};
use graph_builder::scrape::Scraper;

use crate::fake::*;
use crate::{populate, REPO};

/// A config.json giving `robot:s3cret` for the fake's host.
fn credentials(fake: &FakeRegistry) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("robot:s3cret");
    write!(
        file.as_file(),
        r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
        fake.host()
    )
    .unwrap();
    file
}

fn scraper_with_credentials(fake: &FakeRegistry, file: &tempfile::NamedTempFile) -> Scraper {
    let mut settings = settings(fake, REPO);
    settings.client.credentials_path = Some(file.path().to_path_buf());
    Scraper::new(settings).unwrap()
}

/// Gives `other` the blobs of `fake`'s release repository (storage behind the registry).
fn copy_blobs(fake: &FakeRegistry, other: &FakeRegistry) {
    let blobs = fake.with(|s| s.repos[REPO].blobs.clone());
    other.with(|s| s.repos.entry(REPO.to_string()).or_default().blobs = blobs);
}

#[tokio::test]
async fn blobs_redirected_to_another_origin_are_fetched_without_credentials() {
    for bearer in [false, true] {
        let registry = FakeRegistry::start();
        let storage = FakeRegistry::start();
        populate(&registry);
        copy_blobs(&registry, &storage);
        registry.with(|s| {
            let user = ("robot".to_string(), "s3cret".to_string());
            if bearer {
                s.behaviour.bearer = Some(user);
                s.behaviour.token = "the-token".into();
            } else {
                s.behaviour.basic = Some(user);
            }
            s.behaviour.blob_redirect = Some(storage.url());
        });
        let file = credentials(&registry);

        let outcome = scraper_with_credentials(&registry, &file)
            .scrape()
            .await
            .unwrap();

        assert_eq!(outcome.releases.len(), 3, "bearer={bearer}");
        let fetched = storage.requests();
        assert!(
            fetched
                .iter()
                .any(|r| r.starts_with("GET /v2/ocp/release/blobs/sha256:")),
            "{fetched:?}"
        );
        assert_eq!(storage.with(|s| s.authorized.clone()), Vec::<String>::new());
        // The registry itself got them on every request after the challenge.
        let authorized = registry.with(|s| s.authorized.clone());
        assert!(
            authorized
                .iter()
                .any(|r| r.starts_with("GET /v2/ocp/release/blobs/")),
            "{authorized:?}"
        );
        registry.stop().await;
        storage.stop().await;
    }
}

#[tokio::test]
async fn redirects_are_followed_a_bounded_number_of_times() {
    let registry = FakeRegistry::start();
    let (digest, _) = registry.build("gd/image", |b| b.blob(b"a blob".to_vec()));
    // Every blob GET is sent to itself again.
    registry.with(|s| s.behaviour.blob_redirect = Some(registry.url()));
    let push = PushClient::new(&registry.url(), "gd/image", ClientConfig::default()).unwrap();

    let error = push.blob(&digest).await.unwrap_err();

    assert!(matches!(error.kind(), ErrorKind::Protocol(_)), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("redirected more than 5 times"), "{text}");
    // The first request and five hops, then it gives up.
    let expected = format!("GET /v2/gd/image/blobs/{digest}?");
    assert_eq!(registry.requests(), vec![expected; 6]);
    registry.stop().await;
}

#[tokio::test]
async fn a_link_to_another_origin_is_followed_without_credentials() {
    let registry = FakeRegistry::start();
    let elsewhere = FakeRegistry::start();
    populate(&registry);
    populate(&elsewhere);
    registry.with(|s| {
        s.behaviour.basic = Some(("robot".into(), "s3cret".into()));
        s.behaviour.page_size = Some(1);
        s.behaviour.absolute_links = true;
        s.behaviour.other_origin = Some(elsewhere.host());
    });
    let file = credentials(&registry);

    let outcome = scraper_with_credentials(&registry, &file).scrape().await;

    assert!(outcome.is_ok(), "{outcome:?}");
    assert!(
        elsewhere
            .requests()
            .iter()
            .any(|r| r.starts_with("GET /v2/ocp/release/tags/list")),
        "{:?}",
        elsewhere.requests()
    );
    assert_eq!(
        elsewhere.with(|s| s.authorized.clone()),
        Vec::<String>::new()
    );
    registry.stop().await;
    elsewhere.stop().await;
}

#[tokio::test]
async fn a_token_realm_on_another_origin_is_asked_without_credentials() {
    let registry = FakeRegistry::start();
    let realm = FakeRegistry::start();
    populate(&registry);
    for fake in [&registry, &realm] {
        fake.with(|s| {
            s.behaviour.bearer = Some(("robot".into(), "s3cret".into()));
            s.behaviour.token = "the-token".into();
        });
    }
    registry.with(|s| s.behaviour.other_origin = Some(realm.host()));
    let file = credentials(&registry);

    let error = scraper_with_credentials(&registry, &file)
        .scrape()
        .await
        .unwrap_err();

    assert!(
        matches!(error.registry_kind(), Some(ErrorKind::Unauthorized { .. })),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("another origin than the registry, so it was asked without credentials"),
        "{text}"
    );
    assert_eq!(realm.requests().len(), 1, "{:?}", realm.requests());
    assert_eq!(realm.with(|s| s.authorized.clone()), Vec::<String>::new());
    registry.stop().await;
    realm.stop().await;
}

#[tokio::test]
async fn an_upload_location_on_another_origin_gets_no_credentials() {
    let registry = FakeRegistry::start();
    let elsewhere = FakeRegistry::start();
    registry.with(|s| {
        s.behaviour.basic = Some(("robot".into(), "s3cret".into()));
        s.behaviour.absolute_upload_location = true;
        s.behaviour.other_origin = Some(elsewhere.host());
    });
    let file = credentials(&registry);
    let config = ClientConfig {
        credentials_path: Some(file.path().to_path_buf()),
        ..ClientConfig::default()
    };
    let push = PushClient::new(&registry.url(), "gd/image", config).unwrap();

    let bytes = Bytes::from_static(b"a layer");
    push.push_blob(bytes.clone()).await.unwrap();

    assert_eq!(
        elsewhere.requests(),
        [format!(
            "PUT /v2/gd/image/blobs/uploads/upload-1?state=opaque&digest={}",
            digest_of(&bytes).replace(':', "%3A")
        )]
    );
    assert_eq!(
        elsewhere.with(|s| s.authorized.clone()),
        Vec::<String>::new()
    );
    assert!(!registry.with(|s| s.authorized.is_empty()));
    registry.stop().await;
    elsewhere.stop().await;
}

#[tokio::test]
async fn credentials_in_the_registry_url_work_and_are_never_shown() {
    let registry = FakeRegistry::start();
    populate(&registry);
    registry.with(|s| s.behaviour.basic = Some(("robot".into(), "s3cret".into())));
    let mut settings = settings(&registry, REPO);
    settings.registry = format!("http://robot:s3cret@{}", registry.host());
    let scraper = Scraper::new(settings).unwrap();

    assert_eq!(scraper.scrape().await.unwrap().releases.len(), 3);
    assert!(!format!("{scraper:?}").contains("s3cret"));

    // A refusal names the registry without them.
    registry.with(|s| s.behaviour.fail_always = Some(("/tags/list".into(), 403)));
    let text = scraper.scrape().await.unwrap_err().to_string();
    assert!(
        !text.contains("s3cret") && text.contains(&registry.host()),
        "{text}"
    );
    registry.stop().await;
}
