//! What the service knows about itself, shared by the refresh loop and the listeners:
//! the last good graph (swapped atomically through a `watch` channel), liveness, the
//! current run of failed refreshes; and the status listener's routes.
//!
//! Readiness follows the reference: false until the first good graph, then true for
//! good, because a stale graph is still worth serving. Staleness and the failure are
//! visible in `/status`, `/metrics` and the logs instead; a 503 says what is missing, and
//! a 200 says what is wrong (probes read only the status code): refreshes failing and
//! since when, or `degraded: …` when the graph served keeps releases of unreadable tags
//! or holds back a shrunken tag list.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use actix_web::{web, HttpResponse};
use bytes::Bytes;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::report::{BuildReport, StatusBoard};

/// A successfully built graph, as served.
#[derive(Debug)]
pub struct Published {
    /// The raw graph JSON.
    pub graph_json: crate::graph_json::GraphJson,
    /// The provenance of that graph (JSON), served on the public port.
    pub provenance: Bytes,
    /// The graph-data tarball the graph was built with, if graph-data is configured.
    pub graph_data: Option<Bytes>,
    /// When the refresh that built it finished.
    pub at: SystemTime,
}

/// The current run of failed refreshes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The stage that failed last (`scrape`, `graph_data`, …).
    pub stage: &'static str,
    /// The last error, with its causes.
    pub message: String,
    /// When the first failure of the run happened.
    pub since: SystemTime,
    /// How many refreshes failed in a row.
    pub count: u64,
}

/// State shared by the refresh loop and every listener.
#[derive(Debug)]
pub struct AppState {
    /// The metrics registry and its metrics.
    pub metrics: Metrics,
    /// What `/status` shows about building the graph.
    pub board: StatusBoard,
    published: watch::Sender<Option<Arc<Published>>>,
    live: AtomicBool,
    failure: Mutex<Option<Failure>>,
}

impl AppState {
    /// Fresh state: not live, no graph, no failure.
    pub fn new(metrics: Metrics) -> AppState {
        AppState {
            metrics,
            board: StatusBoard::default(),
            published: watch::Sender::new(None),
            live: AtomicBool::new(false),
            failure: Mutex::new(None),
        }
    }

    /// The graph being served, if one was built yet.
    pub fn current(&self) -> Option<Arc<Published>> {
        self.published.borrow().clone()
    }

    /// Swaps in a new graph and ends the current run of failures.
    pub fn publish(&self, published: Published) {
        self.published.send_replace(Some(Arc::new(published)));
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Records a failed refresh; returns the run of failures it belongs to.
    pub fn record_failure(&self, stage: &'static str, message: String) -> Failure {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        let next = match failure.take() {
            Some(previous) => Failure {
                stage,
                message,
                since: previous.since,
                count: previous.count + 1,
            },
            None => Failure {
                stage,
                message,
                since: SystemTime::now(),
                count: 1,
            },
        };
        *failure = Some(next.clone());
        next
    }

    /// The current run of failures, if the last refresh failed.
    pub fn failure(&self) -> Option<Failure> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Marks the refresh loop as running (or dead).
    pub fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::SeqCst);
    }

    /// Whether the refresh loop runs.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }
}

/// Registers `/liveness`, `/readiness`, `/metrics` and `/status`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/liveness", web::get().to(liveness))
        .route("/readiness", web::get().to(readiness))
        .route("/metrics", web::get().to(metrics))
        .route("/status", web::get().to(status));
}

/// The `/status` document of the graph-builder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusDocument {
    /// `graph-builder`.
    pub service: &'static str,
    /// The version built.
    pub version: &'static str,
    /// The git commit built from.
    pub git_commit: &'static str,
    /// Whether a graph is served (readiness).
    pub ready: bool,
    /// Why not, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_ready: Option<String>,
    /// Why the graph served is degraded (unreadable tags, a held-back tag list shrink).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
    /// The refresh, releases, graph-data and graph.
    #[serde(flatten)]
    pub build: BuildReport,
}

impl StatusDocument {
    /// The document as of now.
    pub fn of(state: &AppState) -> StatusDocument {
        let ready = state.current().is_some();
        let build = state.board.report();
        StatusDocument {
            service: "graph-builder",
            version: crate::VERSION,
            git_commit: crate::GIT_COMMIT,
            ready,
            not_ready: (!ready).then(|| state.board.not_ready_reason()),
            degraded: degraded_reason(&build),
            build,
        }
    }
}

