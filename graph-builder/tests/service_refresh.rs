//! The service end to end on an OCI layout written by the test (the release source that
//! needs no registry) and a graph-data directory: the first graph, readiness, and what
//! happens when graph-data or the release source breaks and is fixed. The same against
//! the real registry is in the integration tests.

mod service;

use std::path::Path;

use service::layout::add_release;
use service::{graph_data, summary, wait_for, write, Service};

const ERRORS: &str = "cincinnati_gb_graph_upstream_errors_total";

fn push(layout: &Path, version: &str, previous: &[&str]) {
    add_release(layout, version, previous, "amd64");
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn flags<'a>(layout: &'a str, gd: &'a str) -> Vec<&'a str> {
    vec![
        "--upstream.oci_layout",
        layout,
        "--registry",
        "127.0.0.1:5000",
        "--repository",
        "ocp/release",
        "--upstream.graph_data",
        gd,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_graph_data_keeps_the_last_good_graph_and_a_fix_is_picked_up() {
    let layout = tempfile::tempdir().unwrap();
    let fake = layout.path();
    push(fake, "4.16.0", &[]);
    push(fake, "4.16.1", &["4.16.0"]);
    let gd = tempfile::tempdir().unwrap();
    graph_data(gd.path(), "stable-4.16", &["4.16.0", "4.16.1"]);
    // Broken from the start: no good graph yet.
    write(
        gd.path(),
        "channels/fast-4.16.yaml",
        "name: fast-4.16\nversions: [4.16.x]\n",
    );
    let (url, dir) = (fake.display().to_string(), gd.path().display().to_string());
    let svc = Service::start(&flags(&url, &dir));

    svc.metric_above(ERRORS, 0.0).await;
    assert!(
        svc.graph_body().await.is_empty(),
        "empty 200 before the first good graph"
    );
    assert!(!svc.ready().await);
    assert_eq!(
        svc.get(&format!("{}/liveness", svc.status)).await.status(),
        200
    );
    let r = svc.get(&format!("{}/graph-data", svc.public)).await;
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["kind"], "file_open_err");
    svc.assert_failing("graph_data").await;

    // Fixed: the next refresh publishes.
    write(
        gd.path(),
        "channels/fast-4.16.yaml",
        "name: fast-4.16\nversions: [4.16.1]\n",
    );
    let good = svc.first_graph().await;
    assert_eq!(
        summary(&good),
        (
            pairs(&[
                ("4.16.0+amd64", "stable-4.16"),
                ("4.16.1+amd64", "fast-4.16,stable-4.16")
            ]),
            pairs(&[("4.16.0+amd64", "4.16.1+amd64")])
        )
    );
    assert_eq!(
        good["nodes"][0]["metadata"]["io.openshift.upgrades.graph.release.arch"],
        "amd64"
    );
    assert!(
        good.get("version").is_none(),
        "the raw graph has no top-level version"
    );
    assert_eq!(svc.metric("cincinnati_gb_graph_final_releases").await, 2.0);
    assert_eq!(
        svc.metric("cincinnati_gb_graph_upstream_raw_releases")
            .await,
        2.0
    );
    assert!(
        svc.metric("cincinnati_gb_graph_last_successful_refresh_timestamp")
            .await
            > 0.0
    );
    assert_eq!(svc.metric(service::FAILING_SINCE).await, 0.0);

    // The public port serves the graph-data the graph was built with.
    let r = svc.get(&format!("{}/graph-data", svc.public)).await;
    assert_eq!(r.status(), 200);
    let tarball = r.bytes().await.unwrap();
    let served = graph_data::repo::load_tarball_bytes(&tarball, Default::default()).unwrap();
    assert_eq!(served.channels.len(), 2);

    // Broken again: errors are counted, the graph stays.
    let body = svc.graph_body().await;
    let errors = svc.metric(ERRORS).await;
    write(
        gd.path(),
        "blocked-edges/4.16.1.yaml",
        "to: 4.16.1\nfrom: 4[.]16[.]0[+].*\nurl: https://example.com/x\n",
    );
    svc.metric_above(ERRORS, errors).await;
    assert_eq!(
        svc.graph_body().await,
        body,
        "the last good graph is still served"
    );
    assert!(svc.ready().await, "readiness does not revert");
    assert_eq!(
        svc.get(&format!("{}/graph-data", svc.public))
            .await
            .bytes()
            .await
            .unwrap(),
        tarball
    );

    // Fixed as a risk: the edge becomes conditional at the next refresh.
    write(
        gd.path(),
        "blocked-edges/4.16.1.yaml",
        "to: 4.16.1\nfrom: 4[.]16[.]0[+].*\nurl: https://example.com/x\nname: X\nmessage: m\nmatchingRules:\n- type: Always\n",
    );
    let risky = wait_for("the conditional edge", || async {
        let g = svc.graph().await;
        (!g["conditionalEdges"].as_array().unwrap().is_empty()).then_some(g)
    })
    .await;
    assert!(risky["edges"].as_array().unwrap().is_empty(), "{risky}");
    assert_eq!(
        risky["conditionalEdges"][0]["edges"][0],
        serde_json::json!({"from": "4.16.0+amd64", "to": "4.16.1+amd64"})
    );
    assert_eq!(risky["conditionalEdges"][0]["risks"][0]["name"], "X");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_releases_are_picked_up_and_a_failing_source_keeps_the_graph() {
    let layout = tempfile::tempdir().unwrap();
    let fake = layout.path();
    push(fake, "4.16.0", &[]);
    let gd = tempfile::tempdir().unwrap();
    graph_data(gd.path(), "stable-4.16", &["4.16.0", "4.16.1"]);
    let (url, dir) = (fake.display().to_string(), gd.path().display().to_string());
    let svc = Service::start(&flags(&url, &dir));
    assert_eq!(
        summary(&svc.first_graph().await).0,
        pairs(&[("4.16.0+amd64", "stable-4.16")])
    );

    push(fake, "4.16.1", &["4.16.0"]);
    let grown = wait_for("the pushed release", || async {
        let g = svc.graph().await;
        (g["nodes"].as_array().unwrap().len() == 2).then_some(g)
    })
    .await;
    assert_eq!(
        summary(&grown).1,
        pairs(&[("4.16.0+amd64", "4.16.1+amd64")])
    );

    let body = svc.graph_body().await;
    let errors = svc.metric(ERRORS).await;
    // The layout loses its index: the scrape fails.
    let index = std::fs::read(fake.join("index.json")).unwrap();
    std::fs::write(fake.join("index.json"), "{").unwrap();
    svc.metric_above(ERRORS, errors).await;
    assert_eq!(svc.graph_body().await, body);
    svc.assert_failing("scrape").await;

    // The index is back: the failure run ends.
    std::fs::write(fake.join("index.json"), index).unwrap();
    svc.recovered().await;
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_accept_rule_parameters_and_prefix() {
    let layout = tempfile::tempdir().unwrap();
    let fake = layout.path();
    push(fake, "4.16.0", &[]);
    let gd = tempfile::tempdir().unwrap();
    graph_data(gd.path(), "stable-4.16", &["4.16.0"]);
    let (url, dir) = (fake.display().to_string(), gd.path().display().to_string());
    let mut f = flags(&url, &dir);
    f.extend([
        "--service.path_prefix",
        "/api/upgrades_info/",
        "--service.mandatory_client_parameters",
        "channel",
    ]);
    let svc = Service::start(&f);
    wait_for("readiness", || async { svc.ready().await.then_some(()) }).await;
    let graph = format!("{}/api/upgrades_info/graph", svc.main);

    let r = svc.get(&graph).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"kind": "missing_params", "value": "mandatory client parameters missing: channel"})
    );

    for accept in ["application/json", "*/*", "application/*"] {
        let r = svc.get_accept(&format!("{graph}?channel=a"), accept).await;
        assert_eq!(r.status(), 200, "{accept}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let g: serde_json::Value = r.json().await.unwrap();
        assert_eq!(g["nodes"].as_array().unwrap().len(), 1);
    }
    let v1 = format!("{}/api/upgrades_info/v1/graph?channel=a", svc.main);
    assert_eq!(svc.get(&v1).await.status(), 200);
    let r = svc
        .get_accept(&v1, "application/vnd.redhat.cincinnati.v1+json")
        .await;
    assert_eq!(r.status(), 406);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["kind"], "invalid_content_type");

    let r = svc.get(&format!("{}/graph?channel=a", svc.main)).await;
    assert_eq!(r.status(), 404, "routes carry the prefix");
    assert!(r.bytes().await.unwrap().is_empty());
    assert_eq!(
        svc.get(&format!("{}/api/upgrades_info/graph-data", svc.public))
            .await
            .status(),
        200
    );

    let metrics = svc.metrics().await;
    for series in [
        "cincinnati_gb_graph_incoming_requests_total{uri_path=\"/api/upgrades_info/graph\"} 4",
        "cincinnati_gb_graph_incoming_requests_total{uri_path=\"/api/upgrades_info/v1/graph\"} 2",
        "cincinnati_gb_graph_response_errors_total{code=\"400\",kind=\"missing_params\"} 1",
        "cincinnati_gb_graph_response_errors_total{code=\"406\",kind=\"invalid_content_type\"} 1",
        "cincinnati_gb_build_info{git_commit=",
        "cincinnati_gb_graph_initial_upstream_scrape_duration ",
        "cincinnati_gb_graph_upstream_scrapes_duration_bucket{le=\"5\"}",
        "cincinnati_gb_graph_upstream_scrapes_total ",
    ] {
        assert!(metrics.contains(series), "{series} missing from\n{metrics}");
    }
    svc.stop().await;
}

/// The main and public ports count requests by route, whatever the spelling of the
/// path, and refuse oversized targets, header blocks and queries with a clear body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_ports_count_by_route_and_refuse_oversized_requests() {
    let layout = tempfile::tempdir().unwrap();
    push(layout.path(), "4.16.0", &[]);
    let gd = tempfile::tempdir().unwrap();
    graph_data(gd.path(), "stable-4.16", &["4.16.0"]);
    let (url, dir) = (
        layout.path().display().to_string(),
        gd.path().display().to_string(),
    );
    let svc = Service::start(&flags(&url, &dir));
    wait_for("readiness", || async { svc.ready().await.then_some(()) }).await;
    for path in ["/graph", "/%67raph", "/gr%61ph"] {
        let r = svc.get(&format!("{}{path}?channel=a", svc.main)).await;
        assert_eq!(r.status(), 200, "{path}");
    }
    for base in [&svc.main, &svc.public] {
        let long = format!("{base}/graph?pad={}", "x".repeat(8200));
        let r = svc.get(&long).await;
        assert_eq!(r.status(), 414);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["kind"], "uri_too_long");
        let params: String = (0..65).map(|i| format!("p{i}=1&")).collect();
        let r = svc.get(&format!("{base}/graph?{params}")).await;
        assert_eq!(r.status(), 400);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"kind": "too_many_params", "value": "too many query parameters: the query has more than 64 parameters"})
        );
        let r = svc
            .get_accept(&format!("{base}/graph"), &"*".repeat(17 * 1024))
            .await;
        assert_eq!(r.status(), 431);
    }

    let metrics = svc.metrics().await;
    let incoming: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("cincinnati_gb_graph_incoming_requests_total{"))
        .collect();
    assert_eq!(
        incoming,
        ["cincinnati_gb_graph_incoming_requests_total{uri_path=\"/graph\"} 3"],
        "{metrics}"
    );
    for series in [
        "cincinnati_gb_graph_response_errors_total{code=\"414\",kind=\"uri_too_long\"} 2",
        "cincinnati_gb_graph_response_errors_total{code=\"400\",kind=\"too_many_params\"} 2",
        "cincinnati_gb_graph_response_errors_total{code=\"431\",kind=\"request_headers_too_large\"} 2",
    ] {
        assert!(metrics.contains(series), "{series} missing from\n{metrics}");
    }
    svc.stop().await;
}

