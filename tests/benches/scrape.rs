//! Registry scrape benchmark: `cargo bench -p integration-tests --bench scrape`.
//!
//! Starts a real registry on 127.0.0.1, pushes three repositories and scrapes each one
//! cold then warm (unchanged) in a child process, so that peak RSS (`VmHWM`) counts the
//! scraper only, not the pusher:
//! - `chain`: N single-layer releases, each listing the one before as `previous`;
//! - `releases`: N/10 releases alone, the baseline for the next case;
//! - `mixed`: the same N/10 releases plus 20 component images each, every component with
//!   a 5 MiB random layer (drawn from a small pool of layers shared across releases, as
//!   real component images share layers; every manifest is distinct).
//!
//! `SCRAPE_BENCH_RELEASES` sets N (default 2000). The child is this binary re-executed with
//! `SCRAPE_BENCH_CHILD=<registry>,<repository>,<expected releases>`; it prints one JSON line.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::{stream, StreamExt as _, TryStreamExt as _};
use graph_builder::registry::ScrapeSettings;
use graph_builder::scrape::Scraper;
use integration_tests::images::release_image;
use integration_tests::{
    Format, ImageBuilder, Layer, Pusher, RegistryOptions, ReleaseMetadata, TestRegistry,
};
use rand::SeedableRng as _;
use serde_json::json;

const CHILD_ENV: &str = "SCRAPE_BENCH_CHILD";
const RELEASES_ENV: &str = "SCRAPE_BENCH_RELEASES";
const COMPONENTS_PER_RELEASE: usize = 20;
const COMPONENT_LAYER_BYTES: usize = 5 * 1024 * 1024;
/// Distinct component layers; component `c` of release `r` uses `(r * 7 + c) % POOL`.
const LAYER_POOL: usize = 20;
const PUSH_CONCURRENCY: usize = 16;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match std::env::var(CHILD_ENV) {
        Ok(spec) => runtime.block_on(child(&spec)),
        Err(_) => runtime.block_on(parent()),
    }
}

/// The version of release `i`: 4.<i / 100>.<i % 100>.
fn version(i: usize) -> String {
    format!("4.{}.{}", i / 100, i % 100)
}

fn release(i: usize) -> integration_tests::Image {
    let version = version(i);
    let previous: Vec<String> = i.checked_sub(1).map(self::version).into_iter().collect();
    let previous: Vec<&str> = previous.iter().map(String::as_str).collect();
    let metadata = ReleaseMetadata::new(&version)
        .previous(&previous)
        .with("url", &format!("https://example.com/errata/{version}"));
    release_image(Format::Docker, "amd64", &metadata)
}

