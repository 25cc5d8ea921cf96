//! The update planner's HTTP side: `{prefix}/v1/explain`, `{prefix}/v1/path`,
//! `{prefix}/v1/mirror-gaps`, `{prefix}/v1/planner/channels` and the offline page
//! `{prefix}/planner/`.
//!
//! The answers are computed by [`graph_data::planner`] from the graph being served and
//! its provenance ([`PlannerSlot`]): in one-process mode the in-process build hands the
//! provenance over; in two-process mode [`sync_provenance`] fetches it from the
//! graph-builder next to the graph (`…/graph` -> `…/provenance`), so no flag is needed.
//! Parameters are checked as the graph endpoint checks them, with the same error kinds.

mod page;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use graph_data::planner::{self, ChannelView};
use graph_data::provenance::{Provenance, MAX_JSON_BYTES};
use graph_data::Graph;
use semver::Version;
use serde::Serialize;

use crate::error::ApiError;
use crate::filter::{GraphParams, ARCH_KEY, CHANNELS_KEY};
use crate::query;
use crate::routes::ApiState;
use crate::source::GraphSource;
use graph_builder::surface::{counted, uri_path};

/// How long a planner request made before the first graph waits for it.
const FIRST_GRAPH_PATIENCE: Duration = Duration::from_secs(35);
/// Channel views kept per graph revision; enough for every public channel on five
/// architectures, and a bound against requests for made-up channels.
const MAX_VIEWS: usize = 4096;

/// The provenance of the graph being served and the channel views computed from it.
#[derive(Debug, Default)]
pub struct PlannerSlot {
    provenance: RwLock<Option<Arc<Provenance>>>,
    /// (graph revision, channel, arch) -> view, for pairs some release lists; emptied
    /// when the revision changes.
    views: Mutex<HashMap<(u64, String, String), Arc<ChannelView>>>,
}

impl PlannerSlot {
    /// Replaces the provenance (a new graph was built or fetched).
    pub fn set_provenance(&self, provenance: Provenance) {
        *self.provenance.write().expect("provenance lock") = Some(Arc::new(provenance));
    }

    /// The provenance held; empty (no reasons with files) when none was received.
    pub fn provenance(&self) -> Arc<Provenance> {
        self.provenance
            .read()
            .expect("provenance lock")
            .clone()
            .unwrap_or_default()
    }

    /// Whether a provenance was received.
    pub fn has_provenance(&self) -> bool {
        self.provenance.read().expect("provenance lock").is_some()
    }

    /// The view of (channel, arch) of graph `revision`, computed once.
    pub fn view(
        &self,
        revision: u64,
        graph: &Graph,
        channel: &str,
        arch: &str,
    ) -> Arc<ChannelView> {
        let key = (revision, channel.to_owned(), arch.to_owned());
        if let Some(v) = self.views.lock().expect("views lock").get(&key) {
            return Arc::clone(v);
        }
        let view = Arc::new(ChannelView::new(graph, channel, arch));
        // Only views with releases are kept: a client can name endless channels that
        // select nothing, and those must neither grow the map nor crowd out real ones.
        if view.versions().is_empty() {
            return view;
        }
        let mut views = self.views.lock().expect("views lock");
        views.retain(|(r, _, _), _| *r == revision);
        if views.len() < MAX_VIEWS {
            views.insert(key, Arc::clone(&view));
        }
        view
    }
}

/// Fetches the provenance that goes with the upstream graph at `graph_url`, when the
/// graph changed (or none is held). A failure is logged and the planner answers
/// without files until the next success; it never touches the graph being served.
pub async fn sync_provenance(
    client: &reqwest::Client,
    graph_url: &str,
    source: &GraphSource,
    changed: bool,
) {
    if !changed && source.planner().has_provenance() {
        return;
    }
    let Some(url) = provenance_url(graph_url) else {
        tracing::warn!(
            graph_url,
            "no provenance URL can be derived from the upstream graph URL"
        );
        return;
    };
    match fetch_provenance(client, &url).await {
        Ok(p) => {
            tracing::info!(%url, removed = p.removed.len(), missing = p.missing.len(), "provenance received");
            source.planner().set_provenance(p);
        }
        Err(error) => {
            tracing::warn!(%url, "cannot fetch the provenance, the planner answers without it: {error}")
        }
    }
}