/// A registry that accepts connections and never answers: the whole-refresh timeout
/// abandons the refresh, counts it, and the next one starts after the pause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_source_hits_the_refresh_timeout() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let svc = Service::start(&[
        "--registry",
        &url,
        "--repository",
        "ocp/release",
        "--service.scrape_timeout",
        "1",
    ]);
    let series = "cincinnati_gb_graph_refresh_errors_total{stage=\"timeout\"}";
    svc.metric_above(series, 1.0).await;
    assert!(svc.graph_body().await.is_empty());
    assert!(!svc.ready().await);
    assert_eq!(
        svc.get(&format!("{}/liveness", svc.status)).await.status(),
        200
    );
    svc.stop().await;
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_is_sent_gzip_coded_or_plain_as_the_client_asks() {
    use std::io::Read as _;

    let layout = tempfile::tempdir().unwrap();
    push(layout.path(), "4.16.0", &[]);
    push(layout.path(), "4.16.1", &["4.16.0"]);
    let gd = tempfile::tempdir().unwrap();
    graph_data(gd.path(), "stable-4.16", &["4.16.0", "4.16.1"]);
    let (url, dir) = (
        layout.path().display().to_string(),
        gd.path().display().to_string(),
    );
    let svc = Service::start(&flags(&url, &dir));
    let expected = summary(&svc.first_graph().await);
    // Takes the body as sent, undecoded.
    let raw = reqwest::Client::builder()
        .no_proxy()
        .no_gzip()
        .build()
        .unwrap();
    let get = |accept_encoding: Option<&'static str>| {
        let mut request = raw.get(format!("{}/graph", svc.main));
        if let Some(value) = accept_encoding {
            request = request.header("accept-encoding", value);
        }
        async move { request.send().await.unwrap() }
    };
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };

    let plain = get(None).await;
    assert_eq!(plain.status(), 200);
    assert_eq!(header(&plain, "content-encoding"), None);
    assert_eq!(
        header(&plain, "content-type").as_deref(),
        Some("application/json")
    );
    let length = header(&plain, "content-length");
    let plain = plain.bytes().await.unwrap();
    assert_eq!(length, Some(plain.len().to_string()));
    let graph: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(summary(&graph), expected);

    let coded = get(Some("gzip, deflate, br")).await;
    assert_eq!(coded.status(), 200);
    assert_eq!(header(&coded, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(header(&coded, "vary").as_deref(), Some("accept-encoding"));
    let coded = coded.bytes().await.unwrap();
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&coded[..])
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, plain);

    // gzip refused: plain.
    let refused = get(Some("gzip;q=0, identity")).await;
    assert_eq!(header(&refused, "content-encoding"), None);
    assert_eq!(refused.bytes().await.unwrap(), plain);
    svc.stop().await;
}
