//! Load benchmark of the policy-engine binary, loopback only and bounded in time.
//!
//! For each graph, serves it from an upstream inside this process, starts the
//! `policy-engine` binary against it, and drives 64 keep-alive connections at it (the
//! load generator of `support/load.rs`): first one key, the same with
//! `Accept-Encoding: gzip`, then a rotating mix of every channel and arch of the graph,
//! plain and gzipped, after one warm-up request per key. Prints requests per second,
//! p50/p99/max latency, and the policy-engine's RSS once every body was served once and
//! at the end, with its peak (VmHWM). Graphs:
//! - `conformance`: the reference's conformance graph (1085 releases, 19478 edges), key
//!   `channel=candidate-4.6&arch=amd64`;
//! - `full`: the full-scale graph ([`full_graph`]), key
//!   `channel=stable-4.18&arch=amd64`.
//!
//! `PE_BENCH_SECS` sets the duration of each phase (default 10 s); `PE_BENCH_GRAPH`
//! picks `conformance` or `full` (default both). The binary runs with the environment the
//! operand image sets (glibc's allocator settings, [`image_env`]); `PE_BENCH_IMAGE_ENV=0`
//! runs it with glibc's default arena count (the figures before the binaries set their own).

#[path = "support/full_graph.rs"]
mod full_graph;
#[path = "support/image_env.rs"]
mod image_env;
#[path = "support/load.rs"]
mod load;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};

const CONFORMANCE: &[u8] = include_bytes!(
    "../../graph-data/tests/conformance/graph-data-apply/20211124.083150/graph-gb-with-quay-metadata.json"
);
const CONNECTIONS: usize = 64;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Every (channel, arch) the graph lists.
fn keys(graph: &[u8]) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_slice(graph).expect("graph JSON");
    let mut channels = BTreeSet::new();
    let mut arches = BTreeSet::new();
    for node in doc["nodes"].as_array().expect("nodes") {
        let metadata = &node["metadata"];
        let csv = |key: &str| -> Vec<String> {
            metadata[key]
                .as_str()
                .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
                .unwrap_or_default()
        };
        channels.extend(csv("io.openshift.upgrades.graph.release.channels"));
        arches.extend(csv("io.openshift.upgrades.graph.release.arch"));
    }
    channels
        .iter()
        .flat_map(|c| arches.iter().map(move |a| format!("channel={c}&arch={a}")))
        .collect()
}

fn report(name: &str, phase: &load::Phase) {
    println!("{name}: {}", phase.summary());
}

/// The requests for `queries`, with or without `Accept-Encoding: gzip`.
fn requests(queries: &[String], gzip: bool) -> Arc<Vec<Vec<u8>>> {
    Arc::new(
        queries
            .iter()
            .map(|q| load::get(&format!("/api/upgrades_info/graph?{q}"), gzip))
            .collect(),
    )
}

/// A line of `/proc/PID/status`: `VmHWM` (peak RSS) or `VmRSS` (now).
fn proc_status(child: &Child, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len()..].trim_start_matches(':').trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn peak_rss_kib(child: &Child) -> String {
    proc_status(child, "VmHWM")
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("PE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .clamp(1, 120);
    let which = std::env::var("PE_BENCH_GRAPH").unwrap_or_default();
    let duration = Duration::from_secs(secs);
    println!(
        "policy-engine environment: {}",
        image_env::describe(&image_env::image_env())
    );
    if which.is_empty() || which == "conformance" {
        println!("conformance graph: 1085 releases, 19478 edges");
        bench(
            CONFORMANCE.to_vec(),
            "channel=candidate-4.6&arch=amd64",
            duration,
        )
        .await;
    }
    if which.is_empty() || which == "full" {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/graph-data");
        let started = Instant::now();
        let (graph, summary) = full_graph::build(&dir);
        println!("{summary}; built in {:.1?}", started.elapsed());
        bench(graph, "channel=stable-4.18&arch=amd64", duration).await;
    }
}

/// Serves `graph` from an in-process upstream to a fresh policy-engine binary and runs
/// the three load phases against it.
async fn bench(graph: Vec<u8>, key: &str, duration: Duration) {
    let mix = keys(&graph);
    let graph = web::Data::new(bytes::Bytes::from(graph));
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").expect("upstream listener");
    let upstream_url = format!("http://{}/graph", upstream.local_addr().expect("address"));
    let server = HttpServer::new(move || {
        App::new().app_data(graph.clone()).default_service(web::to(
            |graph: web::Data<bytes::Bytes>| async move {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(graph.get_ref().clone())
            },
        ))
    })
    .workers(1)
    .disable_signals()
    .listen(upstream)
    .expect("upstream server")
    .run();
    let upstream_handle = server.handle();
    tokio::spawn(server);

    let (port, status_port) = (free_port(), free_port());
    let mut pe = Command::new(env!("CARGO_BIN_EXE_policy-engine"))
        .args([
            "--service.address",
            "127.0.0.1",
            "--service.port",
            &port.to_string(),
        ])
        .args([
            "--status.address",
            "127.0.0.1",
            "--status.port",
            &status_port.to_string(),
        ])
        .args(["--service.path_prefix", "/api/upgrades_info"])
        .args(["--service.mandatory_client_parameters", "channel"])
        .args(["--upstream.cincinnati.url", &upstream_url])
        .envs(image_env::image_env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the policy-engine binary");
    let ready = format!("http://127.0.0.1:{status_port}/readyz");
    let client = reqwest::Client::new();
    let mut is_ready = false;
    for _ in 0..600 {
        if client
            .get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            is_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !is_ready {
        let _ = pe.kill();
        let _ = pe.wait();
        panic!("the policy-engine did not become ready within 60 s");
    }
    println!(
        "policy-engine pid {} ready; RSS peak before load {}",
        pe.id(),
        peak_rss_kib(&pe)
    );

    let single = vec![key.to_owned()];
    // Warm-up: one request per key, so the phases measure the steady state (each key's
    // body is computed once per graph revision; that cold path is the filter bench's).
    let started = Instant::now();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    for query in mix.iter() {
        let request = load::get(&format!("/api/upgrades_info/graph?{query}"), false);
        let answer = load::fetch(addr, &request).await;
        assert!(
            answer.is_ok_and(|(status, _, _)| status == 200),
            "warm-up of {query}"
        );
    }
    println!(
        "warm-up: {} keys computed in {:.1?}; every body served once: RSS {}, peak RSS {}",
        mix.len(),
        started.elapsed(),
        proc_status(&pe, "VmRSS"),
        peak_rss_kib(&pe)
    );
    report(
        key,
        &load::run(addr, requests(&single, false), CONNECTIONS, duration).await,
    );
    report(
        &format!("{key}, gzip"),
        &load::run(addr, requests(&single, true), CONNECTIONS, duration).await,
    );
    report(
        &format!("rotating mix of {} channel/arch keys", mix.len()),
        &load::run(addr, requests(&mix, false), CONNECTIONS, duration).await,
    );
    report(
        &format!("rotating mix of {} channel/arch keys, gzip", mix.len()),
        &load::run(addr, requests(&mix, true), CONNECTIONS, duration).await,
    );
    println!(
        "policy-engine RSS {}, peak RSS (VmHWM): {}",
        proc_status(&pe, "VmRSS"),
        peak_rss_kib(&pe)
    );
    let _ = pe.kill();
    let _ = pe.wait();
    upstream_handle.stop(true).await;
}
