//! Full-scale graph build: `cargo bench -p graph-builder --bench service_full_graph`.
//!
//! Every version listed in the bundled graph-data's channels (`data/graph-data`) becomes a
//! release on amd64, arm64, ppc64le and s390x, plus a multi-arch index (amd64 + arm64
//! children), pushed to a real registry on 127.0.0.1. Each release's `previous` lists
//! every earlier patch of its minor and every version of the previous minor. A child
//! process (so peak RSS is the graph-builder's alone, not the pusher's) then runs the
//! whole refresh pipeline twice with the bundled graph-data: cold (empty caches) and
//! warm (unchanged registry: the scrape from the digest cache, and the last graph JSON
//! reused since the inputs did not change), and prints one JSON line: times, releases,
//! nodes, edges, conditional edge groups, graph JSON bytes, per-step times and peak RSS
//! (`VmHWM`, read before the benchmark itself parses anything). After the peak is read,
//! `warm_graph_rebuild_secs` times a warm scrape followed by assembling and applying the
//! whole graph again, as a refresh does when a release or the graph-data changed. The
//! child sets up the allocator as the binaries do (`graph_builder::allocator`).
//! `registry_floor` is the same registry serving the requests a scrape cannot do without
//! to a bare client (`support/floor.rs`): the fastest any scrape could be here.
//!
//! `FULL_GRAPH_VERSIONS=N` keeps only the first N versions (a quick run).
//! `FULL_GRAPH_RUNS=N` measures N child processes against the same registry (default 1),
//! one JSON line each. `FULL_GRAPH_HOLD_SECS=N` then keeps the registry up for N seconds
//! and prints its URL, so a profiler can run the child by hand:
//! `FULL_GRAPH_BENCH_CHILD=<url> perf record -g target/release/deps/service_full_graph-*`.

#[path = "support/floor.rs"]
mod floor;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::{stream, StreamExt as _, TryStreamExt as _};
use graph_builder::config::EdgeAddRemoveSettings;
use graph_builder::graph_data_source::GraphDataSource;
use graph_builder::refresh::{Pipeline, ReleaseSource, Timings};
use graph_builder::scrape::ScrapeSettings;
use graph_builder::scrape::Scraper;
use integration_tests::images::release_image;
use integration_tests::{
    Artifact, Format, Index, Pusher, RegistryOptions, ReleaseMetadata, TestRegistry,
};
use semver::Version;
use serde_json::json;

const CHILD_ENV: &str = "FULL_GRAPH_BENCH_CHILD";
const LIMIT_ENV: &str = "FULL_GRAPH_VERSIONS";
const RUNS_ENV: &str = "FULL_GRAPH_RUNS";
const HOLD_ENV: &str = "FULL_GRAPH_HOLD_SECS";
const REPO: &str = "ocp/release";
const ARCHES: [(&str, &str); 4] = [
    ("amd64", "x86_64"),
    ("arm64", "aarch64"),
    ("ppc64le", "ppc64le"),
    ("s390x", "s390x"),
];
const PUSH_CONCURRENCY: usize = 16;

fn graph_data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/graph-data")
}

fn main() -> anyhow::Result<()> {
    graph_builder::allocator::tune();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match std::env::var(CHILD_ENV) {
        Ok(registry) => runtime.block_on(child(&registry)),
        Err(_) => runtime.block_on(parent()),
    }
}

/// Every version in the channels, without build metadata, sorted.
fn channel_versions() -> anyhow::Result<Vec<Version>> {
    let data = graph_data::repo::load_dir(&graph_data_dir())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("loading data/graph-data")?;
    let mut versions = BTreeSet::new();
    for channel in &data.channels {
        for v in &channel.versions {
            let mut v = v.clone();
            v.build = semver::BuildMetadata::EMPTY;
            versions.insert(v);
        }
    }
    let mut versions: Vec<Version> = versions.into_iter().collect();
    if let Ok(limit) = std::env::var(LIMIT_ENV) {
        versions.truncate(limit.parse().context(LIMIT_ENV)?);
    }
    Ok(versions)
}

