//! The graph-data image tool against the real registry: both layouts are pushed, skopeo
//! reads them, the graph-builder's graph-data image source reads back the same graph-data,
//! an unchanged tree pushes the same digest, an invalid tree is refused, and a private
//! registry needs the credentials file.

use std::path::{Path, PathBuf};

use graph_builder::graph_data_push::{
    push_graph_data_image, ImageLayout, PushError, PushRequest, OC_MIRROR_CMD,
};
use graph_builder::graph_data_source::{pack_dir, GraphDataImage, GraphDataImageSettings};
use integration_tests::{
    skopeo, Format, ImageBuilder, Layer, Pusher, RegistryOptions, TestRegistry,
};

/// The bundled graph-data snapshot.
pub fn bundled_graph_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/graph-data")
}

/// Pushes a small stand-in for a mirrored UBI image as `ubi9/ubi:latest`.
pub async fn push_base(registry: &TestRegistry) -> anyhow::Result<()> {
    let base = ImageBuilder::new(Format::Docker)
        .layer(Layer::from_files(
            Format::Docker,
            &[("bin/bash", b"#!stand-in"), ("etc/os-release", b"ID=ubi\n")],
        ))
        .build();
    Pusher::new(registry)
        .push_image("ubi9/ubi", "latest", &base)
        .await?;
    Ok(())
}

fn request(registry: &TestRegistry, to: &str, layout: ImageLayout) -> PushRequest {
    PushRequest {
        graph_data: bundled_graph_data(),
        to: format!("{}/{to}", registry.base_url()),
        layout,
        client: Default::default(),
    }
}

/// What the graph-builder reads from `repository:latest` with `graph_data_path`.
async fn read_back(
    registry: &TestRegistry,
    repository: &str,
    graph_data_path: &str,
    credentials_path: Option<PathBuf>,
) -> anyhow::Result<bytes::Bytes> {
    let source = GraphDataImage::new(GraphDataImageSettings {
        registry: registry.base_url(),
        repository: repository.to_owned(),
        tag: "latest".to_owned(),
        client: graph_builder::registry::ClientConfig {
            credentials_path,
            ..Default::default()
        },
        graph_data_path: graph_data_path.to_owned(),
        output_directory: None,
    })?;
    Ok(source.fetch().await?)
}

fn oc_mirror() -> ImageLayout {
    ImageLayout::OcMirror {
        base: "ubi9/ubi:latest".to_owned(),
    }
}

#[tokio::test]
async fn both_layouts_push_and_read_back_as_the_same_graph_data() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    push_base(&registry).await?;
    let expected = pack_dir(&bundled_graph_data())?;

    let flat =
        push_graph_data_image(&request(&registry, "gd/flat:latest", ImageLayout::Flat)).await?;
    let mirror =
        push_graph_data_image(&request(&registry, "gd/mirror:latest", oc_mirror())).await?;

    for (pushed, repository) in [(&flat, "gd/flat"), (&mirror, "gd/mirror")] {
        assert_eq!(
            pushed.reference,
            format!("{}/{repository}:latest", registry.host_port())
        );
        assert_eq!(
            skopeo::inspect_digest(&registry, repository, "latest")?,
            pushed.digest
        );
    }
    assert_eq!(
        &read_back(&registry, "gd/flat", "/", None).await?[..],
        &expected[..]
    );
    let from_mirror = read_back(
        &registry,
        "gd/mirror",
        "/var/lib/cincinnati-graph-data",
        None,
    )
    .await?;
    assert_eq!(&from_mirror[..], &expected[..]);

    // The oc-mirror image: base layer first, OCI media types, the init container's command.
    let manifest: serde_json::Value =
        serde_json::from_slice(&skopeo::inspect_raw(&registry, "gd/mirror", "latest")?)?;
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2);
    assert!(layers
        .iter()
        .all(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"));
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let config: serde_json::Value = reqwest::get(format!(
        "{}/v2/gd/mirror/blobs/{config_digest}",
        registry.base_url()
    ))
    .await?
    .json()
    .await?;
    assert_eq!(config["config"]["Cmd"], serde_json::json!(OC_MIRROR_CMD));
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().map(Vec::len),
        Some(2)
    );
    // Graph-data at the root of a flat image is not found under the oc-mirror path.
    assert!(
        read_back(&registry, "gd/flat", "/var/lib/cincinnati-graph-data", None)
            .await
            .map(|tarball| graph_builder::graph_data_source::load("flat", &tarball).is_err())
            .unwrap_or(true)
    );
    Ok(())
}