async fn push_releases(
    pusher: &Pusher,
    repository: &str,
    count: usize,
    tag_suffix: &str,
) -> anyhow::Result<()> {
    stream::iter(0..count)
        .map(|i| async move {
            let tag = format!("{}{tag_suffix}", version(i));
            pusher.push_image(repository, &tag, &release(i)).await
        })
        .buffer_unordered(PUSH_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

async fn push_components(pusher: &Pusher, repository: &str, releases: usize) -> anyhow::Result<()> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2024);
    let pool: Vec<Layer> = (0..LAYER_POOL)
        .map(|_| Layer::random(Format::Docker, &mut rng, COMPONENT_LAYER_BYTES))
        .collect();
    // Upload the shared layers once, so concurrent pushes find them present.
    stream::iter(&pool)
        .map(|layer| pusher.push_blob(repository, &layer.blob))
        .buffer_unordered(PUSH_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let pool = &pool;
    stream::iter(0..releases * COMPONENTS_PER_RELEASE)
        .map(|n| async move {
            let (r, c) = (n / COMPONENTS_PER_RELEASE, n % COMPONENTS_PER_RELEASE);
            let image = ImageBuilder::new(Format::Docker)
                .label(
                    "io.openshift.build.source-location",
                    &format!("component-{c}"),
                )
                .label("io.openshift.release", &version(r))
                .layer(pool[(r * 7 + c) % LAYER_POOL].clone())
                .build();
            let tag = format!("{}-component-{c}", version(r));
            pusher.push_image(repository, &tag, &image).await
        })
        .buffer_unordered(PUSH_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

async fn parent() -> anyhow::Result<()> {
    let releases: usize = match std::env::var(RELEASES_ENV) {
        Ok(n) => n
            .parse()
            .with_context(|| format!("{RELEASES_ENV}={n:?} is not a count"))?,
        Err(_) => 2000,
    };
    let small = (releases / 10).max(1);
    let registry = TestRegistry::start(RegistryOptions {
        access_log: false,
        ..Default::default()
    })?;
    let pusher = Pusher::new(&registry);
    eprintln!(
        "registry {} (log {})",
        registry.host_port(),
        registry.log_path().display()
    );

    let started = Instant::now();
    push_releases(&pusher, "bench/chain", releases, "").await?;
    push_releases(&pusher, "bench/releases", small, "-x86_64").await?;
    push_releases(&pusher, "bench/mixed", small, "-x86_64").await?;
    push_components(&pusher, "bench/mixed", small).await?;
    eprintln!(
        "pushed fixtures in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let cases = [
        ("chain", "bench/chain", releases, releases),
        ("releases", "bench/releases", small, small),
        (
            "mixed",
            "bench/mixed",
            small,
            small * (1 + COMPONENTS_PER_RELEASE),
        ),
    ];
    let mut results = Vec::new();
    println!(
        "{:<9} {:>6} {:>6} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10}",
        "case",
        "rels",
        "tags",
        "cold s",
        "warm s",
        "warm req",
        "warm blobs",
        "cold MiB",
        "peak RSS"
    );
    for (name, repository, expected, tags) in cases {
        let result = run_child(&registry, repository, expected)?;
        let get = |key: &str| result[key].as_f64().unwrap_or(f64::NAN);
        println!(
            "{name:<9} {:>6} {tags:>6} {:>9.2} {:>9.3} {:>9} {:>10} {:>10.1} {:>7.1} MB",
            get("releases"),
            get("cold_secs"),
            get("warm_secs"),
            get("warm_http_requests"),
            get("warm_blob_requests"),
            get("cold_blob_bytes") / (1024.0 * 1024.0),
            get("vm_hwm_kib") * 1024.0 / 1e6,
        );
        results.push(json!({ "case": name, "result": result }));
    }
    println!("{}", json!({ "releases": releases, "cases": results }));
    Ok(())
}

/// Runs the scrapes in a fresh process so its peak RSS is the scraper's alone.
fn run_child(
    registry: &TestRegistry,
    repository: &str,
    expected: usize,
) -> anyhow::Result<serde_json::Value> {
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let spec = format!("{},{repository},{expected}", registry.base_url());
    let output = Command::new(&exe)
        .env(CHILD_ENV, &spec)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {} with {CHILD_ENV}={spec}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "the scrape of {repository} failed ({}): {stdout}",
            output.status
        );
    }
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("parsing the child's answer {stdout:?}"))
}

async fn child(spec: &str) -> anyhow::Result<()> {
    let [registry, repository, expected] = spec.split(',').collect::<Vec<_>>()[..] else {
        bail!("{CHILD_ENV}={spec:?}: expected <registry>,<repository>,<expected releases>");
    };
    let expected: usize = expected.parse().context("expected release count")?;
    let scraper = Scraper::new(ScrapeSettings {
        registry: registry.to_owned(),
        repository: repository.to_owned(),
        root_certificate_dir: None,
        ..ScrapeSettings::default()
    })?;
    let (cold, cold_time) = timed(scraper.scrape()).await;
    let cold = cold.with_context(|| format!("cold scrape of {repository}"))?;
    let (warm, warm_time) = timed(scraper.scrape()).await;
    let warm = warm.with_context(|| format!("warm scrape of {repository}"))?;
    for (name, outcome) in [("cold", &cold), ("warm", &warm)] {
        if outcome.releases.len() != expected {
            bail!(
                "{name} scrape of {repository}: {} releases, expected {expected}",
                outcome.releases.len()
            );
        }
    }
    let line = json!({
        "releases": cold.releases.len(),
        "tags": cold.stats.tags,
        "cold_secs": cold_time.as_secs_f64(),
        "cold_http_requests": cold.stats.http_requests,
        "cold_blob_requests": cold.stats.blob_requests,
        "cold_blob_bytes": cold.stats.blob_bytes,
        "warm_secs": warm_time.as_secs_f64(),
        "warm_http_requests": warm.stats.http_requests,
        "warm_blob_requests": warm.stats.blob_requests,
        "warm_blob_bytes": warm.stats.blob_bytes,
        "vm_hwm_kib": vm_hwm_kib()?,
    });
    println!("{line}");
    Ok(())
}

async fn timed<T>(future: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let value = future.await;
    (value, started.elapsed())
}

/// Peak resident set size of this process, from `/proc/self/status`.
fn vm_hwm_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM line in /proc/self/status")?;
    let kib = line.trim().trim_end_matches("kB").trim();
    kib.parse().with_context(|| format!("VmHWM value {kib:?}"))
}
