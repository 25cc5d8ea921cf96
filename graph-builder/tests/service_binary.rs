//! The `graph-builder` binary: the operator's `gb.toml` (with its paths and addresses
//! pointed at test directories and loopback by flags, which win over the file) builds a
//! graph, SIGTERM stops it cleanly, and configuration errors exit 2 naming the field.

mod service;

use std::process::{Command, Stdio};
use std::time::Duration;

use integration_tests::child::stderr_lines;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use service::binary::{command, get, start, wait_exit, wait_line, BIN};

const OPERATOR_GB_TOML: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/operator-gb.toml"
);

#[test]
fn operator_gb_toml_builds_a_graph_and_sigterm_stops_gracefully() {
    let layout = tempfile::tempdir().unwrap();
    service::layout::add_release(layout.path(), "4.16.0", &[], "amd64");
    service::layout::add_release(layout.path(), "4.16.1", &["4.16.0"], "amd64");
    let gd = tempfile::tempdir().unwrap();
    service::graph_data(gd.path(), "stable-4.16", &["4.16.0", "4.16.1"]);

    let mut child = command(layout.path(), gd.path())
        .args(["-c", OPERATOR_GB_TOML])
        .env("RUST_LOG", "graph_builder=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stderr_lines(&mut child);
    let mut seen = Vec::new();
    wait_line(&rx, "graph refreshed", &mut seen);
    let refreshed = seen.last().unwrap();
    assert!(refreshed.contains("nodes=2"), "{refreshed}");
    assert!(refreshed.contains("edges=1"), "{refreshed}");

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    wait_line(&rx, "shutting down", &mut seen);
    let status = wait_exit(&mut child);
    assert!(status.success(), "{status:?}\n{}", seen.join("\n"));
}

#[test]
fn configuration_errors_exit_2_naming_the_variable_or_key() {
    let out = Command::new(BIN)
        .env("GB_SERVICE_PAUSE_SECS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("service.pause_secs"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gb.toml");
    std::fs::write(
        &file,
        "[[plugin_settings]]\nname = \"edge-add-remove\"\ninclude_conditional = true\n",
    )
    .unwrap();
    let out = Command::new(BIN).arg("-c").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("include_conditional"), "{stderr}");
    assert!(stderr.contains("gb.toml"), "{stderr}");
}

/// Graph-data with two problems in two files, and a release layout it would apply to.
fn invalid_graph_data() -> (tempfile::TempDir, tempfile::TempDir) {
    let layout = tempfile::tempdir().unwrap();
    service::layout::add_release(layout.path(), "4.16.0", &[], "amd64");
    let gd = tempfile::tempdir().unwrap();
    service::graph_data(gd.path(), "stable-4.16", &["4.16.0"]);
    std::fs::write(
        gd.path().join("blocked-edges/4.16.1-risk.yaml"),
        "to: 4.16.1\nfrom: .*\nurl: https://example.com/risk\nname: Risk\nmessage: m\nmatchingRules: []\n",
    )
    .unwrap();
    std::fs::write(
        gd.path().join("channels/fast-4.16.yaml"),
        "name: fast-4.16\nversions: 4.16.0\n",
    )
    .unwrap();
    (layout, gd)
}

/// The two problems, as the loader words them.
const PROBLEMS: &str = "2 problem(s) in graph-data: channels/fast-4.16.yaml: field `versions`: expected a list of versions, found the string \"4.16.0\"; blocked-edges/4.16.1-risk.yaml: field `matchingRules`: needs at least one rule";