async fn status(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(StatusDocument::of(&state))
}

async fn liveness(state: web::Data<AppState>) -> HttpResponse {
    if state.is_live() {
        HttpResponse::Ok().finish()
    } else {
        HttpResponse::ServiceUnavailable().finish()
    }
}

async fn readiness(state: web::Data<AppState>) -> HttpResponse {
    if let Some(published) = state.current() {
        // Still ready (the last good graph is served, and readiness never reverts), but
        // the body says what is wrong: refreshes failing since when, else a graph that
        // keeps releases of unreadable tags or holds back a shrunken tag list.
        let report = state.board.report();
        let reason =
            refresh_failing_reason(&report, published.at).or_else(|| degraded_reason(&report));
        match reason {
            Some(reason) => HttpResponse::Ok()
                .content_type("text/plain; charset=utf-8")
                .body(reason),
            None => HttpResponse::Ok().finish(),
        }
    } else {
        // Say what is missing: the first refresh's progress, or why it failed.
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body(state.board.not_ready_reason())
    }
}

/// The `degraded: …` reason of a report whose graph keeps releases of unreadable tags or
/// holds back a shrunken tag list.
fn degraded_reason(report: &BuildReport) -> Option<String> {
    crate::scrape_report::degraded_reason(report.releases.as_ref()?)
}