#[tokio::test]
async fn an_unchanged_tree_pushes_the_same_digest() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    push_base(&registry).await?;
    let first = push_graph_data_image(&request(&registry, "gd/image:latest", oc_mirror())).await?;
    // A copy of the tree, with fresh mtimes, from a tarball this time.
    let tarball = registry.scratch_dir().join("graph-data.tar.gz");
    std::fs::write(&tarball, pack_dir(&bundled_graph_data())?)?;
    let mut again = request(&registry, "gd/image:latest", oc_mirror());
    again.graph_data = tarball;
    let second = push_graph_data_image(&again).await?;
    assert_eq!(first.digest, second.digest);
    Ok(())
}

#[tokio::test]
async fn an_invalid_tree_is_refused_and_nothing_is_pushed() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let mut invalid = request(&registry, "gd/invalid:latest", ImageLayout::Flat);
    invalid.graph_data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../graph-data/tests/conformance/graph-data-apply/invalid0/cincinnati-graph-data");

    let error = push_graph_data_image(&invalid).await.unwrap_err();

    let PushError::Invalid { report, .. } = &error else {
        panic!("not refused as invalid: {error:?}");
    };
    assert!(
        report.contains("blocked-edges/invalid_format.yaml"),
        "{report}"
    );
    assert!(skopeo::inspect_digest(&registry, "gd/invalid", "latest").is_err());
    Ok(())
}

#[tokio::test]
async fn a_private_registry_needs_the_credentials_file() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::private("alice", "s3cret"))?;
    let without =
        push_graph_data_image(&request(&registry, "gd/private:latest", ImageLayout::Flat))
            .await
            .unwrap_err();
    let message = format!("{:#}", anyhow::Error::new(without));
    assert!(message.contains("not authorized"), "{message}");
    assert!(message.contains("gd/private"), "{message}");

    let config = registry.scratch_dir().join("config.json");
    let credentials = registry.credentials().expect("a private registry").clone();
    registry.write_docker_config(&config, &credentials)?;
    let mut with = request(&registry, "gd/private:latest", ImageLayout::Flat);
    with.client.credentials_path = Some(config.clone());
    let pushed = push_graph_data_image(&with).await?;
    assert_eq!(
        skopeo::inspect_digest(&registry, "gd/private", "latest")?,
        pushed.digest
    );
    let back = read_back(&registry, "gd/private", "/", Some(config)).await?;
    assert_eq!(&back[..], &pack_dir(&bundled_graph_data())?[..]);
    Ok(())
}

/// A small graph-data tree: one channel over 4.16.0-4.16.2 and a block 4.16.0 → 4.16.2.
fn write_small_graph_data(dir: &Path) -> anyhow::Result<()> {
    for (name, content) in [
        ("version", "1.1.0\n"),
        ("raw/metadata.json", "{}\n"),
        (
            "channels/stable-4.16.yaml",
            "name: stable-4.16\nversions:\n- 4.16.0\n- 4.16.1\n- 4.16.2\n",
        ),
        (
            "blocked-edges/4.16.2.yaml",
            "to: 4.16.2\nfrom: 4\\.16\\.0\n",
        ),
    ] {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("a parent"))?;
        std::fs::write(path, content)?;
    }
    Ok(())
}

