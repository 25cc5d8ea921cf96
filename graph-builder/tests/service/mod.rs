//! The service harness: starts [`graph_builder::run`] on listeners bound to 127.0.0.1:0,
//! talks to it over HTTP, waits with bounds, and stops it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use graph_builder::config::{Args, Settings};
use graph_builder::Listeners;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any wait in these tests may take before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// Set while refreshes fail, 0 once one succeeds.
pub const FAILING_SINCE: &str = "cincinnati_gb_graph_refresh_failing_since_timestamp";

pub struct Service {
    pub main: String,
    pub public: String,
    pub status: String,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), graph_builder::RunError>>>,
}

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

impl Service {
    /// Starts the service with these flags (a one-second pause unless given).
    pub fn start(flags: &[&str]) -> Service {
        let mut argv = vec!["graph-builder", "--service.pause_secs", "1"];
        argv.extend_from_slice(flags);
        let args = Args::try_parse_from(argv).unwrap();
        let settings = Settings::load(&args).unwrap();
        let listeners = Listeners {
            main: listener(),
            public: listener(),
            status: listener(),
        };
        let url = |l: &TcpListener| format!("http://{}", l.local_addr().unwrap());
        let (main, public, status) = (
            url(&listeners.main),
            url(&listeners.public),
            url(&listeners.status),
        );
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(graph_builder::run(settings, listeners, async move {
            let _ = rx.await;
        }));
        Service {
            main,
            public,
            status,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    pub async fn get_accept(&self, url: &str, accept: &str) -> reqwest::Response {
        self.http
            .get(url)
            .header("accept", accept)
            .send()
            .await
            .unwrap()
    }

    /// The served graph body (empty before the first good graph).
    pub async fn graph_body(&self) -> Vec<u8> {
        let r = self.get(&format!("{}/graph", self.main)).await;
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap().to_vec()
    }

    pub async fn graph(&self) -> serde_json::Value {
        serde_json::from_slice(&self.graph_body().await).unwrap()
    }

    pub async fn ready(&self) -> bool {
        self.get(&format!("{}/readiness", self.status))
            .await
            .status()
            == 200
    }

    pub async fn metrics(&self) -> String {
        self.get(&format!("{}/metrics", self.status))
            .await
            .text()
            .await
            .unwrap()
    }

    /// The value of the sample `series` (name with labels, as exposed), 0 if absent.
    pub async fn metric(&self, series: &str) -> f64 {
        metric(&self.metrics().await, series)
    }

    /// Waits until `series` exceeds `value`.
    pub async fn metric_above(&self, series: &str, value: f64) -> f64 {
        wait_for(&format!("{series} > {value}"), || async {
            let v = self.metric(series).await;
            (v > value).then_some(v)
        })
        .await
    }

    /// Asserts that a failure run is on and that refreshes failed at `stage`.
    pub async fn assert_failing(&self, stage: &str) {
        let metrics = self.metrics().await;
        let errors = format!("cincinnati_gb_graph_refresh_errors_total{{stage=\"{stage}\"}}");
        assert!(metric(&metrics, &errors) > 0.0, "{metrics}");
        assert!(metric(&metrics, FAILING_SINCE) > 0.0, "{metrics}");
    }

    /// Waits until a refresh succeeds again and the failure run ends.
    pub async fn recovered(&self) {
        wait_for("recovery", || async {
            (self.metric(FAILING_SINCE).await == 0.0).then_some(())
        })
        .await;
    }

    /// Waits for readiness, then returns the graph.
    pub async fn first_graph(&self) -> serde_json::Value {
        wait_for("readiness", || async { self.ready().await.then_some(()) }).await;
        self.graph().await
    }

    /// Stops the service and checks that `run` returns cleanly, in bounded time.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        tokio::time::timeout(WAIT, task)
            .await
            .expect("run returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Polls `check` every 100 ms until it yields a value, failing after [`WAIT`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes a file, creating its directory.
pub fn write(root: &Path, name: &str, content: &str) {
    let path = root.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A minimal valid graph-data tree with one channel.
pub fn graph_data(root: &Path, channel: &str, versions: &[&str]) {
    write(root, "version", "1.1.0\n");
    write(root, "raw/metadata.json", "{}");
    std::fs::create_dir_all(root.join("blocked-edges")).unwrap();
    write(
        root,
        &format!("channels/{channel}.yaml"),
        &format!(
            "name: {channel}\nversions:\n{}",
            versions
                .iter()
                .map(|v| format!("- {v}\n"))
                .collect::<String>()
        ),
    );
}

/// `(version, channels)` of every concrete node, and edges as version pairs, sorted.
/// Sorted `(a, b)` string pairs.
pub type Pairs = Vec<(String, String)>;

pub fn summary(graph: &serde_json::Value) -> (Pairs, Pairs) {
    let nodes = graph["nodes"].as_array().unwrap();
    let version = |i: &serde_json::Value| {
        nodes[i.as_u64().unwrap() as usize]["version"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mut n: Vec<_> = nodes
        .iter()
        .map(|node| {
            let channels = node["metadata"]["io.openshift.upgrades.graph.release.channels"]
                .as_str()
                .unwrap_or_default();
            (
                node["version"].as_str().unwrap().to_owned(),
                channels.to_owned(),
            )
        })
        .collect();
    n.sort();
    let mut e: Vec<_> = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| (version(&pair[0]), version(&pair[1])))
        .collect();
    e.sort();
    (n, e)
}
pub mod binary;
pub mod layout;
