//! Registry scrapes of the reference's fixture repositories, rebuilt as
//! synthetic images: multi-arch manifest lists, OCI media types, single-entry lists,
//! images that are not releases, cosign signature tags, and tags sharing or fighting
//! over a version.

use graph_builder::scrape::InvalidKind;
use graph_builder::scrape::Scraper;
use integration_tests::images::{release_image, signature_image, signature_tag};
use integration_tests::{
    Format, ImageBuilder, Index, Layer, Pusher, RegistryOptions, TestRegistry,
};
use rand::SeedableRng as _;

use crate::support::{
    expected_metadata, multi_child_metadata, push_multi_arch_repo, release, settings,
    simple_release, v, versions,
};

#[tokio::test]
async fn multi_arch_repository_scrapes_lists_as_multi_and_images_as_their_arch(
) -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let repo = push_multi_arch_repo(&Pusher::new(&registry), "multiarch").await?;

    let outcome = Scraper::new(settings(&registry, "multiarch"))?
        .scrape()
        .await?;

    assert_eq!(
        versions(&outcome),
        [
            "0.0.0+amd64",
            "0.0.1+amd64",
            "0.0.2+multi",
            "0.0.3+multi",
            "0.0.4+amd64"
        ]
    );
    for (version, arch, previous) in [
        ("0.0.0", "amd64", None),
        ("0.0.1", "amd64", Some("0.0.0")),
        ("0.0.2", "multi", Some("0.0.1")),
        ("0.0.3", "multi", Some("0.0.2")),
        ("0.0.4", "amd64", Some("0.0.3")),
    ] {
        let r = release(&outcome, &format!("{version}+{arch}"));
        let digest = &repo.digests[version];
        assert_eq!(r.arch, arch, "{version}");
        assert_eq!(&r.manifestref, digest, "{version}");
        assert_eq!(
            r.payload,
            format!("{}/multiarch@{digest}", registry.host_port())
        );
        assert_eq!(r.tags, [version]);
        assert_eq!(
            *r.previous,
            previous.map(v).into_iter().collect::<Vec<_>>(),
            "{version}"
        );
        assert!(r.next.is_empty());
        let url = format!("https://example.com/errata/{version}");
        let mut from_image = vec![("url", url.as_str())];
        if arch == "multi" {
            from_image.push(("release.openshift.io/architecture", "multi"));
        }
        assert_eq!(
            r.metadata,
            expected_metadata(&from_image, digest, arch),
            "{version}"
        );
    }
    assert!(outcome.invalid.is_empty(), "{:?}", outcome.invalid);
    assert_eq!((outcome.stats.tags, outcome.stats.releases), (5, 5));
    Ok(())
}

#[tokio::test]
async fn per_arch_child_of_a_multi_payload_tagged_alone_is_dropped() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let pusher = Pusher::new(&registry);
    let repo = push_multi_arch_repo(&pusher, "multiarch").await?;
    // `oc adm release mirror` of a multi payload may also tag a child by itself.
    let child = &repo.list_002.images[0];
    pusher
        .push_image("multiarch", "0.0.2-x86_64", child)
        .await?;

    let outcome = Scraper::new(settings(&registry, "multiarch"))?
        .scrape()
        .await?;

    assert_eq!(outcome.stats.shards_dropped, 1);
    assert_eq!(outcome.stats.tags, 6);
    assert!(outcome
        .releases
        .iter()
        .all(|r| r.manifestref != child.digest));
    assert_eq!(release(&outcome, "0.0.2+multi").tags, ["0.0.2"]);
    Ok(())
}

#[tokio::test]
async fn oci_manifests_and_oci_indexes_are_releases() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let pusher = Pusher::new(&registry);
    let image = simple_release(Format::Oci, "s390x", "4.1.0", &[]);
    let image_digest = pusher.push_image("oci", "4.1.0", &image).await?;
    let metadata = multi_child_metadata("4.1.1", "4.1.0");
    let index = Index::new(
        Format::Oci,
        ["amd64", "arm64", "ppc64le"]
            .iter()
            .map(|a| release_image(Format::Oci, a, &metadata))
            .collect(),
    );
    let index_digest = pusher.push("oci", "4.1.1", &index.into()).await?;

    let outcome = Scraper::new(settings(&registry, "oci"))?.scrape().await?;

    assert_eq!(versions(&outcome), ["4.1.0+s390x", "4.1.1+multi"]);
    assert_eq!(release(&outcome, "4.1.0+s390x").manifestref, image_digest);
    assert_eq!(release(&outcome, "4.1.1+multi").manifestref, index_digest);
    assert_eq!(*release(&outcome, "4.1.1+multi").previous, [v("4.1.0")]);
    Ok(())
}

