//! The reference's Accept matrix, row by row, what the real parser adds, and CORS.

use crate::harness::{fixture, get, get_without_accept, Pe};

const V1: &str = "application/vnd.redhat.cincinnati.v1+json";
const JSON: &str = "application/json";

#[tokio::test]
async fn every_row_of_the_reference_matrix() {
    let pe = Pe::with_graph(fixture(), "", "").await;
    let url = format!("{}/graph?channel=stable-4.1", pe.base);
    let reference = get_without_accept(&pe.base, "/graph?channel=stable-4.1").await;
    assert_eq!(reference.status, 200);
    assert_eq!(reference.header("content-type"), Some(V1), "absent Accept");
    let rows: [(&str, u16, &str); 9] = [
        (JSON, 200, JSON),
        (V1, 200, V1),
        ("*/*", 200, JSON),
        ("*", 200, JSON),
        ("application/*", 200, JSON),
        ("app/anything-really", 406, JSON),
        ("text/plain", 406, JSON),
        ("application/xml", 406, JSON),
        ("application/vnd.redhat.cincinnati.v2+json", 406, JSON),
    ];
    for (accept, status, content_type) in rows {
        let answer = get(&url, &[("accept", accept)]).await;
        assert_eq!(answer.status, status, "{accept}");
        assert_eq!(
            answer.header("content-type"),
            Some(content_type),
            "{accept}"
        );
        if status == 200 {
            // One body for every accepted media type.
            assert_eq!(answer.body, reference.body, "{accept}");
        }
    }
    pe.stop().await;
}

#[tokio::test]
async fn lists_parameters_and_q_values_which_the_reference_refuses() {
    let pe = Pe::with_graph(fixture(), "", "").await;
    let url = format!("{}/graph?channel=stable-4.1", pe.base);
    let rows = [
        ("application/json, text/plain", JSON),
        ("application/json; charset=utf-8", JSON),
        (
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            JSON,
        ),
        (
            "application/json;q=0.5, application/vnd.redhat.cincinnati.v1+json",
            V1,
        ),
    ];
    for (accept, content_type) in rows {
        let answer = get(&url, &[("accept", accept)]).await;
        assert_eq!(answer.status, 200, "{accept}");
        assert_eq!(
            answer.header("content-type"),
            Some(content_type),
            "{accept}"
        );
    }
    // Several Accept fields make one list.
    let two = get(&url, &[("accept", "text/plain"), ("accept", V1)]).await;
    assert_eq!(two.status, 200);
    assert_eq!(two.header("content-type"), Some(V1));
    let refused = get(&url, &[("accept", "application/json;q=0, text/*")]).await;
    assert_eq!(refused.status, 406);
    pe.stop().await;
}

#[tokio::test]
async fn cors_echoes_any_origin_for_get_and_head() {
    let pe = Pe::with_graph(fixture(), "", "").await;
    let url = format!("{}/graph?channel=stable-4.1", pe.base);
    let answer = get(&url, &[("origin", "example.com")]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("example.com")
    );
    // Error answers carry the header too.
    let error = get(
        &url,
        &[("origin", "https://console.example"), ("accept", "x/y")],
    )
    .await;
    assert_eq!(error.status, 406);
    assert_eq!(
        error.header("access-control-allow-origin"),
        Some("https://console.example")
    );
    let preflight = crate::harness::client()
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "example.com")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let allowed = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    let mut methods: Vec<&str> = allowed.split(',').map(str::trim).collect();
    methods.sort_unstable();
    assert_eq!(methods, ["GET", "HEAD"]);
    let no_origin = get(&url, &[]).await;
    assert!(no_origin.header("access-control-allow-origin").is_none());
    pe.stop().await;
}
