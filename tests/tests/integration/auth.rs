//! Registry credentials: a private registry scraped with and without a docker
//! `config.json`, credentials configured for a registry that does not ask for them, and
//! blobs redirected to storage on another origin, which never sees them.

use base64::Engine as _;
use graph_builder::registry::ErrorKind;
use graph_builder::scrape::ScrapeError;
use graph_builder::scrape::Scraper;
use integration_tests::redirect::RedirectingFront;
use integration_tests::{Credentials, Format, Pusher, RegistryOptions, TestRegistry};

use crate::support::{expected_metadata, release, settings, simple_release, v, versions};

async fn private_registry_with_two_releases() -> anyhow::Result<(TestRegistry, Vec<String>)> {
    let registry = TestRegistry::start(RegistryOptions::private("alice", "s3cret"))?;
    let pusher = Pusher::new(&registry);
    let mut digests = Vec::new();
    for (version, previous) in [("0.0.0", vec![]), ("0.0.1", vec!["0.0.0"])] {
        let image = simple_release(Format::Docker, "amd64", version, &previous);
        digests.push(
            pusher
                .push_image("private/release", version, &image)
                .await?,
        );
    }
    Ok((registry, digests))
}

#[tokio::test]
async fn private_repository_scrapes_with_credentials_from_a_docker_config() -> anyhow::Result<()> {
    let (registry, digests) = private_registry_with_two_releases().await?;
    let config = registry.scratch_dir().join("config.json");
    let credentials = registry.credentials().expect("a private registry").clone();
    registry.write_docker_config(&config, &credentials)?;
    let mut settings = settings(&registry, "private/release");
    settings.client.credentials_path = Some(config);

    let outcome = Scraper::new(settings)?.scrape().await?;

    assert_eq!(versions(&outcome), ["0.0.0+amd64", "0.0.1+amd64"]);
    let r = release(&outcome, "0.0.1+amd64");
    assert_eq!(
        r.payload,
        format!("{}/private/release@{}", registry.host_port(), digests[1])
    );
    assert_eq!(*r.previous, [v("0.0.0")]);
    let url = "https://example.com/errata/0.0.1";
    assert_eq!(
        r.metadata,
        expected_metadata(&[("url", url)], &digests[1], "amd64")
    );
    Ok(())
}

fn assert_unauthorized_naming_target(error: &ScrapeError, registry: &TestRegistry) {
    assert!(
        matches!(error.registry_kind(), Some(ErrorKind::Unauthorized { .. })),
        "expected Unauthorized: {error:#}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&registry.host_port()),
        "no registry in: {message}"
    );
    assert!(
        message.contains("private/release"),
        "no repository in: {message}"
    );
}

#[tokio::test]
async fn private_repository_without_credentials_fails_naming_registry_and_repository(
) -> anyhow::Result<()> {
    let (registry, _) = private_registry_with_two_releases().await?;

    let error = Scraper::new(settings(&registry, "private/release"))?
        .scrape()
        .await
        .unwrap_err();

    assert_unauthorized_naming_target(&error, &registry);
    Ok(())
}

#[tokio::test]
async fn private_repository_with_a_wrong_password_fails_naming_registry_and_repository(
) -> anyhow::Result<()> {
    let (registry, _) = private_registry_with_two_releases().await?;
    let config = registry.scratch_dir().join("config.json");
    let wrong = Credentials {
        username: "alice".into(),
        password: "guess".into(),
    };
    registry.write_docker_config(&config, &wrong)?;
    let mut settings = settings(&registry, "private/release");
    settings.client.credentials_path = Some(config);

    let error = Scraper::new(settings)?.scrape().await.unwrap_err();

    assert_unauthorized_naming_target(&error, &registry);
    Ok(())
}

#[tokio::test]
async fn credentials_for_an_anonymous_registry_are_harmless() -> anyhow::Result<()> {
    // The reference fails here ("missing authentication header WWW-Authenticate").
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let image = simple_release(Format::Docker, "amd64", "0.0.1", &[]);
    Pusher::new(&registry)
        .push_image("public", "0.0.1", &image)
        .await?;
    let config = registry.scratch_dir().join("config.json");
    let credentials = Credentials {
        username: "bob".into(),
        password: "unused".into(),
    };
    registry.write_docker_config(&config, &credentials)?;
    let mut settings = settings(&registry, "public");
    settings.client.credentials_path = Some(config);

    let outcome = Scraper::new(settings)?.scrape().await?;

    assert_eq!(versions(&outcome), ["0.0.1+amd64"]);
    assert_eq!(outcome.releases[0].manifestref, image.digest);
    Ok(())
}

#[tokio::test]
async fn blobs_redirected_to_another_origin_never_get_the_credentials() -> anyhow::Result<()> {
    let (registry, digests) = private_registry_with_two_releases().await?;
    let front = RedirectingFront::start(&registry).await?;
    let credentials = registry.credentials().expect("a private registry").clone();
    let config = registry.scratch_dir().join("front-config.json");
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credentials.username, credentials.password));
    std::fs::write(
        &config,
        serde_json::json!({"auths": {front.front.clone(): {"auth": auth}}}).to_string(),
    )?;
    let mut settings = settings(&registry, "private/release");
    settings.registry = format!("http://{}", front.front);
    settings.client.credentials_path = Some(config);

    let outcome = Scraper::new(settings)?.scrape().await?;

    assert_eq!(versions(&outcome), ["0.0.0+amd64", "0.0.1+amd64"]);
    assert_eq!(outcome.releases.len(), digests.len());
    let storage = front.storage_log();
    // Every blob (configs and the release layers) came from storage, without credentials.
    assert!(
        storage.requests.len() >= 4
            && storage
                .requests
                .iter()
                .all(|r| r.starts_with("GET /v2/private/release/blobs/sha256:")),
        "{storage:?}"
    );
    assert_eq!(storage.authorized, Vec::<String>::new());
    Ok(())
}
