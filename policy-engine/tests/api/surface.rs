//! The public surface against hostile clients: metric labels are route patterns, never
//! paths as sent; unknown paths cost nothing lasting; oversized request targets, header
//! blocks and queries are refused with their own status and a body saying which limit;
//! made-up channels and arches grow no cache.

use std::time::Duration;

use policy_engine::GraphSource;

use crate::harness::{fixture, get, Pe};

const GRAPH: &str = "/api/upgrades_info/v1/graph";

async fn metrics(pe: &Pe) -> String {
    get(&format!("{}/metrics", pe.status), &[]).await.text()
}

/// The `graph_incoming_requests_total` lines.
fn incoming(metrics: &str) -> Vec<&str> {
    metrics
        .lines()
        .filter(|l| l.starts_with("cincinnati_pe_graph_incoming_requests_total{"))
        .collect()
}

#[tokio::test]
async fn metric_labels_are_route_patterns_whatever_the_spelling() {
    let pe = Pe::with_graph(fixture(), "/api/upgrades_info", "channel").await;
    for path in [
        GRAPH,
        "/api/upgrades_info/v1/%67raph",
        "/api/upgrades_info/v1/gr%61ph",
        "/api/upgrades_info/v1/graph",
    ] {
        let answer = get(&format!("{}{path}?channel=stable-4.1", pe.base), &[]).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    }
    let explain = "/api/upgrades_info/v1/%65xplain?channel=stable-4.1&from=4.1.0&to=4.1.1";
    get(&format!("{}{explain}", pe.base), &[]).await;

    let text = metrics(&pe).await;
    assert_eq!(
        incoming(&text),
        [
            r#"cincinnati_pe_graph_incoming_requests_total{uri_path="/api/upgrades_info/v1/explain"} 1"#,
            r#"cincinnati_pe_graph_incoming_requests_total{uri_path="/api/upgrades_info/v1/graph"} 4"#,
        ],
        "{text}"
    );
    pe.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_empty_404s_that_leave_no_series() {
    let pe = Pe::with_graph(fixture(), "/api/upgrades_info", "channel").await;
    for i in 0..50 {
        let answer = get(&format!("{}/probe/{i}/graph?channel=a", pe.base), &[]).await;
        assert_eq!((answer.status.as_u16(), answer.body.len()), (404, 0));
    }
    let text = metrics(&pe).await;
    assert!(!text.contains("probe"), "{text}");
    assert_eq!(incoming(&text), Vec::<&str>::new());
    pe.stop().await;
}

#[tokio::test]
async fn oversized_requests_get_their_own_status_and_a_clear_body() {
    let pe = Pe::with_graph(fixture(), "/api/upgrades_info", "channel").await;
    let url = format!("{}{GRAPH}?channel=stable-4.1", pe.base);

    // The request target: 8 KiB at most.
    let target = format!("{GRAPH}?channel=stable-4.1&pad=");
    let at_limit = format!("{target}{}", "x".repeat(8192 - target.len()));
    let answer = get(&format!("{}{at_limit}", pe.base), &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = get(&format!("{}{at_limit}y", pe.base), &[]).await;
    assert_eq!(answer.status, 414);
    assert_eq!(
        answer.json(),
        serde_json::json!({
            "kind": "uri_too_long",
            "value": "request target too long: the request target is 8193 bytes long; at most 8192 are accepted",
        })
    );

    // The header block: 16 KiB at most.
    let big = "v".repeat(17 * 1024);
    let answer = get(&url, &[("x-padding", &big)]).await;
    assert_eq!(answer.status, 431);
    assert_eq!(answer.json()["kind"], "request_headers_too_large");
    let value = answer.json()["value"].as_str().unwrap().to_owned();
    assert!(
        value.starts_with("request headers too large: the request headers are ")
            && value.ends_with("bytes long; at most 16384 are accepted"),
        "{value}"
    );
    let answer = get(&url, &[("x-padding", &"v".repeat(15 * 1024))]).await;
    assert_eq!(answer.status, 200);

    // Query parameters: 64 at most.
    let params = |n: usize| (1..n).map(|i| format!("&p{i}=1")).collect::<String>();
    let answer = get(&format!("{url}{}", params(64)), &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = get(&format!("{url}{}", params(65)), &[]).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json(),
        serde_json::json!({
            "kind": "too_many_params",
            "value": "too many query parameters: the query has more than 64 parameters",
        })
    );

    // Refusals are counted like other errors, and also apply to unknown paths.
    let answer = get(&format!("{}/nowhere?{}", pe.base, params(80)), &[]).await;
    assert_eq!(answer.status, 400);
    let text = metrics(&pe).await;
    for line in [
        r#"cincinnati_pe_graph_response_errors_total{code="414",kind="uri_too_long"} 1"#,
        r#"cincinnati_pe_graph_response_errors_total{code="431",kind="request_headers_too_large"} 1"#,
        r#"cincinnati_pe_graph_response_errors_total{code="400",kind="too_many_params"} 2"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    pe.stop().await;
}

#[tokio::test]
async fn made_up_channels_and_arches_grow_no_cache() {
    let source = GraphSource::new();
    source.publish(fixture()).unwrap();
    let snapshot = source.snapshot(Duration::from_secs(1)).await.unwrap();
    let empty = snapshot.body("no-such-channel", "amd64").await.unwrap();
    for i in 0..2000 {
        let body = snapshot
            .body(&format!("made-up-{i}"), &format!("arch-{i}"))
            .await
            .unwrap();
        // One shared body for every pair that selects nothing.
        assert!(std::sync::Arc::ptr_eq(&body, &empty));
        snapshot
            .body("stable-4.1", &format!("arch-{i}"))
            .await
            .unwrap();
    }
    assert_eq!(snapshot.computed_keys(), Vec::<(String, String)>::new());
    snapshot.body("stable-4.1", "amd64").await.unwrap();
    assert_eq!(
        snapshot.computed_keys(),
        [("stable-4.1".to_owned(), "amd64".to_owned())]
    );
}
