//! The update planner at full scale, loopback only and bounded in time:
//! `cargo bench -p policy-engine --bench planner`.
//!
//! Builds the full-scale graph the graph-builder would (every version the bundled
//! graph-data's channels list, on amd64, arm64, ppc64le, s390x and multi; each release's
//! `previous` the earlier versions of its minor and every version of the minor before;
//! graph-data applied with its provenance recorded), publishes it with its provenance
//! into a policy-engine served in this process, and drives 16 keep-alive connections at
//! `/v1/explain`, then at `/v1/path`, over random pairs of every `stable-*` channel on
//! amd64 (after one warm-up request per channel). Prints requests per second, p50/p99/max
//! latency and the process's peak RSS (VmHWM; load generator included). Then, if Debian's
//! `chromium` is installed, the wall time of loading `{prefix}/planner/` with the channel
//! graph of `stable-4.18` in headless Chromium, against loading an empty page.
//! `PE_BENCH_SECS` sets each phase's duration (default 10 s).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use graph_builder::assemble;
use graph_builder::scrape::ScrapedRelease;
use graph_data::keys::ARCH_KEY;
use graph_data::planner::ChannelView;
use graph_data::provenance::{self, Provenance};
use policy_engine::metrics::Metrics;
use policy_engine::{GraphSource, Listeners};
use rand::{Rng, SeedableRng};
use semver::{BuildMetadata, Version};

const ARCHES: [&str; 5] = ["amd64", "arm64", "ppc64le", "s390x", "multi"];
const CONNECTIONS: usize = 16;
const PREFIX: &str = "/api/upgrades_info";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The releases a scrape of the full-scale mirror returns.
fn releases(versions: &[Version]) -> Vec<ScrapedRelease> {
    let mut by_minor: BTreeMap<(u64, u64), Vec<&Version>> = BTreeMap::new();
    for v in versions {
        by_minor.entry((v.major, v.minor)).or_default().push(v);
    }
    let mut out = Vec::with_capacity(versions.len() * ARCHES.len());
    for v in versions {
        let older = v
            .minor
            .checked_sub(1)
            .and_then(|m| by_minor.get(&(v.major, m)))
            .into_iter()
            .flatten();
        let same = by_minor[&(v.major, v.minor)].iter().filter(|p| **p < v);
        let previous: Vec<Version> = older.chain(same).map(|p| (*p).clone()).collect();
        for arch in ARCHES {
            let version = Version {
                build: BuildMetadata::new(arch).expect("an arch is valid build metadata"),
                ..v.clone()
            };
            let digest = format!("sha256:{:064x}", out.len());
            out.push(ScrapedRelease {
                payload: format!("quay.io/openshift-release-dev/ocp-release@{digest}"),
                tags: vec![format!("{v}-{arch}")],
                manifestref: digest.clone(),
                arch: arch.to_owned(),
                metadata: BTreeMap::from([
                    ("url".to_owned(), format!("https://example.com/errata/{v}")),
                    (
                        "io.openshift.upgrades.graph.release.manifestref".to_owned(),
                        digest,
                    ),
                    (ARCH_KEY.to_owned(), arch.to_owned()),
                ]),
                previous: previous.clone().into(),
                next: std::sync::Arc::from([]),
                version,
            });
        }
    }
    out
}

async fn load(
    base: &str,
    queries: Arc<Vec<String>>,
    duration: Duration,
) -> (f64, Vec<Duration>, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (base, queries, next) = (base.to_owned(), Arc::clone(&queries), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let (mut latencies, mut errors) = (Vec::new(), 0);
            while Instant::now() < deadline {
                let query = &queries[next.fetch_add(1, Ordering::Relaxed) % queries.len()];
                let t0 = Instant::now();
                match client.get(format!("{base}{query}")).send().await {
                    Ok(r) if r.status() == 200 => {
                        if r.bytes().await.is_err() {
                            errors += 1;
                        }
                    }
                    _ => errors += 1,
                }
                latencies.push(t0.elapsed());
            }
            (latencies, errors)
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (latencies, e) = task.await.expect("load task");
        all.extend(latencies);
        errors += e;
    }
    all.sort_unstable();
    (start.elapsed().as_secs_f64(), all, errors)
}

fn report(name: &str, (secs, latencies, errors): &(f64, Vec<Duration>, usize)) {
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len() - 1);
        latencies[i].as_secs_f64() * 1000.0
    };
    println!(
        "{name}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} requests, {} errors, {CONNECTIONS} connections, peak RSS {}",
        latencies.len() as f64 / secs,
        pct(0.50),
        pct(0.99),
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        latencies.len(),
        errors,
        peak_rss()
    );
}

