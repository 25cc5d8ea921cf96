//! The `policy-engine` binary with the operator's command line, on
//! loopback instead of `::`: it starts without an upstream, says what it waits for, is
//! live but not ready, and stops cleanly on SIGTERM.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{get, try_get};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn starts_with_the_operators_flags_and_waits_for_its_upstream() {
    let (port, status_port, upstream_port) = (free_port(), free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_policy-engine"))
        .args(["-vv", "--service.address", "127.0.0.1"])
        .args(["--service.mandatory_client_parameters", "channel"])
        .args(["--service.path_prefix", "/api/upgrades_info"])
        .args(["--service.port", &port.to_string()])
        .args(["--status.address", "127.0.0.1"])
        .args(["--status.port", &status_port.to_string()])
        .args([
            "--upstream.cincinnati.url",
            &format!("http://127.0.0.1:{upstream_port}/v1/graph"),
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("http://127.0.0.1:{status_port}");
    let mut live = false;
    for _ in 0..100 {
        if reqwest::get(format!("{status}/livez"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            live = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = get(&format!("{status}/readyz"), &[]).await;
    let graph = get(
        &format!("http://127.0.0.1:{port}/api/upgrades_info/v1/graph?channel=stable-4.16"),
        &[],
    )
    .await;
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = child.wait().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(live, "never live:\n{log}");
    assert_eq!(ready.status, 503, "{log}");
    assert_eq!(graph.status, 500);
    assert_eq!(graph.json()["kind"], "failed_upstream_fetch");
    assert!(stopped.unwrap().success());
    assert!(exit.success(), "{exit:?}\n{log}");
    assert!(
        log.contains("not ready until the upstream graph-builder serves a graph"),
        "{log}"
    );
    assert!(log.contains("no graph to serve yet"), "{log}");
}

/// `--log-format json`: every stderr line is one JSON object (the upstream error, with
/// its cause, included), lifecycle at INFO, `-vv` debug for our crates only.
#[tokio::test]
async fn json_log_format_writes_one_object_per_record() {
    let (port, status_port, upstream_port) = (free_port(), free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_policy-engine"))
        .args(["-vv", "--log-format", "json"])
        .args(["--service.port", &port.to_string()])
        .args(["--status.port", &status_port.to_string()])
        .args([
            "--upstream.cincinnati.url",
            &format!("http://127.0.0.1:{upstream_port}/v1/graph"),
        ])
        .env_remove("RUST_LOG")
        .env_remove("PE_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained as it comes: at debug level the records of 30 s of probes outgrow a pipe's
    // buffer, and a child blocked on writing its log would never get ready.
    let mut stderr = child.stderr.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut log = String::new();
        stderr.read_to_string(&mut log).unwrap();
        log
    });
    let status = format!("http://127.0.0.1:{status_port}");
    // Bounded; a loaded machine may take a while to start the process and bind.
    for _ in 0..300 {
        let ready = try_get(&format!("{status}/readyz")).await;
        if ready.is_some_and(|r| r.text().contains("failed to fetch upstream graph")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    let log = drain.join().unwrap();

    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let listening = records
        .iter()
        .find(|r| {
            r["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("policy-engine listening"))
        })
        .unwrap_or_else(|| panic!("no listening record in\n{log}"));
    assert_eq!(listening["level"], "INFO");
    assert_eq!(listening["status"], format!("127.0.0.1:{status_port}"));
    assert!(
        records.iter().any(|r| r["message"]
            .as_str()
            .is_some_and(|m| m.contains("no graph to serve yet"))),
        "{log}"
    );
    // -vv reaches our crates, not the HTTP client's.
    for record in &records {
        let target = record["target"].as_str().unwrap_or_default();
        assert!(
            target.starts_with("policy_engine")
                || target.starts_with("graph_builder")
                || record["level"] == "WARN"
                || record["level"] == "ERROR",
            "{record}"
        );
    }
}

/// The `metadata-helper` binary takes the services' shared listener and logging flags:
/// a canonical flag (`--status.port`), an alias (`--port`), and their `MH_` environment
/// names (`MH_SERVICE_ADDRESS`, `MH_LOG_FORMAT`), with the lifecycle line at INFO.
#[tokio::test]
async fn the_metadata_helper_takes_the_shared_listener_and_log_flags() {
    use integration_tests::child::{json_records, spawn_logging, wait_line};

    let (port, status_port) = (free_port(), free_port());
    let signatures = tempfile::tempdir().unwrap();
    let (mut child, lines) = spawn_logging(
        Command::new(env!("CARGO_BIN_EXE_metadata-helper"))
            .args(["--port", &port.to_string()])
            .args(["--status.port", &status_port.to_string()])
            .arg("--signatures.dir")
            .arg(signatures.path())
            .env("MH_SERVICE_ADDRESS", "127.0.0.1")
            .env("MH_LOG_FORMAT", "json"),
    );
    let mut seen = Vec::new();
    wait_line(
        &lines,
        "metadata-helper listening",
        &mut seen,
        Duration::from_secs(30),
    );
    let live = try_get(&format!("http://127.0.0.1:{status_port}/livez")).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = child.wait().unwrap();

    let records = json_records(&seen);
    let listening = records.last().expect("the listening record");
    assert_eq!(listening["level"], "INFO", "{listening}");
    assert_eq!(
        listening["public"],
        format!("127.0.0.1:{port}"),
        "{listening}"
    );
    assert_eq!(
        listening["status"],
        format!("127.0.0.1:{status_port}"),
        "{listening}"
    );
    assert_eq!(listening["prefix"], "/api/upgrades_info", "{listening}");
    assert_eq!(live.map(|r| r.status.as_u16()), Some(200));
    assert!(exit.success(), "{exit:?}");
}
