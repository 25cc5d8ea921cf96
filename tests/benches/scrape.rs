//! Registry scrape benchmark: `cargo bench -p integration-tests --bench scrape`.
//!
//! Starts a real registry on 127.0.0.1, pushes three repositories and scrapes each one
//! cold then warm (unchanged) in a child process, so that peak RSS (`VmHWM`) counts the
//! scraper only, not the pusher:
//! - `chain`: N single-layer releases, each listing the one before as `previous`;
//! - `releases`: N/10 releases alone, the baseline for the next case;
//! - `mixed`: the same N/10 releases plus 20 component images each, every component with
//!   a 5 MiB random layer (drawn from a small pool of layers shared across releases, as
//!   real component images share layers; every manifest is distinct);
//! - `mixed-4k`: the same tags as `mixed` with 4 KiB component layers, which separates
//!   what the number of tags costs from what the size of the layers costs.
//!
//! Besides wall time it reports the CPU time of the scraper and of the registry during
//! each scrape (both share the machine, so wall time alone hides who is the bottleneck).
//!
//! `SCRAPE_BENCH_RELEASES` sets N (default 2000), `SCRAPE_BENCH_LAYER_MIB` the component
//! layer size (default 5) and `SCRAPE_BENCH_CONCURRENCY` the scraper's `fetch_concurrency`
//! (default 16). The child is this binary re-executed with
//! `SCRAPE_BENCH_CHILD=<registry>,<repository>,<expected releases>,<registry pid>`; it
//! prints one JSON line.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::{stream, StreamExt as _, TryStreamExt as _};
use graph_builder::scrape::ScrapeSettings;
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
const LAYER_MIB_ENV: &str = "SCRAPE_BENCH_LAYER_MIB";
const CONCURRENCY_ENV: &str = "SCRAPE_BENCH_CONCURRENCY";
const COMPONENT_LAYER_MIB: usize = 5;
const SMALL_COMPONENT_LAYER_BYTES: usize = 4 * 1024;
/// `/proc/<pid>/stat` counts CPU time in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_SECOND: f64 = 100.0;
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

