//! Loading and applying graph-data, timed (run with `cargo bench -p graph-data --bench load`).
//!
//! Prints: load + validate of the bundled `data/graph-data`, peak RSS (VmHWM); applying
//! the 20211124 conformance snapshot to its scraped graph; and applying the bundled
//! graph-data to a synthetic graph of public-graph size (every channel version on five
//! architectures, each release reachable from up to 40 lower versions of its own and the
//! previous minor).

use std::collections::BTreeSet;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use graph_data::apply::apply_all;
use graph_data::keys::ARCH_KEY;
use graph_data::repo::{load_dir, validate};
use graph_data::{wire, Graph, Metadata, Release};
use semver::{BuildMetadata, Version};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

/// Runs `f` `n` times and returns the median duration.
fn median(n: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn synthetic(versions: &BTreeSet<Version>) -> Graph {
    let mut g = Graph::new();
    for arch in ["amd64", "arm64", "ppc64le", "s390x", "multi"] {
        let mut ids = Vec::with_capacity(versions.len());
        for v in versions {
            let mut v = v.clone();
            v.build = BuildMetadata::new(arch).unwrap();
            let mut metadata = Metadata::new();
            metadata.insert(ARCH_KEY.to_owned(), arch.to_owned());
            let id = g
                .add_release(Release::concrete(
                    v.clone(),
                    format!("quay.io/r@sha256:{v}"),
                    metadata,
                ))
                .unwrap();
            ids.push((v, id));
        }
        for (i, (to_v, to)) in ids.iter().enumerate() {
            let near = ids[..i]
                .iter()
                .rev()
                .filter(|(v, _)| v.major == to_v.major && to_v.minor - v.minor <= 1)
                .take(40);
            for (_, from) in near {
                g.add_edge(*from, *to).unwrap();
            }
        }
    }
    g
}

/// The synthetic graph again, releases first and edges after (as assembly adds them),
/// with `down` edges going down in SemVer order added before the others: each from the
/// top release of one architecture to the bottom release of another, so none closes a
/// cycle. `descending` adds each release's incoming edges from the top release down (as
/// when releases come in reverse order), so that searches from an edge's target meet
/// every edge above it.
fn synthetic_with_down_edges(versions: &BTreeSet<Version>, down: usize, descending: bool) -> Graph {
    let arches = ["amd64", "arm64", "ppc64le", "s390x", "multi"];
    let mut g = Graph::new();
    let mut by_arch = Vec::new();
    for arch in arches {
        let mut ids = Vec::with_capacity(versions.len());
        for v in versions {
            let mut v = v.clone();
            v.build = BuildMetadata::new(arch).unwrap();
            let mut metadata = Metadata::new();
            metadata.insert(ARCH_KEY.to_owned(), arch.to_owned());
            let id = g
                .add_release(Release::concrete(
                    v.clone(),
                    format!("quay.io/r@sha256:{v}"),
                    metadata,
                ))
                .unwrap();
            ids.push((v, id));
        }
        by_arch.push(ids);
    }
    for i in 0..down {
        let from = by_arch[i % arches.len()].last().unwrap().1;
        let to = by_arch[(i + 1) % arches.len()][i / arches.len()].1;
        if i + 1 < arches.len() * versions.len() {
            g.add_edge(from, to).unwrap();
        }
    }
    for ids in &by_arch {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        if descending {
            order.reverse();
        }
        for i in order {
            let (to_v, to) = &ids[i];
            let near = ids[..i]
                .iter()
                .rev()
                .filter(|(v, _)| v.major == to_v.major && to_v.minor - v.minor <= 1)
                .take(40);
            for (_, from) in near {
                // A down edge may make an up edge close a cycle; those are refused.
                let _ = g.add_edge(*from, *to);
            }
        }
    }
    g
}

/// Median build time of [`synthetic_with_down_edges`] and the edge count it reaches.
fn cycle_check_case(
    versions: &BTreeSet<Version>,
    down: usize,
    descending: bool,
) -> (Duration, usize) {
    let mut edges = 0;
    let time = median(5, || {
        let g = synthetic_with_down_edges(versions, down, descending);
        edges = g.edge_count();
        black_box(g);
    });
    (time, edges)
}

fn main() {
    let data_dir = root().join("../data/graph-data");
    let load_time = median(11, || {
        black_box(load_dir(&data_dir).unwrap());
    });
    let validate_time = median(11, || {
        black_box(validate(&data_dir).unwrap());
    });
    println!("load data/graph-data:      {load_time:?} (median of 11)");
    println!("validate data/graph-data:  {validate_time:?} (median of 11)");
    println!("peak RSS after loading:    {}", vm_hwm());

    let snapshot = root().join("tests/conformance/graph-data-apply/20211124.083150");
    let raw = wire::from_json(&std::fs::read(snapshot.join("graph-gb-raw.json")).unwrap()).unwrap();
    let snapshot_data = load_dir(&snapshot.join("cincinnati-graph-data")).unwrap();
    let apply_time = median(11, || {
        let mut g = raw.clone();
        apply_all(&mut g, &snapshot_data).unwrap();
        black_box(g);
    });
    println!(
        "apply 20211124 snapshot:   {apply_time:?} (median of 11; {} nodes, {} edges in)",
        raw.len(),
        raw.edge_count()
    );

    let data = load_dir(&data_dir).unwrap();
    // Channel entries may carry an arch (`4.2.14+amd64`): one release per base version.
    let versions: BTreeSet<Version> = data
        .channels
        .iter()
        .flat_map(|c| c.versions.iter())
        .map(|v| {
            let mut base = v.clone();
            base.build = BuildMetadata::EMPTY;
            base
        })
        .collect();
    let build_start = Instant::now();
    let big = synthetic(&versions);
    let build_time = build_start.elapsed();
    let mut out = big.clone();
    let start = Instant::now();
    apply_all(&mut out, &data).unwrap();
    let big_apply = start.elapsed();
    println!(
        "synthetic public graph:    {} nodes, {} edges built in {build_time:?}",
        big.len(),
        big.edge_count()
    );
    println!(
        "apply data/graph-data:     {big_apply:?} -> {} edges, {} conditional groups",
        out.edge_count(),
        out.conditional_edges().len()
    );

    // The cycle check: going down in SemVer order (without closing a cycle) must not
    // make building the graph super-linear.
    for (descending, order) in [(false, "ascending"), (true, "descending")] {
        let (up_only, up_edges) = cycle_check_case(&versions, 0, descending);
        println!("build ({order}), every edge up: {up_only:?} (median of 5; {up_edges} edges)");
        for down in [1, 5] {
            let (time, edges) = cycle_check_case(&versions, down, descending);
            println!(
                "build ({order}), {down} down first: {time:?} (median of 5; {edges} edges) = {:.2}x",
                time.as_secs_f64() / up_only.as_secs_f64()
            );
        }
    }
    println!("peak RSS at the end:       {}", vm_hwm());
}
