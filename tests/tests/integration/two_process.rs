//! Two processes end to end, as the operator deploys them: synthetic releases pushed to
//! the real local registry, the graph-builder scraping it (with a graph-data directory),
//! the policy-engine fetching from the graph-builder, and requests made as the
//! cluster-version operator makes them, its response rules
//! applied to the answers.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use graph_builder::config::{Args, Settings as GbSettings};
use integration_tests::images::release_image;
use integration_tests::{Format, Index, Pusher, RegistryOptions, TestRegistry};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::support::simple_metadata;

const CLUSTER_ID: &str = "0b9a2cbe-56c4-4a4f-8b6f-3b1c9a5ad7f1";
use graph_data::keys::{CHANNELS_KEY, PAYLOAD_ARCH_KEY};

/// 4.16.0 to 4.16.4 on amd64 and arm64, each listing every earlier patch as previous,
/// and 4.16.4 also as a multi manifest list.
async fn push_releases(registry: &TestRegistry) -> anyhow::Result<()> {
    let pusher = Pusher::new(registry);
    let all = ["4.16.0", "4.16.1", "4.16.2", "4.16.3", "4.16.4"];
    for (n, version) in all.iter().enumerate() {
        let metadata = simple_metadata(version, &all[..n]);
        for (arch, suffix) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
            let image = release_image(Format::Docker, arch, &metadata);
            pusher
                .push_image("ocp/release", &format!("{version}-{suffix}"), &image)
                .await?;
        }
    }
    let multi = simple_metadata("4.16.4", &[]).with(PAYLOAD_ARCH_KEY, "multi");
    let index = Index::new(
        Format::Docker,
        ["amd64", "arm64"]
            .map(|a| release_image(Format::Docker, a, &multi))
            .to_vec(),
    );
    pusher
        .push("ocp/release", "4.16.4-multi", &index.into())
        .await?;
    Ok(())
}

/// A graph-data tree: one channel, a plain block 4.16.0 → 4.16.2 and a risk on
/// 4.16.0-2 → 4.16.3.
fn write_graph_data(dir: &Path) -> anyhow::Result<()> {
    let files = [
        ("version", "1.1.0\n"),
        ("raw/metadata.json", "{}\n"),
        (
            "channels/stable-4.16.yaml",
            "name: stable-4.16\nversions:\n- 4.16.0\n- 4.16.1\n- 4.16.2\n- 4.16.3\n- 4.16.4\n",
        ),
        (
            "blocked-edges/4.16.2.yaml",
            "to: 4.16.2\nfrom: 4\\.16\\.0\n",
        ),
        (
            "blocked-edges/4.16.3-Risk.yaml",
            "to: 4.16.3\nfrom: ^4[.]16[.][0-2][+].*$\nname: SomeRisk\n\
             url: https://issues.example.com/RISK-1\nmessage: Clusters may hurt.\n\
             matchingRules:\n- type: Always\n",
        ),
    ];
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(path, content)?;
    }
    Ok(())
}

fn loopback() -> anyhow::Result<TcpListener> {
    Ok(TcpListener::bind("127.0.0.1:0")?)
}

/// The CVO's request: `Accept: application/json`, parameters in Go's order.
async fn cvo_get(url: &str, arch: &str, version: &str) -> anyhow::Result<Value> {
    let response = reqwest::Client::new()
        .get(url)
        .query(&[
            ("arch", arch),
            ("channel", "stable-4.16"),
            ("id", CLUSTER_ID),
            ("version", version),
        ])
        .header("Accept", "application/json")
        .header("User-Agent", "ClusterVersionOperator/4.16.1")
        .timeout(Duration::from_secs(30))
        .send()
        .await?;
    // Exactly 200, anything else is a failed retrieval for the CVO.
    anyhow::ensure!(response.status() == 200, "{}", response.status());
    Ok(response.json().await?)
}

/// What the CVO derives from a response for a cluster at `current`: the
/// unconditional and the conditional update targets, after checking every rule it
/// applies (strict SemVer, indices in range, targets present, complete risks, metadata).
fn cvo_updates(doc: &Value, current: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let nodes = doc["nodes"].as_array().unwrap();
    let versions: Vec<&str> = nodes
        .iter()
        .map(|n| n["version"].as_str().unwrap())
        .collect();
    for (node, version) in nodes.iter().zip(&versions) {
        assert!(semver::Version::parse(version).is_ok(), "{version}");
        let m = &node["metadata"];
        url_of(&m["url"]);
        assert!(matches!(
            m.get(PAYLOAD_ARCH_KEY),
            None | Some(Value::String(_))
        ));
        if let Some(arch) = m.get(PAYLOAD_ARCH_KEY) {
            assert_eq!(arch, "multi");
        }
        let channels = m[CHANNELS_KEY].as_str().unwrap();
        assert!(channels.split(',').all(|c| !c.is_empty()), "{channels}");
        assert!(node["payload"].as_str().unwrap().contains("@sha256:"));
    }
    let index = versions
        .iter()
        .position(|v| {
            semver::Version::parse(v).unwrap() == semver::Version::parse(current).unwrap()
        })
        .unwrap_or_else(|| panic!("VersionNotFound: {current} not in {versions:?}"));
    let mut updates = BTreeSet::new();
    for edge in doc["edges"].as_array().unwrap() {
        let pair = edge.as_array().unwrap();
        assert_eq!(pair.len(), 2);
        let (from, to) = (
            pair[0].as_u64().unwrap() as usize,
            pair[1].as_u64().unwrap() as usize,
        );
        assert!(from < nodes.len() && to < nodes.len(), "{edge}");
        if from == index {
            updates.insert(versions[to].to_owned());
        }
    }
    let mut conditional = BTreeSet::new();
    for group in doc["conditionalEdges"].as_array().into_iter().flatten() {
        for risk in group["risks"].as_array().unwrap() {
            url_of(&risk["url"]);
            for field in ["name", "message"] {
                assert!(!risk[field].as_str().unwrap().is_empty(), "{risk}");
            }
            assert!(
                !risk["matchingRules"].as_array().unwrap().is_empty(),
                "{risk}"
            );
        }
        for edge in group["edges"].as_array().unwrap() {
            let to = edge["to"].as_str().unwrap();
            assert!(
                versions.contains(&to),
                "no node for conditional update {to}"
            );
            if edge["from"] == current {
                conditional.insert(to.to_owned());
            }
        }
    }
    // An update both unconditional and conditional is kept only as conditional.
    updates.retain(|u| !conditional.contains(u));
    (updates, conditional)
}

