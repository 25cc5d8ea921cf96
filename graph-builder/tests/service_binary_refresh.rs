//! The `graph-builder` binary when graph-data breaks after a good graph: the next refresh
//! fails, and the admin sees it once in the log (one record naming the file and field, in
//! both log formats), in `/status` and in the readiness body, while the last good graph
//! is still served.

mod service;

use std::time::Duration;

use service::binary::{get, start};

/// The broken file and field, as the loader words them.
const PROBLEM: &str = "channels/fast-4.16.yaml: field `versions`: expected a list of versions, found the string \"4.16.0\"";

/// What the admin sees once the refresh after the break has failed.
struct Seen {
    lines: Vec<String>,
    status: serde_json::Value,
    ready: (u16, String),
    graph_before: String,
    graph_after: String,
}

fn break_graph_data_after_a_good_graph(format: &str) -> Seen {
    let layout = tempfile::tempdir().unwrap();
    service::layout::add_release(layout.path(), "4.16.0", &[], "amd64");
    service::layout::add_release(layout.path(), "4.16.1", &["4.16.0"], "amd64");
    let gd = tempfile::tempdir().unwrap();
    service::graph_data(gd.path(), "stable-4.16", &["4.16.0", "4.16.1"]);
    // Three seconds between refreshes: long enough that only one failed refresh happens
    // before the test stops the service, short enough to wait for.
    let mut gb = start(
        layout.path(),
        gd.path(),
        format,
        &["--service.pause_secs", "3"],
    );
    gb.wait_line("graph refreshed");
    let (code, graph_before) = get(&gb.main, "/graph");
    assert_eq!(code, 200);

    service::write(
        gd.path(),
        "channels/fast-4.16.yaml",
        "name: fast-4.16\nversions: 4.16.0\n",
    );
    gb.wait_line("refresh failed");
    // Continuation lines of a record would arrive with it; there must be none.
    gb.drain(Duration::from_millis(300));
    let (code, status) = get(&gb.status, "/status");
    assert_eq!(code, 200);
    let ready = get(&gb.status, "/readiness");
    let (code, graph_after) = get(&gb.main, "/graph");
    assert_eq!(code, 200);
    let lines = gb.stop();
    Seen {
        lines,
        status: serde_json::from_str(&status).unwrap(),
        ready,
        graph_before,
        graph_after,
    }
}

/// `/status`, readiness and the graph after the failed refresh.
fn assert_reported_and_graph_kept(seen: &Seen) {
    let doc = &seen.status;
    assert_eq!(doc["ready"], true, "{doc}");
    assert_eq!(doc["last_refresh"]["result"], "failed", "{doc}");
    assert_eq!(doc["last_refresh"]["consecutive_failures"], 1, "{doc}");
    assert_eq!(doc["last_refresh"]["error"]["stage"], "graph_data", "{doc}");
    assert!(
        doc["last_refresh"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains(PROBLEM),
        "{doc}"
    );
    assert_eq!(
        doc["graph_data"]["problems"],
        serde_json::json!([{
            "file": "channels/fast-4.16.yaml",
            "field": "versions",
            "message": "expected a list of versions, found the string \"4.16.0\"",
        }])
    );
    // The graph served is still the one built before the break.
    assert_eq!(doc["graph"]["nodes"], 2, "{doc}");
    assert_eq!(seen.graph_after, seen.graph_before);
    let graph: serde_json::Value = serde_json::from_str(&seen.graph_after).unwrap();
    assert_eq!(graph["nodes"].as_array().unwrap().len(), 2);

    let (code, body) = &seen.ready;
    assert_eq!(*code, 200, "readiness does not revert: {body}");
    assert!(
        body.starts_with("serving the last good graph, built at "),
        "{body}"
    );
    assert!(body.contains("1 refresh(es) failed since "), "{body}");
    assert!(body.contains("the last at stage graph_data: "), "{body}");
    assert!(body.contains(PROBLEM), "{body}");
    assert!(!body.contains('\n'), "{body}");
}

#[test]
fn broken_graph_data_after_a_good_graph_is_one_text_record_and_shows_in_status_and_readiness() {
    let seen = break_graph_data_after_a_good_graph("text");
    // Every line is a record of its own: it starts with the record's timestamp.
    for line in &seen.lines {
        let year = line.get(..5).unwrap_or_default();
        assert!(
            year.len() == 5 && year[..4].bytes().all(|b| b.is_ascii_digit()) && year.ends_with('-'),
            "a line that is not a record of its own: {line:?}\n{}",
            seen.lines.join("\n")
        );
    }
    let naming: Vec<_> = seen
        .lines
        .iter()
        .filter(|l| l.contains("fast-4.16.yaml") && l.contains("versions"))
        .collect();
    assert_eq!(naming.len(), 1, "{}", seen.lines.join("\n"));
    let record = naming[0];
    assert!(record.contains(" ERROR "), "{record}");
    assert!(record.contains("refresh failed: "), "{record}");
    assert!(record.contains("stage=\"graph_data\""), "{record}");
    assert!(record.contains(PROBLEM), "{record}");
    assert_reported_and_graph_kept(&seen);
}

#[test]
fn broken_graph_data_after_a_good_graph_is_one_json_record_and_shows_in_status_and_readiness() {
    let seen = break_graph_data_after_a_good_graph("json");
    let records = integration_tests::child::json_records(&seen.lines);
    let naming: Vec<_> = records
        .iter()
        .filter(|r| {
            let text = r.to_string();
            text.contains("fast-4.16.yaml") && text.contains("versions")
        })
        .collect();
    assert_eq!(naming.len(), 1, "{}", seen.lines.join("\n"));
    let record = naming[0];
    assert_eq!(record["level"], "ERROR");
    assert_eq!(record["target"], "graph_builder::refresh");
    assert_eq!(record["stage"], "graph_data");
    assert_eq!(record["failed_refreshes"], 1);
    let message = record["message"].as_str().unwrap();
    assert!(message.starts_with("refresh failed: "), "{record}");
    assert!(message.contains(PROBLEM), "{record}");
    assert!(
        record["serving"]
            .as_str()
            .unwrap()
            .starts_with("the graph built at "),
        "{record}"
    );
    assert_reported_and_graph_kept(&seen);
}
