//! Starting a policy-engine on loopback listeners, and small request helpers.

use std::sync::Arc;
use std::time::Duration;

use graph_data::Graph;
use policy_engine::config::{parse_params, Settings};
use policy_engine::metrics::Metrics;
use policy_engine::server::RunError;
use policy_engine::{GraphSource, Listeners};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The small raw graph of `tests/fixtures/graph.json`, as a graph-builder serves it.
pub const FIXTURE: &[u8] = include_bytes!("../fixtures/graph.json");

/// The reference's conformance graph (1085 releases, 19478 edges).
pub const CONFORMANCE: &[u8] = include_bytes!(
    "../../../graph-data/tests/conformance/graph-data-apply/20211124.083150/graph-gb-with-quay-metadata.json"
);

pub fn fixture() -> Graph {
    graph_data::wire::from_json(FIXTURE).expect("the fixture is a valid graph")
}

/// The shutdown future handed to the server.
type Stop = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A running policy-engine; stopped by [`Pe::stop`].
pub struct Pe {
    /// `http://127.0.0.1:PORT` of the public API.
    pub base: String,
    /// `http://127.0.0.1:PORT` of the status server.
    pub status: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), RunError>>,
}

/// Settings for a test server: one worker, the given prefix and mandatory parameters.
pub fn settings(prefix: &str, mandatory: &str) -> Settings {
    let mut settings = Settings::defaults();
    settings.path_prefix = policy_engine::config::normalize_prefix(prefix);
    settings.mandatory_client_parameters = parse_params(mandatory);
    settings.workers = Some(1);
    settings
}

impl Pe {
    /// Serves `graph` (published before the first request).
    pub async fn with_graph(graph: Graph, prefix: &str, mandatory: &str) -> Self {
        let source = GraphSource::new();
        source.publish(graph).unwrap();
        let settings = settings(prefix, mandatory);
        Self::start(move |listeners, stop| async move {
            let metrics = Arc::new(Metrics::new().unwrap());
            policy_engine::serve(&settings, source, metrics, listeners, stop).await
        })
    }

    /// Runs the full service against an upstream graph URL, refreshing every second.
    pub async fn with_upstream(url: &str) -> Self {
        let mut settings = settings("", "channel");
        settings.upstream.url = url.to_owned();
        settings.upstream.refresh = Duration::from_secs(1);
        settings.upstream.timeout = Duration::from_secs(5);
        Self::start(move |listeners, stop| policy_engine::run(settings, listeners, stop))
    }

    /// Runs the full service on `settings` (one-process mode when they say so).
    pub async fn with_settings(settings: Settings) -> Self {
        Self::start(move |listeners, stop| policy_engine::run(settings, listeners, stop))
    }

    fn start<F, Fut>(serve: F) -> Self
    where
        F: FnOnce(Listeners, Stop) -> Fut,
        Fut: std::future::Future<Output = Result<(), RunError>> + Send + 'static,
    {
        let listeners = Listeners::loopback().unwrap();
        let (service, status) = listeners.addresses().unwrap();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(
            listeners,
            Box::pin(async move {
                let _ = stopped.await;
            }),
        ));
        Self {
            base: format!("http://{service}"),
            status: format!("http://{status}"),
            stop,
            task,
        }
    }

    /// Stops the servers and checks they ended cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the servers stop within 30 s")
            .unwrap()
            .unwrap();
    }
}

/// A client that leaves `Content-Encoding` to the test.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// The answer to a GET with the given headers.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// `STATUS content-type\nBODY`, the shape of the snapshots.
    pub fn summary(&self) -> String {
        format!(
            "{} {}\n{}",
            self.status.as_u16(),
            self.header("content-type").unwrap_or("-"),
            self.text()
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A GET without any `Accept` header (reqwest always adds `Accept: */*`), over a
/// plain HTTP/1.1 connection.
pub async fn get_without_accept(base: &str, path: &str) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            value.trim().parse().unwrap(),
        );
    }
    Answer {
        status: StatusCode::from_u16(status).unwrap(),
        headers,
        body: bytes::Bytes::copy_from_slice(&raw[split + 4..]),
    }
}

/// [`get`] for a server that may not listen yet: `None` while it refuses connections.
pub async fn try_get(url: &str) -> Option<Answer> {
    let response = client().get(url).send().await.ok()?;
    Some(Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.bytes().await.ok()?,
    })
}

/// A GET with reqwest, which sends `Accept: */*` unless `headers` names another.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = client().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.bytes().await.unwrap(),
    }
}
