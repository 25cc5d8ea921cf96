//! Hostile graph-data files on disk: YAML whose aliases expand past all proportion, YAML
//! nested deeper than any parser stack, a file too large to hold, and a FIFO that would
//! never end. Each is refused naming the file, in a process that stays alive and small and
//! keeps serving the last good graph.

use std::time::{Duration, Instant};

use crate::harness::*;

/// Starts serving, writes `file` into the graph-data with `write`, and waits for the
/// refusal naming it.
fn refused(test: &str, file: &str, write: impl FnOnce(&std::path::Path), refusal: &str) {
    let fake = healthy_registry();
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start_serving(&fake, dir.path(), 20);
    let mark = gb.log_mark();
    write(&dir.path().join(file));
    let started = Instant::now();
    let line = gb.wait_log(file, mark);
    assert!(line.contains(refusal), "{line}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    gb.wait_metric("cincinnati_gb_graph_refresh_errors_total{stage=\"graph_data\"}");
    gb.assert_alive();
    gb.assert_serves_healthy();
    gb.assert_peak_rss_below(128);
    gb.figure("files", test);
}

#[test]
fn yaml_aliases_expanding_past_all_proportion_are_refused() {
    let mut bomb = String::from("name: bomb\nversions: [4.18.0]\nx: &x [");
    bomb.push_str(&"1,".repeat(20_000));
    bomb.push_str("]\ny: [");
    bomb.push_str(&"*x,".repeat(2_000));
    bomb.push_str("]\n");
    refused(
        "yaml_aliases_expanding_past_all_proportion_are_refused",
        "channels/bomb.yaml",
        |path| std::fs::write(path, bomb).unwrap(),
        "channels/bomb.yaml: invalid YAML: y[8][8233]: the document expands past",
    );
}

#[test]
fn yaml_nested_deeper_than_a_stack_is_refused_without_a_crash() {
    let deep = format!(
        "name: deep\nversions: [4.18.0]\nx: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    refused(
        "yaml_nested_deeper_than_a_stack_is_refused_without_a_crash",
        "channels/deep.yaml",
        |path| std::fs::write(path, deep).unwrap(),
        "channels/deep.yaml: invalid YAML: 100001 '[' or '{' characters, more than the 1000 allowed",
    );
}

#[test]
fn a_file_too_large_to_hold_is_refused_unread() {
    refused(
        "a_file_too_large_to_hold_is_refused_unread",
        "channels/huge.yaml",
        |path| {
            let file = std::fs::File::create(path).unwrap();
            // Sparse: 8 GiB claimed, nothing written.
            file.set_len(8 << 30).unwrap();
        },
        "channels/huge.yaml: 8589934592 bytes is above the 262144 byte limit per file",
    );
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    refused(
        "a_fifo_is_refused_without_blocking",
        "channels/fifo.yaml",
        |path| {
            let made = std::process::Command::new("mkfifo").arg(path).status();
            assert!(made.unwrap().success());
        },
        "channels/fifo.yaml: it is a FIFO, not a regular file",
    );
}
