//! Graph-data from a container image in the real registry: both layouts
//! (flat `FROM scratch`, and oc-mirror's `/var/lib/cincinnati-graph-data` on a base
//! image) are consumed, an unchanged image is not downloaded again, a new image under the
//! same tag is, and the service built from a `gb.toml` with the reference's plugin entry
//! serves a graph with the image's channels.

mod service;

use graph_builder::graph_data_source::{load, GraphDataImage, GraphDataImageSettings};
use integration_tests::images::release_image;
use integration_tests::{
    Format, ImageBuilder, Layer, Pusher, RegistryOptions, ReleaseMetadata, TestRegistry,
};
use service::{summary, wait_for, Service};

const GD_REPO: &str = "openshift/graph-data";
const OC_MIRROR_ROOT: &str = "var/lib/cincinnati-graph-data";

/// A graph-data image: `stable-4.15` lists `versions`; files under `root` (empty: flat).
fn graph_data_image(root: &str, versions: &[&str]) -> integration_tests::Image {
    let channel = format!(
        "name: stable-4.15\nversions:\n{}",
        versions
            .iter()
            .map(|v| format!("- {v}\n"))
            .collect::<String>()
    );
    let at = |name: &str| {
        if root.is_empty() {
            name.to_owned()
        } else {
            format!("{root}/{name}")
        }
    };
    let files = [
        (at("version"), "1.1.0\n".to_owned()),
        (at("LICENSE"), "Apache-2.0\n".to_owned()),
        (at("raw/metadata.json"), "{}".to_owned()),
        (at("channels/stable-4.15.yaml"), channel),
        (at("blocked-edges/README.md"), "none\n".to_owned()),
    ];
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_bytes()))
        .collect();
    let mut builder = ImageBuilder::new(Format::Oci);
    if !root.is_empty() {
        builder = builder.layer(Layer::from_files(
            Format::Oci,
            &[("etc/os-release", b"ID=ubi\n"), ("usr/bin/cp", b"\x7fELF")],
        ));
    }
    builder
        .layer(Layer::from_files(Format::Oci, &files))
        .build()
}

fn image_settings(registry: &TestRegistry, tag: &str, root: &str) -> GraphDataImageSettings {
    GraphDataImageSettings {
        registry: format!("http://{}", registry.host_port()),
        repository: GD_REPO.to_owned(),
        tag: tag.to_owned(),
        client: Default::default(),
        graph_data_path: format!("/{root}"),
        output_directory: None,
    }
}

fn channel_versions(tarball: &[u8]) -> Vec<String> {
    let data = load("test", tarball).unwrap();
    assert_eq!(data.channels.len(), 1);
    data.channels[0]
        .versions
        .iter()
        .map(|v| v.to_string())
        .collect()
}

#[tokio::test]
async fn both_layouts_are_consumed_and_an_unchanged_image_is_not_downloaded_again() {
    let registry = TestRegistry::start(RegistryOptions::anonymous()).unwrap();
    let pusher = Pusher::new(&registry);
    for (tag, root) in [("flat", ""), ("oc-mirror", OC_MIRROR_ROOT)] {
        let image = graph_data_image(root, &["4.15.0", "4.15.1"]);
        pusher.push_image(GD_REPO, tag, &image).await.unwrap();
        let out = tempfile::tempdir().unwrap();
        let mut settings = image_settings(&registry, tag, root);
        settings.output_directory = Some(out.path().to_owned());
        let source = GraphDataImage::new(settings).unwrap();

        let first = source.fetch().await.unwrap();
        assert_eq!(channel_versions(&first), ["4.15.0", "4.15.1"], "{tag}");
        assert_eq!(
            std::fs::read(out.path().join("graph-data.tar.gz")).unwrap(),
            first
        );
        let again = source.fetch().await.unwrap();
        assert_eq!(again, first);
        assert_eq!(
            source.downloads(),
            1,
            "{tag}: unchanged layers are not downloaded"
        );

        let newer = graph_data_image(root, &["4.15.0", "4.15.1", "4.15.2"]);
        pusher.push_image(GD_REPO, tag, &newer).await.unwrap();
        let changed = source.fetch().await.unwrap();
        assert_eq!(
            channel_versions(&changed),
            ["4.15.0", "4.15.1", "4.15.2"],
            "{tag}"
        );
        assert_eq!(source.downloads(), 2, "{tag}");
    }

    // The flat layout read as if it were oc-mirror's finds no graph-data: an error that
    // names what is missing, not an empty graph.
    let wrong = GraphDataImage::new(image_settings(&registry, "flat", OC_MIRROR_ROOT)).unwrap();
    let err = load(&wrong.reference(), &wrong.fetch().await.unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("version"), "{err}");
    assert!(err.contains(&format!("{GD_REPO}:flat")), "{err}");

    let missing = GraphDataImage::new(image_settings(&registry, "nope", "")).unwrap();
    let err = missing.fetch().await.unwrap_err().to_string();
    assert!(err.contains(&format!("{GD_REPO}:nope")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_applies_a_graph_data_image_configured_like_the_reference() {
    let registry = TestRegistry::start(RegistryOptions::anonymous()).unwrap();
    let pusher = Pusher::new(&registry);
    for (version, previous) in [("4.15.0", &[][..]), ("4.15.1", &["4.15.0"][..])] {
        let image = release_image(
            Format::Docker,
            "amd64",
            &ReleaseMetadata::new(version).previous(previous),
        );
        pusher
            .push_image("ocp/release", version, &image)
            .await
            .unwrap();
    }
    let image = graph_data_image(OC_MIRROR_ROOT, &["4.15.0"]);
    pusher.push_image(GD_REPO, "latest", &image).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let host = registry.host_port();
    let toml = format!(
        r#"
[[plugin_settings]]
name = "release-scrape-dockerv2"
registry = "http://{host}"
repository = "ocp/release"

[[plugin_settings]]
name = "dkrv2-secondary-metadata-scrape"
registry = "http://{host}"
repository = "{GD_REPO}"
output_directory = "{out}"
graph_data_path = "/{OC_MIRROR_ROOT}"

[[plugin_settings]]
name = "openshift-secondary-metadata-parse"
data_directory = "{out}"

[[plugin_settings]]
name = "edge-add-remove"
"#,
        out = dir.path().display()
    );
    let config = dir.path().join("gb.toml");
    std::fs::write(&config, toml).unwrap();
    let svc = Service::start(&["-c", config.to_str().unwrap()]);
    let graph = svc.first_graph().await;
    let channels = |g: &serde_json::Value| summary(g).0;
    assert_eq!(
        channels(&graph),
        [("4.15.0+amd64", "stable-4.15"), ("4.15.1+amd64", "")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );

    // A new image under the same tag is picked up at the next refresh.
    let newer = graph_data_image(OC_MIRROR_ROOT, &["4.15.0", "4.15.1"]);
    pusher.push_image(GD_REPO, "latest", &newer).await.unwrap();
    wait_for("the new graph-data image", || async {
        let g = svc.graph().await;
        (channels(&g)[1].1 == "stable-4.15").then_some(())
    })
    .await;
    let tarball = svc
        .get(&format!("{}/graph-data", svc.public))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(channel_versions(&tarball), ["4.15.0", "4.15.1"]);
    svc.stop().await;
}