fn url_of(value: &Value) -> reqwest::Url {
    reqwest::Url::parse(value.as_str().unwrap()).unwrap()
}

fn set(versions: &[&str]) -> BTreeSet<String> {
    versions.iter().map(|v| (*v).to_owned()).collect()
}

#[tokio::test]
async fn registry_to_graph_builder_to_policy_engine_answers_the_cvo() -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    push_releases(&registry).await?;
    let graph_data = registry.scratch_dir().join("graph-data");
    write_graph_data(&graph_data)?;

    let gb_args = Args::try_parse_from([
        "graph-builder",
        "--upstream.registry.url",
        &registry.base_url(),
        "--upstream.registry.repository",
        "ocp/release",
        "--upstream.graph_data",
        graph_data.to_str().unwrap(),
        "--service.pause_secs",
        "1",
    ])?;
    let gb_settings = GbSettings::load(&gb_args)?;
    let gb_listeners = graph_builder::Listeners {
        main: loopback()?,
        public: loopback()?,
        status: loopback()?,
    };
    let gb_graph = format!("http://{}/v1/graph", gb_listeners.main.local_addr()?);
    let (gb_stop, gb_stopped) = oneshot::channel::<()>();
    let gb = tokio::spawn(graph_builder::run(gb_settings, gb_listeners, async move {
        let _ = gb_stopped.await;
    }));

    // The operator's policy-engine flags, with ports chosen by the kernel.
    let mut pe_settings = policy_engine::Settings::defaults();
    pe_settings.path_prefix = "/api/upgrades_info".into();
    pe_settings.mandatory_client_parameters = ["channel".to_owned()].into();
    pe_settings.upstream.url = gb_graph;
    pe_settings.upstream.refresh = Duration::from_secs(1);
    pe_settings.workers = Some(1);
    let pe_listeners = policy_engine::Listeners::loopback()?;
    let (pe_public, pe_status) = pe_listeners.addresses()?;
    let (pe_stop, pe_stopped) = oneshot::channel::<()>();
    let pe = tokio::spawn(policy_engine::run(pe_settings, pe_listeners, async move {
        let _ = pe_stopped.await;
    }));

    let ready = format!("http://{pe_status}/readyz");
    let mut attempts = 0;
    while reqwest::get(&ready).await?.status() != 200 {
        attempts += 1;
        assert!(attempts < 300, "the policy-engine is not ready after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let graph = format!("http://{pe_public}/api/upgrades_info/v1/graph");
    let amd64 = cvo_get(&graph, "amd64", "4.16.1").await?;
    assert_eq!(amd64["nodes"].as_array().unwrap().len(), 5);
    let (updates, conditional) = cvo_updates(&amd64, "4.16.1");
    assert_eq!(updates, set(&["4.16.2", "4.16.4"]));
    assert_eq!(conditional, set(&["4.16.3"]));
    // The plain block removes 4.16.0 → 4.16.2; the risk makes 4.16.3 conditional.
    let (updates, conditional) = cvo_updates(&amd64, "4.16.0");
    assert_eq!(updates, set(&["4.16.1", "4.16.4"]));
    assert_eq!(conditional, set(&["4.16.3"]));
    let (updates, conditional) = cvo_updates(&amd64, "4.16.3");
    assert_eq!((updates, conditional), (set(&["4.16.4"]), set(&[])));
    let group = &amd64["conditionalEdges"][0];
    assert_eq!(group["risks"][0]["name"], "SomeRisk");
    assert_eq!(group["risks"][0]["matchingRules"][0]["type"], "Always");

    let arm64 = cvo_get(&graph, "arm64", "4.16.3").await?;
    assert_eq!(cvo_updates(&arm64, "4.16.3").0, set(&["4.16.4"]));
    assert_ne!(arm64["nodes"][0]["payload"], amd64["nodes"][0]["payload"]);

    let multi = cvo_get(&graph, "multi", "4.16.4").await?;
    assert_eq!(multi["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(multi["nodes"][0]["metadata"][PAYLOAD_ARCH_KEY], "multi");
    assert_eq!(cvo_updates(&multi, "4.16.4"), (set(&[]), set(&[])));

    let _ = pe_stop.send(());
    let _ = gb_stop.send(());
    tokio::time::timeout(Duration::from_secs(30), pe).await???;
    tokio::time::timeout(Duration::from_secs(30), gb).await???;
    Ok(())
}
