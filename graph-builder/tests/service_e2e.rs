//! End to end against a real registry (Debian's `docker-registry`, started by the
//! integration harness on 127.0.0.1): synthetic releases in both manifest formats and a
//! multi-arch index, a graph-data tree with channels, a plain block and a risk. The
//! served graph has the expected nodes, edges, conditional edges and channel lists;
//! graph-data edits and pushed releases show up at the next refresh; broken graph-data
//! and a stopped registry keep the last good graph and show in `/metrics`.

mod service;

use integration_tests::images::release_image;
use integration_tests::{
    Artifact, Format, Index, Pusher, RegistryOptions, ReleaseMetadata, TestRegistry,
};
use serde_json::json;
use service::{graph_data, summary, wait_for, write, Service};

const REPO: &str = "ocp/release";
const ERRORS: &str = "cincinnati_gb_graph_upstream_errors_total";
use graph_data::keys::CHANNELS_KEY as CHANNELS;

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn push(pusher: &Pusher, format: Format, version: &str, previous: &[&str]) -> String {
    let image = release_image(
        format,
        "amd64",
        &ReleaseMetadata::new(version).previous(previous),
    );
    pusher
        .push_image(REPO, &format!("{version}-x86_64"), &image)
        .await
        .unwrap()
}

const RISK: &str =
    "to: 4.15.2\nfrom: 4[.]15[.]0[+].*\nurl: https://example.com/risk\nname: SomeRisk\n\
                    message: Clusters on 4.15.0 may hit it.\nmatchingRules:\n\
                    - type: PromQL\n  promql:\n    promql: group(cluster_version)\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_registry_graph_follows_pushes_and_graph_data_and_survives_failures() {
    let mut registry = TestRegistry::start(RegistryOptions::anonymous()).unwrap();
    let pusher = Pusher::new(&registry);
    push(&pusher, Format::Docker, "4.15.0", &[]).await;
    push(&pusher, Format::Docker, "4.15.1", &["4.15.0"]).await;
    let d2 = push(&pusher, Format::Oci, "4.15.2", &["4.15.0", "4.15.1"]).await;
    let multi_meta = ReleaseMetadata::new("4.15.2")
        .previous(&["4.15.1"])
        .with("release.openshift.io/architecture", "multi");
    let index = Index::new(
        Format::Oci,
        vec![
            release_image(Format::Oci, "amd64", &multi_meta),
            release_image(Format::Oci, "arm64", &multi_meta),
        ],
    );
    let multi = pusher
        .push(REPO, "4.15.2-multi", &Artifact::Index(index))
        .await
        .unwrap();

    let gd = tempfile::tempdir().unwrap();
    let all = ["4.15.0", "4.15.1", "4.15.2"];
    graph_data(gd.path(), "stable-4.15", &all);
    graph_data(gd.path(), "fast-4.15", &all);
    graph_data(gd.path(), "candidate-4.15", &all);
    write(
        gd.path(),
        "blocked-edges/4.15.1.yaml",
        "to: 4.15.1\nfrom: 4[.]15[.]0[+]amd64\n",
    );
    write(gd.path(), "blocked-edges/4.15.2-risk.yaml", RISK);

    let url = format!("http://{}", registry.host_port());
    let dir = gd.path().display().to_string();
    let svc = Service::start(&[
        "--registry",
        &url,
        "--repository",
        REPO,
        "--upstream.graph_data",
        &dir,
    ]);
    let graph = svc.first_graph().await;

    let all_channels = "candidate-4.15,fast-4.15,stable-4.15";
    assert_eq!(
        summary(&graph),
        (
            pairs(&[
                ("4.15.0+amd64", all_channels),
                ("4.15.1+amd64", all_channels),
                ("4.15.1+multi", ""),
                ("4.15.2+amd64", all_channels),
                ("4.15.2+multi", all_channels),
            ]),
            // 4.15.0 -> 4.15.1 is blocked, 4.15.0 -> 4.15.2 is conditional.
            pairs(&[
                ("4.15.1+amd64", "4.15.2+amd64"),
                ("4.15.1+multi", "4.15.2+multi")
            ]),
        )
    );
    assert_eq!(
        graph["conditionalEdges"],
        json!([{
            "edges": [{"from": "4.15.0+amd64", "to": "4.15.2+amd64"}],
            "risks": [{
                "url": "https://example.com/risk", "name": "SomeRisk",
                "message": "Clusters on 4.15.0 may hit it.",
                "matchingRules": [{"type": "PromQL", "promql": {"promql": "group(cluster_version)"}}],
            }],
        }])
    );
    let node = |g: &serde_json::Value, v: &str| {
        g["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["version"] == v)
            .cloned()
            .unwrap()
    };
    let host = registry.host_port();
    assert_eq!(
        node(&graph, "4.15.2+amd64")["payload"],
        format!("{host}/{REPO}@{d2}")
    );
    assert_eq!(
        node(&graph, "4.15.2+multi")["payload"],
        format!("{host}/{REPO}@{multi}")
    );
    assert_eq!(
        node(&graph, "4.15.2+multi")["metadata"]["io.openshift.upgrades.graph.release.arch"],
        "multi"
    );
    assert_eq!(
        node(&graph, "4.15.1+multi").get("payload"),
        None,
        "abstract node"
    );

    // A graph-data edit shows up at the next refresh.
    write(
        gd.path(),
        "channels/fast-4.15.yaml",
        "name: fast-4.15\nversions:\n- 4.15.0\n- 4.15.1\n",
    );
    let edited = wait_for("the channel edit", || async {
        let g = svc.graph().await;
        (node(&g, "4.15.2+amd64")["metadata"][CHANNELS] == "candidate-4.15,stable-4.15")
            .then_some(g)
    })
    .await;
    assert_eq!(
        node(&edited, "4.15.1+amd64")["metadata"][CHANNELS],
        all_channels
    );

    // A pushed release shows up at the next refresh.
    push(&pusher, Format::Docker, "4.15.3", &["4.15.2"]).await;
    let grown = wait_for("the pushed release", || async {
        let g = svc.graph().await;
        g["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["version"] == "4.15.3+amd64")
            .then_some(g)
    })
    .await;
    assert!(summary(&grown)
        .1
        .contains(&("4.15.2+amd64".to_owned(), "4.15.3+amd64".to_owned())));

    // Broken graph-data: the graph stays, the error is counted.
    let body = svc.graph_body().await;
    let errors = svc.metric(ERRORS).await;
    write(
        gd.path(),
        "blocked-edges/4.15.2-risk.yaml",
        "to: 4.15.2\nfrom: 4[.]15[.]0[+].*\nurl: x\n",
    );
    svc.metric_above(ERRORS, errors).await;
    assert_eq!(svc.graph_body().await, body);
    svc.assert_failing("graph_data").await;
    write(gd.path(), "blocked-edges/4.15.2-risk.yaml", RISK);
    svc.recovered().await;

    // The registry stops: the graph stays, the scrape error is counted.
    let body = svc.graph_body().await;
    let errors = svc.metric(ERRORS).await;
    registry.stop();
    svc.metric_above(ERRORS, errors).await;
    assert_eq!(svc.graph_body().await, body);
    assert!(svc.ready().await);
    svc.assert_failing("scrape").await;
    svc.stop().await;
}
