//! Registry TLS as sites set it up, against the real registry serving each certificate
//! shape: a test CA's leaf through a PEM bundle, a chain with an intermediate, the
//! self-signed certificate `openssl req -x509` makes (OpenSSL marks it `CA:TRUE`) and a
//! self-signed leaf without the CA flag, both trusted because they are in the CA
//! directory. Each refusal is asserted word for word: unknown issuer, wrong name (with
//! the names the certificate is valid for), expired (with the date), self-signed but not
//! in the CA directory, each with the CA directory and how many certificates it gave.

use std::path::{Path, PathBuf};
use std::process::Command;

use graph_builder::registry::ErrorKind;
use graph_builder::scrape::{ScrapeError, Scraper};
use integration_tests::{Format, Pusher, RegistryOptions, ServerCertificate, TestRegistry};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::support::{settings, simple_release, versions};

/// Starts a registry serving `certificate` (or the harness's test CA leaf) and pushes
/// one release to `secure`.
async fn https_registry(
    certificate: Option<ServerCertificate>,
) -> anyhow::Result<(TestRegistry, String)> {
    let options = RegistryOptions {
        tls: certificate.is_none(),
        server_certificate: certificate,
        ..RegistryOptions::anonymous()
    };
    let registry = TestRegistry::start(options)?;
    let image = simple_release(Format::Docker, "amd64", "4.9.0", &[]);
    let digest = Pusher::new(&registry)
        .push_image("secure", "4.9.0", &image)
        .await?;
    Ok((registry, digest))
}

/// A CA directory holding `pems` as `ca-<i>.pem`, one file each.
fn ca_dir(registry: &TestRegistry, pems: &[&str]) -> anyhow::Result<PathBuf> {
    let dir = registry.scratch_dir().join("trust");
    std::fs::create_dir_all(&dir)?;
    for (i, pem) in pems.iter().enumerate() {
        std::fs::write(dir.join(format!("ca-{i}.pem")), pem)?;
    }
    Ok(dir)
}

/// The port of `127.0.0.1:PORT`.
fn port(registry: &TestRegistry) -> String {
    registry
        .host_port()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Scrapes `secure` at `host` (no scheme: HTTPS, as for a production mirror).
async fn scrape(
    registry: &TestRegistry,
    host: String,
    ca_dir: Option<PathBuf>,
) -> Result<graph_builder::scrape::ScrapeOutcome, ScrapeError> {
    let mut settings = settings(registry, "secure");
    settings.registry = host;
    settings.client.ca_dir = ca_dir;
    Scraper::new(settings)?.scrape().await
}

/// The refusal message of a certificate error, or a panic naming what came instead.
fn refusal(result: Result<graph_builder::scrape::ScrapeOutcome, ScrapeError>) -> String {
    match result {
        Err(error) if matches!(error.registry_kind(), Some(ErrorKind::Certificate { .. })) => {
            error.to_string()
        }
        other => panic!("not a certificate refusal: {other:?}"),
    }
}

/// `openssl req -x509` as admins run it: a self-signed certificate and key, with the
/// subjectAltName given. OpenSSL's default extensions make it `CA:TRUE`.
fn openssl_self_signed(dir: &Path, cn: &str, san: &str) -> anyhow::Result<ServerCertificate> {
    let chain = dir.join("openssl-cert.pem");
    let key = dir.join("openssl-key.pem");
    let output = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&chain)
        .args(["-subj", &format!("/CN={cn}"), "-addext"])
        .arg(format!("subjectAltName={san}"))
        .output()
        .map_err(|e| anyhow::anyhow!("running openssl (hack/test.sh installs it): {e}"))?;
    anyhow::ensure!(
        output.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&chain)
        .output()?;
    // The shape under test: OpenSSL marked the leaf as a CA.
    anyhow::ensure!(
        String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"),
        "openssl did not mark the certificate CA:TRUE"
    );
    Ok(ServerCertificate { chain, key })
}

/// Writes a chain (leaf first) and key under `dir`.
fn write_chain(dir: &Path, pems: &[String], key: &KeyPair) -> anyhow::Result<ServerCertificate> {
    let chain = dir.join("chain.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&chain, pems.concat())?;
    std::fs::write(&key_path, key.serialize_pem())?;
    Ok(ServerCertificate {
        chain,
        key: key_path,
    })
}

fn ca_params(cn: &str) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, cn);
    Ok(params)
}

