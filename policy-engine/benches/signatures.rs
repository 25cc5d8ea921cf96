//! Signature fetch benchmark, loopback only and bounded in time: requests per second at
//! 64 keep-alive connections for one release signature, served by Debian's `nginx` (a
//! static file server, the yardstick), by the `policy-engine` binary and by the
//! `metadata-helper` binary, from the same file, in the same run. The three run side by
//! side and take turns under load for three rounds; each one's median round is
//! compared, so load from elsewhere on the machine hits all of them. Prints req/s,
//! p50/p99/max latency and each server's peak RSS (VmHWM, summed over nginx's master
//! and workers).
//!
//! `SIG_BENCH_SECS` sets each phase's duration (default 5 s). nginx must be installed
//! (`apt-get install nginx`); it is started on a free 127.0.0.1 port with its own config,
//! with as many workers as the policy-engine has (one per core), and stopped by PID.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const CONNECTIONS: usize = 64;
/// Rounds of (nginx, policy-engine, metadata-helper).
const ROUNDS: usize = 3;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

struct Phase {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

async fn load(url: &str, expected: Arc<Vec<u8>>, duration: Duration) -> Phase {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (url, expected) = (url.to_owned(), Arc::clone(&expected));
        tasks.push(tokio::spawn(async move {
            // One client per task: one keep-alive connection each.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .no_gzip()
                .build()
                .expect("client");
            let (mut latencies, mut errors) = (Vec::new(), 0);
            while Instant::now() < deadline {
                let t0 = Instant::now();
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => match r.bytes().await {
                        Ok(b) if b.as_ref() == expected.as_slice() => {}
                        _ => errors += 1,
                    },
                    _ => errors += 1,
                }
                latencies.push(t0.elapsed());
            }
            (latencies, errors)
        }));
    }
    let mut phase = Phase {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for task in tasks {
        let (latencies, errors) = task.await.expect("load task");
        phase.requests += latencies.len();
        phase.errors += errors;
        phase.latencies.extend(latencies);
    }
    phase.elapsed = start.elapsed();
    phase.latencies.sort_unstable();
    phase
}

fn report(name: &str, phase: &Phase, rss: &str) {
    let pct = |p: f64| {
        let i = ((phase.latencies.len() as f64 * p) as usize).min(phase.latencies.len() - 1);
        phase.latencies[i].as_secs_f64() * 1000.0
    };
    println!(
        "{name:<16} {:>8.0} req/s  p50 {:>5.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  {:>8} requests  {} errors  peak RSS {rss}",
        phase.rate(),
        pct(0.50),
        pct(0.99),
        phase.latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        phase.requests,
        phase.errors,
    );
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Peak RSS of `pid` plus its direct children (nginx's workers).
fn peak_rss(pid: u32) -> String {
    let mut total = vm_hwm_kib(pid).unwrap_or(0);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // Field 4 is the parent pid; the command name (field 2) is in parentheses.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(pid) {
                total += vm_hwm_kib(child).unwrap_or(0);
            }
        }
    }
    format!("{:.1} MiB", total as f64 / 1024.0)
}

