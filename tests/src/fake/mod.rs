//! An in-process fake registry (actix-web on 127.0.0.1:0) for behaviour a real registry will
//! not produce on demand: token challenges, tiny pages, 503 bursts, lying digests, broken
//! layers and huge generated layers, and the scripted faults of [`script`] (slow drips,
//! endless bodies and pages, huge headers, cut or wrong bodies). Images are built in code.

mod blobs;
pub mod images;
pub mod script;
mod tags;
mod uploads;

pub use blobs::generated_descriptor;
pub use images::*;
pub use script::Fault;

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest as _, Sha256};

/// Docker schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A blob: stored bytes, or `size` pseudo-random bytes in one tar entry, gzipped (stored
/// blocks) and generated while being sent.
#[derive(Debug, Clone)]
pub enum Blob {
    /// These bytes.
    Stored(Bytes),
    /// A generated layer.
    Generated {
        /// Bytes in its one big entry.
        size: u64,
        /// Release-metadata placed before the big entry.
        metadata_first: Option<Bytes>,
    },
}

/// Switches for misbehaviour.
#[derive(Debug, Default)]
pub struct Behaviour {
    /// Tags per page; `None` = one page.
    pub page_size: Option<usize>,
    /// Absolute `Link` URLs instead of relative ones.
    pub absolute_links: bool,
    /// Bearer auth: (user, password).
    pub bearer: Option<(String, String)>,
    /// Basic auth: (user, password).
    pub basic: Option<(String, String)>,
    /// The token the token endpoint hands out (and the only one accepted).
    pub token: String,
    /// Answer 503 (429 with `retry_after`) this many times to requests whose path contains
    /// the key.
    pub fail_times: HashMap<String, usize>,
    /// `Retry-After` seconds, sent with a 429.
    pub retry_after: Option<u64>,
    /// Answer this status (with an error body) to every request whose path contains the key.
    pub fail_always: Option<(String, u16)>,
    /// Send a wrong `Docker-Content-Digest` on manifests.
    pub lie_about_digest: bool,
    /// Send no `Docker-Content-Digest` at all.
    pub omit_digest: bool,
    /// Answer HEAD on manifests with 405.
    pub refuse_head: bool,
    /// Break downloads of this blob (`*`: any blob) half-way, this many times.
    pub break_blobs: HashMap<String, usize>,
    /// Upload `Location`s are absolute URLs instead of paths.
    pub absolute_upload_location: bool,
    /// Cross-repository mounts succeed (otherwise an upload is opened instead).
    pub allow_mount: bool,
    /// Answer blob GETs with a 307 to this base URL plus the same path (storage elsewhere).
    pub blob_redirect: Option<String>,
    /// `host:port` named in absolute `Link`s, absolute upload `Location`s and the token
    /// realm instead of this registry's own.
    pub other_origin: Option<String>,
    /// Scripted faults: the first whose needle the request path contains applies.
    pub faults: Vec<(String, Fault)>,
    /// Tag pages without end, this many fresh tags each, every one linking to the next.
    pub endless_pages: Option<usize>,
}

/// One repository's content.
#[derive(Debug, Default)]
pub struct Repo {
    /// Tags in listing order.
    pub tags: Vec<(String, String)>,
    /// Digest to (media type, bytes).
    pub manifests: HashMap<String, (String, Bytes)>,
    /// Digest to content.
    pub blobs: HashMap<String, Blob>,
}

/// Everything the fake serves and saw.
#[derive(Debug, Default)]
pub struct State {
    /// Repositories by name.
    pub repos: HashMap<String, Repo>,
    /// Misbehaviour switches.
    pub behaviour: Behaviour,
    /// `METHOD path?query` of every request, in order.
    pub log: Vec<String>,
    /// Scopes asked of the token endpoint.
    pub token_scopes: Vec<String>,
    /// Uploads opened so far.
    pub uploads: usize,
    /// `METHOD path` of every request that carried an `Authorization` header.
    pub authorized: Vec<String>,
    /// Scripted bodies being sent right now (see [`script`]).
    pub open_bodies: Arc<AtomicUsize>,
}

