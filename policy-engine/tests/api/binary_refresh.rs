//! The `policy-engine` binary in one-process mode when graph-data breaks after a good
//! graph: the next build fails, and the admin sees it once in the log (one record naming
//! the file and field, in both log formats), in `/status` and in the readiness body,
//! while the last good graph is still served.

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use integration_tests::child::{json_records, stderr_lines};

use crate::harness::get;
use crate::one_process::{copy_dir, repo_root};

const WAIT: Duration = Duration::from_secs(30);
const GRAPH: &str = "/api/upgrades_info/v1/graph?channel=stable-4.16";
/// The broken file and field, as the loader words them.
const PROBLEM: &str = "channels/broken-4.16.yaml: field `versions`: expected a list of versions, found the string \"4.16.0\"";

/// Waits (at most [`WAIT`]) for a line containing `needle`, keeping every line in `seen`.
fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    integration_tests::child::wait_line(rx, needle, seen, WAIT);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What the admin sees once the build after the break has failed.
struct Seen {
    lines: Vec<String>,
    status: serde_json::Value,
    ready: (u16, String),
    graph_before: bytes::Bytes,
    graph_after: bytes::Bytes,
}

async fn break_graph_data_after_a_good_graph(format: &str) -> Seen {
    let dir = tempfile::tempdir().unwrap();
    let (layout, gd) = (dir.path().join("layout"), dir.path().join("graph-data"));
    copy_dir(&repo_root().join("data/sample-releases"), &layout);
    copy_dir(&repo_root().join("data/graph-data"), &gd);
    let (port, status_port) = (free_port(), free_port());
    // Three seconds between builds: only one failed build happens before the test stops
    // the service.
    let mut child = Command::new(env!("CARGO_BIN_EXE_policy-engine"))
        .args(["--log-format", format])
        .args(["--service.address", "127.0.0.1"])
        .args(["--service.port", &port.to_string()])
        .args(["--status.address", "127.0.0.1"])
        .args(["--status.port", &status_port.to_string()])
        .arg("--releases-oci-layout")
        .arg(&layout)
        .arg("--graph-data")
        .arg(&gd)
        .args(["--refresh-secs", "3"])
        .env_remove("RUST_LOG")
        .env_remove("LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stderr_lines(&mut child);
    let mut seen = Vec::new();
    wait_line(&rx, "serving a new graph", &mut seen);
    let (base, status) = (
        format!("http://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{status_port}"),
    );
    let before = get(&format!("{base}{GRAPH}"), &[]).await;
    assert_eq!(before.status, 200, "{}", before.text());

    std::fs::write(
        gd.join("channels/broken-4.16.yaml"),
        "name: broken-4.16\nversions: 4.16.0\n",
    )
    .unwrap();
    wait_line(&rx, "refresh failed", &mut seen);
    // Continuation lines of a record would arrive with it; there must be none.
    tokio::time::sleep(Duration::from_millis(300)).await;
    seen.extend(rx.try_iter());
    let doc = get(&format!("{status}/status"), &[]).await;
    let ready = get(&format!("{status}/readyz"), &[]).await;
    let after = get(&format!("{base}{GRAPH}"), &[]).await;
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "policy-engine did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
    seen.extend(rx.try_iter());
    assert_eq!(after.status, 200);
    Seen {
        lines: seen,
        status: doc.json(),
        ready: (ready.status.as_u16(), ready.text()),
        graph_before: before.body,
        graph_after: after.body,
    }
}

/// `/status`, readiness and the graph after the failed build.
fn assert_reported_and_graph_kept(seen: &Seen) {
    let doc = &seen.status;
    assert_eq!(doc["ready"], true, "{doc}");
    assert_eq!(doc["last_refresh"]["result"], "failed", "{doc}");
    assert_eq!(doc["last_refresh"]["error"]["stage"], "graph_data", "{doc}");
    assert!(
        doc["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains(PROBLEM),
        "{doc}"
    );
    assert_eq!(
        doc["graph_data"]["problems"],
        serde_json::json!([{
            "file": "channels/broken-4.16.yaml",
            "field": "versions",
            "message": "expected a list of versions, found the string \"4.16.0\"",
        }])
    );
    assert_eq!(doc["served"]["revision"], 1, "{doc}");
    assert_eq!(seen.graph_after, seen.graph_before, "the last good graph");
    let graph: serde_json::Value = serde_json::from_slice(&seen.graph_after).unwrap();
    assert_eq!(graph["nodes"].as_array().unwrap().len(), 110);

    let (code, body) = &seen.ready;
    assert_eq!(*code, 200, "readiness does not revert: {body}");
    assert!(
        body.starts_with("serving graph revision 1; the last refresh failed "),
        "{body}"
    );
    assert!(body.contains("building the graph (graph_data): "), "{body}");
    assert!(body.contains(PROBLEM), "{body}");
    assert!(!body.contains('\n'), "{body}");
}

#[tokio::test]
async fn one_process_broken_graph_data_is_one_text_record_and_shows_in_status_and_readiness() {
    let seen = break_graph_data_after_a_good_graph("text").await;
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
        .filter(|l| l.contains("broken-4.16.yaml") && l.contains("versions"))
        .collect();
    assert_eq!(naming.len(), 1, "{}", seen.lines.join("\n"));
    let record = naming[0];
    assert!(record.contains(" ERROR "), "{record}");
    assert!(
        record.contains("refresh failed, still serving the last good graph: "),
        "{record}"
    );
    assert!(record.contains(PROBLEM), "{record}");
    assert_reported_and_graph_kept(&seen);
}

#[tokio::test]
async fn one_process_broken_graph_data_is_one_json_record_and_shows_in_status_and_readiness() {
    let seen = break_graph_data_after_a_good_graph("json").await;
    let records = json_records(&seen.lines);
    let naming: Vec<_> = records
        .iter()
        .filter(|r| {
            let text = r.to_string();
            text.contains("broken-4.16.yaml") && text.contains("versions")
        })
        .collect();
    assert_eq!(naming.len(), 1, "{}", seen.lines.join("\n"));
    let record = naming[0];
    assert_eq!(record["level"], "ERROR");
    assert_eq!(record["target"], "policy_engine::refresh");
    let message = record["message"].as_str().unwrap();
    assert!(
        message.starts_with("refresh failed, still serving the last good graph: "),
        "{record}"
    );
    assert!(message.contains(PROBLEM), "{record}");
    assert_reported_and_graph_kept(&seen);
}