/// What a ready service that failed its last refresh says in its readiness body: the
/// graph it still serves, how many refreshes failed since when, and the last error (for
/// graph-data, its file and field). `None` when the last refresh succeeded.
fn refresh_failing_reason(report: &BuildReport, serving_since: SystemTime) -> Option<String> {
    let refresh = report.last_refresh.as_ref()?;
    let error = refresh.error.as_ref()?;
    Some(format!(
        "serving the last good graph, built at {}; {} refresh(es) failed since {}, the last at stage {}: {}",
        crate::report::rfc3339(serving_since),
        refresh.consecutive_failures,
        refresh.failing_since.as_deref().unwrap_or(&refresh.started),
        error.stage,
        error.message
    ))
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Progress is read when asked for, not pushed by the scraper at each tag.
    let m = &state.metrics;
    if let Some(progress) = state.board.progress() {
        m.scrape_running.set(i64::from(progress.running));
        m.scrape_tags_listed.set(progress.total as i64);
        m.scrape_tags_done.set(progress.done as i64);
    }
    for (cause, count) in state.board.registry_errors() {
        let counter = m.registry_errors_total.with_label_values(&[cause]);
        counter.inc_by(count.saturating_sub(counter.get()));
    }
    if let Some(changed) = state.board.graph_data_changed() {
        m.graph_data_changed_timestamp.set(
            changed
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
    }
    match state.metrics.render() {
        Ok(text) => HttpResponse::Ok()
            .content_type(prometheus::TEXT_FORMAT)
            .body(text),
        Err(e) => {
            tracing::error!(error = %e, "cannot render metrics");
            HttpResponse::InternalServerError().body(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_run_of_failures_keeps_its_start_and_ends_with_a_graph() {
        let state = AppState::new(Metrics::new().unwrap());
        let first = state.record_failure("scrape", "a".to_owned());
        let second = state.record_failure("graph_data", "b".to_owned());
        assert_eq!(second.since, first.since);
        assert_eq!(second.count, 2);
        assert_eq!(second.stage, "graph_data");
        state.publish(Published {
            graph_json: crate::graph_json::GraphJson::encode(&graph_data::Graph::new()),
            provenance: Bytes::new(),
            graph_data: None,
            at: SystemTime::now(),
        });
        assert_eq!(state.failure(), None);
        assert_eq!(
            state.current().unwrap().graph_json.to_vec(),
            graph_data::wire::to_json(&graph_data::Graph::new())
        );
    }

    fn built(
        failing: Vec<crate::scrape::FailingTag>,
        held_back_shrink: Option<crate::scrape::ShrinkHeldBack>,
    ) -> crate::refresh::Built {
        crate::refresh::Built {
            graph_json: crate::graph_json::GraphJson::encode(&graph_data::Graph::new()),
            provenance: Bytes::new(),
            graph_data: None,
            findings: crate::refresh::BuildFindings {
                raw_releases: 2,
                per_arch: [("amd64".to_owned(), 2)].into(),
                invalid: vec![crate::scrape::InvalidRelease {
                    tag: "loop".to_owned(),
                    digest: "sha256:c".to_owned(),
                    kind: crate::scrape::InvalidKind::Cycle,
                    error: "closes a cycle".to_owned(),
                }],
                failing,
                held_back_shrink,
                graph_data_source: None,
                graph_data_warnings: Vec::new(),
            },
            nodes: 2,
            edges: 1,
            timings: crate::refresh::Timings::default(),
        }
    }

    fn failing(tag: &str, kept: Option<&str>) -> crate::scrape::FailingTag {
        let error = crate::scrape::ScrapeError::NotFound {
            item: format!("tag {tag} manifest"),
        };
        crate::scrape::FailingTag {
            tag: tag.to_owned(),
            reason: error.to_string(),
            kept: kept.map(|k| semver::Version::parse(k).unwrap()),
            error: Arc::new(error),
        }
    }

    async fn ready_body(state: &web::Data<AppState>) -> (u16, String) {
        let response = readiness(state.clone()).await;
        let code = response.status().as_u16();
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap();
        (code, String::from_utf8(body.to_vec()).unwrap())
    }

    #[actix_web::test]
    async fn degraded_but_serving_is_ready_and_says_why() {
        let state = web::Data::new(AppState::new(Metrics::new().unwrap()));
        state.publish(Published {
            graph_json: crate::graph_json::GraphJson::encode(&graph_data::Graph::new()),
            provenance: Bytes::new(),
            graph_data: None,
            at: SystemTime::now(),
        });
        let now = SystemTime::now();
        let healthy = built(Vec::new(), None);
        state.board.record_success(&healthy, now, Duration::ZERO);
        assert_eq!(ready_body(&state).await, (200, String::new()));
        assert!(StatusDocument::of(&state).degraded.is_none());

        let degraded = built(
            vec![failing("a", Some("1.0.0+amd64")), failing("b", None)],
            Some(crate::scrape::ShrinkHeldBack {
                previous_tags: 10,
                listed_tags: 2,
            }),
        );
        state.board.record_success(&degraded, now, Duration::ZERO);
        state.metrics.record_scrape_health(
            &degraded.findings.invalid,
            &degraded.findings.failing,
            degraded.findings.held_back_shrink.is_some(),
        );
        let expected = "degraded: 2 listed tag(s) cannot be read (a, b), 1 release(s) kept from \
                        the last good scrape; the tag list shrank from 10 to 2 tags and is held \
                        back until the next refresh confirms it (see /status)";
        assert_eq!(ready_body(&state).await, (200, expected.to_owned()));
        let doc = serde_json::to_value(StatusDocument::of(&state)).unwrap();
        assert_eq!(doc["degraded"], expected);
        assert_eq!(
            doc["releases"],
            serde_json::json!({
                "total": 2,
                "per_arch": {"amd64": 2},
                "invalid": [{"tag": "loop", "digest": "sha256:c", "kind": "cycle",
                             "reason": "closes a cycle"}],
                "kept_from_last_good": 1,
                "failing_tags": [
                    {"tag": "a", "kept": "1.0.0+amd64",
                     "reason": "tag a manifest is not found, although the repository lists the tag"},
                    {"tag": "b",
                     "reason": "tag b manifest is not found, although the repository lists the tag"}
                ],
                "held_back_shrink": {"previous_tags": 10, "listed_tags": 2}
            })
        );
        let metrics = String::from_utf8(state.metrics.render().unwrap()).unwrap();
        for line in [
            "cincinnati_gb_scrape_tags_failing 2",
            "cincinnati_gb_scrape_releases_kept_from_last_good 1",
            "cincinnati_gb_scrape_tag_list_shrink_held_back 1",
            "cincinnati_gb_graph_invalid_releases_by_reason{reason=\"cycle\"} 1",
            "cincinnati_gb_graph_invalid_releases_by_reason{reason=\"arch\"} 0",
        ] {
            assert!(metrics.contains(line), "{line} missing from\n{metrics}");
        }
    }
}