/// Stops a server we started: SIGTERM to its PID (nginx's master then stops its
/// workers), then waits for it; SIGKILL if it is still there after 5 s.
fn stop(mut child: Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    for _ in 0..50 {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits (60 s at most) until `url` serves `expected`.
async fn wait_until_served(url: &str, expected: &[u8], child: &mut Child) {
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(r) = client.get(url).send().await {
            if r.status() == 200 && r.bytes().await.is_ok_and(|b| b.as_ref() == expected) {
                return;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{url}: the server exited ({status})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} was not served within 60 s");
}

fn start_nginx(dir: &Path, port: u16, workers: usize) -> Child {
    let conf = dir.join("nginx.conf");
    let root = dir.join("www");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process on;\nworker_processes {workers};\nuser root;\n\
             pid {dir}/nginx.pid;\nerror_log {dir}/nginx-error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n\
               keepalive_requests 1000000;\n  keepalive_timeout 60s;\n\
               default_type application/octet-stream;\n  types {{ }}\n\
               client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n\
               fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n\
               scgi_temp_path {dir}/scgi;\n\
               server {{ listen 127.0.0.1:{port}; root {root}; }}\n}}\n",
            dir = dir.display(),
            root = root.display(),
        ),
    )
    .expect("nginx.conf");
    Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting nginx (apt-get install nginx)")
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("SIG_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .clamp(1, 120);
    let duration = Duration::from_secs(secs);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());

    // One signature of a typical size (RSA 4096 release signatures are about 570 bytes);
    // its content does not matter to the servers, so no key is needed.
    let signature: Vec<u8> = (0..566u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let hex = hex::encode(Sha256::digest(b"benchmark release manifest"));
    let dir = tempfile::tempdir().expect("temp dir");
    let tree = dir.path().join("signatures");
    let file = tree.join(format!("sha256/{hex}/signature-1"));
    std::fs::create_dir_all(file.parent().expect("parent")).expect("tree");
    std::fs::write(&file, &signature).expect("signature file");
    // nginx serves the same bytes at the same URL path, from a file laid out like it.
    let path = format!("/api/upgrades_info/signatures/sha256={hex}/signature-1");
    let www = dir.path().join(format!("www{path}"));
    std::fs::create_dir_all(www.parent().expect("parent")).expect("www");
    std::fs::copy(&file, &www).expect("nginx copy");
    let expected = Arc::new(signature);
    println!(
        "signature fetch, {CONNECTIONS} connections, {secs} s per phase, {workers} server workers, {} byte body",
        expected.len()
    );

    // All three servers run for the whole benchmark; the rounds take turns loading one
    // of them while the others idle, so a burst of load from elsewhere on the machine
    // spreads over all three, and each server's median round is compared.
    let nginx_port = free_port();
    let mut nginx = start_nginx(dir.path(), nginx_port, workers);
    let mut servers: Vec<(&str, Child, String)> = Vec::new();
    let nginx_url = format!("http://127.0.0.1:{nginx_port}{path}");
    wait_until_served(&nginx_url, &expected, &mut nginx).await;
    servers.push(("nginx", nginx, nginx_url));
    for (name, binary) in [
        ("policy-engine", env!("CARGO_BIN_EXE_policy-engine")),
        ("metadata-helper", env!("CARGO_BIN_EXE_metadata-helper")),
    ] {
        let (port, status_port) = (free_port(), free_port());
        let mut command = Command::new(binary);
        command
            .args([
                "--service.address",
                "127.0.0.1",
                "--service.port",
                &port.to_string(),
            ])
            .args([
                "--status.address",
                "127.0.0.1",
                "--status.port",
                &status_port.to_string(),
            ])
            .args(["--service.path_prefix", "/api/upgrades_info"])
            .args(["--signatures.dir", tree.to_str().expect("UTF-8")])
            .args(["--signatures.graph-data", "none"]);
        if name == "policy-engine" {
            // No graph is needed to serve signatures; point the graph fetcher at a closed
            // loopback port so it never reaches anything.
            let closed = free_port();
            command.args([
                "--upstream.cincinnati.url",
                &format!("http://127.0.0.1:{closed}/graph"),
            ]);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the server binary");
        let url = format!("http://127.0.0.1:{port}{path}");
        wait_until_served(&url, &expected, &mut child).await;
        servers.push((name, child, url));
    }

    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
    for round in 1..=ROUNDS {
        for (i, (name, child, url)) in servers.iter().enumerate() {
            let phase = load(url, Arc::clone(&expected), duration).await;
            report(&format!("{name} #{round}"), &phase, &peak_rss(child.id()));
            rates[i].push(phase.rate());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let medians: Vec<f64> = rates.iter_mut().map(median).collect();
    for ((name, child, _), rate) in servers.iter().zip(&medians) {
        println!(
            "{name:<16} median {rate:>8.0} req/s, peak RSS {}",
            peak_rss(child.id())
        );
    }
    for ((name, _, _), rate) in servers.iter().zip(&medians).skip(1) {
        println!(
            "{name}: {:.2}x nginx ({rate:.0} / {:.0} req/s, medians of {ROUNDS} rounds; target >= 0.8x)",
            rate / medians[0],
            medians[0]
        );
    }
    for (_, child, _) in servers {
        stop(child);
    }
}
