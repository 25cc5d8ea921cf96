//! The full service against an upstream graph-builder served from the test on
//! 127.0.0.1: errors before the first graph, the graph once served, the last good graph
//! kept when the upstream breaks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use clap::Parser as _;

use crate::harness::{get, Pe, FIXTURE};

/// What the fake upstream answers, and the Accept headers it was sent.
#[derive(Default)]
struct Script {
    status: u16,
    body: Vec<u8>,
    accepts: Vec<String>,
}

struct Upstream {
    url: String,
    script: Arc<Mutex<Script>>,
    handle: actix_web::dev::ServerHandle,
}

impl Upstream {
    fn start(status: u16, body: &[u8]) -> Self {
        let script = Arc::new(Mutex::new(Script {
            status,
            body: body.to_vec(),
            accepts: Vec::new(),
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/graph", listener.local_addr().unwrap());
        let data = web::Data::from(Arc::clone(&script));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(answer))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url,
            script,
            handle,
        }
    }

    fn set(&self, status: u16, body: &[u8]) {
        let mut script = self.script.lock().unwrap();
        script.status = status;
        script.body = body.to_vec();
    }
}

async fn answer(req: HttpRequest, script: web::Data<Mutex<Script>>) -> HttpResponse {
    let mut script = script.lock().unwrap();
    let accept = req
        .headers()
        .get("accept")
        .map(|v| v.to_str().unwrap().to_owned());
    script.accepts.push(accept.unwrap_or_default());
    HttpResponse::build(actix_web::http::StatusCode::from_u16(script.status).unwrap())
        .content_type("application/json")
        .body(script.body.clone())
}

/// Polls until `check` holds for the answer to `url`, for at most 20 s.
async fn eventually(
    url: &str,
    check: impl Fn(&crate::harness::Answer) -> bool,
) -> crate::harness::Answer {
    for _ in 0..200 {
        let answer = get(url, &[]).await;
        if check(&answer) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never reached the expected state");
}

#[tokio::test]
async fn upstream_down_is_failed_upstream_fetch() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/graph");
    let pe = Pe::with_upstream(&url).await;
    let answer = get(&format!("{}/graph?channel=stable-4.1", pe.base), &[]).await;
    assert_eq!(answer.status, 500);
    assert_eq!(
        answer.json(),
        serde_json::json!({
            "kind": "failed_upstream_fetch",
            "value": format!("failed to fetch upstream graph: error sending request for url ({url})"),
        })
    );
    let ready = get(&format!("{}/readyz", pe.status), &[]).await;
    assert_eq!(ready.status, 503);
    assert!(
        ready.text().contains("error sending request"),
        "{}",
        ready.text()
    );
    pe.stop().await;
}

#[tokio::test]
async fn empty_body_then_graph_then_outage() {
    let upstream = Upstream::start(200, b"");
    let pe = Pe::with_upstream(&upstream.url).await;
    let graph_url = format!("{}/graph?channel=stable-4.1", pe.base);
    let answer = get(&graph_url, &[]).await;
    insta::assert_snapshot!(answer.summary(), @r#"
    500 application/json
    {"kind":"failed_json_in","value":"failed to deserialize JSON: invalid graph JSON: EOF while parsing a value at line 1 column 0"}
    "#);
    // Missing channel still comes first: parameters are checked before the graph.
    assert_eq!(get(&format!("{}/graph", pe.base), &[]).await.status, 400);

    upstream.set(503, b"scraping");
    let answer = eventually(&graph_url, |a| a.text().contains("503")).await;
    insta::assert_snapshot!(answer.summary(), @r#"
    500 application/json
    {"kind":"failed_upstream_fetch","value":"failed to fetch upstream graph: 503 Service Unavailable"}
    "#);

    upstream.set(200, FIXTURE);
    let served = eventually(&graph_url, |a| a.status == 200).await;
    assert_eq!(served.json()["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(get(&format!("{}/readyz", pe.status), &[]).await.status, 200);

    // The upstream breaks: the last good graph stays, the failures are counted.
    let metrics_url = format!("{}/metrics", pe.status);
    let counter = |metrics: &str, name: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(name)).unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let errors = "cincinnati_pe_http_upstream_errors_total";
    let before = counter(&get(&metrics_url, &[]).await.text(), errors);
    assert!(before >= 2, "the empty body and the 503 were counted");
    upstream.set(200, b"{\"nodes\":");
    let metrics = eventually(&metrics_url, |a| counter(&a.text(), errors) > before).await;
    let requests = counter(
        &metrics.text(),
        "cincinnati_pe_http_upstream_requests_total",
    );
    assert!(requests > before + 1, "{}", metrics.text());
    assert!(metrics
        .text()
        .contains("cincinnati_pe_build_info{git_commit="));
    let still = get(&graph_url, &[]).await;
    assert_eq!(still.body, served.body);
    assert_eq!(get(&format!("{}/readyz", pe.status), &[]).await.status, 200);
    let accepts = upstream.script.lock().unwrap().accepts.clone();
    assert!(
        accepts.iter().all(|a| a == "application/json"),
        "{accepts:?}"
    );
    pe.stop().await;
    upstream.handle.stop(true).await;
}

#[tokio::test]
async fn an_answer_over_the_size_limit_is_refused_naming_the_limit() {
    let upstream = Upstream::start(200, FIXTURE);
    let mut settings = policy_engine::Cli::try_parse_from([
        "policy-engine",
        "--upstream.cincinnati.url",
        upstream.url.as_str(),
    ])
    .unwrap()
    .settings()
    .unwrap();
    settings.upstream.refresh = Duration::from_secs(1);
    settings.upstream.max_body_bytes = 10;
    settings.workers = Some(1);
    let pe = Pe::with_settings(settings).await;
    let answer = get(&format!("{}/graph?channel=stable-4.1", pe.base), &[]).await;
    assert_eq!(answer.status, 500, "{}", answer.text());
    assert_eq!(
        answer.json(),
        serde_json::json!({
            "kind": "failed_upstream_fetch",
            "value": format!(
                "failed to fetch upstream graph: the answer from {} is larger than 10 bytes",
                upstream.url
            ),
        })
    );
    pe.stop().await;
}

/// Readiness while no graph is held names what is missing and where graphs come from:
/// an upstream that has not answered yet, one that cannot be reached, a graph-builder
/// still on its first scrape (503), one that serves its empty body before its first
/// graph. Once a graph is held it is 200, and a failure after that is said in the body.
#[tokio::test]
async fn readiness_bodies_say_what_is_missing_in_upstream_mode() {
    let readyz = |pe: &Pe| format!("{}/readyz", pe.status);

    // Accepts connections and never answers: the first attempt has not ended.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/graph", silent.local_addr().unwrap());
    let pe = Pe::with_upstream(&url).await;
    let ready = get(&readyz(&pe), &[]).await;
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.text(),
        format!("no graph yet: waiting for the first one (upstream: {url})")
    );
    pe.stop().await;
    drop(silent);

    // Nothing listens: unreachable, named with its URL.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/graph");
    let pe = Pe::with_upstream(&url).await;
    let ready = eventually(&readyz(&pe), |a| a.text().contains("last attempt")).await;
    assert_eq!(ready.status, 503);
    let text = ready.text();
    assert!(
        text.starts_with(&format!(
            "no graph yet: failed to fetch upstream graph: error sending request for url ({url}) (last attempt "
        )),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(" s ago; upstream: {url})")),
        "{text}"
    );
    pe.stop().await;

    // A graph-builder on its first scrape answers 503; then its empty body; then a graph.
    let upstream = Upstream::start(503, b"scraping");
    let pe = Pe::with_upstream(&upstream.url).await;
    let ready = eventually(&readyz(&pe), |a| a.text().contains("last attempt")).await;
    assert_eq!(ready.status, 503);
    let text = ready.text();
    assert!(
        text.starts_with(
            "no graph yet: failed to fetch upstream graph: 503 Service Unavailable (last attempt "
        ),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(" s ago; upstream: {})", upstream.url)),
        "{text}"
    );
    upstream.set(200, b"");
    let ready = eventually(&readyz(&pe), |a| a.text().contains("JSON")).await;
    assert_eq!(ready.status, 503);
    assert!(
        ready.text().starts_with(
            "no graph yet: failed to deserialize JSON: invalid graph JSON: EOF while parsing a value at line 1 column 0 (last attempt "
        ),
        "{}",
        ready.text()
    );
    let doc = get(&format!("{}/status", pe.status), &[]).await.json();
    assert_eq!(doc["ready"], false);
    assert!(
        doc["not_ready"]
            .as_str()
            .unwrap()
            .starts_with("no graph yet: failed to deserialize JSON: "),
        "{doc}"
    );

    upstream.set(200, FIXTURE);
    let ready = eventually(&readyz(&pe), |a| a.status == 200).await;
    assert_eq!(ready.summary(), "200 -\n");
    upstream.set(503, b"down");
    let ready = eventually(&readyz(&pe), |a| !a.body.is_empty()).await;
    assert_eq!(ready.status, 200, "a held graph keeps readiness");
    let text = ready.text();
    assert!(
        text.starts_with("serving graph revision 1; the last refresh failed "),
        "{text}"
    );
    assert!(
        text.ends_with(" s ago: failed to fetch upstream graph: 503 Service Unavailable"),
        "{text}"
    );
    pe.stop().await;
    upstream.handle.stop(true).await;
}
