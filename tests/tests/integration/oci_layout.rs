//! OCI image layout directories, written by `skopeo copy` from the test registry: a
//! layout scrape yields the same releases as the registry scrape of the same images.

use graph_builder::scrape::{scrape_oci_layout, Scraper};
use integration_tests::images::release_image;
use integration_tests::{skopeo, Format, Index, Pusher, RegistryOptions, TestRegistry};

use crate::support::{multi_child_metadata, settings, simple_release, versions};

#[tokio::test]
async fn layout_copied_by_skopeo_yields_the_releases_of_the_registry_scrape() -> anyhow::Result<()>
{
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let pusher = Pusher::new(&registry);
    let repository = "ocp/release";
    let mut tags = Vec::new();
    for (version, previous) in [("4.7.0", vec![]), ("4.7.1", vec!["4.7.0"])] {
        let image = simple_release(Format::Oci, "amd64", version, &previous);
        pusher.push_image(repository, version, &image).await?;
        tags.push(version);
    }
    let metadata = multi_child_metadata("4.7.2", "4.7.1");
    let index = Index::new(
        Format::Oci,
        ["amd64", "arm64"]
            .iter()
            .map(|a| release_image(Format::Oci, a, &metadata))
            .collect(),
    );
    pusher.push(repository, "4.7.2", &index.into()).await?;
    tags.push("4.7.2");
    // A second tag on one digest must survive the copy too.
    let aliased = simple_release(Format::Oci, "amd64", "4.7.1", &["4.7.0"]);
    pusher
        .push_image(repository, "4.7-latest", &aliased)
        .await?;
    tags.push("4.7-latest");

    let layout = registry.scratch_dir().join("layout");
    for tag in &tags {
        skopeo::copy_to_oci_layout(&registry, repository, tag, &layout)?;
    }
    let from_registry = Scraper::new(settings(&registry, repository))?
        .scrape()
        .await?;
    let payload_repository = format!("{}/{repository}", registry.host_port());
    let from_layout = scrape_oci_layout(&layout, &payload_repository).await?;

    assert_eq!(
        versions(&from_registry),
        ["4.7.0+amd64", "4.7.1+amd64", "4.7.2+multi"]
    );
    assert_eq!(versions(&from_layout), versions(&from_registry));
    for (ours, theirs) in from_layout.releases.iter().zip(&from_registry.releases) {
        assert_eq!(ours.payload, theirs.payload);
        assert_eq!(ours.manifestref, theirs.manifestref);
        assert_eq!(ours.arch, theirs.arch);
        assert_eq!(ours.tags, theirs.tags);
        assert_eq!(ours.metadata, theirs.metadata);
        assert_eq!(
            (&ours.previous, &ours.next),
            (&theirs.previous, &theirs.next)
        );
    }
    assert_eq!(from_layout.releases[1].tags, ["4.7-latest", "4.7.1"]);
    Ok(())
}
