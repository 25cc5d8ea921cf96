//! The push client and the graph-data image tool against the fake registry: upload
//! `Location`s relative and absolute, blobs already present, the `pull,push` token scope,
//! the registry's error body in errors, and base-image layers mounted or copied.

use bytes::Bytes;
use graph_builder::graph_data_push::{push_graph_data_image, ImageLayout, PushRequest};
use graph_builder::registry::push::PushClient;
use graph_builder::registry::ClientConfig;

use crate::fake::*;

fn client(fake: &FakeRegistry, repository: &str) -> PushClient {
    PushClient::new(&fake.url(), repository, ClientConfig::default()).unwrap()
}

fn posts(fake: &FakeRegistry) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.starts_with("POST"))
        .count()
}

#[tokio::test]
async fn blobs_upload_once_through_relative_and_absolute_locations() {
    for absolute in [false, true] {
        let fake = FakeRegistry::start();
        fake.with(|s| s.behaviour.absolute_upload_location = absolute);
        let push = client(&fake, "gd/image");
        let bytes = Bytes::from_static(b"a layer");
        assert!(!push.blob_exists(&digest_of(&bytes)).await.unwrap());

        let digest = push.push_blob(bytes.clone()).await.unwrap();

        assert_eq!(digest, digest_of(&bytes));
        assert!(push.blob_exists(&digest).await.unwrap());
        assert_eq!(posts(&fake), 1);
        // Present already: checked, not uploaded again.
        push.push_blob(bytes).await.unwrap();
        assert_eq!(posts(&fake), 1, "absolute={absolute}");
        fake.stop().await;
    }
}

#[tokio::test]
async fn manifests_are_put_under_the_tag_with_their_media_type() {
    let fake = FakeRegistry::start();
    let push = client(&fake, "gd/image");
    let config = push.push_blob(Bytes::from_static(b"{}")).await.unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [],
    });
    let body = Bytes::from(serde_json::to_vec(&manifest).unwrap());

    let digest = push
        .push_manifest("latest", OCI_MANIFEST, body.clone())
        .await
        .unwrap();

    let pulled = push.manifest("latest").await.unwrap().unwrap();
    assert_eq!((pulled.digest, pulled.body), (digest, body));
    assert_eq!(pulled.content_type.as_deref(), Some(OCI_MANIFEST));
    fake.stop().await;
}

#[tokio::test]
async fn bearer_tokens_are_asked_for_pull_and_push() {
    let fake = FakeRegistry::start();
    fake.with(|s| {
        s.behaviour.bearer = Some(("alice".into(), "s3cret".into()));
        s.behaviour.token = "t0k3n".into();
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#,
            fake.host()
        ),
    )
    .unwrap();
    let push = PushClient::new(
        &fake.url(),
        "gd/image",
        ClientConfig {
            credentials_path: Some(config),
            ..ClientConfig::default()
        },
    )
    .unwrap();

    push.push_blob(Bytes::from_static(b"x")).await.unwrap();

    let scopes = fake.with(|s| s.token_scopes.clone());
    assert_eq!(scopes, ["repository:gd/image:pull,push"]);
    fake.stop().await;
}

#[tokio::test]
async fn refusals_name_registry_repository_digest_and_the_registry_error() {
    let fake = FakeRegistry::start();
    fake.with(|s| s.behaviour.fail_always = Some(("/blobs/uploads/".into(), 403)));
    let push = client(&fake, "gd/image");
    let bytes = Bytes::from_static(b"denied layer");

    let error = push.push_blob(bytes.clone()).await.unwrap_err().to_string();

    for part in [
        fake.host(),
        "gd/image".to_owned(),
        digest_of(&bytes),
        "403".to_owned(),
        "the fake says no".to_owned(),
    ] {
        assert!(error.contains(&part), "{part:?} not in {error}");
    }
    fake.stop().await;
}

fn graph_data_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["channels", "blocked-edges", "raw"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    std::fs::write(dir.path().join("raw/metadata.json"), "{}\n").unwrap();
    std::fs::write(dir.path().join("version"), "1.1.0\n").unwrap();
    std::fs::write(
        dir.path().join("channels/stable-4.14.yaml"),
        "name: stable-4.14\nversions:\n- 4.14.1\n",
    )
    .unwrap();
    dir
}

/// A one-layer Docker image as `ubi9/ubi:latest`, pushed with the client under test.
async fn push_base(fake: &FakeRegistry) -> String {
    let push = client(fake, "ubi9/ubi");
    let layer = Bytes::from_static(b"not really a tar");
    let layer_digest = push.push_blob(layer.clone()).await.unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [digest_of(b"uncompressed")]},
    });
    let config = Bytes::from(serde_json::to_vec(&config).unwrap());
    let config_size = config.len();
    let config_digest = push.push_blob(config).await.unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer_digest, "size": layer.len()}],
    });
    let body = Bytes::from(serde_json::to_vec(&manifest).unwrap());
    push.push_manifest("latest", DOCKER_MANIFEST, body)
        .await
        .unwrap()
}

#[tokio::test]
async fn base_layers_are_mounted_or_else_copied() {
    for mount in [true, false] {
        let fake = FakeRegistry::start();
        fake.with(|s| s.behaviour.allow_mount = mount);
        let base = push_base(&fake).await;
        let base_layers = fake.layers_of("ubi9/ubi", &base);
        fake.clear_log();
        let tree = graph_data_tree();

        let pushed = push_graph_data_image(&PushRequest {
            graph_data: tree.path().to_owned(),
            to: format!("{}/gd/image:latest", fake.url()),
            layout: ImageLayout::OcMirror {
                base: "ubi9/ubi:latest".into(),
            },
            client: ClientConfig::default(),
        })
        .await
        .unwrap();

        let layers = fake.layers_of("gd/image", &pushed.digest);
        assert_eq!(layers.len(), base_layers.len() + 1);
        assert_eq!(layers[..base_layers.len()], base_layers[..]);
        let copied = fake.requests().iter().any(|r| {
            r.starts_with("GET /v2/ubi9/ubi/blobs/") && base_layers.iter().any(|l| r.contains(l))
        });
        assert_eq!(copied, !mount, "mount={mount}");
        fake.stop().await;
    }
}