/// Takes the provenance of an in-process build; a document that does not read back is
/// logged and the previous one stays.
pub fn accept_provenance(source: &GraphSource, json: &[u8]) {
    match Provenance::from_json(json) {
        Ok(p) => source.planner().set_provenance(p),
        Err(error) => tracing::warn!("the in-process provenance does not read back: {error}"),
    }
}

/// `…/graph` (or `…/v1/graph`) -> `…/provenance`, query dropped.
pub fn provenance_url(graph_url: &str) -> Option<String> {
    let mut url = url::Url::parse(graph_url).ok()?;
    url.set_query(None);
    let path = url.path().trim_end_matches('/').to_owned();
    let base = path.strip_suffix("/graph")?;
    url.set_path(&format!("{base}/provenance"));
    Some(url.into())
}

async fn fetch_provenance(client: &reqwest::Client, url: &str) -> Result<Provenance, String> {
    let mut response = client.get(url).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("{url}: {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_JSON_BYTES {
            return Err(format!("{url}: the body exceeds {MAX_JSON_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Provenance::from_json(&body).map_err(|e| format!("{url}: {e}"))
}

/// Registers the planner routes under `prefix`.
pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str) {
    cfg.service(counted(format!("{prefix}/v1/explain")).route(web::get().to(explain)));
    cfg.service(counted(format!("{prefix}/v1/path")).route(web::get().to(path)));
    cfg.service(counted(format!("{prefix}/v1/mirror-gaps")).route(web::get().to(mirror_gaps)));
    cfg.service(counted(format!("{prefix}/v1/planner/channels")).route(web::get().to(channels)));
    page::configure(cfg, prefix);
}

/// Validated planner parameters.
struct Params {
    graph: GraphParams,
    query: HashMap<String, String>,
}

fn params(req: &HttpRequest, state: &ApiState) -> Result<Params, ApiError> {
    query::ensure_present(&state.mandatory, req.query_string())?;
    let query = query::decode(req.query_string())?;
    let graph = GraphParams::from_query(&query)?;
    Ok(Params { graph, query })
}

/// A version parameter: absent is `missing_params`, not SemVer is `invalid_params`.
fn version(
    query: &HashMap<String, String>,
    name: &str,
    required: bool,
) -> Result<Option<Version>, ApiError> {
    let raw = query.get(name).filter(|v| required || !v.is_empty());
    match raw {
        None if required => Err(ApiError::MissingParams(vec![name.to_owned()])),
        None => Ok(None),
        Some(raw) => Version::parse(raw.trim()).map(Some).map_err(|e| {
            ApiError::InvalidParams(format!("{name} '{raw}' is not a SemVer version: {e}"))
        }),
    }
}

struct Context {
    snapshot: Arc<crate::cache::Snapshot>,
    provenance: Arc<Provenance>,
    view: Arc<ChannelView>,
}

async fn context(state: &ApiState, p: &GraphParams) -> Result<Context, ApiError> {
    let snapshot = state.source.snapshot(FIRST_GRAPH_PATIENCE).await?;
    let slot = state.source.planner();
    let view = slot.view(snapshot.revision(), snapshot.graph(), &p.channel, &p.arch);
    Ok(Context {
        provenance: slot.provenance(),
        snapshot,
        view,
    })
}

fn json<T: Serialize>(value: &T) -> Result<HttpResponse, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::JsonOut(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

fn count(state: &ApiState, req: &HttpRequest, result: &Result<HttpResponse, ApiError>) {
    state
        .metrics
        .incoming_requests
        .with_label_values(&[uri_path(req)])
        .inc();
    if let Err(error) = result {
        state.metrics.count_error(error);
        tracing::debug!(path = uri_path(req), kind = error.kind(), "{error}");
    }
}

async fn explain(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let result = async {
        let p = params(&req, &state)?;
        let from = version(&p.query, "from", true)?.expect("required");
        let to = version(&p.query, "to", true)?.expect("required");
        let c = context(&state, &p.graph).await?;
        json(&planner::explain(
            c.snapshot.graph(),
            &c.provenance,
            &c.view,
            &from,
            &to,
        ))
    }
    .await;
    count(&state, &req, &result);
    result
}

async fn path(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let result = async {
        let p = params(&req, &state)?;
        let from = version(&p.query, "from", true)?.expect("required");
        let to = version(&p.query, "to", false)?;
        let c = context(&state, &p.graph).await?;
        json(&planner::path(
            c.snapshot.graph(),
            &c.provenance,
            &c.view,
            &from,
            to.as_ref(),
        ))
    }
    .await;
    count(&state, &req, &result);
    result
}

async fn mirror_gaps(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let result = async {
        let p = params(&req, &state)?;
        let format = p.query.get("format").map_or("json", String::as_str);
        if !matches!(format, "json" | "imageset") {
            return Err(ApiError::InvalidParams(format!(
                "format '{format}' is not one of json, imageset"
            )));
        }
        let c = context(&state, &p.graph).await?;
        let gaps = planner::mirror_gaps(c.snapshot.graph(), &c.provenance, &c.view);
        if format == "imageset" {
            return Ok(HttpResponse::Ok()
                .content_type("application/yaml")
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(planner::imageset(&gaps, false)));
        }
        json(&gaps)
    }
    .await;
    count(&state, &req, &result);
    result
}

/// The channels and architectures of the graph being served, for the page's pickers.
#[derive(Serialize)]
struct Channels {
    channels: BTreeSet<String>,
    arches: BTreeSet<String>,
}

async fn channels(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let result = async {
        let snapshot = state.source.snapshot(FIRST_GRAPH_PATIENCE).await?;
        let mut out = Channels {
            channels: BTreeSet::new(),
            arches: BTreeSet::new(),
        };
        for (_, r) in snapshot
            .graph()
            .releases()
            .filter(|(_, r)| !r.is_abstract())
        {
            let csv = |key: &str| -> Vec<String> {
                r.metadata
                    .get(key)
                    .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
                    .unwrap_or_default()
            };
            out.channels.extend(csv(CHANNELS_KEY));
            out.arches.extend(csv(ARCH_KEY));
        }
        json(&out)
    }
    .await;
    count(&state, &req, &result);
    result
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_of_channels_that_select_nothing_are_not_kept() {
        use graph_data::{Metadata, Release};
        let mut graph = Graph::new();
        let mut m = Metadata::new();
        m.insert(crate::filter::CHANNELS_KEY.into(), "a".into());
        m.insert(crate::filter::ARCH_KEY.into(), "amd64".into());
        let version = semver::Version::parse("4.1.0+amd64").unwrap();
        graph
            .add_release(Release::concrete(version, "p", m))
            .unwrap();
        let slot = PlannerSlot::default();
        for i in 0..100 {
            let view = slot.view(1, &graph, &format!("made-up-{i}"), "amd64");
            assert!(view.versions().is_empty());
            slot.view(1, &graph, "a", &format!("arch-{i}"));
        }
        assert_eq!(slot.views.lock().unwrap().len(), 0);
        assert_eq!(slot.view(1, &graph, "a", "amd64").versions().len(), 1);
        assert_eq!(slot.views.lock().unwrap().len(), 1);
    }

    #[test]
    fn the_provenance_sits_next_to_the_graph() {
        assert_eq!(
            provenance_url("http://localhost:8080/v1/graph").as_deref(),
            Some("http://localhost:8080/v1/provenance")
        );
        assert_eq!(
            provenance_url("http://127.0.0.1:8080/api/upgrades_info/graph?x=1").as_deref(),
            Some("http://127.0.0.1:8080/api/upgrades_info/provenance")
        );
        assert_eq!(provenance_url("http://localhost:8080/other"), None);
    }

    #[test]
    fn version_parameters_use_the_graph_error_kinds() {
        let q: HashMap<String, String> = [("from".to_owned(), "4.x".to_owned())].into();
        assert_eq!(
            version(&q, "from", true).unwrap_err().kind(),
            "invalid_params"
        );
        assert_eq!(
            version(&q, "to", true).unwrap_err(),
            ApiError::MissingParams(vec!["to".into()])
        );
        assert_eq!(version(&q, "to", false).unwrap(), None);
        let q: HashMap<String, String> = [("to".to_owned(), "4.16.3".to_owned())].into();
        assert_eq!(
            version(&q, "to", false).unwrap(),
            Some(Version::new(4, 16, 3))
        );
    }
}
