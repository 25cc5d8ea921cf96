//! A loopback front for a [`TestRegistry`] that sends blobs to storage on another origin,
//! as registries with object-storage middleware do: the front passes every `GET` and
//! `HEAD` through to the registry, except blob `GET`s, which it answers with a 307 to the
//! "storage" listener. Storage serves the blob from the registry with the registry's own
//! credentials (as a presigned URL would need none) and records whether the client sent
//! an `Authorization` header to it. Both listeners are tasks on the test's runtime,
//! stopped when the [`RedirectingFront`] is dropped.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::registry::{Credentials, TestRegistry};
use crate::HarnessError;

/// The longest request head read (a scrape's requests are far smaller).
const MAX_HEAD: usize = 16 * 1024;

/// Response headers passed on from the registry.
const PASSED_HEADERS: [&str; 6] = [
    "content-type",
    "content-length",
    "docker-content-digest",
    "www-authenticate",
    "link",
    "location",
];

/// What the storage listener saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StorageLog {
    /// `METHOD path` of every request.
    pub requests: Vec<String>,
    /// `METHOD path` of the requests that carried an `Authorization` header.
    pub authorized: Vec<String>,
}

/// The front and storage listeners; see the module documentation.
#[derive(Debug)]
pub struct RedirectingFront {
    /// `127.0.0.1:PORT` of the front, the registry as the client under test sees it.
    pub front: String,
    /// `127.0.0.1:PORT` of the storage listener.
    pub storage: String,
    log: Arc<Mutex<StorageLog>>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug, Clone)]
struct Upstream {
    base: String,
    credentials: Option<Credentials>,
    http: reqwest::Client,
}

impl RedirectingFront {
    /// Starts both listeners in front of `registry` (plain http only).
    pub async fn start(registry: &TestRegistry) -> Result<Self, HarnessError> {
        let bind = |what: &'static str| async move {
            TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|source| HarnessError::Io {
                    action: what,
                    path: "127.0.0.1:0".into(),
                    source,
                })
        };
        let front = bind("binding the redirecting front").await?;
        let storage = bind("binding the storage listener").await?;
        let addr = |l: &TcpListener| l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let (front_addr, storage_addr) = (addr(&front), addr(&storage));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| HarnessError::Http {
                method: "building a client for",
                url: registry.base_url(),
                source,
            })?;
        let upstream = Upstream {
            base: registry.base_url(),
            credentials: registry.credentials().cloned(),
            http,
        };
        let log = Arc::new(Mutex::new(StorageLog::default()));
        let front_task = {
            let (upstream, storage_addr) = (upstream.clone(), storage_addr.clone());
            tokio::spawn(serve(front, move |head| {
                let (upstream, storage_addr) = (upstream.clone(), storage_addr.clone());
                async move {
                    if head.method == "GET" && head.path.contains("/blobs/") {
                        let location = format!("http://{storage_addr}{}", head.path);
                        return format!(
                            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\n\
                             Content-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .into_bytes();
                    }
                    upstream.pass(&head, head.authorization.clone()).await
                }
            }))
        };
        let storage_task = {
            let log = Arc::clone(&log);
            tokio::spawn(serve(storage, move |head| {
                let (upstream, log) = (upstream.clone(), Arc::clone(&log));
                async move {
                    {
                        let mut log = log.lock().expect("storage log");
                        let request = format!("{} {}", head.method, head.path);
                        if head.authorization.is_some() {
                            log.authorized.push(request.clone());
                        }
                        log.requests.push(request);
                    }
                    let own = upstream.credentials.as_ref().map(|c| {
                        use base64::Engine as _;
                        let raw = format!("{}:{}", c.username, c.password);
                        format!(
                            "Basic {}",
                            base64::engine::general_purpose::STANDARD.encode(raw)
                        )
                    });
                    upstream.pass(&head, own).await
                }
            }))
        };
        Ok(RedirectingFront {
            front: front_addr,
            storage: storage_addr,
            log,
            tasks: vec![front_task, storage_task],
        })
    }

    /// What the storage listener has seen so far.
    pub fn storage_log(&self) -> StorageLog {
        self.log.lock().expect("storage log").clone()
    }
}

impl Drop for RedirectingFront {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The parts of a request head that matter here.
#[derive(Debug, Clone)]
struct Head {
    method: String,
    path: String,
    accept: Option<String>,
    authorization: Option<String>,
}

impl Upstream {
    /// Sends `head` to the registry with `authorization` and renders its answer.
    async fn pass(&self, head: &Head, authorization: Option<String>) -> Vec<u8> {
        let method = reqwest::Method::from_bytes(head.method.as_bytes()).unwrap_or_default();
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base, head.path));
        if let Some(value) = &head.accept {
            request = request.header("accept", value);
        }
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(_) => return b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        };
        let status = response.status();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        for name in PASSED_HEADERS {
            for value in response.headers().get_all(name) {
                if let Ok(value) = value.to_str() {
                    out.push_str(&format!("{name}: {value}\r\n"));
                }
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        let mut out = out.into_bytes();
        if head.method != "HEAD" {
            out.extend_from_slice(&response.bytes().await.unwrap_or_default());
        }
        out
    }
}

/// Accepts connections until aborted; each gets one request and one answer.
async fn serve<F, Fut>(listener: TcpListener, answer: F)
where
    F: Fn(Head) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Vec<u8>> + Send + 'static,
{
    let answer = Arc::new(answer);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let answer = Arc::clone(&answer);
        tokio::spawn(async move {
            let mut stream = stream;
            if let Some(head) = read_head(&mut stream).await {
                let bytes = answer(head).await;
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
            }
        });
    }
}

/// Reads a request head (bodies are not expected: only GET and HEAD pass).
async fn read_head(stream: &mut TcpStream) -> Option<Head> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
        if buffer.len() > MAX_HEAD {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buffer);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let header = |name: &str| {
        text.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    Some(Head {
        method,
        path,
        accept: header("accept"),
        authorization: header("authorization"),
    })
}
