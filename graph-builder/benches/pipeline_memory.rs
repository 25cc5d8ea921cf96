//! Where the graph-builder's memory goes at full scale, without a registry:
//! `cargo bench -p graph-builder --bench pipeline_memory`.
//!
//! Builds the same releases the `service_full_graph` benchmark pushes (every channel
//! version of `data/graph-data` on amd64, arm64, ppc64le, s390x and multi, each with the
//! earlier patches of its minor and every version of the previous minor as `previous`),
//! as `ScrapedRelease`s, then runs the steps of one refresh in order (assemble, load
//! graph-data, apply, edge-add-remove, provenance, serialize), printing peak RSS
//! (`VmHWM`) and live RSS after each. It serializes and sets up the allocator as the
//! service does (`GraphJson::encode`, `graph_builder::allocator`), and drops the graph
//! before the provenance is written. `PIPELINE_PROVENANCE=0` leaves the provenance out,
//! to measure what it costs. `PIPELINE_STOP_AFTER=<step>` stops after a step, to compare runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use graph_builder::assemble;
use graph_builder::graph_data_source::{self, GraphDataSource};
use graph_builder::scrape::ScrapedRelease;
use graph_data::keys::{ARCH_KEY, MANIFESTREF_KEY};
use semver::{BuildMetadata, Version};

const ARCHES: [&str; 5] = ["amd64", "arm64", "ppc64le", "s390x", "multi"];

fn graph_data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/graph-data")
}

/// `VmHWM` and `VmRSS` of this process, in MiB.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn report(step: &str, started: Instant) -> bool {
    let (hwm, rss) = rss();
    println!(
        "{step:<16} {:>8.3}s  peak {hwm:>4} MiB  live {rss:>4} MiB",
        started.elapsed().as_secs_f64()
    );
    std::env::var("PIPELINE_STOP_AFTER").is_ok_and(|s| s == step)
}

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
            let mut version = v.clone();
            version.build = BuildMetadata::new(arch).expect("an arch is valid build metadata");
            let digest = format!("sha256:{:064x}", out.len());
            let metadata = BTreeMap::from([
                ("url".to_owned(), format!("https://example.com/errata/{v}")),
                (MANIFESTREF_KEY.to_owned(), digest.clone()),
                (ARCH_KEY.to_owned(), arch.to_owned()),
            ]);
            out.push(ScrapedRelease {
                payload: format!("127.0.0.1:5000/ocp/release@{digest}"),
                tags: vec![format!("{v}-{arch}")],
                manifestref: digest,
                arch: arch.to_owned(),
                metadata,
                previous: previous.clone().into(),
                next: std::sync::Arc::from([]),
                version,
            });
        }
    }
    out
}

fn main() -> anyhow::Result<()> {
    graph_builder::allocator::tune();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    report("start", Instant::now());
    let data = graph_data::repo::load_dir(&graph_data_dir())
        .map_err(|e| anyhow::anyhow!("loading data/graph-data: {e}"))?;
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
    drop(data);

    let started = Instant::now();
    let scraped = releases(&versions);
    if report("releases", started) {
        return Ok(());
    }
    let started = Instant::now();
    let mut graph = assemble(&scraped)?;
    // As the refresh does: the releases are not needed once they are in the graph.
    let scraped_len = scraped.len();
    drop(scraped);
    if report("assemble", started) {
        return Ok(());
    }
    let started = Instant::now();
    let source = GraphDataSource::Path(graph_data_dir());
    let tarball = runtime.block_on(source.fetch())?;
    let data = graph_data_source::load(&source.name(), &tarball)?;
    if report("graph_data", started) {
        return Ok(());
    }
    let started = Instant::now();
    graph_data::apply::apply(&mut graph, &data);
    if report("apply", started) {
        return Ok(());
    }
    // The planner's provenance, as the refresh records it; `PIPELINE_PROVENANCE=0` leaves
    // it out, to measure what it costs.
    let provenance = std::env::var("PIPELINE_PROVENANCE").map_or(true, |v| v != "0");
    let before = provenance.then(|| graph_data::provenance::EdgeSnapshot::take(&graph));
    let started = Instant::now();
    graph_data::apply::edge_add_remove(&mut graph, &data.risks)?;
    if report("edge_add_remove", started) {
        return Ok(());
    }
    let recorded = before.map(|before| {
        let started = Instant::now();
        let recorded = graph_data::provenance::Provenance::record(&graph, Some(&data), &before);
        report("provenance", started);
        recorded
    });
    drop(data);
    let started = Instant::now();
    let json = graph_builder::graph_json::GraphJson::encode(&graph);
    let summary = format!(
        "{} releases, {} nodes, {} edges, {} conditional groups of {} edges, {} JSON bytes ({} gzip-coded)",
        scraped_len,
        graph.len(),
        graph.edge_count(),
        graph.conditional_edges().len(),
        graph
            .conditional_edges()
            .iter()
            .map(|c| c.edges.len())
            .sum::<usize>(),
        json.len(),
        json.gzip().len(),
    );
    drop(graph);
    let provenance_json = recorded.map(|p| p.to_json());
    report("serialize", started);
    if let Some(p) = &provenance_json {
        println!("provenance: {} JSON bytes", p.len());
    }
    println!("{summary}");
    Ok(())
}
