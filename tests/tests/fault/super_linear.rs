//! Inputs that cost more than their size if handled naively: a graph-data tarball of 100k
//! entries (the entry cap) loads in seconds, and a registry of many releases whose
//! metadata adds edges against the version order still builds in bounded time. Timing
//! ratios (one downward edge against none) are measured by the graph-data `hostile`
//! benchmark, not asserted here.

use std::io::Write as _;
use std::time::{Duration, Instant};

use integration_tests::fake::{metadata_json, FakeRegistry, DOCKER_MANIFEST};

use crate::harness::*;

/// A gzipped graph-data tarball: the minimal tree listing [`HEALTHY`], then `filler`
/// empty dotfiles in `channels/` (which the loader skips).
fn tarball_with_entries(path: &std::path::Path, filler: usize) {
    let tree = tempfile::tempdir().unwrap();
    graph_data(tree.path(), &HEALTHY);
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut builder = tar::Builder::new(gz);
    builder.append_dir_all(".", tree.path()).unwrap();
    for i in 0..filler {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, format!("channels/.f{i}"), std::io::empty())
            .unwrap();
    }
    builder
        .into_inner()
        .unwrap()
        .finish()
        .unwrap()
        .flush()
        .unwrap();
}

#[test]
fn a_graph_data_tarball_of_100k_entries_loads_in_seconds() {
    let fake = healthy_registry();
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("graph-data.tar.gz");
    tarball_with_entries(&tarball, 99_980);
    let started = Instant::now();
    let mut gb = GraphBuilder::start(&fake, &tarball, 20, &[]);
    gb.wait_log("graph refreshed", 0);
    let took = started.elapsed();
    eprintln!("100k-entry graph-data tarball: first graph after {took:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_eq!(gb.versions(), set(&HEALTHY));
    gb.assert_alive();
    gb.assert_peak_rss_below(128);
    gb.figure(
        "super_linear",
        "a_graph_data_tarball_of_100k_entries_loads_in_seconds",
    );
}

#[test]
fn many_releases_with_downward_edges_build_in_bounded_time() {
    // Two lines of 150 releases, each a chain by version; every tenth release of the lower
    // line also names the release of the upper line with the same patch number as its
    // predecessor: edges against the version order that close no cycle (the lower line
    // never reaches the upper one).
    const N: u32 = 150;
    let fake = FakeRegistry::start();
    let lower: Vec<String> = (0..N).map(|i| format!("4.17.{i}")).collect();
    let upper: Vec<String> = (0..N).map(|i| format!("4.18.{i}")).collect();
    fake.build(REPO, |b| {
        for (line, other) in [(&upper, None), (&lower, Some(&upper))] {
            for (i, version) in line.iter().enumerate() {
                let mut previous: Vec<&str> = Vec::new();
                if i > 0 {
                    previous.push(&line[i - 1]);
                }
                if let Some(other) = other.filter(|_| i % 10 == 0) {
                    previous.push(&other[i]);
                }
                let metadata = metadata_json(version, &previous, &[]);
                let digest = b.release(DOCKER_MANIFEST, "amd64", &metadata);
                b.tag(version, &digest);
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<&str> = lower.iter().chain(&upper).map(String::as_str).collect();
    graph_data(dir.path(), &names);
    let started = Instant::now();
    let mut gb = GraphBuilder::start(&fake, dir.path(), 30, &[]);
    let line = gb.wait_log("graph refreshed", 0);
    let took = started.elapsed();
    eprintln!("{} releases: first graph after {took:?}: {line}", 2 * N);
    assert!(line.contains(&format!("nodes={}", 2 * N)), "{line}");
    let edges = 2 * (N - 1) + N / 10;
    assert!(line.contains(&format!("edges={edges}")), "{line}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    gb.assert_alive();
    gb.assert_peak_rss_below(128);
    gb.figure(
        "super_linear",
        "many_releases_with_downward_edges_build_in_bounded_time",
    );
}
