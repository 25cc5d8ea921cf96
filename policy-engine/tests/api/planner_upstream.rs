//! Two-process mode with no new flag: a real graph-builder (library, loopback listeners)
//! builds the sample mirror with graph-data and serves the provenance next to its graph;
//! a policy-engine started with just the upstream graph URL fetches it, and explain
//! names the same graph-data file as in one-process mode.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use graph_builder::config::{Args, Settings};
use serde_json::Value;

use crate::harness::{get, Pe};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test]
async fn the_policy_engine_fetches_the_provenance_next_to_the_graph() {
    let layout = repo_root().join("data/sample-releases");
    let graph_data = repo_root().join("data/graph-data");
    let args = Args::try_parse_from([
        "graph-builder".as_ref(),
        "--service.pause_secs".as_ref(),
        "300".as_ref(),
        "--upstream.oci_layout".as_ref(),
        layout.as_os_str(),
        "--upstream.graph_data".as_ref(),
        graph_data.as_os_str(),
    ])
    .unwrap();
    let settings = Settings::load(&args).unwrap();
    let listeners = graph_builder::Listeners {
        main: TcpListener::bind("127.0.0.1:0").unwrap(),
        public: TcpListener::bind("127.0.0.1:0").unwrap(),
        status: TcpListener::bind("127.0.0.1:0").unwrap(),
    };
    let main = format!("http://{}", listeners.main.local_addr().unwrap());
    let public = format!("http://{}", listeners.public.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let gb = tokio::spawn(graph_builder::run(settings, listeners, async move {
        let _ = stopped.await;
    }));

    // The graph-builder serves the provenance on its main and public listeners.
    let deadline = Instant::now() + Duration::from_secs(60);
    let provenance = loop {
        let answer = get(&format!("{main}/v1/provenance"), &[]).await;
        if answer.status == 200 {
            break answer.json();
        }
        assert!(
            Instant::now() < deadline,
            "no provenance: {}",
            answer.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(provenance["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "channels/stable-4.16.yaml"));
    let on_public = get(&format!("{public}/provenance"), &[]).await;
    assert_eq!(on_public.status, 200);
    assert_eq!(on_public.json(), provenance);

    let pe = Pe::with_upstream(&format!("{main}/v1/graph")).await;
    let url = format!(
        "{}/v1/explain?channel=stable-4.15&from=4.15.10&to=4.16.0",
        pe.base
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let explained: Value = loop {
        let answer = get(&url, &[]).await;
        let doc = answer.json();
        if answer.status == 200 && doc["reasons"][0]["file"].is_string() {
            break doc;
        }
        assert!(
            Instant::now() < deadline,
            "no file in the reasons: {}",
            answer.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(explained["reasons"][0]["kind"], "not-in-channel");
    assert_eq!(explained["reasons"][0]["file"], "channels/stable-4.15.yaml");
    pe.stop().await;
    let _ = stop.send(());
    gb.await.unwrap().unwrap();
}