/// Issue #5's end-to-end line: the tool pushes graph-data (oc-mirror layout) to the
/// registry, the graph-builder reads it from there with the operator's plugin settings
/// together with release images, and the policy-engine serves a graph built from it.
#[tokio::test]
async fn a_pushed_graph_data_image_shapes_the_graph_the_policy_engine_serves() -> anyhow::Result<()>
{
    use crate::support::simple_release;
    use graph_builder::config::{Args, Settings};
    use std::time::Duration;

    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    push_base(&registry).await?;
    let pusher = Pusher::new(&registry);
    let all = ["4.16.0", "4.16.1", "4.16.2"];
    for (n, version) in all.iter().enumerate() {
        let image = simple_release(Format::Docker, "amd64", version, &all[..n]);
        pusher.push_image("ocp/release", version, &image).await?;
    }
    let tree = registry.scratch_dir().join("graph-data");
    write_small_graph_data(&tree)?;
    let mut push = request(&registry, "openshift/graph-image:latest", oc_mirror());
    push.graph_data = tree;
    push_graph_data_image(&push).await?;

    let out = registry.scratch_dir().join("gb-graph-data");
    let config = registry.scratch_dir().join("gb.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[plugin_settings]]
name = "release-scrape-dockerv2"
registry = "{base}"
repository = "ocp/release"

[[plugin_settings]]
name = "dkrv2-secondary-metadata-scrape"
registry = "{base}"
repository = "openshift/graph-image"
output_directory = "{out}"
graph_data_path = "/var/lib/cincinnati-graph-data"

[[plugin_settings]]
name = "openshift-secondary-metadata-parse"
data_directory = "{out}"

[[plugin_settings]]
name = "edge-add-remove"
"#,
            base = registry.base_url(),
            out = out.display()
        ),
    )?;
    let args = Args::try_parse_from([
        "graph-builder",
        "-c",
        config.to_str().expect("UTF-8 path"),
        "--service.pause_secs",
        "1",
    ])?;
    let listeners = graph_builder::Listeners {
        main: std::net::TcpListener::bind("127.0.0.1:0")?,
        public: std::net::TcpListener::bind("127.0.0.1:0")?,
        status: std::net::TcpListener::bind("127.0.0.1:0")?,
    };
    let gb_graph = format!("http://{}/v1/graph", listeners.main.local_addr()?);
    let (gb_stop, gb_stopped) = tokio::sync::oneshot::channel::<()>();
    let gb = tokio::spawn(graph_builder::run(
        Settings::load(&args)?,
        listeners,
        async move {
            let _ = gb_stopped.await;
        },
    ));

    let mut pe_settings = policy_engine::Settings::defaults();
    pe_settings.path_prefix = "/api/upgrades_info".into();
    pe_settings.upstream.url = gb_graph;
    pe_settings.upstream.refresh = Duration::from_secs(1);
    pe_settings.workers = Some(1);
    let pe_listeners = policy_engine::Listeners::loopback()?;
    let (pe_public, pe_status) = pe_listeners.addresses()?;
    let (pe_stop, pe_stopped) = tokio::sync::oneshot::channel::<()>();
    let pe = tokio::spawn(policy_engine::run(pe_settings, pe_listeners, async move {
        let _ = pe_stopped.await;
    }));

    let ready = format!("http://{pe_status}/readyz");
    for attempt in 0.. {
        if reqwest::get(&ready).await?.status() == 200 {
            break;
        }
        assert!(attempt < 300, "the policy-engine is not ready after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let doc: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{pe_public}/api/upgrades_info/v1/graph"))
        .query(&[("channel", "stable-4.16"), ("arch", "amd64")])
        .header("Accept", "application/json")
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;

    let nodes: Vec<&str> = doc["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["version"].as_str().expect("a version"))
        .collect();
    let mut sorted = nodes.clone();
    sorted.sort_unstable();
    // The channel comes from the image's graph-data, so without it there are no nodes.
    assert_eq!(sorted, all);
    let mut edges: Vec<(&str, &str)> = doc["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            let index = |i: usize| e[i].as_u64().expect("an index") as usize;
            (nodes[index(0)], nodes[index(1)])
        })
        .collect();
    edges.sort_unstable();
    // The image's blocked edge removes 4.16.0 → 4.16.2.
    assert_eq!(edges, [("4.16.0", "4.16.1"), ("4.16.1", "4.16.2")]);
    // The graph-builder also unpacked it where the parse plugin reads it.
    assert!(out.join("graph-data.tar.gz").is_file());

    let _ = pe_stop.send(());
    let _ = gb_stop.send(());
    tokio::time::timeout(Duration::from_secs(30), pe).await???;
    tokio::time::timeout(Duration::from_secs(30), gb).await???;
    Ok(())
}
