//! The service against a real registry that loses one manifest: the graph keeps that
//! release, readiness stays 200 and says `degraded`, `/status` names the tag and its
//! error, and `/metrics` counts the failing tag and the release kept.

mod service;

use integration_tests::images::release_image;
use integration_tests::{Format, Pusher, RegistryOptions, ReleaseMetadata, TestRegistry};
use service::{metric, wait_for, Service};

const REPO: &str = "ocp/release";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_tag_keeps_its_release_and_readiness_says_degraded() {
    let registry = TestRegistry::start(RegistryOptions::anonymous()).unwrap();
    let pusher = Pusher::new(&registry);
    let mut digests = Vec::new();
    for (version, previous) in [("4.15.0", vec![]), ("4.15.1", vec!["4.15.0"])] {
        let image = release_image(
            Format::Docker,
            "amd64",
            &ReleaseMetadata::new(version).previous(&previous),
        );
        digests.push(pusher.push_image(REPO, version, &image).await.unwrap());
    }
    let url = format!("http://{}", registry.host_port());
    let svc = Service::start(&["--registry", &url, "--repository", REPO]);
    let good = svc.first_graph().await;
    assert_eq!(good["nodes"].as_array().unwrap().len(), 2);
    let readiness = format!("{}/readiness", svc.status);
    assert_eq!(svc.get(&readiness).await.text().await.unwrap(), "");

    // The registry loses 4.15.1's manifest while still listing the tag.
    let link = registry
        .scratch_dir()
        .join("storage/docker/registry/v2/repositories")
        .join(REPO)
        .join("_manifests/revisions/sha256")
        .join(digests[1].strip_prefix("sha256:").unwrap())
        .join("link");
    std::fs::remove_file(link).unwrap();
    let metrics = wait_for("the failing tag in /metrics", || async {
        let text = svc.metrics().await;
        (metric(&text, "cincinnati_gb_scrape_tags_failing") == 1.0).then_some(text)
    })
    .await;
    assert_eq!(
        metric(
            &metrics,
            "cincinnati_gb_scrape_releases_kept_from_last_good"
        ),
        1.0
    );
    assert_eq!(
        metric(&metrics, "cincinnati_gb_scrape_tag_list_shrink_held_back"),
        0.0
    );

    // The release is still served, with its payload.
    let graph = svc.graph().await;
    assert_eq!(graph["nodes"], good["nodes"]);
    assert_eq!(graph["edges"], good["edges"]);

    let ready = svc.get(&readiness).await;
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.text().await.unwrap(),
        "degraded: 1 listed tag(s) cannot be read (4.15.1), 1 release(s) kept from the last \
         good scrape (see /status)"
    );
    let status: serde_json::Value = svc
        .get(&format!("{}/status", svc.status))
        .await
        .json()
        .await
        .unwrap();
    let releases = &status["releases"];
    assert_eq!(releases["kept_from_last_good"], 1);
    let failing = releases["failing_tags"].as_array().unwrap();
    assert_eq!(failing.len(), 1);
    assert_eq!(failing[0]["tag"], "4.15.1");
    assert_eq!(failing[0]["kept"], "4.15.1+amd64");
    assert_eq!(
        failing[0]["reason"],
        format!(
            "registry {}, repository {REPO}, tag 4.15.1 manifest is not found, although the \
             repository lists the tag",
            registry.host_port()
        )
    );
    assert!(status["degraded"]
        .as_str()
        .unwrap()
        .starts_with("degraded: 1 listed tag(s)"));
    svc.stop().await;
}