/// The state, shared with the server thread.
pub type Shared = Arc<Mutex<State>>;

/// The running fake.
pub struct FakeRegistry {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// What it serves.
    pub state: Shared,
    handle: actix_web::dev::ServerHandle,
}

impl std::fmt::Debug for FakeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRegistry")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeRegistry {
    /// Starts it on 127.0.0.1, on a port of the kernel's choice.
    pub fn start() -> FakeRegistry {
        let state: Shared = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let app_state = state.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(app_state.clone()))
                        .default_service(web::to(handle))
                })
                .workers(2)
                .listen(listener)
                .unwrap()
                .run();
                tx.send(server.handle()).unwrap();
                server.await
            })
        });
        let handle = rx.recv().unwrap();
        FakeRegistry {
            addr,
            state,
            handle,
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:port`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Runs `f` on the state, locked.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// `METHOD path?query` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.log.clone())
    }

    /// Forgets the requests so far.
    pub fn clear_log(&self) {
        self.with(|s| s.log.clear())
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

fn registry_error(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .content_type("application/json")
        .body(format!(
            r#"{{"errors":[{{"code":"{code}","message":"{message}","detail":null}}]}}"#
        ))
}

async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let path = req.path().to_string();
    let query = req.query_string().to_string();
    let host = req.connection_info().host().to_string();
    let mut s = state.lock().unwrap();
    s.log.push(format!("{} {path}?{query}", req.method()));
    if req.headers().contains_key("authorization") {
        s.authorized.push(format!("{} {path}", req.method()));
    }
    // Links, upload locations and the token realm name this host.
    let host = s.behaviour.other_origin.clone().unwrap_or(host);

    if path == "/token" {
        let expected = s.behaviour.bearer.clone().map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        let given = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if expected.as_deref() != given {
            return registry_error(401, "UNAUTHORIZED", "bad credentials");
        }
        let scope = web::Query::<HashMap<String, String>>::from_query(&query)
            .ok()
            .and_then(|q| q.get("scope").cloned())
            .unwrap_or_default();
        s.token_scopes.push(scope);
        return HttpResponse::Ok().json(serde_json::json!({ "access_token": s.behaviour.token }));
    }
    if s.behaviour.bearer.is_some() {
        let authorized = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(&format!("Bearer {}", s.behaviour.token));
        if !authorized {
            let mut response = registry_error(401, "UNAUTHORIZED", "authentication required");
            let challenge =
                format!(r#"Bearer realm="http://{host}/token",service="fake-registry""#);
            response.headers_mut().insert(
                actix_web::http::header::WWW_AUTHENTICATE,
                challenge.parse().unwrap(),
            );
            return response;
        }
    }
    if let Some((user, password)) = &s.behaviour.basic {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let given = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            let mut response = registry_error(401, "UNAUTHORIZED", "authentication required");
            response.headers_mut().insert(
                actix_web::http::header::WWW_AUTHENTICATE,
                r#"Basic realm="fake-registry""#.parse().unwrap(),
            );
            return response;
        }
    }
    if let Some((needle, status)) = s.behaviour.fail_always.clone() {
        if path.contains(&needle) {
            return registry_error(status, "DENIED", "the fake says no");
        }
    }
    let burst = s
        .behaviour
        .fail_times
        .iter_mut()
        .find(|(needle, left)| path.contains(needle.as_str()) && **left > 0);
    if let Some((_, left)) = burst {
        *left -= 1;
        let mut response = registry_error(503, "UNAVAILABLE", "try again");
        if let Some(seconds) = s.behaviour.retry_after {
            response = registry_error(429, "TOOMANYREQUESTS", "slow down");
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                seconds.to_string().parse().unwrap(),
            );
        }
        return response;
    }
    if path == "/v2/" {
        return HttpResponse::Ok().json(serde_json::json!({}));
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return HttpResponse::NotFound().finish();
    };
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    let method = req.method().as_str();
    if let Some(response) =
        uploads::handle(&mut s, method, rest, &query, &host, &body, content_type)
    {
        return response;
    }
    for kind in ["/tags/list", "/manifests/", "/blobs/"] {
        let Some((name, reference)) = rest.rsplit_once(kind) else {
            continue;
        };
        let mut breaking = false;
        if let Some(base) = s
            .behaviour
            .blob_redirect
            .as_ref()
            .filter(|_| kind == "/blobs/")
        {
            return HttpResponse::TemporaryRedirect()
                .insert_header(("Location", format!("{base}{path}")))
                .finish();
        }
        if kind == "/blobs/" {
            for key in [reference, "*"] {
                if let Some(left) = s.behaviour.break_blobs.get_mut(key).filter(|l| **l > 0) {
                    *left -= 1;
                    breaking = true;
                    break;
                }
            }
        }
        let fault = s
            .behaviour
            .faults
            .iter()
            .find(|(needle, _)| path.contains(needle.as_str()))
            .map(|(_, fault)| fault.clone());
        let blob = (kind == "/blobs/").then_some(reference);
        if let Some(fault) = &fault {
            let scripted = script::respond(
                fault,
                s.repos.get(name),
                blob,
                req.method() == actix_web::http::Method::HEAD,
                &s.open_bodies,
            );
            if let Some(response) = scripted {
                return response;
            }
        }
        let Some(repo) = s.repos.get(name) else {
            return registry_error(404, "NAME_UNKNOWN", "no such repository");
        };
        let response = match kind {
            "/tags/list" => match s.behaviour.endless_pages {
                Some(per_page) => tags::endless_page(name, &query, per_page),
                None => tags::tags_page(&s.behaviour, repo, name, &query, &host),
            },
            "/manifests/" => manifest(&s.behaviour, repo, reference, req.method().as_str()),
            _ if breaking => blobs::broken_blob(repo, reference),
            _ => blobs::blob(repo, reference),
        };
        return match &fault {
            Some(fault) => script::decorate(fault, response),
            None => response,
        };
    }
    HttpResponse::NotFound().finish()
}

fn manifest(b: &Behaviour, repo: &Repo, reference: &str, method: &str) -> HttpResponse {
    if method == "HEAD" && b.refuse_head {
        return HttpResponse::MethodNotAllowed().finish();
    }
    let digest = if reference.starts_with("sha256:") {
        reference.to_string()
    } else {
        match repo.tags.iter().find(|(t, _)| t == reference) {
            Some((_, d)) => d.clone(),
            None => return registry_error(404, "MANIFEST_UNKNOWN", "unknown tag"),
        }
    };
    let Some((media_type, body)) = repo.manifests.get(&digest) else {
        return registry_error(404, "MANIFEST_UNKNOWN", "unknown manifest");
    };
    let mut response = HttpResponse::Ok();
    response.content_type(media_type.as_str());
    if b.lie_about_digest {
        response.insert_header(("Docker-Content-Digest", digest_of(b"a lie")));
    } else if !b.omit_digest {
        response.insert_header(("Docker-Content-Digest", digest.clone()));
    }
    if method == "HEAD" {
        return response
            .insert_header(("Content-Length", body.len().to_string()))
            .finish();
    }
    response.body(body.clone())
}

impl FakeRegistry {
    /// The layer digests of the image manifest `digest`, bottom first.
    pub fn layers_of(&self, repo: &str, digest: &str) -> Vec<String> {
        self.with(|s| {
            let body = &s.repos[repo].manifests[digest].1;
            let json: serde_json::Value = serde_json::from_slice(body).unwrap();
            json["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["digest"].as_str().unwrap().to_string())
                .collect()
        })
    }

    /// Runs `f` with an image builder on `repo` (created if needed).
    pub fn build<R>(&self, repo: &str, f: impl FnOnce(&mut ImageBuilder<'_>) -> R) -> R {
        self.with(|s| {
            let repo = s.repos.entry(repo.to_string()).or_default();
            f(&mut ImageBuilder { repo })
        })
    }
}
