//! Field failures against a real registry: a tag whose manifest the registry lost keeps
//! its release from the last good scrape (and is reported) while an untagged release
//! goes; a tag list that empties is held back one refresh, then published; releases that
//! would poison the graph (a cycle, an unknown architecture, claimed channels, one version
//! under two digests, a non-SemVer `previous`) are left out and named while the rest
//! publish, on a cold start too.

use std::path::PathBuf;

use graph_builder::refresh::{BuiltGraph, Pipeline, ReleaseSource};
use graph_builder::scrape::{InvalidKind, ScrapeError, Scraper};
use graph_data::keys::CHANNELS_KEY;
use integration_tests::images::release_image;
use integration_tests::{Format, Pusher, RegistryOptions, TestRegistry};

use crate::support::{settings, simple_metadata, simple_release, v};

fn pipeline(registry: &TestRegistry, repository: &str) -> anyhow::Result<Pipeline> {
    Ok(Pipeline::new(
        ReleaseSource::Registry(Box::new(Scraper::new(settings(registry, repository))?)),
        None,
        None,
    ))
}

/// The graph's nodes as `version` (concrete) or `version?` (abstract), sorted.
fn nodes(built: &BuiltGraph) -> Vec<String> {
    let mut nodes: Vec<String> = built
        .graph
        .releases()
        .map(|(_, r)| {
            let mark = if r.is_abstract() { "?" } else { "" };
            format!("{}{mark}", r.version)
        })
        .collect();
    nodes.sort();
    nodes
}

fn edges(built: &BuiltGraph) -> Vec<(String, String)> {
    let g = &built.graph;
    let mut edges: Vec<(String, String)> = g
        .edges()
        .map(|(f, t)| {
            (
                g.release(f).version.to_string(),
                g.release(t).version.to_string(),
            )
        })
        .collect();
    edges.sort();
    edges
}

/// The registry's link from `repository` to the manifest revision `digest`: without it
/// the registry answers 404 for the manifest, by tag or digest, while still listing the
/// tag (a registry that lost a manifest).
fn revision_link(registry: &TestRegistry, repository: &str, digest: &str) -> PathBuf {
    registry
        .scratch_dir()
        .join("storage/docker/registry/v2/repositories")
        .join(repository)
        .join("_manifests/revisions/sha256")
        .join(digest.strip_prefix("sha256:").expect("a sha256 digest"))
        .join("link")
}

#[tokio::test]
async fn a_broken_tag_keeps_its_release_and_an_untagged_one_goes() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let pusher = Pusher::new(&registry);
    let mut digests = Vec::new();
    for (version, previous) in [
        ("4.9.0", vec![]),
        ("4.9.1", vec!["4.9.0"]),
        ("4.9.2", vec!["4.9.1"]),
        ("4.9.3", vec!["4.9.2"]),
    ] {
        let image = simple_release(Format::Docker, "amd64", version, &previous);
        digests.push(pusher.push_image("resil", version, &image).await?);
    }
    let pipeline = pipeline(&registry, "resil")?;
    let good = pipeline.build_graph().await?;
    assert_eq!(
        nodes(&good),
        ["4.9.0+amd64", "4.9.1+amd64", "4.9.2+amd64", "4.9.3+amd64"]
    );
    assert!(good.findings.failing.is_empty());

    // 4.9.1 breaks (the registry loses its manifest, the tag stays listed); 4.9.3 is
    // deleted, which untags it.
    std::fs::remove_file(revision_link(&registry, "resil", &digests[1]))?;
    pusher.delete_manifest("resil", &digests[3]).await?;
    let broken = pipeline.build_graph().await?;
    assert_eq!(
        nodes(&broken),
        ["4.9.0+amd64", "4.9.1+amd64", "4.9.2+amd64"]
    );
    assert_eq!(
        edges(&broken),
        [
            ("4.9.0+amd64".to_owned(), "4.9.1+amd64".to_owned()),
            ("4.9.1+amd64".to_owned(), "4.9.2+amd64".to_owned())
        ]
    );
    assert_eq!(
        broken.findings.failing.len(),
        1,
        "{:?}",
        broken.findings.failing
    );
    let failing = &broken.findings.failing[0];
    assert_eq!(failing.tag, "4.9.1");
    assert_eq!(failing.kept, Some(v("4.9.1+amd64")));
    assert!(
        matches!(&*failing.error, ScrapeError::NotFound { item }
            if *item == format!("registry {}, repository resil, tag 4.9.1 manifest", registry.host_port())),
        "{:?}",
        failing.error
    );
    assert!(
        broken.findings.invalid.is_empty(),
        "{:?}",
        broken.findings.invalid
    );

    // A cold start on the broken registry: the failure is reported, the rest publish
    // (4.9.1 is only named by 4.9.2, so it is an abstract node).
    let cold = self::pipeline(&registry, "resil")?.build_graph().await?;
    assert_eq!(nodes(&cold), ["4.9.0+amd64", "4.9.1+amd64?", "4.9.2+amd64"]);
    assert_eq!(cold.findings.failing.len(), 1);
    assert_eq!(
        (
            cold.findings.failing[0].tag.as_str(),
            &cold.findings.failing[0].kept
        ),
        ("4.9.1", &None)
    );
    Ok(())
}

