//! Load benchmark of the policy-engine binary, loopback only and bounded in time.
//!
//! Serves the reference's conformance graph (1085 releases, 19478 edges) from an
//! upstream inside this process, starts the `policy-engine` binary against it, and drives
//! 64 keep-alive connections at it: first one key (`channel=candidate-4.6&arch=amd64`),
//! the same with `Accept-Encoding: gzip`, then a rotating mix of every channel and arch
//! of the graph. Prints requests per second, p50/p99/max latency, and the
//! policy-engine's peak RSS (VmHWM).
//!
//! `PE_BENCH_SECS` sets the duration of each phase (default 10 s).

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
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
fn keys() -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_slice(CONFORMANCE).expect("conformance JSON");
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

struct Phase {
    requests: usize,
    errors: usize,
    bytes: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

async fn load(base: &str, queries: Arc<Vec<String>>, duration: Duration, gzip: bool) -> Phase {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (base, queries, next) = (base.to_owned(), Arc::clone(&queries), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            // One client per task: one keep-alive connection each.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .no_gzip()
                .build()
                .expect("client");
            let (mut latencies, mut errors, mut bytes) = (Vec::new(), 0, 0);
            while Instant::now() < deadline {
                let query = &queries[next.fetch_add(1, Ordering::Relaxed) % queries.len()];
                let t0 = Instant::now();
                let mut request = client
                    .get(format!("{base}/api/upgrades_info/graph?{query}"))
                    .header("accept", "application/json");
                if gzip {
                    // What Go's HTTP client (the CVO's) asks for by itself.
                    request = request.header("accept-encoding", "gzip");
                }
                let response = request.send().await;
                match response {
                    Ok(r) if r.status() == 200 => match r.bytes().await {
                        Ok(b) => bytes += b.len(),
                        Err(_) => errors += 1,
                    },
                    _ => errors += 1,
                }
                latencies.push(t0.elapsed());
            }
            (latencies, errors, bytes)
        }));
    }
    let mut phase = Phase {
        requests: 0,
        errors: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for task in tasks {
        let (latencies, errors, bytes) = task.await.expect("load task");
        phase.requests += latencies.len();
        phase.errors += errors;
        phase.bytes += bytes;
        phase.latencies.extend(latencies);
    }
    phase.elapsed = start.elapsed();
    phase.latencies.sort_unstable();
    phase
}

fn report(name: &str, phase: &Phase) {
    let pct = |p: f64| {
        let i = ((phase.latencies.len() as f64 * p) as usize).min(phase.latencies.len() - 1);
        phase.latencies[i].as_secs_f64() * 1000.0
    };
    println!(
        "{name}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} requests, {} errors, {:.1} KB mean body",
        phase.requests as f64 / phase.elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        phase.latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        phase.requests,
        phase.errors,
        phase.bytes as f64 / phase.requests.max(1) as f64 / 1024.0,
    );
}

fn peak_rss_kib(child: &Child) -> String {
    std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("PE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .clamp(1, 120);
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").expect("upstream listener");
    let upstream_url = format!("http://{}/graph", upstream.local_addr().expect("address"));
    let server = HttpServer::new(|| {
        App::new().default_service(web::to(|| async {
            HttpResponse::Ok()
                .content_type("application/json")
                .body(CONFORMANCE)
        }))
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
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the policy-engine binary");
    let base = format!("http://127.0.0.1:{port}");
    let ready = format!("http://127.0.0.1:{status_port}/readyz");
    let client = reqwest::Client::new();
    let mut is_ready = false;
    for _ in 0..300 {
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
        panic!("the policy-engine did not become ready within 30 s");
    }
    println!(
        "policy-engine pid {} ready; RSS peak before load {}",
        pe.id(),
        peak_rss_kib(&pe)
    );

    let single = Arc::new(vec!["channel=candidate-4.6&arch=amd64".to_owned()]);
    let mix = Arc::new(keys());
    // Warm-up: fill the body cache for every key once.
    load(&base, Arc::clone(&mix), Duration::from_secs(1), false).await;
    let duration = Duration::from_secs(secs);
    report(
        "candidate-4.6 amd64",
        &load(&base, Arc::clone(&single), duration, false).await,
    );
    report(
        "candidate-4.6 amd64, gzip",
        &load(&base, single, duration, true).await,
    );
    report(
        &format!("rotating mix of {} channel/arch keys", mix.len()),
        &load(&base, mix, duration, false).await,
    );
    println!("policy-engine peak RSS (VmHWM): {}", peak_rss_kib(&pe));
    let _ = pe.kill();
    let _ = pe.wait();
    upstream_handle.stop(true).await;
}
