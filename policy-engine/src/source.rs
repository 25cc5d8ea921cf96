//! The seam between whatever produces graphs and the HTTP side that serves them.
//!
//! A producer (today the upstream fetcher of [`crate::upstream`]; later an in-process
//! graph-builder) calls [`GraphSource::publish`] with each new graph, or
//! [`GraphSource::report_failure`] when a refresh fails. Handlers read the current
//! [`Snapshot`] without locking out each other (a `tokio::sync::watch` channel). The last
//! good graph is never replaced by a failure; a failure is what requests get only while
//! no graph has ever been published.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use graph_data::Graph;
use tokio::sync::watch;

use crate::cache::Snapshot;
use crate::error::ApiError;

/// What the source holds at one moment.
#[derive(Debug, Clone, Default)]
pub struct SourceState {
    /// The graph being served, once one has been published.
    pub snapshot: Option<Arc<Snapshot>>,
    /// The last refresh failure and when it happened; cleared by the next publish.
    pub last_error: Option<(ApiError, SystemTime)>,
    /// What the log and status port say about `last_error` when what clients get is kept
    /// short (an in-process build's registry errors).
    pub last_error_detail: Option<String>,
}

impl SourceState {
    /// The last failure as the status port shows it: in full, whatever clients got.
    pub fn failure_message(&self) -> Option<String> {
        let (error, _) = self.last_error.as_ref()?;
        Some(
            self.last_error_detail
                .clone()
                .unwrap_or_else(|| error.to_string()),
        )
    }
}

/// Shared handle on the current graph; cheap to clone.
#[derive(Debug, Clone)]
pub struct GraphSource {
    tx: Arc<watch::Sender<SourceState>>,
    /// The planner's provenance and channel views, published next to the graph.
    planner: Arc<crate::planner::PlannerSlot>,
    /// What the producer knows about building the graph, for `/status` (one-process
    /// mode fills it; an upstream fetcher has nothing to add).
    board: Arc<graph_builder::report::StatusBoard>,
}

impl Default for GraphSource {
    fn default() -> Self {
        Self::new()
    }
}

