//! The pieces every fault test uses: the fake registry with healthy releases, graph-data
//! on disk, and the `graph-builder` process with its log, status and metrics.

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::fake::{metadata_json, FakeRegistry, DOCKER_MANIFEST};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The repository every test scrapes.
pub const REPO: &str = "ocp/release";
/// The releases every test starts with, and expects served to the end.
pub const HEALTHY: [&str; 2] = ["4.18.0", "4.18.1"];
/// The longest any single wait may take.
pub const WAIT: Duration = Duration::from_secs(30);
/// Bytes in a MiB.
pub const MIB: u64 = 1 << 20;

/// The `graph-builder` binary: `$UPDATE_SERVICE_BIN_DIR/graph-builder`, else next to the
/// target directory's `deps/` this test binary sits in.
pub fn binary() -> PathBuf {
    let dir = match std::env::var_os("UPDATE_SERVICE_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().expect("the test binary's path");
            exe.parent()
                .and_then(Path::parent)
                .expect("target/<profile>/deps/<test>")
                .to_path_buf()
        }
    };
    let bin = dir.join("graph-builder");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p graph-builder --bin graph-builder` first, or set \
         UPDATE_SERVICE_BIN_DIR",
        bin.display()
    );
    bin
}

/// A fake registry holding [`HEALTHY`] in [`REPO`].
pub fn healthy_registry() -> FakeRegistry {
    let fake = FakeRegistry::start();
    fake.build(REPO, |b| {
        let mut previous: Vec<&str> = Vec::new();
        for version in HEALTHY {
            let digest = b.release(
                DOCKER_MANIFEST,
                "amd64",
                &metadata_json(version, &previous, &[]),
            );
            b.tag(version, &digest);
            previous.push(version);
        }
    });
    fake
}

/// Writes minimal graph-data with one channel listing `versions`.
pub fn graph_data(root: &Path, versions: &[&str]) {
    let write = |rel: &str, text: &str| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("version", "1.1.0\n");
    write("raw/metadata.json", "{}");
    std::fs::create_dir_all(root.join("blocked-edges")).unwrap();
    let listed: String = versions.iter().map(|v| format!("- {v}\n")).collect();
    write(
        "channels/stable-4.18.yaml",
        &format!("name: stable-4.18\nversions:\n{listed}"),
    );
}

/// All versions a test may add, for the channel.
pub const CHANNEL: [&str; 4] = ["4.18.0", "4.18.1", "4.18.2", "4.18.3"];

/// A running `graph-builder`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct GraphBuilder {
    child: Child,
    /// `host:port` of the main listener.
    pub main: String,
    /// `host:port` of the public listener (the graph-data tarball).
    pub public: String,
    /// `host:port` of the status listener.
    pub status: String,
    lines: Arc<Mutex<Vec<String>>>,
    started: Instant,
}

impl GraphBuilder {
    /// Starts it scraping [`REPO`] on `fake`, graph-data from `graph_data`, refreshing
    /// every second, each refresh allowed `timeout_secs`; `extra` flags are added.
    pub fn start(
        fake: &FakeRegistry,
        graph_data: &Path,
        timeout_secs: u64,
        extra: &[&str],
    ) -> GraphBuilder {
        let mut args: Vec<String> = ["--upstream.registry.url", &fake.url()]
            .into_iter()
            .chain(["--upstream.registry.repository", REPO])
            .map(str::to_owned)
            .collect();
        args.push("--upstream.graph_data".into());
        args.push(graph_data.to_str().expect("UTF-8 path").into());
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        GraphBuilder::start_with(timeout_secs, &args)
    }

    /// Starts it on loopback ports of the kernel's choice, refreshing every second, each
    /// refresh allowed `timeout_secs`, with `args` saying where releases and graph-data
    /// come from.
    pub fn start_with(timeout_secs: u64, args: &[String]) -> GraphBuilder {
        let started = Instant::now();
        let mut child = Command::new(binary())
            .args(["--service.address", "127.0.0.1", "--port", "0"])
            .args(["--public_port", "0"])
            .args(["--status.address", "127.0.0.1", "--status.port", "0"])
            .args(["--service.pause_secs", "1"])
            .args(["--service.scrape_timeout", &timeout_secs.to_string()])
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("graph-builder starts");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut gb = GraphBuilder {
            child,
            main: String::new(),
            public: String::new(),
            status: String::new(),
            lines,
            started,
        };
        let listening = gb.wait_log("listening", 0);
        let field = |name: &str| {
            listening
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name}= in {listening}"))
                .to_owned()
        };
        gb.main = field("main");
        gb.public = field("public");
        gb.status = field("status");
        gb
    }

    /// Starts it and waits until it serves [`HEALTHY`].
    pub fn start_serving(fake: &FakeRegistry, graph_data: &Path, timeout_secs: u64) -> Self {
        let mut gb = GraphBuilder::start(fake, graph_data, timeout_secs, &[]);
        gb.wait_log("graph refreshed", 0);
        assert_eq!(gb.versions(), set(&HEALTHY));
        gb.assert_alive();
        gb
    }

    /// The log lines so far.
    pub fn logs(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// How many log lines there are so far (to wait for lines after this point).
    pub fn log_mark(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Waits (at most [`WAIT`]) for a line after `from` containing `needle`.
    pub fn wait_log(&self, needle: &str, from: usize) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(line) = self.logs().iter().skip(from).find(|l| l.contains(needle)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line containing {needle:?} within {WAIT:?}; saw:\n{}",
                self.logs().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Panics unless the process is still running.
    pub fn assert_alive(&mut self) {
        let exited = self.child.try_wait().unwrap();
        assert!(
            exited.is_none(),
            "graph-builder exited: {exited:?}; log:\n{}",
            self.logs().join("\n")
        );
    }

    /// Peak resident set size (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// Panics when the peak RSS is above `limit_mib`.
    pub fn assert_peak_rss_below(&self, limit_mib: u64) {
        let peak = self.peak_rss();
        eprintln!("graph-builder peak RSS {} MiB", peak / MIB);
        assert!(
            peak < limit_mib * MIB,
            "peak RSS {} MiB is above {limit_mib} MiB",
            peak / MIB
        );
    }

    /// `GET path` on the main (`main = true`) or status listener: (status, body).
    pub fn get(&self, main: bool, path: &str) -> (u16, String) {
        let addr = if main { &self.main } else { &self.status };
        get(addr, path)
    }

    /// The versions in the served graph, without their build metadata (`+amd64`).
    pub fn versions(&self) -> BTreeSet<String> {
        let (code, body) = self.get(true, "/graph");
        assert_eq!(code, 200, "{body}");
        let graph: serde_json::Value = serde_json::from_str(&body).unwrap();
        graph["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                let version = n["version"].as_str().unwrap();
                version.split('+').next().unwrap().to_owned()
            })
            .collect()
    }

    /// How many nodes the served graph has.
    pub fn nodes(&self) -> usize {
        let (code, body) = self.get(true, "/graph");
        assert_eq!(code, 200, "{body}");
        let graph: serde_json::Value = serde_json::from_str(&body).unwrap();
        graph["nodes"].as_array().unwrap().len()
    }

    /// Panics when the process has run for `limit` or longer.
    pub fn assert_wall_below(&self, limit: Duration) {
        let wall = self.started.elapsed();
        assert!(wall < limit, "ran {wall:?}, above {limit:?}");
    }

    /// Panics unless the served graph holds every healthy release.
    pub fn assert_serves_healthy(&self) {
        let versions = self.versions();
        for version in HEALTHY {
            assert!(versions.contains(version), "{version} not in {versions:?}");
        }
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        let (code, body) = self.get(false, "/metrics");
        assert_eq!(code, 200);
        body
    }

    /// The `/status` document.
    pub fn status_doc(&self) -> serde_json::Value {
        let (code, body) = self.get(false, "/status");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The value of the sample `series` (name and labels, exactly) on `/metrics`.
    pub fn metric(&self, series: &str) -> f64 {
        let metrics = self.metrics();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no sample {series}:\n{metrics}"))
    }

    /// Prints the test's figures on one line (`figure: CLASS TEST rss_peak_mib=..
    /// wall_s=.. nodes=..`), for `--nocapture` runs to collect.
    pub fn figure(&self, class: &str, test: &str) {
        let nodes = self.nodes();
        eprintln!(
            "figure: {class} {test} rss_peak_mib={:.1} wall_s={:.2} nodes={nodes}",
            self.peak_rss() as f64 / MIB as f64,
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Waits (at most [`WAIT`]) until `/metrics` holds a sample starting with `series`
    /// (name and labels) whose value is at least 1.
    pub fn wait_metric(&self, series: &str) -> f64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let metrics = self.metrics();
            let value = metrics
                .lines()
                .filter(|l| l.starts_with(series))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
                .fold(0.0, f64::max);
            if value >= 1.0 {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "no {series} >= 1 within {WAIT:?}:\n{metrics}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for GraphBuilder {
    fn drop(&mut self) {
        // The process's log, when a test failed or `FAULT_LOGS` asks for it.
        if std::thread::panicking() || std::env::var_os("FAULT_LOGS").is_some() {
            eprintln!("graph-builder log:\n{}", self.logs().join("\n"));
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over HTTP/1.0: (status, body).
pub fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}

/// A set of version strings.
pub fn set(versions: &[&str]) -> BTreeSet<String> {
    versions.iter().map(|v| (*v).to_owned()).collect()
}

/// Waits (at most [`WAIT`]) until `done` holds; panics naming `what` otherwise.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < WAIT, "{what}: not within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

/// Adds release `version` (after `previous`) under the tag `version`; its manifest
/// digest and its metadata layer's digest.
pub fn add_release(fake: &FakeRegistry, version: &str, previous: &[&str]) -> (String, String) {
    let (manifest, top) = untagged_release(fake, version, previous);
    tag(fake, version, &manifest);
    (manifest, top)
}

/// Stores release `version` without tagging it (so that faults can be scripted before
/// any refresh sees it); its manifest digest and its metadata layer's digest.
pub fn untagged_release(fake: &FakeRegistry, version: &str, previous: &[&str]) -> (String, String) {
    let manifest = fake.build(REPO, |b| {
        b.release(
            DOCKER_MANIFEST,
            "amd64",
            &metadata_json(version, previous, &[]),
        )
    });
    let top = fake.layers_of(REPO, &manifest).pop().unwrap();
    (manifest, top)
}

/// Points `tag` at `digest`.
pub fn tag(fake: &FakeRegistry, tag: &str, digest: &str) {
    fake.build(REPO, |b| b.tag(tag, digest));
}

/// Sets the scripted faults of the fake.
pub fn script(fake: &FakeRegistry, faults: Vec<(String, integration_tests::fake::Fault)>) {
    fake.with(|s| s.behaviour.faults = faults);
}
