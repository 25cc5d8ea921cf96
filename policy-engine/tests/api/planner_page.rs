//! The planner page in a real headless browser (Debian's `chromium`): it loads with no
//! console message, no request of the page leaves 127.0.0.1 (the browser's only proxy
//! is a recorder in this test, and loopback bypasses it), and a deep link that fills the form
//! and submits it shows the expected path. The screenshot is kept as a test artefact at
//! `target/planner-page.png`.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use policy_engine::Cli;

use crate::harness::Pe;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A proxy that answers nothing and records the first line of every request.
struct Recorder {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_read_timeout(Some(Duration::from_secs(1))).ok();
                            let mut buf = [0u8; 512];
                            let n = stream.read(&mut buf).unwrap_or(0);
                            let text = String::from_utf8_lossy(&buf[..n]);
                            let line = text
                                .lines()
                                .next()
                                .unwrap_or("(no request line)")
                                .to_owned();
                            seen.lock().unwrap().push(line);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        };
        Self {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.seen.lock().unwrap().clone()
    }
}

/// Runs headless chromium on `url` with `extra` flags; returns (stdout, console lines).
async fn chromium(
    url: &str,
    proxy_port: u16,
    profile: &Path,
    extra: &[&str],
) -> (String, Vec<String>) {
    let mut command = tokio::process::Command::new("chromium");
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // The browser's own background traffic (updates, time, accounts), which is
            // not the page's: off, so that any request the recorder sees is a failure.
            "--disable-extensions",
            "--disable-default-apps",
            "--no-pings",
            "--disable-domain-reliability",
            "--disable-client-side-phishing-detection",
            "--disable-field-trial-config",
            "--no-service-autorun",
            "--metrics-recording-only",
            "--disable-features=OptimizationHints,Translate,MediaRouter,NetworkTimeServiceQuerying,AutofillServerCommunication,CertificateTransparencyComponentUpdater,SigninInterception,AccountConsistency",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=15000",
            "--window-size=1280,1500",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--proxy-server=http://127.0.0.1:{proxy_port}"))
        .args(extra)
        .arg(url)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .expect("chromium finished within 90 s")
        .expect("Debian's chromium is installed (hack/test.sh installs it)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        console,
    )
}

#[tokio::test]
async fn the_page_plans_a_known_path_offline_in_chromium() {
    let graph_data = repo_root().join("data/graph-data");
    let layout = repo_root().join("data/sample-releases");
    let mut settings = Cli::try_parse_from([
        "policy-engine".as_ref(),
        "--releases-oci-layout".as_ref(),
        layout.as_os_str(),
        "--graph-data".as_ref(),
        graph_data.as_os_str(),
    ])
    .unwrap()
    .settings()
    .unwrap();
    settings.workers = Some(2);
    let pe = Pe::with_settings(settings).await;
    // Wait for the first graph so the page does not race the build.
    let ready = crate::harness::get(
        &format!("{}/api/upgrades_info/v1/graph?channel=stable-4.16", pe.base),
        &[],
    )
    .await;
    assert_eq!(ready.status, 200);

    let recorder = Recorder::start();
    let profile = tempfile::tempdir().unwrap();
    let url = format!(
        "{}/api/upgrades_info/planner/?channel=stable-4.16&arch=amd64&from=4.15.0&to=4.16.4",
        pe.base
    );
    let (dom, console) = chromium(
        &url,
        recorder.port,
        &profile.path().join("a"),
        &["--dump-dom"],
    )
    .await;
    assert_eq!(console, Vec::<String>::new(), "console messages");
    assert!(
        dom.contains("<p id=\"path-summary\">4.15.0 → 4.16.4: 2 hops</p>"),
        "{dom}"
    );
    // Both hops recommended, through one 4.15 release.
    let hops = dom
        .split("<ol class=\"hops\" id=\"hops\">")
        .nth(1)
        .unwrap()
        .split("</ol>")
        .next()
        .unwrap();
    assert_eq!(hops.matches("<li>").count(), 2, "{hops}");
    assert_eq!(hops.matches("badge recommended").count(), 2, "{hops}");
    assert!(hops.starts_with("<li>4.15.0 → 4.15."), "{hops}");
    // The explain panel shows the direct edge as conditional, with its file.
    assert!(
        dom.contains("blocked-edges/4.16.4-HyperShiftNodePoolSkewBinaryDownload.yaml"),
        "{dom}"
    );
    // The graph view is drawn, with a chosen subset of the channel.
    assert!(dom.contains("id=\"graph-svg\""), "{dom}");
    assert!(dom.contains("data-graph-drawn-ms="), "{dom}");

    let shot = repo_root().join("target/planner-page.png");
    let (_, console) = chromium(
        &url,
        recorder.port,
        &profile.path().join("b"),
        &[&format!("--screenshot={}", shot.display())],
    )
    .await;
    assert_eq!(console, Vec::<String>::new(), "console messages");
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );

    // Chromium's own services (component updater, account and time checks) still call
    // home whatever the flags; they are the browser's, not the page's (the page is served
    // with `default-src 'self'`, and a blocked request would be a console error above).
    // Anything else that reached the recorder left 127.0.0.1.
    let browser_services = [
        "update.googleapis.com",
        "accounts.google.com",
        "clients2.google.com",
    ];
    let left: Vec<String> = recorder
        .finish()
        .into_iter()
        .filter(|line| {
            let target = line.split_whitespace().nth(1).unwrap_or("");
            let host = target
                .trim_start_matches("http://")
                .split(['/', ':'])
                .next()
                .unwrap_or("");
            !browser_services.contains(&host)
        })
        .collect();
    assert_eq!(left, Vec::<String>::new(), "requests that left 127.0.0.1");
    pe.stop().await;
}
