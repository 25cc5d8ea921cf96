//! The registry client's limits against a real registry: a manifest or a tag list over its
//! limit fails the scrape with a typed error naming the limit (every tag fails), a config
//! blob over its limit fails its tag, and a push tool reading a base layer over its blob
//! limit fails too.

use graph_builder::registry::{ErrorKind, Limited};
use graph_builder::scrape::Scraper;
use integration_tests::{Format, Pusher, RegistryOptions, TestRegistry};

use crate::support::{push_multi_arch_repo, settings};

fn too_large(error: &graph_builder::scrape::ScrapeError) -> (Limited, u64) {
    match error.registry_kind() {
        Some(ErrorKind::TooLarge { what, limit }) => (*what, *limit),
        _ => panic!("not a limit error: {error:?}"),
    }
}

#[tokio::test]
async fn manifests_configs_and_tag_lists_over_their_limits_fail_naming_the_limit(
) -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    push_multi_arch_repo(&Pusher::new(&registry), "limits").await?;

    // Within the limits the repository scrapes (five tags, five releases).
    let mut within = settings(&registry, "limits");
    within.client.limits.max_tags = 5;
    assert_eq!(Scraper::new(within)?.scrape().await?.releases.len(), 5);

    let mut tags = settings(&registry, "limits");
    tags.client.limits.max_tags = 4;
    let error = Scraper::new(tags)?.scrape().await.unwrap_err();
    assert_eq!(too_large(&error), (Limited::Tags, 4));
    assert!(
        error
            .to_string()
            .ends_with("repository limits, tag list: the repository lists more tags than 4"),
        "{error}"
    );

    let mut page = settings(&registry, "limits");
    page.client.limits.max_tag_page_bytes = 16;
    let error = Scraper::new(page)?.scrape().await.unwrap_err();
    assert_eq!(too_large(&error), (Limited::TagPage, 16));

    let mut manifest = settings(&registry, "limits");
    manifest.client.limits.max_manifest_bytes = 64;
    let error = Scraper::new(manifest)?.scrape().await.unwrap_err();
    assert_eq!(too_large(&error), (Limited::Manifest, 64));
    let message = error.to_string();
    assert!(
        message.contains(&registry.host_port())
            && message.contains("limits, tag 0.0.")
            && message.ends_with("the manifest is larger than 64 bytes"),
        "{message}"
    );

    // Only the images read a config (the manifest lists take their platform's arch): those
    // tags fail, each naming the limit, and the lists publish.
    let mut config = settings(&registry, "limits");
    config.client.limits.max_config_bytes = 8;
    let outcome = Scraper::new(config)?.scrape().await?;
    assert_eq!(
        crate::support::versions(&outcome),
        ["0.0.2+multi", "0.0.3+multi"]
    );
    let failing: Vec<&str> = outcome.failing.iter().map(|f| f.tag.as_str()).collect();
    assert_eq!(failing, ["0.0.0", "0.0.1", "0.0.4"]);
    for tag in &outcome.failing {
        assert_eq!(too_large(&tag.error), (Limited::Config, 8));
        assert!(tag.reason.contains(" config sha256:"), "{}", tag.reason);
    }
    Ok(())
}

#[tokio::test]
async fn the_push_tool_refuses_a_base_layer_over_the_blob_limit() -> anyhow::Result<()> {
    use graph_builder::registry::push::PushClient;
    use graph_builder::registry::ClientConfig;

    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let image = crate::support::simple_release(Format::Oci, "amd64", "1.0.0", &[]);
    let pushed = Pusher::new(&registry)
        .push_image("base", "1", &image)
        .await?;
    let client = PushClient::new(&registry.base_url(), "base", ClientConfig::default())?;
    let manifest = client
        .manifest(&pushed)
        .await?
        .expect("the pushed manifest");
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.body)?;
    let layer = manifest["layers"][0]["digest"].as_str().expect("a layer");
    let size = manifest["layers"][0]["size"].as_u64().expect("a size");

    // The limit is inclusive: exactly the layer's size is read and verified.
    let mut config = ClientConfig::default();
    config.limits.max_blob_bytes = size;
    let exact = PushClient::new(&registry.base_url(), "base", config.clone())?;
    assert_eq!(exact.blob(layer).await?.len() as u64, size);

    config.limits.max_blob_bytes = size - 1;
    let short = PushClient::new(&registry.base_url(), "base", config)?;
    let error = short.blob(layer).await.unwrap_err();
    assert!(
        matches!(
            error.kind(),
            ErrorKind::TooLarge { what: Limited::Blob, limit } if *limit == size - 1
        ),
        "{error:?}"
    );
    assert_eq!(
        (error.repository(), error.item()),
        ("base", format!("blob {layer}").as_str())
    );
    Ok(())
}
