//! Registry authentication: Bearer challenges with config.json credentials, anonymous
//! registries, and HTTPS with extra CAs from PEM bundles.

use std::io::Write as _;

use base64::Engine as _;

use crate::fake::tls::TlsFront;
use crate::fake::*;
use crate::{populate, REPO};
use graph_builder::registry::ErrorKind;
use graph_builder::scrape::Scraper;

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
    settings.client.credentials_path = Some(config.path().to_path_buf());
    let scraper = Scraper::new(settings.clone()).unwrap();
    let outcome = scraper.scrape().await.unwrap();
    assert_eq!(outcome.releases.len(), 3);
    let scopes = fake.with(|s| s.token_scopes.clone());
    assert_eq!(scopes, ["repository:ocp/release:pull"]);
    let shown = format!("{scraper:?}");
    assert!(
        !shown.contains("first-token") && shown.contains("redacted"),
        "{shown}"
    );
    // The token outlives the scrape: a warm scrape is the tag page and one HEAD per tag.
    let warm = scraper.scrape().await.unwrap();
    assert_eq!(warm.stats.http_requests, 1 + 4);
    assert_eq!(fake.with(|s| s.token_scopes.len()), 1);
    // An expired token (the registry forgets it) is replaced on the first 401.
    fake.with(|s| s.behaviour.token = "rotated".into());
    assert_eq!(scraper.scrape().await.unwrap().releases.len(), 3);
    assert!(fake.with(|s| s.token_scopes.len()) >= 2);

    // Without credentials the token endpoint refuses: a clear error naming registry and repo.
    settings.client.credentials_path = None;
    let err = Scraper::new(settings).unwrap().scrape().await.unwrap_err();
    assert!(
        matches!(err.registry_kind(), Some(ErrorKind::Unauthorized { .. })),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&fake.host()) && text.contains(REPO) && text.contains("UNAUTHORIZED"),
        "{text}"
    );
    let tried = format!(
        "keys tried: {host}/ocp/release, {host}/ocp, {host}",
        host = fake.host()
    );
    assert!(text.contains(&tried), "{text}");
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
    settings.client.credentials_path = Some(config.path().to_path_buf());
    let outcome = Scraper::new(settings).unwrap().scrape().await.unwrap();
    assert_eq!(outcome.releases.len(), 3);
    assert!(fake.with(|s| s.token_scopes.is_empty()));
    fake.stop().await;
}

#[tokio::test]
async fn an_https_registry_is_trusted_through_the_second_certificate_of_a_bundle() {
    let fake = FakeRegistry::start();
    fake.build("ocp/release", |b| {
        let d = b.release(DOCKER_MANIFEST, "amd64", &metadata_json("4.19.0", &[], &[]));
        b.tag("4.19.0", &d);
    });
    let front = TlsFront::start(fake.addr).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pem")).unwrap();
    let unrelated = rcgen::generate_simple_self_signed(vec!["unrelated.example".to_string()])
        .unwrap()
        .cert
        .pem();
    let bundle = format!("{unrelated}{}", front.ca_pem);
    std::fs::write(dir.path().join("pem/tls-ca-bundle.pem"), bundle).unwrap();

    let mut settings = settings(&fake, "ocp/release");
    settings.registry = format!("https://{}", front.addr);
    settings.client.ca_dir = Some(dir.path().to_path_buf());
    let outcome = Scraper::new(settings.clone())
        .unwrap()
        .scrape()
        .await
        .unwrap();
    assert_eq!(outcome.releases.len(), 1);
    assert!(outcome.releases[0]
        .payload
        .starts_with(&format!("{}/ocp/release@sha256:", front.addr)));

    settings.client.ca_dir = None;
    let err = Scraper::new(settings).unwrap().scrape().await.unwrap_err();
    // Refused at once: another attempt would meet the same certificate.
    assert!(
        matches!(err.registry_kind(), Some(ErrorKind::Certificate { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains(&front.addr.to_string()), "{err}");
    fake.stop().await;
}

#[tokio::test]
async fn basic_challenge_with_credentials_and_without() {
    let fake = FakeRegistry::start();
    populate(&fake);
    fake.with(|s| s.behaviour.basic = Some(("robot".into(), "pw:with:colons".into())));
    let config = tempfile::NamedTempFile::new().unwrap();
    write!(
        config.as_file(),
        r#"{{"auths": {{"{}": {{"username": "robot", "password": "pw:with:colons"}}}}}}"#,
        fake.host()
    )
    .unwrap();
    let mut settings = settings(&fake, REPO);
    settings.client.credentials_path = Some(config.path().to_path_buf());
    let scraper = Scraper::new(settings.clone()).unwrap();
    assert_eq!(scraper.scrape().await.unwrap().releases.len(), 3);
    let warm = scraper.scrape().await.unwrap();
    assert_eq!(warm.stats.http_requests, 1 + 4, "the Basic header is kept");

    settings.client.credentials_path = None;
    let err = Scraper::new(settings).unwrap().scrape().await.unwrap_err();
    assert!(
        matches!(err.registry_kind(), Some(ErrorKind::Unauthorized { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("Basic"), "{err}");
    fake.stop().await;
}