async fn push_components(
    pusher: &Pusher,
    repository: &str,
    releases: usize,
    layer_bytes: usize,
) -> anyhow::Result<()> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2024);
    let pool: Vec<Layer> = (0..LAYER_POOL)
        .map(|_| Layer::random(Format::Docker, &mut rng, layer_bytes))
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
    let releases = env_count(RELEASES_ENV, 2000)?;
    let layer_bytes = env_count(LAYER_MIB_ENV, COMPONENT_LAYER_MIB)? * 1024 * 1024;
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
    push_components(&pusher, "bench/mixed", small, layer_bytes).await?;
    push_releases(&pusher, "bench/mixed-4k", small, "-x86_64").await?;
    push_components(
        &pusher,
        "bench/mixed-4k",
        small,
        SMALL_COMPONENT_LAYER_BYTES,
    )
    .await?;
    eprintln!(
        "pushed fixtures in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mixed_tags = small * (1 + COMPONENTS_PER_RELEASE);
    let cases = [
        ("chain", "bench/chain", releases, releases),
        ("releases", "bench/releases", small, small),
        ("mixed", "bench/mixed", small, mixed_tags),
        ("mixed-4k", "bench/mixed-4k", small, mixed_tags),
    ];
    println!(
        "{:<9} {:>5} {:>5} | {:>7} {:>8} {:>8} {:>8} | {:>6} {:>5} {:>5} {:>5} | {:>8}",
        "case",
        "rels",
        "tags",
        "cold s",
        "cpu scr",
        "cpu reg",
        "MiB read",
        "warm s",
        "reqs",
        "blobs",
        "bytes",
        "peak RSS"
    );
    let mut results = Vec::new();
    for (name, repository, expected, tags) in cases {
        let result = run_child(&registry, repository, expected)?;
        let get = |key: &str| result[key].as_f64().unwrap_or(f64::NAN);
        println!(
            "{name:<9} {:>5} {tags:>5} | {:>7.2} {:>8.2} {:>8.2} {:>8.1} | {:>6.2} {:>5} {:>5} {:>5} | {:>5.1} MB",
            get("releases"),
            get("cold_secs"),
            get("cold_cpu_secs"),
            get("cold_registry_cpu_secs"),
            get("cold_blob_bytes") / (1024.0 * 1024.0),
            get("warm_secs"),
            get("warm_http_requests"),
            get("warm_blob_requests"),
            get("warm_blob_bytes"),
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
    let pid = registry.pid().context("the registry is not running")?;
    let spec = format!("{},{repository},{expected},{pid}", registry.base_url());
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

/// One measured scrape: the outcome, wall time, and the CPU seconds of the scraper (this
/// process) and of the registry it talked to.
struct Measured {
    outcome: graph_builder::scrape::ScrapeOutcome,
    wall: Duration,
    cpu: f64,
    registry_cpu: f64,
}

async fn measure(scraper: &Scraper, registry_pid: &str, what: &str) -> anyhow::Result<Measured> {
    let (cpu, registry_cpu) = (cpu_secs("self")?, cpu_secs(registry_pid)?);
    let started = Instant::now();
    let outcome = scraper.scrape().await.with_context(|| what.to_owned())?;
    Ok(Measured {
        outcome,
        wall: started.elapsed(),
        cpu: cpu_secs("self")? - cpu,
        registry_cpu: cpu_secs(registry_pid)? - registry_cpu,
    })
}

async fn child(spec: &str) -> anyhow::Result<()> {
    let [registry, repository, expected, registry_pid] = spec.split(',').collect::<Vec<_>>()[..]
    else {
        bail!("{CHILD_ENV}={spec:?}: expected <registry>,<repository>,<releases>,<registry pid>");
    };
    let expected: usize = expected.parse().context("expected release count")?;
    let scraper = Scraper::new(ScrapeSettings {
        registry: registry.to_owned(),
        repository: repository.to_owned(),
        client: Default::default(),
        fetch_concurrency: env_count(CONCURRENCY_ENV, ScrapeSettings::default().fetch_concurrency)?,
        ..ScrapeSettings::default()
    })?;
    let cold = measure(
        &scraper,
        registry_pid,
        &format!("cold scrape of {repository}"),
    )
    .await?;
    let warm = measure(
        &scraper,
        registry_pid,
        &format!("warm scrape of {repository}"),
    )
    .await?;
    for (name, m) in [("cold", &cold), ("warm", &warm)] {
        let found = m.outcome.releases.len();
        if found != expected {
            bail!("{name} scrape of {repository}: {found} releases, expected {expected}");
        }
    }
    let line = json!({
        "releases": cold.outcome.releases.len(),
        "tags": cold.outcome.stats.tags,
        "cold_secs": cold.wall.as_secs_f64(),
        "cold_cpu_secs": cold.cpu,
        "cold_registry_cpu_secs": cold.registry_cpu,
        "cold_http_requests": cold.outcome.stats.http_requests,
        "cold_blob_requests": cold.outcome.stats.blob_requests,
        "cold_blob_bytes": cold.outcome.stats.blob_bytes,
        "warm_secs": warm.wall.as_secs_f64(),
        "warm_cpu_secs": warm.cpu,
        "warm_registry_cpu_secs": warm.registry_cpu,
        "warm_http_requests": warm.outcome.stats.http_requests,
        "warm_blob_requests": warm.outcome.stats.blob_requests,
        "warm_blob_bytes": warm.outcome.stats.blob_bytes,
        "vm_hwm_kib": vm_hwm_kib()?,
    });
    println!("{line}");
    Ok(())
}

/// A count from the environment, or `default` when the variable is unset.
fn env_count(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(n) => n
            .parse()
            .with_context(|| format!("{name}={n:?} is not a count")),
        Err(_) => Ok(default),
    }
}

/// User plus system CPU seconds of a process (`self` or a pid), from `/proc/<pid>/stat`.
fn cpu_secs(pid: &str) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| path.clone())?;
    // The command name (field 2) may hold spaces; fields after its `)` are plain numbers:
    // state is field 3, utime and stime are fields 14 and 15.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        let field = fields
            .get(i)
            .with_context(|| format!("{path}: too few fields"))?;
        Ok(field
            .parse::<u64>()
            .with_context(|| format!("{path}: field {field:?}"))? as f64)
    };
    Ok((ticks(11)? + ticks(12)?) / TICKS_PER_SECOND)
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
