//! Where a graph request's time goes, CPU only (no sockets): the full route against a
//! bare actix-web handler returning the same bytes with the same headers, both called
//! through actix-web's service stack in-process, then each stage of the route measured
//! alone, printed as a table.
//!
//! The graph is the conformance graph (1085 releases), key
//! `channel=candidate-4.6&arch=amd64`; its body is computed before timing, as it is after
//! the first request for a key. `PE_BENCH_ITERATIONS` sets the requests per case
//! (default 100000). Run: `cargo bench -p policy-engine --bench stages`.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{test, web, App, HttpRequest, HttpResponse};
use bytes::Bytes;
use policy_engine::filter::GraphParams;
use policy_engine::metrics::Metrics;
use policy_engine::routes::{self, ApiState};
use policy_engine::{negotiate, query, GraphSource};

const CONFORMANCE: &[u8] = include_bytes!(
    "../../graph-data/tests/conformance/graph-data-apply/20211124.083150/graph-gb-with-quay-metadata.json"
);
const PREFIX: &str = "/api/upgrades_info";
const QUERY: &str = "channel=candidate-4.6&arch=amd64";
const PATIENCE: Duration = Duration::from_secs(1);

/// Mean time per call of `f`, run `n` times.
fn per_call(n: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed() / n
}

/// Mean time per call of the async `f`, run `n` times in a row.
async fn per_call_async<F, Fut>(n: u32, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    for _ in 0..n {
        f().await;
    }
    start.elapsed() / n
}

fn row(name: &str, d: Duration) {
    println!("| {name:<58} | {:>8.2} |", d.as_secs_f64() * 1e6);
}

fn main() {
    actix_web::rt::System::new().block_on(run());
}

