//! The `graph-builder` binary: the operator's `gb.toml` (with its paths and addresses
//! pointed at test directories and loopback by flags, which win over the file) builds a
//! graph, SIGTERM stops it cleanly, and configuration errors exit 2 naming the field.

mod service;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_graph-builder");
const OPERATOR_GB_TOML: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/operator-gb.toml"
);
const WAIT: Duration = Duration::from_secs(20);

/// Forwards the child's stderr lines to a channel.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; returns the lines seen.
fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + WAIT;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return;
                }
            }
            Err(_) => break,
        }
    }
    panic!(
        "no log line containing {needle:?}; saw:\n{}",
        seen.join("\n")
    );
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("graph-builder did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn operator_gb_toml_builds_a_graph_and_sigterm_stops_gracefully() {
    let layout = tempfile::tempdir().unwrap();
    service::layout::add_release(layout.path(), "4.16.0", &[], "amd64");
    service::layout::add_release(layout.path(), "4.16.1", &["4.16.0"], "amd64");
    let gd = tempfile::tempdir().unwrap();
    service::graph_data(gd.path(), "stable-4.16", &["4.16.0", "4.16.1"]);

    let mut child = Command::new(BIN)
        .args(["-c", OPERATOR_GB_TOML])
        .args([
            "--service.address",
            "127.0.0.1",
            "--port",
            "0",
            "--public_port",
            "0",
        ])
        .args(["--status.address", "127.0.0.1", "--status.port", "0"])
        .arg("--upstream.oci_layout")
        .arg(layout.path())
        .arg("--upstream.graph_data")
        .arg(gd.path())
        .env("RUST_LOG", "graph_builder=info")
        .stdin(Stdio::null())
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
