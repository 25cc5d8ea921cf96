//! Registry credentials: a private registry scraped with and without a docker
//! `config.json`, and credentials configured for a registry that does not ask for them.

use graph_builder::registry::ErrorKind;
use graph_builder::scrape::ScrapeError;
use graph_builder::scrape::Scraper;
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
    assert_eq!(r.previous, [v("0.0.0")]);
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
