//! The `graph-builder` binary as a child process: started on loopback with port 0, its
//! stderr read line by line, its status listener asked over plain HTTP/1.0, stopped by
//! SIGTERM to its own PID, every wait bounded.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::WAIT;

use integration_tests::child::spawn_logging;

/// Waits (at most [`WAIT`]) for a line containing `needle`; returns the lines seen.
pub fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    integration_tests::child::wait_line(rx, needle, seen, WAIT);
}

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_graph-builder");

/// A running binary: its stderr lines, the lines seen so far, and its bound addresses.
pub struct Running {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
    /// The main listener (`/graph`).
    pub main: String,
    /// The status listener (`/status`, `/readiness`, `/metrics`).
    pub status: String,
}

/// Waits (bounded) for the child to exit.
pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
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

/// `GET path` on `addr`: (status code, body).
pub fn get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}

/// The binary on loopback, every port 0, on the OCI layout `layout` and graph-data
/// `gd`, with no stdin.
pub fn command(layout: &Path, gd: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
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
        .arg(layout)
        .arg("--upstream.graph_data")
        .arg(gd)
        .stdin(Stdio::null());
    command
}

/// Starts the binary on the OCI layout `layout` and graph-data `gd` with `--log-format
/// format` and `extra` flags, and waits for its "listening" record.
pub fn start(layout: &Path, gd: &Path, format: &str, extra: &[&str]) -> Running {
    let (child, lines) = spawn_logging(
        command(layout, gd)
            .args(["--log-format", format])
            .args(extra)
            .env_remove("LOG_FORMAT"),
    );
    let mut seen = Vec::new();
    wait_line(&lines, "listening", &mut seen);
    let line = seen.last().unwrap().clone();
    let field = |name: &str| match format {
        "json" => serde_json::from_str::<serde_json::Value>(&line).unwrap()[name]
            .as_str()
            .unwrap()
            .to_owned(),
        _ => line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned(),
    };
    let (main, status) = (field("main"), field("status"));
    Running {
        child,
        lines,
        seen,
        main,
        status,
    }
}

impl Running {
    /// Waits for a line containing `needle`.
    pub fn wait_line(&mut self, needle: &str) {
        wait_line(&self.lines, needle, &mut self.seen);
    }

    /// Takes every line that arrives within `quiet` (continuation lines of a record
    /// would arrive together with it).
    pub fn drain(&mut self, quiet: Duration) {
        std::thread::sleep(quiet);
        self.seen.extend(self.lines.try_iter());
    }

    /// SIGTERM to the child's PID, then a bounded wait for its exit.
    pub fn stop(mut self) -> Vec<String> {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        wait_exit(&mut self.child);
        self.seen.extend(self.lines.try_iter());
        self.seen
    }
}