/// Wall time of headless chromium dumping `url` once its scripts are done.
fn chromium(url: &str, profile: &Path) -> Option<(Duration, String)> {
    let started = Instant::now();
    let output = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=30000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .ok()?;
    Some((
        started.elapsed(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = std::env::var("PE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .clamp(1, 120);
    let started = Instant::now();
    let data = graph_data::repo::load(&repo_root().join("data/graph-data"))
        .expect("data/graph-data loads");
    let versions: Vec<Version> = data
        .channels
        .iter()
        .flat_map(|c| c.versions.iter())
        .map(|v| Version {
            build: BuildMetadata::EMPTY,
            ..v.clone()
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut graph = assemble(&releases(&versions)).expect("the full-scale releases assemble");
    let recorded = provenance::apply_recorded(&mut graph, Some(&data), Some(&data.risks))
        .expect("graph-data applies");
    let json = graph_data::wire::to_json(&graph);
    let provenance_json = recorded.to_json();
    println!(
        "full-scale graph: {} releases, {} edges, {} conditional groups, {:.1} MB JSON; provenance {} removed edges, {} missing, {:.1} MB JSON; built in {:.1} s",
        graph.len(),
        graph.edge_count(),
        graph.conditional_edges().len(),
        json.len() as f64 / 1e6,
        recorded.removed.len(),
        recorded.missing.len(),
        provenance_json.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    drop((graph, recorded, data));
    // As the policy-engine receives them.
    let graph = graph_data::wire::from_json(&json).expect("graph JSON");
    let provenance = Provenance::from_json(&provenance_json).expect("provenance JSON");

    let channels: Vec<String> = provenance
        .channels
        .iter()
        .map(|c| c.name.clone())
        .filter(|c| c.starts_with("stable-"))
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let (mut explain, mut path) = (Vec::new(), Vec::new());
    for channel in &channels {
        let view = ChannelView::new(&graph, channel, "amd64");
        let members = view.versions();
        if members.len() < 2 {
            continue;
        }
        for _ in 0..200 {
            let a = &members[rng.random_range(0..members.len())];
            let b = &members[rng.random_range(0..members.len())];
            explain.push(format!(
                "{PREFIX}/v1/explain?channel={channel}&arch=amd64&from={a}&to={b}"
            ));
            path.push(if rng.random_bool(0.5) {
                format!("{PREFIX}/v1/path?channel={channel}&arch=amd64&from={a}")
            } else {
                format!("{PREFIX}/v1/path?channel={channel}&arch=amd64&from={a}&to={b}")
            });
        }
    }
    println!(
        "{} stable channels, {} explain and {} path queries",
        channels.len(),
        explain.len(),
        path.len()
    );

    let source = GraphSource::new();
    source.publish(graph).expect("publish");
    source.planner().set_provenance(provenance);
    let mut settings = policy_engine::Settings::defaults();
    settings.path_prefix = policy_engine::config::normalize_prefix(PREFIX);
    let listeners = Listeners::loopback().expect("loopback listeners");
    let base = format!("http://{}", listeners.addresses().expect("addresses").0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        policy_engine::serve(&settings, source, metrics, listeners, async move {
            let _ = stopped.await;
        })
        .await
    });

    // Warm-up: every channel's view once.
    let client = reqwest::Client::new();
    let warm = Instant::now();
    for q in path.iter().step_by(200) {
        let r = client
            .get(format!("{base}{q}"))
            .send()
            .await
            .expect("warm-up request");
        assert_eq!(r.status(), 200, "{q}");
    }
    println!(
        "warm-up (one view per channel): {:.2} s",
        warm.elapsed().as_secs_f64()
    );
    let duration = Duration::from_secs(secs);
    report("explain", &load(&base, Arc::new(explain), duration).await);
    report("path", &load(&base, Arc::new(path), duration).await);

    let profile = tempfile::tempdir().expect("temporary profile");
    match chromium("about:blank", &profile.path().join("blank")) {
        None => println!("page load: skipped (chromium is not installed)"),
        Some((blank, _)) => {
            let url = format!("{base}{PREFIX}/planner/?channel=stable-4.18&arch=amd64");
            let mut times = Vec::new();
            for run in 0..3 {
                let (t, dom) = chromium(&url, &profile.path().join(format!("page{run}")))
                    .expect("chromium runs");
                assert!(
                    dom.contains("id=\"graph-svg\""),
                    "the channel graph was drawn"
                );
                let drawn = dom
                    .split("data-graph-drawn-ms=\"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .unwrap_or("?")
                    .to_owned();
                times.push((t, drawn));
            }
            for (t, drawn) in &times {
                println!(
                    "page load with the stable-4.18 graph: chromium {:.2} s wall, {:.2} s more than an empty page ({:.2} s); the page reports the graph drawn at {drawn} ms",
                    t.as_secs_f64(),
                    (t.as_secs_f64() - blank.as_secs_f64()).max(0.0),
                    blank.as_secs_f64()
                );
            }
        }
    }
    let _ = stop.send(());
    let _ = server.await;
    println!("peak RSS of the whole benchmark process: {}", peak_rss());
}