#[tokio::test]
async fn single_entry_manifest_list_takes_the_arch_of_its_entry() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let pusher = Pusher::new(&registry);
    // OKD publishes single-arch payloads as one-entry manifest lists.
    let list = Index::new(
        Format::Docker,
        vec![simple_release(Format::Docker, "arm64", "4.15.0", &[])],
    );
    let digest = pusher.push("okd", "4.15.0", &list.into()).await?;

    let outcome = Scraper::new(settings(&registry, "okd"))?.scrape().await?;

    assert_eq!(versions(&outcome), ["4.15.0+arm64"]);
    let r = release(&outcome, "4.15.0+arm64");
    assert_eq!(
        (r.arch.as_str(), r.manifestref.as_str()),
        ("arm64", digest.as_str())
    );
    assert_eq!(r.payload, format!("{}/okd@{digest}", registry.host_port()));
    Ok(())
}

#[tokio::test]
async fn image_without_release_metadata_is_skipped_and_counted() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let pusher = Pusher::new(&registry);
    let nojson = ImageBuilder::new(Format::Docker)
        .layer(Layer::from_files(
            Format::Docker,
            &[("etc/os-release", b"ID=test\n")],
        ))
        .build();
    pusher.push_image("nojson", "0.0.0", &nojson).await?;
    pusher
        .push_image(
            "nojson",
            "0.0.1",
            &simple_release(Format::Docker, "amd64", "0.0.1", &[]),
        )
        .await?;

    let outcome = Scraper::new(settings(&registry, "nojson"))?
        .scrape()
        .await?;

    assert_eq!(versions(&outcome), ["0.0.1+amd64"]);
    assert_eq!((outcome.stats.tags, outcome.stats.not_releases), (2, 1));
    assert!(outcome.invalid.is_empty(), "{:?}", outcome.invalid);
    Ok(())
}

#[tokio::test]
async fn empty_first_tag_does_not_hide_the_releases_after_it() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let pusher = Pusher::new(&registry);
    // Like the reference's `test-emptyfirsttag` image: two layers, each one empty file.
    let empty = ImageBuilder::new(Format::Docker)
        .layer(Layer::from_files(Format::Docker, &[("EMPTY", b"")]))
        .layer(Layer::from_files(Format::Docker, &[("EMPTY", b"")]))
        .build();
    // The registry lists tags in lexical order: "0.0.0" comes first.
    pusher.push_image("emptyfirst", "0.0.0", &empty).await?;
    for (version, previous) in [("0.0.1", vec![]), ("0.0.2", vec!["0.0.1"])] {
        let image = simple_release(Format::Docker, "amd64", version, &previous);
        pusher.push_image("emptyfirst", version, &image).await?;
    }

    let outcome = Scraper::new(settings(&registry, "emptyfirst"))?
        .scrape()
        .await?;

    assert_eq!(versions(&outcome), ["0.0.1+amd64", "0.0.2+amd64"]);
    assert_eq!(*release(&outcome, "0.0.2+amd64").previous, [v("0.0.1")]);
    assert_eq!(outcome.stats.not_releases, 1);
    Ok(())
}

#[tokio::test]
async fn signature_tags_are_counted_as_signatures() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let pusher = Pusher::new(&registry);
    for (version, previous) in [("4.2.0", vec![]), ("4.2.1", vec!["4.2.0"])] {
        let image = simple_release(Format::Docker, "amd64", version, &previous);
        let digest = pusher.push_image("signed", version, &image).await?;
        let signature = signature_image(&digest, &format!("quay.io/ocp/release:{version}"));
        pusher
            .push_image("signed", &signature_tag(&digest), &signature)
            .await?;
    }

    let outcome = Scraper::new(settings(&registry, "signed"))?
        .scrape()
        .await?;

    assert_eq!(versions(&outcome), ["4.2.0+amd64", "4.2.1+amd64"]);
    assert_eq!((outcome.stats.tags, outcome.stats.signatures), (4, 2));
    assert_eq!(outcome.stats.not_releases, 0);
    assert!(outcome.invalid.is_empty(), "{:?}", outcome.invalid);
    Ok(())
}