#[tokio::test]
async fn an_emptied_tag_list_is_held_back_once_then_published() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let pusher = Pusher::new(&registry);
    let mut digests = Vec::new();
    for version in ["5.1.0", "5.1.1", "5.1.2"] {
        let image = simple_release(Format::Docker, "amd64", version, &[]);
        digests.push(pusher.push_image("shrink", version, &image).await?);
    }
    let scraper = Scraper::new(settings(&registry, "shrink"))?;
    let good = scraper.scrape().await?;
    assert_eq!(good.releases.len(), 3);

    for digest in &digests {
        pusher.delete_manifest("shrink", digest).await?;
    }
    // The first empty listing is not believed: the last good releases again.
    let held = scraper.scrape().await?;
    assert_eq!(held.releases, good.releases);
    let shrink = held.held_back_shrink.expect("the shrink is held back");
    assert_eq!((shrink.previous_tags, shrink.listed_tags), (3, 0));
    // The second one is.
    let confirmed = scraper.scrape().await?;
    assert!(confirmed.releases.is_empty(), "{:?}", confirmed.releases);
    assert_eq!(confirmed.held_back_shrink, None);
    Ok(())
}

#[tokio::test]
async fn poisoned_releases_are_left_out_and_named_while_the_rest_publish() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let pusher = Pusher::new(&registry);
    let push = |tag: &'static str, image| {
        let pusher = &pusher;
        async move { pusher.push_image("poison", tag, &image).await }
    };
    push(
        "6.0.0",
        simple_release(Format::Docker, "amd64", "6.0.0", &[]),
    )
    .await?;
    push(
        "6.0.1",
        simple_release(Format::Docker, "amd64", "6.0.1", &["6.0.0"]),
    )
    .await?;
    // 6.0.2 names a newer release as its previous one, closing a cycle with 6.0.3.
    let closer = push(
        "6.0.2",
        simple_release(Format::Docker, "amd64", "6.0.2", &["6.0.1", "6.0.3"]),
    )
    .await?;
    push(
        "6.0.3",
        simple_release(Format::Docker, "amd64", "6.0.3", &["6.0.2"]),
    )
    .await?;
    let comma = push(
        "6.0.4-comma",
        simple_release(Format::Docker, "amd64,arm64", "6.0.4", &[]),
    )
    .await?;
    let claims = push(
        "6.0.5",
        release_image(
            Format::Docker,
            "amd64",
            &simple_metadata("6.0.5", &["6.0.3"]).with(CHANNELS_KEY, "stable-6.0"),
        ),
    )
    .await?;
    let not_semver = push(
        "6.0.6",
        simple_release(Format::Docker, "amd64", "6.0.6", &["6.0"]),
    )
    .await?;
    let twin_a = push(
        "6.0.7-a",
        simple_release(Format::Docker, "amd64", "6.0.7", &[]),
    )
    .await?;
    let twin_b = push(
        "6.0.7-b",
        simple_release(Format::Docker, "arm64", "6.0.7", &[]),
    )
    .await?;
    let twin_c = push(
        "6.0.7-c",
        release_image(
            Format::Docker,
            "arm64",
            &simple_metadata("6.0.7", &[]).with("rebuilt", "yes"),
        ),
    )
    .await?;

    // A cold start: nothing was published, and the graph builds anyway.
    let built = pipeline(&registry, "poison")?.build_graph().await?;
    assert_eq!(
        nodes(&built),
        [
            "6.0.0+amd64",
            "6.0.1+amd64",
            "6.0.2+amd64?",
            "6.0.3+amd64",
            "6.0.7+amd64"
        ]
    );
    assert_eq!(
        edges(&built),
        [
            ("6.0.0+amd64".to_owned(), "6.0.1+amd64".to_owned()),
            ("6.0.2+amd64".to_owned(), "6.0.3+amd64".to_owned())
        ]
    );
    let left_out: Vec<(&str, &str, InvalidKind)> = built
        .findings
        .invalid
        .iter()
        .map(|i| (i.tag.as_str(), i.digest.as_str(), i.kind))
        .collect();
    assert_eq!(
        left_out,
        [
            ("6.0.2", closer.as_str(), InvalidKind::Cycle),
            ("6.0.4-comma", comma.as_str(), InvalidKind::Arch),
            ("6.0.5", claims.as_str(), InvalidKind::Channels),
            ("6.0.6", not_semver.as_str(), InvalidKind::Image),
            ("6.0.7-b", twin_b.as_str(), InvalidKind::DuplicateVersion),
            ("6.0.7-c", twin_c.as_str(), InvalidKind::DuplicateVersion),
        ]
    );
    let reason = |tag: &str| {
        built
            .findings
            .invalid
            .iter()
            .find(|i| i.tag == tag)
            .map(|i| i.error.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        reason("6.0.2"),
        "its `previous` entry 6.0.3 makes the edge 6.0.3+amd64 -> 6.0.2+amd64, which closes a cycle"
    );
    assert_eq!(
        reason("6.0.4-comma"),
        r#"architecture "amd64,arm64" is not a known architecture"#
    );
    assert!(
        reason("6.0.5").contains(CHANNELS_KEY),
        "{}",
        reason("6.0.5")
    );
    assert!(
        reason("6.0.6").contains("`previous[0]`"),
        "{}",
        reason("6.0.6")
    );
    assert!(
        reason("6.0.7-b").contains(&twin_b) && reason("6.0.7-b").contains(&twin_c),
        "{}",
        reason("6.0.7-b")
    );
    // The amd64 6.0.7 has no twin and publishes.
    assert!(built.findings.invalid.iter().all(|i| i.digest != twin_a));
    Ok(())
}
