//! The harness proves itself with an independent client: what the pusher wrote is what
//! skopeo reads back, digests included; private registries refuse anonymous clients.

use integration_tests::images::{signature_image, signature_tag};
use integration_tests::{
    skopeo, Format, ImageBuilder, Index, Layer, Pusher, RegistryOptions, ReleaseMetadata,
    TestRegistry,
};
use rand::SeedableRng as _;

fn release(format: Format, arch: &str, version: &str) -> integration_tests::Image {
    integration_tests::images::release_image(
        format,
        arch,
        &ReleaseMetadata::new(version)
            .previous(&["0.0.1"])
            .with("url", "https://example.com"),
    )
}

#[tokio::test]
async fn skopeo_reads_back_a_pushed_docker_image_with_its_digest() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let image = release(Format::Docker, "amd64", "0.0.2");
    let digest = Pusher::new(&registry)
        .push_image("ocp/release", "0.0.2", &image)
        .await?;
    assert_eq!(digest, image.digest);
    assert_eq!(
        skopeo::inspect_digest(&registry, "ocp/release", "0.0.2")?,
        image.digest
    );
    assert_eq!(
        skopeo::inspect_raw(&registry, "ocp/release", "0.0.2")?,
        image.manifest.to_vec()
    );
    Ok(())
}

#[tokio::test]
async fn skopeo_reads_back_an_oci_index_byte_for_byte() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let index = Index::new(
        Format::Oci,
        vec![
            release(Format::Oci, "amd64", "0.0.3"),
            release(Format::Oci, "arm64", "0.0.3"),
        ],
    );
    let digest = Pusher::new(&registry)
        .push("multi", "0.0.3", &index.clone().into())
        .await?;
    assert_eq!(digest, index.digest);
    assert_eq!(
        skopeo::inspect_raw(&registry, "multi", "0.0.3")?,
        index.manifest.to_vec()
    );
    // skopeo reports the digest of what the tag points at: the index itself.
    assert_eq!(
        skopeo::inspect_digest(&registry, "multi", "0.0.3")?,
        index.digest
    );
    Ok(())
}

#[tokio::test]
async fn private_registry_refuses_anonymous_clients_and_accepts_credentials() -> anyhow::Result<()>
{
    let registry = TestRegistry::start(RegistryOptions::private("alice", "s3cret"))?;
    let image = release(Format::Docker, "amd64", "0.0.1");
    Pusher::new(&registry)
        .push_image("private", "0.0.1", &image)
        .await?;
    assert_eq!(
        skopeo::inspect_digest(&registry, "private", "0.0.1")?,
        image.digest
    );

    let url = format!("{}/v2/private/manifests/0.0.1", registry.base_url());
    let anonymous = reqwest::get(&url).await?;
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test]
async fn component_and_signature_images_push_and_are_reproducible() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let build = || {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        ImageBuilder::new(Format::Docker)
            .label("component", "etcd")
            .layer(Layer::random(Format::Docker, &mut rng, 256 * 1024))
            .build()
    };
    let component = build();
    assert_eq!(
        component.digest,
        build().digest,
        "seeded layers must be reproducible"
    );
    let pusher = Pusher::new(&registry);
    pusher.push_image("mixed", "4.1.0-etcd", &component).await?;
    let signature = signature_image(&component.digest, "example.com/mixed");
    let tag = signature_tag(&component.digest);
    pusher.push_image("mixed", &tag, &signature).await?;
    assert_eq!(
        skopeo::inspect_raw(&registry, "mixed", &tag)?,
        signature.manifest.to_vec()
    );
    assert_eq!(
        skopeo::inspect_digest(&registry, "mixed", "4.1.0-etcd")?,
        component.digest
    );
    Ok(())
}

#[test]
fn dropping_the_registry_stops_the_server() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let addr = registry.host_port();
    assert!(std::net::TcpStream::connect(&addr).is_ok());
    drop(registry);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "{addr} still accepts connections"
    );
    Ok(())
}

#[test]
fn a_missing_registry_binary_says_how_to_install_it() {
    let options = RegistryOptions {
        binary: "/nonexistent/docker-registry".into(),
        ..RegistryOptions::anonymous()
    };
    let error = TestRegistry::start(options).unwrap_err().to_string();
    assert!(error.contains("/nonexistent/docker-registry"), "{error}");
    assert!(error.contains("hack/test.sh"), "{error}");
}

#[test]
fn a_registry_that_exits_at_start_fails_with_its_log() {
    // `false` exits at once: the harness must report that, not wait for /v2/ forever.
    let options = RegistryOptions {
        binary: "/bin/false".into(),
        ..RegistryOptions::anonymous()
    };
    let error = TestRegistry::start(options).unwrap_err().to_string();
    assert!(error.contains("exited"), "{error}");
    assert!(error.contains("registry.log"), "{error}");
}
