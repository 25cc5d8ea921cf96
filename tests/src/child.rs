//! What the binaries' own tests share about a service run as a child process or
//! configured from the environment: its stderr as a channel of lines, bounded waits for a
//! line, the one-record-per-line check of the JSON log format, and environment variables
//! set for the length of one test.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Starts `command` with stdout discarded, `RUST_LOG` removed (the flags alone set the
/// level) and its stderr lines forwarded to a channel ([`stderr_lines`]).
pub fn spawn_logging(command: &mut Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = command
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let lines = stderr_lines(&mut child);
    (child, lines)
}

/// Forwards the child's stderr lines to a channel (taking its stderr pipe).
pub fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr is piped");
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

/// Waits at most `wait` for a line containing `needle`, keeping every line in `seen`;
/// panics with what was seen when none comes.
pub fn wait_line(
    rx: &mpsc::Receiver<String>,
    needle: &str,
    seen: &mut Vec<String>,
    wait: Duration,
) {
    let deadline = Instant::now() + wait;
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

/// Every line of a `--log-format json` log parsed as its record, checking that no
/// record's message spans lines (a log collector would split it).
pub fn json_records(lines: &[String]) -> Vec<serde_json::Value> {
    let records: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for record in &records {
        let message = record["message"].as_str().unwrap_or_default();
        assert!(!message.contains('\n'), "{record}");
    }
    records
}

/// Environment variables set until dropped. The environment is process-wide: callers
/// hold their own lock while one is alive.
#[derive(Debug)]
pub struct EnvVars<'a>(&'a [(&'a str, &'a str)]);

impl<'a> EnvVars<'a> {
    /// Sets every `(name, value)` of `vars`.
    pub fn set(vars: &'a [(&'a str, &'a str)]) -> EnvVars<'a> {
        for (k, v) in vars {
            std::env::set_var(k, v);
        }
        EnvVars(vars)
    }
}

impl Drop for EnvVars<'_> {
    fn drop(&mut self) {
        for (k, _) in self.0 {
            std::env::remove_var(k);
        }
    }
}