/// The start of a refusal of the first request, the tag listing, at `host`.
fn refused(host: &str) -> String {
    format!("registry {host}, repository secure, tag list page https://{host}/v2/secure/tags/list?n=1000: TLS certificate refused")
}

fn trusted(dir: &Path, certificates: usize, files: usize) -> String {
    format!(
        "trusted: CA directory {} ({certificates} certificate(s) loaded from {files} file(s)) and the system roots",
        dir.display()
    )
}

#[tokio::test]
async fn https_registry_is_trusted_through_the_second_certificate_of_a_bundle() -> anyhow::Result<()>
{
    let (registry, digest) = https_registry(None).await?;
    let tls = registry.tls().expect("a TLS registry");
    let unrelated = rcgen::generate_simple_self_signed(vec!["unrelated.example".to_owned()])?;
    let dir = registry.scratch_dir().join("trust");
    std::fs::create_dir_all(&dir)?;
    let bundle = format!("{}{}", unrelated.cert.pem(), tls.ca_pem);
    std::fs::write(dir.join("tls-ca-bundle.pem"), bundle)?;

    let outcome = scrape(&registry, registry.host_port(), Some(dir)).await?;

    assert_eq!(versions(&outcome), ["4.9.0+amd64"]);
    assert_eq!(
        outcome.releases[0].payload,
        format!("{}/secure@{digest}", registry.host_port())
    );
    Ok(())
}

#[tokio::test]
async fn openssl_self_signed_certificate_in_the_ca_directory_is_trusted_for_its_names(
) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let cert = openssl_self_signed(
        scratch.path(),
        "registry.site.example",
        "DNS:registry.site.example,IP:127.0.0.1",
    )?;
    let pem = std::fs::read_to_string(&cert.chain)?;
    let (registry, _) = https_registry(Some(cert)).await?;
    let dir = ca_dir(&registry, &[&pem])?;

    let outcome = scrape(&registry, registry.host_port(), Some(dir.clone())).await?;
    assert_eq!(versions(&outcome), ["4.9.0+amd64"]);

    // Trusted for its own names only.
    let message = refusal(
        scrape(
            &registry,
            format!("localhost:{}", port(&registry)),
            Some(dir.clone()),
        )
        .await,
    );
    assert_eq!(
        message,
        format!(
            "{}: the certificate is not valid for localhost: it is valid for registry.site.example, 127.0.0.1; {}",
            refused(&format!("localhost:{}", port(&registry))),
            trusted(&dir, 1, 1)
        )
    );
    Ok(())
}

#[tokio::test]
async fn self_signed_leaf_without_the_ca_flag_in_the_ca_directory_is_trusted() -> anyhow::Result<()>
{
    let scratch = tempfile::tempdir()?;
    let key = KeyPair::generate()?;
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])?.self_signed(&key)?;
    let cert = write_chain(scratch.path(), &[leaf.pem()], &key)?;
    let (registry, _) = https_registry(Some(cert)).await?;
    let dir = ca_dir(&registry, &[&leaf.pem()])?;

    let outcome = scrape(&registry, registry.host_port(), Some(dir)).await?;

    assert_eq!(versions(&outcome), ["4.9.0+amd64"]);
    Ok(())
}

#[tokio::test]
async fn chain_with_an_intermediate_is_trusted_through_its_root() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let root = CertifiedIssuer::self_signed(ca_params("site root CA")?, KeyPair::generate()?)?;
    let intermediate = CertifiedIssuer::signed_by(
        ca_params("site intermediate CA")?,
        KeyPair::generate()?,
        &root,
    )?;
    let key = KeyPair::generate()?;
    let leaf =
        CertificateParams::new(vec!["127.0.0.1".to_owned()])?.signed_by(&key, &intermediate)?;
    let cert = write_chain(scratch.path(), &[leaf.pem(), intermediate.pem()], &key)?;
    let (registry, _) = https_registry(Some(cert)).await?;
    let dir = ca_dir(&registry, &[&root.pem()])?;

    let outcome = scrape(&registry, registry.host_port(), Some(dir)).await?;

    assert_eq!(versions(&outcome), ["4.9.0+amd64"]);
    Ok(())
}