/// Earlier patches of the same minor, then every version of the previous minor.
fn previous_lists(versions: &[Version]) -> BTreeMap<Version, Vec<String>> {
    let mut by_minor: BTreeMap<(u64, u64), Vec<&Version>> = BTreeMap::new();
    for v in versions {
        by_minor.entry((v.major, v.minor)).or_default().push(v);
    }
    versions
        .iter()
        .map(|v| {
            let same = by_minor[&(v.major, v.minor)].iter().filter(|p| *p < &v);
            let older = v
                .minor
                .checked_sub(1)
                .and_then(|m| by_minor.get(&(v.major, m)))
                .into_iter()
                .flatten();
            let list = older.chain(same).map(|p| p.to_string()).collect();
            (v.clone(), list)
        })
        .collect()
}

async fn parent() -> anyhow::Result<()> {
    let versions = channel_versions()?;
    let previous = previous_lists(&versions);
    let registry = TestRegistry::start(RegistryOptions {
        access_log: false,
        ..RegistryOptions::anonymous()
    })?;
    let pusher = Pusher::new(&registry);
    let started = Instant::now();
    let pushed: usize = stream::iter(versions.iter())
        .map(|v| push_version(&pusher, v, &previous[v]))
        .buffer_unordered(PUSH_CONCURRENCY)
        .try_fold(0, |n, k| async move { Ok(n + k) })
        .await?;
    eprintln!(
        "pushed {pushed} releases ({} versions) in {:.1}s",
        versions.len(),
        started.elapsed().as_secs_f64()
    );

    let runs: usize = env_number(RUNS_ENV, 1)?;
    for _ in 0..runs {
        measure(&registry, pushed)?;
    }
    let hold = env_number(HOLD_ENV, 0)?;
    if hold > 0 {
        eprintln!(
            "registry {} stays up for {hold}s ({CHILD_ENV}=<url> runs the build alone)",
            registry.base_url()
        );
        std::thread::sleep(Duration::from_secs(hold as u64));
    }
    Ok(())
}

fn env_number(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(value) => value.parse().with_context(|| format!("{name}={value}")),
        Err(_) => Ok(default),
    }
}

/// Runs the build in a child process and prints its JSON line.
fn measure(registry: &TestRegistry, pushed: usize) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let output = Command::new(&exe)
        .env(CHILD_ENV, registry.base_url())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("the build failed ({}): {stdout}", output.status);
    }
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_default();
    let mut result: serde_json::Value = serde_json::from_str(line)?;
    result["pushed_releases"] = json!(pushed);
    if result["releases"] != json!(pushed) {
        bail!("scraped {} releases, pushed {pushed}", result["releases"]);
    }
    println!("{result}");
    Ok(())
}

/// Pushes the four single-arch releases and the multi index of `version`.
async fn push_version(
    pusher: &Pusher,
    version: &Version,
    previous: &[String],
) -> anyhow::Result<usize> {
    let previous: Vec<&str> = previous.iter().map(String::as_str).collect();
    let v = version.to_string();
    let metadata = ReleaseMetadata::new(&v)
        .previous(&previous)
        .with("url", &format!("https://example.com/errata/{v}"));
    for (arch, suffix) in ARCHES {
        let image = release_image(Format::Docker, arch, &metadata);
        pusher
            .push_image(REPO, &format!("{v}-{suffix}"), &image)
            .await?;
    }
    let multi = metadata.with("release.openshift.io/architecture", "multi");
    let index = Index::new(
        Format::Oci,
        vec![
            release_image(Format::Oci, "amd64", &multi),
            release_image(Format::Oci, "arm64", &multi),
        ],
    );
    pusher
        .push(REPO, &format!("{v}-multi"), &Artifact::Index(index))
        .await?;
    Ok(ARCHES.len() + 1)
}

