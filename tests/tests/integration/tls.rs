//! A registry served over HTTPS by a test CA: the scraper trusts it through a CA
//! directory holding a PEM bundle (our CA second, as in real trust bundles), and without
//! that CA the scrape fails naming the registry and repository.

use graph_builder::registry::ErrorKind;
use graph_builder::scrape::{ScrapeError, Scraper};
use integration_tests::{Format, Pusher, RegistryOptions, TestRegistry};

use crate::support::{settings, simple_release, versions};

async fn https_registry() -> anyhow::Result<(TestRegistry, String)> {
    let options = RegistryOptions {
        tls: true,
        ..RegistryOptions::anonymous()
    };
    let registry = TestRegistry::start(options)?;
    let image = simple_release(Format::Docker, "amd64", "4.9.0", &[]);
    let digest = Pusher::new(&registry)
        .push_image("secure", "4.9.0", &image)
        .await?;
    Ok((registry, digest))
}

#[tokio::test]
async fn https_registry_is_trusted_through_the_second_certificate_of_a_bundle() -> anyhow::Result<()>
{
    let (registry, digest) = https_registry().await?;
    let tls = registry.tls().expect("a TLS registry");
    let unrelated = rcgen::generate_simple_self_signed(vec!["unrelated.example".to_owned()])?;
    let ca_dir = registry.scratch_dir().join("trust");
    std::fs::create_dir_all(&ca_dir)?;
    let bundle = format!("{}{}", unrelated.cert.pem(), tls.ca_pem);
    std::fs::write(ca_dir.join("tls-ca-bundle.pem"), bundle)?;
    let mut settings = settings(&registry, "secure");
    // No scheme: HTTPS, as for a production mirror.
    settings.registry = registry.host_port();
    settings.client.ca_dir = Some(ca_dir);

    let outcome = Scraper::new(settings)?.scrape().await?;

    assert_eq!(versions(&outcome), ["4.9.0+amd64"]);
    assert_eq!(
        outcome.releases[0].payload,
        format!("{}/secure@{digest}", registry.host_port())
    );
    Ok(())
}

#[tokio::test]
async fn https_registry_without_its_ca_fails_naming_registry_and_repository() -> anyhow::Result<()>
{
    let (registry, _) = https_registry().await?;
    let mut settings = settings(&registry, "secure");
    settings.registry = registry.host_port();

    let started = std::time::Instant::now();
    let error = Scraper::new(settings)?.scrape().await.unwrap_err();

    // Not retried: a certificate does not get better with backoff (four attempts with
    // backoff take 1.4 s at least).
    assert!(
        matches!(error.registry_kind(), Some(ErrorKind::Certificate(_))),
        "{error:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(1000));
    let message = error.to_string();
    assert!(
        message.contains(&registry.host_port()),
        "no registry in: {message}"
    );
    assert!(message.contains("secure"), "no repository in: {message}");
    let mut chain = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(&error);
    while let Some(e) = source {
        chain.push_str(&format!("{e}: "));
        source = e.source();
    }
    assert!(
        chain.to_lowercase().contains("certificate"),
        "no certificate problem in: {chain}"
    );
    Ok(())
}

#[tokio::test]
async fn https_registry_under_a_name_its_certificate_lacks_fails_at_once() -> anyhow::Result<()> {
    let (registry, _) = https_registry().await?;
    let tls = registry.tls().expect("a TLS registry");
    let mut settings = settings(&registry, "secure");
    // The certificate names 127.0.0.1 only.
    let port = registry
        .host_port()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    settings.registry = format!("localhost:{port}");
    settings.client.ca_dir = Some(tls.ca_dir.clone());

    let error = Scraper::new(settings)?.scrape().await.unwrap_err();

    let ScrapeError::Registry(registry_error) = &error else {
        panic!("not a registry error: {error:?}");
    };
    assert!(
        matches!(registry_error.kind(), ErrorKind::Certificate(_)),
        "not a certificate error: {error:?}"
    );
    assert_eq!(
        (registry_error.registry(), registry_error.repository()),
        (format!("localhost:{port}").as_str(), "secure")
    );
    assert!(
        format!("{error:?}").contains("NotValidForName"),
        "{error:?}"
    );
    Ok(())
}