#[test]
fn a_graph_data_problem_is_one_text_record_naming_file_and_field_and_shows_in_status() {
    let (layout, gd) = invalid_graph_data();
    let mut gb = start(layout.path(), gd.path(), "text", &[]);
    gb.wait_line("refresh failed");
    let record = gb.seen.last().unwrap().clone();
    // Give any continuation lines time to arrive; there must be none.
    gb.drain(Duration::from_millis(300));
    let (code, body) = get(&gb.status, "/status");
    let (ready_code, ready_body) = get(&gb.status, "/readiness");
    let seen = gb.stop();

    assert!(record.contains(" ERROR "), "{record}");
    assert!(record.contains(PROBLEMS), "{record}");
    let naming: Vec<_> = seen
        .iter()
        .filter(|l| l.contains("fast-4.16.yaml"))
        .collect();
    assert_eq!(naming, [&record], "the problem list is in one record only");

    assert_eq!(code, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["service"], "graph-builder");
    assert_eq!(doc["ready"], false);
    assert_eq!(doc["last_refresh"]["result"], "failed");
    assert_eq!(doc["last_refresh"]["error"]["stage"], "graph_data");
    assert_eq!(
        doc["graph_data"]["problems"],
        serde_json::json!([
            {"file": "channels/fast-4.16.yaml", "field": "versions", "message": "expected a list of versions, found the string \"4.16.0\""},
            {"file": "blocked-edges/4.16.1-risk.yaml", "field": "matchingRules", "message": "needs at least one rule"}
        ])
    );
    assert_eq!(doc["graph_data"]["source"], gd.path().display().to_string());
    assert!(doc.get("graph").is_none(), "{doc}");

    assert_eq!(ready_code, 503);
    assert!(
        ready_body.starts_with("no graph yet: 1 refresh(es) failed, the last at stage graph_data: loading graph-data failed: graph-data from "),
        "{ready_body}"
    );
    assert!(ready_body.contains(PROBLEMS), "{ready_body}");
}

#[test]
fn a_graph_data_problem_is_one_json_record_naming_file_and_field() {
    let (layout, gd) = invalid_graph_data();
    let mut gb = start(layout.path(), gd.path(), "json", &[]);
    gb.wait_line("refresh failed");
    gb.drain(Duration::from_millis(300));
    let seen = gb.stop();

    // Every line is a JSON object: no line of a record spills over.
    let records: Vec<serde_json::Value> = seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let failed: Vec<_> = records
        .iter()
        .filter(|r| {
            r["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("refresh failed")
        })
        .collect();
    assert_eq!(failed.len(), 1, "{seen:?}");
    let record = failed[0];
    assert_eq!(record["level"], "ERROR");
    assert_eq!(record["stage"], "graph_data");
    assert_eq!(record["target"], "graph_builder::refresh");
    assert!(
        record["message"].as_str().unwrap().contains(PROBLEMS),
        "{record}"
    );
}

#[test]
fn the_status_document_reports_releases_graph_data_and_graph_once_built() {
    let layout = tempfile::tempdir().unwrap();
    service::layout::add_release(layout.path(), "4.16.0", &[], "amd64");
    service::layout::add_release(layout.path(), "4.16.1", &["4.16.0"], "amd64");
    service::layout::add_release(layout.path(), "4.16.1", &[], "arm64");
    let gd = tempfile::tempdir().unwrap();
    service::graph_data(gd.path(), "stable-4.16", &["4.16.0", "4.16.1"]);
    let mut gb = start(layout.path(), gd.path(), "text", &[]);
    gb.wait_line("graph refreshed");
    let (code, body) = get(&gb.status, "/status");
    let (ready_code, _) = get(&gb.status, "/readiness");
    let (_, metrics) = get(&gb.status, "/metrics");
    gb.stop();

    assert_eq!((code, ready_code), (200, 200));
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["ready"], true);
    assert!(doc.get("not_ready").is_none(), "{doc}");
    assert!(doc.get("degraded").is_none(), "{doc}");
    assert_eq!(doc["git_commit"], graph_builder::GIT_COMMIT);
    assert_eq!(doc["last_refresh"]["result"], "succeeded");
    assert_eq!(doc["last_refresh"]["consecutive_failures"], 0);
    assert_eq!(
        doc["releases"],
        serde_json::json!({
            "total": 3, "per_arch": {"amd64": 2, "arm64": 1}, "invalid": [],
            "kept_from_last_good": 0, "failing_tags": []
        })
    );
    assert_eq!(doc["graph"]["nodes"], 3);
    assert_eq!(doc["graph"]["edges"], 1);
    assert!(doc["graph"]["revision"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(doc["graph_data"]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(doc["graph_data"]["problems"], serde_json::json!([]));
    assert!(
        metrics.contains("\ncincinnati_gb_scrape_tags_done 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\ncincinnati_gb_scrape_running 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\ncincinnati_gb_graph_invalid_releases 0\n"),
        "{metrics}"
    );
    // The running binary names its commit and version.
    let build_info = format!(
        "\ncincinnati_gb_build_info{{git_commit=\"{}\",version=\"{}\"}} 1\n",
        graph_builder::GIT_COMMIT,
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        metrics.contains(&build_info),
        "{build_info} not in {metrics}"
    );
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
}
