//! The status server: liveness, readiness and the metrics of the public API.

use crate::harness::{fixture, get, Pe};

#[tokio::test]
async fn live_ready_and_counted() {
    let pe = Pe::with_graph(fixture(), "/api/upgrades_info", "channel").await;
    assert_eq!(
        get(&format!("{}/livez", pe.status), &[]).await.summary(),
        "200 -\n"
    );
    assert_eq!(
        get(&format!("{}/readyz", pe.status), &[]).await.summary(),
        "200 -\n"
    );
    for path in [
        "graph?channel=stable-4.1",
        "v1/graph?channel=stable-4.1",
        "graph",
        "v1/graph?channel=A",
    ] {
        get(&format!("{}/api/upgrades_info/{path}", pe.base), &[]).await;
    }
    get(
        &format!("{}/api/upgrades_info/graph?channel=a", pe.base),
        &[("accept", "x/y")],
    )
    .await;
    let metrics = get(&format!("{}/metrics", pe.status), &[]).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    for line in [
        "cincinnati_pe_graph_incoming_requests_total{uri_path=\"/api/upgrades_info/graph\"} 3",
        "cincinnati_pe_graph_incoming_requests_total{uri_path=\"/api/upgrades_info/v1/graph\"} 2",
        "cincinnati_pe_graph_response_errors_total{code=\"400\",kind=\"missing_params\"} 1",
        "cincinnati_pe_graph_response_errors_total{code=\"400\",kind=\"invalid_params\"} 1",
        "cincinnati_pe_graph_response_errors_total{code=\"406\",kind=\"invalid_content_type\"} 1",
        "cincinnati_pe_graph_serve_duration_seconds_count 2",
        "cincinnati_pe_build_info{git_commit=",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    // The status server compresses when asked.
    let gzip = get(
        &format!("{}/metrics", pe.status),
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));

    // Fed a graph directly, as from an upstream: no build facts, only what is served.
    let doc = get(&format!("{}/status", pe.status), &[]).await.json();
    assert_eq!(
        doc,
        serde_json::json!({
            "service": "policy-engine",
            "version": env!("CARGO_PKG_VERSION"),
            "git_commit": graph_builder::GIT_COMMIT,
            "ready": true,
            "origin": doc["origin"],
            "served": {"revision": 1, "nodes": doc["served"]["nodes"]},
        })
    );
    assert!(
        doc["origin"].as_str().unwrap().starts_with("upstream: "),
        "{doc}"
    );
    pe.stop().await;
}