impl GraphSource {
    /// A source that holds no graph yet.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(SourceState::default())),
            planner: Arc::default(),
            board: Arc::default(),
        }
    }

    /// The planner's provenance and views; producers set the provenance of each graph.
    pub fn planner(&self) -> &crate::planner::PlannerSlot {
        &self.planner
    }

    /// Where the producer records its build facts for `/status`.
    pub fn board(&self) -> &graph_builder::report::StatusBoard {
        &self.board
    }

    /// Makes `graph` the one served, as a new revision; returns that revision.
    ///
    /// Inside a tokio runtime, the bodies clients asked for from the previous graph are
    /// then computed in the background, so a refresh does not make the next request for
    /// each popular key pay the cold path.
    pub fn publish(&self, graph: Graph) -> Result<u64, ApiError> {
        let previous = self.current().snapshot;
        let revision = previous.as_ref().map_or(1, |s| s.revision() + 1);
        let snapshot = Arc::new(Snapshot::new(graph, revision)?);
        self.tx.send_replace(SourceState {
            snapshot: Some(Arc::clone(&snapshot)),
            last_error: None,
            last_error_detail: None,
        });
        let keys = previous.map(|p| p.computed_keys()).unwrap_or_default();
        if let (false, Ok(runtime)) = (keys.is_empty(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move {
                for (channel, arch) in keys {
                    // A failure is kept in the slot and logged there.
                    let _ = snapshot.body(&channel, &arch).await;
                }
            });
        }
        Ok(revision)
    }

    /// Records a failed refresh (`detail`: the status port's fuller account, if clients
    /// get less); the graph being served, if any, stays.
    pub fn report_failure(&self, error: ApiError, detail: Option<String>) {
        self.tx.send_modify(|state| {
            state.last_error = Some((error, SystemTime::now()));
            state.last_error_detail = detail;
        });
    }

    /// Forgets the last failure: a refresh succeeded without a new graph to publish.
    pub fn clear_failure(&self) {
        self.tx.send_if_modified(|state| {
            state.last_error_detail = None;
            state.last_error.take().is_some()
        });
    }

    /// The current state.
    pub fn current(&self) -> SourceState {
        self.tx.borrow().clone()
    }

    /// Whether a graph is held (readiness).
    pub fn is_ready(&self) -> bool {
        self.tx.borrow().snapshot.is_some()
    }

    /// Completes once a graph is held.
    pub async fn wait_ready(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`: the channel cannot close while we wait.
        let _ = rx.wait_for(|s| s.snapshot.is_some()).await;
    }

    /// The snapshot to serve a request from. Before the first graph, the error of the
    /// last failed attempt; if the first attempt is still running, waits for it up to
    /// `patience` so that a request right after start-up is not failed needlessly.
    pub async fn snapshot(&self, patience: Duration) -> Result<Arc<Snapshot>, ApiError> {
        if let Some(snapshot) = &self.tx.borrow().snapshot {
            return Ok(Arc::clone(snapshot));
        }
        let mut rx = self.tx.subscribe();
        let outcome = tokio::time::timeout(
            patience,
            rx.wait_for(|s| s.snapshot.is_some() || s.last_error.is_some()),
        )
        .await;
        let state = match outcome {
            Ok(Ok(state)) => state.clone(),
            // The sender lives in `self`, so the channel cannot close under us; a
            // timeout leaves the state as it is.
            Ok(Err(_)) | Err(_) => self.current(),
        };
        match state {
            SourceState {
                snapshot: Some(s), ..
            } => Ok(s),
            SourceState {
                last_error: Some((e, _)),
                ..
            } => Err(e),
            _ => Err(ApiError::UpstreamFetch(format!(
                "no graph received yet (waited {} s)",
                patience.as_secs()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_answer_only_until_the_first_graph_which_then_stays() {
        let source = GraphSource::new();
        assert!(!source.is_ready());
        let err = source
            .snapshot(Duration::from_millis(10))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "failed_upstream_fetch");
        source.report_failure(ApiError::JsonIn("empty".into()), None);
        let err = source.snapshot(Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(err, ApiError::JsonIn("empty".into()));
        assert_eq!(source.publish(Graph::new()).unwrap(), 1);
        assert!(source.is_ready());
        source.report_failure(ApiError::UpstreamFetch("down".into()), None);
        let s = source.snapshot(Duration::from_secs(5)).await.unwrap();
        assert_eq!(s.revision(), 1);
        assert!(source.current().last_error.is_some());
        assert_eq!(source.publish(Graph::new()).unwrap(), 2);
        assert!(source.current().last_error.is_none());
    }

    #[tokio::test]
    async fn a_new_graph_is_warmed_with_the_keys_clients_asked_for() {
        use graph_data::{Metadata, Release};
        let graph = || {
            let mut g = Graph::new();
            let mut m = Metadata::new();
            m.insert(crate::filter::CHANNELS_KEY.into(), "a,b".into());
            m.insert(crate::filter::ARCH_KEY.into(), "amd64".into());
            let version = semver::Version::parse("4.1.0+amd64").unwrap();
            g.add_release(Release::concrete(version, "p", m)).unwrap();
            g
        };
        let source = GraphSource::new();
        source.publish(graph()).unwrap();
        let first = source.snapshot(Duration::from_secs(1)).await.unwrap();
        first.body("b", "amd64").await.unwrap();
        source.publish(graph()).unwrap();
        let second = source.snapshot(Duration::from_secs(1)).await.unwrap();
        assert_eq!(second.revision(), 2);
        for _ in 0..100 {
            if !second.computed_keys().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            second.computed_keys(),
            [("b".to_owned(), "amd64".to_owned())]
        );
    }

    #[tokio::test]
    async fn a_waiting_request_gets_the_first_graph() {
        let source = GraphSource::new();
        let waiter = {
            let source = source.clone();
            tokio::spawn(async move { source.snapshot(Duration::from_secs(30)).await })
        };
        tokio::task::yield_now().await;
        source.publish(Graph::new()).unwrap();
        assert_eq!(waiter.await.unwrap().unwrap().revision(), 1);
    }
}