async fn run() {
    let n: u32 = std::env::var("PE_BENCH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
        .clamp(100, 10_000_000);
    let graph = graph_data::wire::from_json(CONFORMANCE).expect("the conformance graph");
    let source = GraphSource::new();
    source.publish(graph).expect("publish");
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let mandatory: BTreeSet<String> = ["channel".to_owned()].into();
    let state = web::Data::new(ApiState {
        source: source.clone(),
        metrics: Arc::clone(&metrics),
        mandatory: mandatory.clone(),
        openapi: Bytes::from_static(b"{}"),
    });
    let snapshot = source.snapshot(PATIENCE).await.expect("snapshot");
    let body = snapshot
        .body("candidate-4.6", "amd64")
        .await
        .expect("the body");
    let identity = snapshot.identity(&body).await.expect("identity");
    println!(
        "conformance graph, {QUERY}: {} bytes, gzip {} bytes; {n} requests per case",
        identity.len(),
        body.gzip.len()
    );

    // The bare handler: the same bytes and headers, nothing else.
    let bare_state = web::Data::new((
        identity.clone(),
        body.gzip.clone(),
        body.etag.clone(),
        body.etag_gzip.clone(),
    ));
    async fn bare(
        req: HttpRequest,
        s: web::Data<(Bytes, Bytes, HeaderValue, HeaderValue)>,
    ) -> HttpResponse {
        let gzip = req.headers().contains_key(header::ACCEPT_ENCODING);
        let mut response = HttpResponse::Ok();
        response
            .insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ))
            .insert_header((
                header::VARY,
                HeaderValue::from_static("Accept, Accept-Encoding"),
            ));
        if gzip {
            response
                .insert_header((header::ETAG, s.3.clone()))
                .insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")))
                .body(s.1.clone())
        } else {
            response
                .insert_header((header::ETAG, s.2.clone()))
                .body(s.0.clone())
        }
    }
    let uri = format!("{PREFIX}/graph?{QUERY}");
    let request = |gzip: bool| {
        let mut r = test::TestRequest::get()
            .uri(&uri)
            .insert_header((header::ACCEPT, "application/json"));
        if gzip {
            r = r.insert_header((header::ACCEPT_ENCODING, "gzip"));
        }
        r.to_request()
    };

    println!("\nper request, through actix-web's service stack in-process (no sockets):\n");
    println!("| {:<58} | {:>8} |", "case", "µs");
    println!("|{:-<60}|{:->10}|", "", "");
    let bare_app = test::init_service(
        App::new()
            .app_data(bare_state.clone())
            .route(&format!("{PREFIX}/graph"), web::get().to(bare)),
    )
    .await;
    let bare_cors_app = test::init_service(
        App::new()
            .app_data(bare_state.clone())
            .wrap(routes::cors())
            .route(&format!("{PREFIX}/graph"), web::get().to(bare)),
    )
    .await;
    let full_no_cors = test::init_service(
        App::new()
            .app_data(state.clone())
            .configure(|cfg| routes::configure(cfg, PREFIX)),
    )
    .await;
    let full = test::init_service(
        App::new()
            .app_data(state.clone())
            .wrap(routes::cors())
            .configure(|cfg| routes::configure(cfg, PREFIX)),
    )
    .await;
    let mut baseline = Duration::ZERO;
    for gzip in [false, true] {
        let coding = if gzip { "gzip" } else { "plain" };
        let cases: [(&str, Duration); 4] = [
            (
                "bare handler, same bytes and headers",
                per_call_async(n, || async {
                    let r = test::call_service(&bare_app, request(gzip)).await;
                    assert!(r.status().is_success());
                })
                .await,
            ),
            (
                "bare handler behind the CORS middleware",
                per_call_async(n, || async {
                    let r = test::call_service(&bare_cors_app, request(gzip)).await;
                    assert!(r.status().is_success());
                })
                .await,
            ),
            (
                "full route without the CORS middleware",
                per_call_async(n, || async {
                    let r = test::call_service(&full_no_cors, request(gzip)).await;
                    assert!(r.status().is_success());
                })
                .await,
            ),
            (
                "full route (what the policy-engine serves)",
                per_call_async(n, || async {
                    let r = test::call_service(&full, request(gzip)).await;
                    assert!(r.status().is_success());
                })
                .await,
            ),
        ];
        for (name, d) in cases {
            row(&format!("{name}, {coding}"), d);
        }
        if !gzip {
            baseline = cases[0].1;
        }
    }
    let making_requests = per_call(n, || {
        black_box(request(false));
    });
    row(
        "(building the test request, included above)",
        making_requests,
    );

    println!("\neach stage of the full route alone (plain request):\n");
    println!("| {:<58} | {:>8} |", "stage", "µs");
    println!("|{:-<60}|{:->10}|", "", "");
    let req = test::TestRequest::get()
        .uri(&uri)
        .insert_header((header::ACCEPT, "application/json"))
        .to_http_request();
    let path = format!("{PREFIX}/graph");
    let stages: Vec<(&str, Duration)> = vec![
        (
            "metrics: count the request (uri_path counter)",
            per_call(n, || metrics.count_incoming(black_box(&path))),
        ),
        (
            "Accept negotiation",
            per_call(n, || {
                let accept = req
                    .headers()
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok());
                black_box(negotiate::content_type(black_box(accept)).expect("type"));
            }),
        ),
        (
            "query: mandatory parameters, decoding, validation",
            per_call(n, || {
                let q = black_box(req.query_string());
                query::ensure_present(&mandatory, q).expect("present");
                black_box(
                    GraphParams::from_query(&query::decode(q).expect("decoded")).expect("valid"),
                );
            }),
        ),
        (
            "metrics: serve-duration histogram timer",
            per_call(n, || {
                metrics.serve_duration.start_timer().observe_duration()
            }),
        ),
        (
            "snapshot and cached body lookup",
            per_call_async(n, || async {
                let s = source.snapshot(PATIENCE).await.expect("snapshot");
                black_box(s.body("candidate-4.6", "amd64").await.expect("body"));
            })
            .await,
        ),
        (
            "identity coding from the LRU",
            per_call_async(n, || async {
                black_box(snapshot.identity(&body).await.expect("identity"));
            })
            .await,
        ),
        (
            "Accept-Encoding and If-None-Match",
            per_call(n, || {
                black_box(negotiate::accepts_gzip(black_box(Some("gzip"))));
                black_box(negotiate::none_match(black_box(None), &["\"a\"", "\"b\""]));
            }),
        ),
        (
            "response headers (ETag, Vary, Content-Type) and body",
            per_call(n, || {
                let mut response = HttpResponse::Ok();
                response
                    .insert_header((header::ETAG, body.etag.clone()))
                    .insert_header((
                        header::VARY,
                        HeaderValue::from_static("Accept, Accept-Encoding"),
                    ))
                    .insert_header((
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    ));
                black_box(response.body(identity.clone()));
            }),
        ),
    ];
    let mut total = Duration::ZERO;
    for (name, d) in &stages {
        row(name, *d);
        total += *d;
    }
    row("sum of the stages", total);
    row("bare handler (plain), for scale", baseline);
}