#[tokio::test]
async fn unknown_issuer_is_refused_at_once_naming_the_issuer_and_the_ca_directory(
) -> anyhow::Result<()> {
    let (registry, _) = https_registry(None).await?;
    let unrelated = rcgen::generate_simple_self_signed(vec!["unrelated.example".to_owned()])?;
    let dir = ca_dir(&registry, &[&unrelated.cert.pem()])?;

    let started = std::time::Instant::now();
    let message = refusal(scrape(&registry, registry.host_port(), Some(dir.clone())).await);

    // Not retried: a certificate does not get better with backoff (four attempts with
    // backoff take 1.4 s at least).
    assert!(started.elapsed() < std::time::Duration::from_millis(1000));
    assert_eq!(
        message,
        format!(
            "{}: the certificate for 127.0.0.1 is issued by an unknown issuer (CN=integration-tests registry CA): put that CA's certificate in the CA directory; {}",
            refused(&registry.host_port()),
            trusted(&dir, 1, 1)
        )
    );

    // Without a CA directory, the message says only the system roots were trusted.
    let message = refusal(scrape(&registry, registry.host_port(), None).await);
    assert!(
        message.ends_with("; trusted: the system roots only (no CA directory configured)"),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn wrong_name_is_refused_listing_the_names_the_certificate_is_valid_for() -> anyhow::Result<()>
{
    let (registry, _) = https_registry(None).await?;
    let tls = registry.tls().expect("a TLS registry");
    // The certificate names 127.0.0.1 only.
    let host = format!("localhost:{}", port(&registry));

    let message = refusal(scrape(&registry, host.clone(), Some(tls.ca_dir.clone())).await);

    assert_eq!(
        message,
        format!(
            "{}: the certificate is not valid for localhost: it is valid for 127.0.0.1; {}",
            refused(&host),
            trusted(&tls.ca_dir, 1, 1)
        )
    );
    Ok(())
}

#[tokio::test]
async fn expired_certificate_is_refused_with_its_date() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let ca = CertifiedIssuer::self_signed(ca_params("site CA")?, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()])?;
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let leaf = params.signed_by(&key, &ca)?;
    let cert = write_chain(scratch.path(), &[leaf.pem()], &key)?;
    let (registry, _) = https_registry(Some(cert)).await?;
    let dir = ca_dir(&registry, &[&ca.pem()])?;

    let message = refusal(scrape(&registry, registry.host_port(), Some(dir.clone())).await);

    let (head, tail) = message
        .split_once(" (now ")
        .unwrap_or_else(|| panic!("no current time in: {message}"));
    assert_eq!(
        head,
        format!(
            "{}: the certificate expired on 2021-01-01T00:00:00Z",
            refused(&registry.host_port())
        )
    );
    // `YYYY-MM-DDTHH:MM:SSZ); trusted: ...`
    assert_eq!(
        tail.len(),
        "2026-01-01T00:00:00Z); ".len() + trusted(&dir, 1, 1).len()
    );
    assert!(
        tail.ends_with(&format!("Z); {}", trusted(&dir, 1, 1))),
        "{tail}"
    );
    Ok(())
}

#[tokio::test]
async fn expired_self_signed_certificate_in_the_ca_directory_is_refused_with_its_date(
) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()])?;
    params.not_before = rcgen::date_time_ymd(2019, 6, 1);
    params.not_after = rcgen::date_time_ymd(2020, 6, 1);
    let leaf = params.self_signed(&key)?;
    let cert = write_chain(scratch.path(), &[leaf.pem()], &key)?;
    let (registry, _) = https_registry(Some(cert)).await?;
    let dir = ca_dir(&registry, &[&leaf.pem()])?;

    let message = refusal(scrape(&registry, registry.host_port(), Some(dir)).await);

    assert!(
        message.contains(": the certificate expired on 2020-06-01T00:00:00Z (now "),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn self_signed_certificate_not_in_the_ca_directory_is_refused_saying_so() -> anyhow::Result<()>
{
    let scratch = tempfile::tempdir()?;
    let cert = openssl_self_signed(scratch.path(), "registry.site.example", "IP:127.0.0.1")?;
    let (registry, _) = https_registry(Some(cert)).await?;
    let unrelated = rcgen::generate_simple_self_signed(vec!["unrelated.example".to_owned()])?;
    let other = rcgen::generate_simple_self_signed(vec!["other.example".to_owned()])?;
    let dir = ca_dir(&registry, &[&unrelated.cert.pem(), &other.cert.pem()])?;

    let message = refusal(scrape(&registry, registry.host_port(), Some(dir.clone())).await);

    assert_eq!(
        message,
        format!(
            "{}: the certificate for 127.0.0.1 is self-signed (CN=registry.site.example) and is not in the CA directory: put that certificate (the registry's own) in the CA directory to trust it; {}",
            refused(&registry.host_port()),
            trusted(&dir, 2, 2)
        )
    );
    Ok(())
}
