//! The route set, prefix handling, query parameters and filtering as seen over HTTP.

use crate::harness::{fixture, get, Pe};

const PREFIX: &str = "/api/upgrades_info";

#[tokio::test]
async fn both_graph_routes_answer_the_same_under_the_prefix() {
    let pe = Pe::with_graph(fixture(), "api/upgrades_info/", "channel").await;
    let url = |path: &str| format!("{}{PREFIX}{path}?channel=stable-4.1", pe.base);
    let current = get(&url("/graph"), &[]).await;
    let v1 = get(&url("/v1/graph"), &[]).await;
    assert_eq!(current.status, 200);
    assert_eq!(current.body, v1.body);
    insta::assert_snapshot!("stable-4.1_amd64", current.summary());
    // Without the prefix, or with a trailing slash, nothing is routed.
    for path in ["/graph", "/api/upgrades_info/graph/", "/api/upgrades_info"] {
        let answer = get(&format!("{}{path}?channel=stable-4.1", pe.base), &[]).await;
        assert_eq!(answer.summary(), "404 -\n", "{path}");
    }
    pe.stop().await;
}

#[tokio::test]
async fn no_prefix_serves_from_the_root() {
    let pe = Pe::with_graph(fixture(), "", "").await;
    for path in ["/graph", "/v1/graph"] {
        let answer = get(&format!("{}{path}?channel=stable-4.1", pe.base), &[]).await;
        assert_eq!(answer.status, 200, "{path}");
    }
    for path in ["/openapi", "/v1/openapi"] {
        let answer = get(&format!("{}{path}", pe.base), &[]).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.json()["paths"].as_object().unwrap().len(), 5);
    }
    pe.stop().await;
}

#[tokio::test]
async fn openapi_carries_the_prefix_and_the_mandatory_parameters() {
    let pe = Pe::with_graph(fixture(), PREFIX, "channel, id").await;
    for path in ["/openapi", "/v1/openapi"] {
        let answer = get(
            &format!("{}{PREFIX}{path}", pe.base),
            &[("accept", "text/html")],
        )
        .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let doc = answer.json();
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        assert_eq!(
            paths,
            [
                &format!("{PREFIX}/graph"),
                &format!("{PREFIX}/v1/graph"),
                &format!("{PREFIX}/v1/explain"),
                &format!("{PREFIX}/v1/path"),
                &format!("{PREFIX}/v1/mirror-gaps")
            ]
        );
        let names = |path: &str| -> Vec<String> {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["required"] == true)
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(names(&format!("{PREFIX}/graph")), ["channel", "id"]);
        assert!(names(&format!("{PREFIX}/v1/graph")).is_empty());
    }
    pe.stop().await;
}

#[tokio::test]
async fn arch_filtering_over_http() {
    let pe = Pe::with_graph(fixture(), "", "").await;
    let graph = |query: &'static str| {
        let base = pe.base.clone();
        async move { get(&format!("{base}/graph?{query}"), &[]).await }
    };
    let s390x = graph("channel=stable-4.1&arch=s390x").await;
    insta::assert_snapshot!("stable-4.1_s390x", s390x.summary());
    let multi = graph("arch=multi&channel=candidate-4.1&version=4.1.0&id=0f1e2d3c-aaaa-bbbb-cccc-000000000000&unknown=1").await;
    insta::assert_snapshot!("candidate-4.1_multi", multi.summary());
    let empty = r#"200 application/json
{"version":1,"nodes":[],"edges":[],"conditionalEdges":[]}"#;
    for query in [
        "channel=stable-9.9",
        "channel=stable-4.1&arch=aarch64",
        "channel=stable-4.1&arch=arrgh64",
    ] {
        assert_eq!(graph(query).await.summary(), empty, "{query}");
    }
    // Duplicate keys: the last value wins.
    let last = graph("channel=nope&channel=stable-4.1&arch=amd64&arch=s390x").await;
    assert_eq!(last.body, s390x.body);
    // `+` decodes to a space, which the channel pattern refuses.
    assert_eq!(graph("channel=fast-4+9").await.status, 400);
    pe.stop().await;
}
