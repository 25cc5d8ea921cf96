//! Hostile graph-data images in the real registry: a layer whose GNU long-name record
//! claims 3 GiB, and a layer that plants a link to the registry credentials as a channel
//! file. Each fetch fails with an error naming the image, the layer and the cause, and
//! the last good tarball is what the caller still holds.

use graph_builder::graph_data_source::{load, GraphDataImage, GraphDataImageSettings};
use integration_tests::images::Blob;
use integration_tests::{Format, ImageBuilder, Layer, Pusher, RegistryOptions, TestRegistry};

const REPO: &str = "openshift/graph-data";

fn good_files() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("version", b"1.1.0\n"),
        ("raw/metadata.json", b"{}"),
        (
            "channels/stable-4.15.yaml",
            b"name: stable-4.15\nversions: [4.15.0]\n",
        ),
        ("blocked-edges/README.md", b"none\n"),
    ]
}

/// A layer from raw tar bytes (headers written by the test).
fn raw_layer(tar: &[u8]) -> Layer {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, tar).unwrap();
    Layer {
        blob: Blob::new(Format::Oci.layer_type(), gz.finish().unwrap()),
        diff_id: integration_tests::images::sha256_digest(tar),
    }
}

fn settings(registry: &TestRegistry, tag: &str) -> GraphDataImageSettings {
    GraphDataImageSettings {
        registry: format!("http://{}", registry.host_port()),
        repository: REPO.to_owned(),
        tag: tag.to_owned(),
        client: Default::default(),
        graph_data_path: "/".to_owned(),
        output_directory: None,
    }
}

#[tokio::test]
async fn hostile_layers_are_refused_by_image_layer_and_cause() {
    let registry = TestRegistry::start(RegistryOptions::anonymous()).unwrap();
    let pusher = Pusher::new(&registry);
    let good = ImageBuilder::new(Format::Oci)
        .layer(Layer::from_files(Format::Oci, &good_files()))
        .build();
    pusher.push_image(REPO, "latest", &good).await.unwrap();
    let source = GraphDataImage::new(settings(&registry, "latest")).unwrap();
    let last_good = source.fetch().await.unwrap();
    assert_eq!(load("test", &last_good).unwrap().channels.len(), 1);

    // A GNU long-name record claiming 3 GiB (only its first MiB is in the blob: the
    // record is refused before any of it is read).
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(3 << 30);
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.set_cksum();
    let mut bomb = h.as_bytes().to_vec();
    bomb.resize(bomb.len() + (1 << 20), b'a');
    let bomb = raw_layer(&bomb);
    let bomb_digest = bomb.blob.digest.clone();
    let image = ImageBuilder::new(Format::Oci)
        .layer(Layer::from_files(Format::Oci, &good_files()))
        .layer(bomb)
        .build();
    pusher.push_image(REPO, "latest", &image).await.unwrap();
    let err = source.fetch().await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "graph-data image {}/{REPO}:latest: layer {bomb_digest}: GNU long name record of 3221225472 bytes is above the 65536 byte limit",
            registry.host_port()
        )
    );

    // A channel file that is a link to the credentials.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_link_name("/var/lib/cincinnati/registry-credentials/.dockerconfigjson")
        .unwrap();
    b.append_data(&mut h, "channels/creds.yaml", std::io::empty())
        .unwrap();
    let link = raw_layer(&b.into_inner().unwrap());
    let link_digest = link.blob.digest.clone();
    let image = ImageBuilder::new(Format::Oci)
        .layer(Layer::from_files(Format::Oci, &good_files()))
        .layer(link)
        .build();
    pusher.push_image(REPO, "latest", &image).await.unwrap();
    let err = source.fetch().await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "graph-data image {}/{REPO}:latest: layer {link_digest}: channels/creds.yaml is a Symlink entry: links, devices and FIFOs are not allowed in graph-data",
            registry.host_port()
        )
    );

    // A whiteout in an upper layer removes the lower channel file.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    b.append_data(&mut h, "channels/.wh.stable-4.15.yaml", std::io::empty())
        .unwrap();
    let image = ImageBuilder::new(Format::Oci)
        .layer(Layer::from_files(Format::Oci, &good_files()))
        .layer(raw_layer(&b.into_inner().unwrap()))
        .build();
    pusher.push_image(REPO, "latest", &image).await.unwrap();
    let tarball = source.fetch().await.unwrap();
    assert!(load("test", &tarball).unwrap().channels.is_empty());
}