async fn child(registry: &str) -> anyhow::Result<()> {
    let settings = ScrapeSettings {
        registry: registry.to_owned(),
        repository: REPO.to_owned(),
        client: Default::default(),
        ..ScrapeSettings::default()
    };
    let scraper = Scraper::new(settings)?;
    let pipeline = Pipeline::new(
        ReleaseSource::Registry(Box::new(scraper)),
        Some(GraphDataSource::Path(graph_data_dir())),
        Some(EdgeAddRemoveSettings {
            include_conditional_edges: true,
        }),
    );
    let (cold, cold_time) = timed(pipeline.build()).await;
    let cold = cold.map_err(|e| anyhow::anyhow!(graph_data::keys::chain(&e)))?;
    let (warm, warm_time) = timed(pipeline.build()).await;
    let warm = warm.map_err(|e| anyhow::anyhow!(graph_data::keys::chain(&e)))?;
    if warm.graph_json != cold.graph_json {
        bail!("the warm build differs from the cold one");
    }
    // Read first: parsing the 20 MB graph into a `serde_json::Value` would dwarf it.
    let hwm = vm_hwm_kib()?;
    // The warm refresh reused the graph (same releases, same graph-data); this is what a
    // refresh costs when they changed: the scrape from the cache, then the whole graph.
    let (rebuilt, rebuild_time) = timed(pipeline.build_graph()).await;
    let rebuilt = rebuilt.map_err(|e| anyhow::anyhow!(graph_data::keys::chain(&e)))?;
    if rebuilt.graph.edge_count() != cold.edges {
        bail!("the rebuilt graph differs from the cold one");
    }
    let conditional: ConditionalOnly = serde_json::from_slice(&cold.graph_json.to_vec())?;
    // Last, with the build's caches and graphs gone from the picture: the same
    // registry's floor for these tags.
    let floor = floor::measure(registry, REPO, ScrapeSettings::default().fetch_concurrency).await?;
    let line = json!({
        "releases": cold.findings.raw_releases,
        "nodes": cold.nodes,
        "edges": cold.edges,
        "conditional_edge_groups": conditional.groups.len(),
        "graph_json_bytes": cold.graph_json.len(),
        "graph_json_gzip_bytes": cold.graph_json.gzip().len(),
        "cold_build_secs": cold_time.as_secs_f64(),
        "warm_refresh_secs": warm_time.as_secs_f64(),
        "warm_graph_rebuild_secs": rebuild_time.as_secs_f64(),
        "cold_steps_secs": steps(&cold.timings),
        "warm_steps_secs": steps(&warm.timings),
        "warm_graph_rebuild_steps_secs": steps(&rebuilt.timings),
        "vm_hwm_kib": hwm,
        "registry_floor": {
            "cold_secs": floor.cold.as_secs_f64(),
            "warm_secs": floor.warm.as_secs_f64(),
            "cold_requests": floor.requests,
        },
    });
    println!("{line}");
    Ok(())
}

/// The graph's conditional edge groups, everything else skipped unparsed.
#[derive(serde::Deserialize)]
struct ConditionalOnly {
    #[serde(rename = "conditionalEdges")]
    groups: Vec<serde::de::IgnoredAny>,
}

fn steps(t: &Timings) -> serde_json::Value {
    json!({
        "scrape": t.scrape.as_secs_f64(),
        "graph_data": t.graph_data.as_secs_f64(),
        "assemble": t.assemble.as_secs_f64(),
        "apply": t.apply.as_secs_f64(),
        "serialize": t.serialize.as_secs_f64(),
    })
}

async fn timed<T>(future: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let value = future.await;
    (value, started.elapsed())
}

/// Peak resident set size of this process, from `/proc/self/status`.
fn vm_hwm_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM in /proc/self/status")
}
