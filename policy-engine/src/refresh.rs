//! The one refresh loop: whichever producer makes graphs (an upstream graph-builder
//! fetched over HTTP, or the graph-builder library run in this process), the loop asks it
//! for the next graph, publishes a new one into the [`GraphSource`], keeps the last good
//! graph on failure, and counts, dates and logs each outcome the same way.
//!
//! A producer says when its graph cannot have changed (the same upstream body, or the
//! same releases and graph-data), so the response cache of the current revision survives
//! a refresh that changed nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use graph_data::provenance::Provenance;
use graph_data::Graph;

use crate::error::ApiError;
use crate::in_process::InProcess;
use crate::metrics::Metrics;
use crate::source::GraphSource;
use crate::upstream::Upstream;

/// What makes graphs.
#[derive(Debug)]
pub enum Producer {
    /// Fetches the graph from a graph-builder.
    Upstream(Upstream),
    /// Builds the graph here with the graph-builder library.
    InProcess(Box<InProcess>),
}

/// The result of one successful attempt.
#[derive(Debug)]
// One value per refresh, moved once into the graph source: boxing the graph would buy
// nothing.
#[allow(clippy::large_enum_variant)]
pub enum Produced {
    /// Nothing the graph depends on changed since the fingerprint given.
    Unchanged,
    /// A graph, and the fingerprint of what it was made from.
    New {
        /// The graph.
        graph: Graph,
        /// Equal fingerprints mean equal graphs.
        fingerprint: [u8; 32],
        /// Why edges went, when the producer knows it with the graph (an in-process
        /// build); an upstream's is fetched after the graph is published.
        provenance: Option<Box<Provenance>>,
    },
}

/// Why one attempt failed.
#[derive(Debug)]
pub struct Failure {
    /// What requests get while no graph is held.
    pub error: ApiError,
    /// What the log says instead of `error`, when that is kept short for anonymous
    /// clients (an in-process build's registry errors).
    pub detail: Option<String>,
    /// The build stage that failed (counted in `graph_build_errors_total{stage}`), for an
    /// in-process build.
    pub build_stage: Option<&'static str>,
}

impl Producer {
    async fn produce(
        &mut self,
        last: Option<&[u8; 32]>,
        source: &GraphSource,
    ) -> Result<Produced, Failure> {
        match self {
            Producer::Upstream(upstream) => upstream.produce(last).await,
            Producer::InProcess(in_process) => in_process.produce(last, source.board()).await,
        }
    }

    /// Shows the build's scrape progress on the `/status` board (in-process builds).
    fn attach(&self, source: &GraphSource) {
        if let Producer::InProcess(in_process) = self {
            in_process.attach(source.board());
        }
    }

    /// After an attempt that produced a graph (`changed`: a new one was published): the
    /// upstream's provenance, fetched from next to its graph. An in-process build's comes
    /// with the graph and is set before the graph is published.
    async fn provenance(&self, source: &GraphSource, changed: bool) {
        if let Producer::Upstream(upstream) = self {
            upstream.sync_provenance(source, changed).await;
        }
    }

    /// Where graphs come from, for logs.
    fn origin(&self) -> String {
        match self {
            Producer::Upstream(upstream) => upstream.url().to_owned(),
            Producer::InProcess(_) => "in-process build".to_owned(),
        }
    }

    /// The pause after an attempt: while no graph is held, an upstream is asked again
    /// sooner, since it is usually just finishing its first scrape; a build is not (it
    /// would scrape the registry again).
    fn pause(&self, ready: bool) -> Duration {
        match self {
            Producer::Upstream(upstream) if !ready => upstream.first_graph_retry(),
            Producer::Upstream(upstream) => upstream.refresh(),
            Producer::InProcess(in_process) => in_process.refresh(),
        }
    }
}

/// Asks `producer` for a graph now and then, publishing each new one into `source`, until
/// the task is dropped or aborted.
pub async fn refresh_loop(mut producer: Producer, source: GraphSource, metrics: Arc<Metrics>) {
    let origin = producer.origin();
    tracing::info!(%origin, "waiting for the first graph");
    producer.attach(&source);
    let mut last: Option<[u8; 32]> = None;
    loop {
        metrics.upstream_requests.inc();
        match producer.produce(last.as_ref(), &source).await {
            Ok(Produced::Unchanged) => {
                tracing::debug!(%origin, "graph unchanged");
                succeeded(&source, &metrics);
                producer.provenance(&source, false).await;
            }
            Ok(Produced::New {
                graph,
                fingerprint,
                provenance,
            }) => {
                let (nodes, edges) = (graph.len(), graph.edge_count());
                // A provenance that comes with the graph goes in first, so the first
                // questions about the new graph already get its reasons and files.
                if let Some(provenance) = provenance {
                    source.planner().set_provenance(*provenance);
                }
                match source.publish(graph) {
                    Ok(revision) => {
                        last = Some(fingerprint);
                        metrics.refresh_failing_since.set(0.0);
                        tracing::info!(%origin, revision, nodes, edges, "serving a new graph");
                        producer.provenance(&source, true).await;
                    }
                    Err(error) => fail(
                        &source,
                        &metrics,
                        &origin,
                        Failure {
                            error,
                            detail: None,
                            build_stage: Some("publish"),
                        },
                    ),
                }
            }
            Err(failure) => fail(&source, &metrics, &origin, failure),
        }
        tokio::time::sleep(producer.pause(source.is_ready())).await;
    }
}

fn succeeded(source: &GraphSource, metrics: &Metrics) {
    metrics.refresh_failing_since.set(0.0);
    source.clear_failure();
}

fn fail(source: &GraphSource, metrics: &Metrics, origin: &str, failure: Failure) {
    metrics.upstream_errors.inc();
    if let Some(stage) = failure.build_stage {
        metrics.build_errors.with_label_values(&[stage]).inc();
    }
    if metrics.refresh_failing_since.get() == 0.0 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        metrics.refresh_failing_since.set(now.as_secs_f64());
    }
    let error = match &failure.detail {
        Some(detail) => detail.clone(),
        None => failure.error.to_string(),
    };
    if source.is_ready() {
        tracing::error!(%origin, "refresh failed, still serving the last good graph: {error}");
    } else {
        tracing::error!(%origin, "refresh failed, no graph to serve yet: {error}");
    }
    source.report_failure(failure.error, failure.detail);
}