#[tokio::test]
async fn tags_sharing_a_digest_are_one_release_with_every_tag() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let pusher = Pusher::new(&registry);
    let image = simple_release(Format::Docker, "amd64", "4.3.0", &[]);
    for tag in ["4.3.0-x86_64", "latest", "4.3.0"] {
        pusher.push_image("shared", tag, &image).await?;
    }

    let outcome = Scraper::new(settings(&registry, "shared"))?
        .scrape()
        .await?;

    assert_eq!(versions(&outcome), ["4.3.0+amd64"]);
    assert_eq!(
        outcome.releases[0].tags,
        ["4.3.0", "4.3.0-x86_64", "latest"]
    );
    assert_eq!(outcome.releases[0].manifestref, image.digest);
    assert_eq!(outcome.stats.tags, 3);
    Ok(())
}

#[tokio::test]
async fn two_images_claiming_one_version_are_both_left_out_naming_both_tags() -> anyhow::Result<()>
{
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let pusher = Pusher::new(&registry);
    let metadata = crate::support::simple_metadata("4.4.0", &[]);
    let first = ImageBuilder::new(Format::Docker)
        .layer(Layer::release_metadata(Format::Docker, &metadata))
        .build();
    let second = ImageBuilder::new(Format::Docker)
        .label("rebuilt", "true")
        .layer(Layer::release_metadata(Format::Docker, &metadata))
        .build();
    let other = ImageBuilder::new(Format::Docker)
        .layer(Layer::release_metadata(
            Format::Docker,
            &crate::support::simple_metadata("4.4.1", &["4.4.0"]),
        ))
        .build();
    pusher.push_image("dup", "4.4.0", &first).await?;
    pusher.push_image("dup", "4.4.0-rebuild", &second).await?;
    pusher.push_image("dup", "4.4.1", &other).await?;

    // Neither was published before, so neither is kept; the other release publishes.
    let outcome = Scraper::new(settings(&registry, "dup"))?.scrape().await?;
    assert_eq!(versions(&outcome), ["4.4.1+amd64"]);
    let left_out: Vec<_> = outcome
        .invalid
        .iter()
        .map(|i| (i.tag.as_str(), i.digest.as_str(), i.kind))
        .collect();
    assert_eq!(
        left_out,
        [
            (
                "4.4.0",
                first.digest.as_str(),
                InvalidKind::DuplicateVersion
            ),
            (
                "4.4.0-rebuild",
                second.digest.as_str(),
                InvalidKind::DuplicateVersion
            ),
        ]
    );
    let message = &outcome.invalid[0].error;
    assert!(message.contains("version 4.4.0+amd64"), "{message}");
    for needle in ["4.4.0", "4.4.0-rebuild", &first.digest, &second.digest] {
        assert!(message.contains(needle), "{needle} missing from: {message}");
    }
    Ok(())
}

#[tokio::test]
async fn metadata_in_the_top_layer_is_found_without_reading_the_layers_below() -> anyhow::Result<()>
{
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let big = Layer::random(Format::Docker, &mut rng, 4 * 1024 * 1024);
    let big_size = big.blob.data.len() as u64;
    let image = ImageBuilder::new(Format::Docker)
        .layer(big)
        .layer(Layer::release_metadata(
            Format::Docker,
            &crate::support::simple_metadata("4.5.0", &[]),
        ))
        .build();
    Pusher::new(&registry)
        .push_image("layered", "4.5.0", &image)
        .await?;

    let outcome = Scraper::new(settings(&registry, "layered"))?
        .scrape()
        .await?;

    assert_eq!(versions(&outcome), ["4.5.0+amd64"]);
    assert!(
        outcome.stats.blob_bytes < big_size,
        "read {} blob bytes; the metadata layer is tiny, the layer below it {big_size}",
        outcome.stats.blob_bytes
    );
    Ok(())
}
