//! HTTPS registries: extra CAs come from every certificate of every PEM bundle in the CA
//! directory.

mod common;

use common::tls::TlsFront;
use common::*;
use graph_builder::registry::ScrapeError;
use graph_builder::scrape::Scraper;

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
    settings.root_certificate_dir = Some(dir.path().to_path_buf());
    let outcome = Scraper::new(settings.clone())
        .unwrap()
        .scrape()
        .await
        .unwrap();
    assert_eq!(outcome.releases.len(), 1);
    assert!(outcome.releases[0]
        .payload
        .starts_with(&format!("{}/ocp/release@sha256:", front.addr)));

    settings.root_certificate_dir = None;
    let err = Scraper::new(settings).unwrap().scrape().await.unwrap_err();
    assert!(matches!(err, ScrapeError::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains(&front.addr.to_string()), "{err}");
    fake.stop().await;
}
