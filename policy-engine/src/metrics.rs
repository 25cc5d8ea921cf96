//! The Prometheus metrics of the policy-engine, with the reference's names and labels
//! so existing dashboards and SLO checks keep working.
//!
//! The registry belongs to the application state (no globals), so every server started
//! in a test has its own counters.

use std::sync::{Arc, Mutex};

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use crate::error::ApiError;

/// The git commit the binary was built from, for `build_info` (the graph-builder
/// library's build script records it).
pub const GIT_COMMIT: &str = graph_builder::GIT_COMMIT;

/// The version the binary was built as, for `build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One `uri_path` and its child of `graph_incoming_requests_total`.
type PathCounter = (Box<str>, IntCounter);

/// Every metric of the policy-engine and the registry that exports them.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// `build_info{git_commit,version}`, incremented once the service is ready.
    pub build_info: IntCounterVec,
    /// `graph_incoming_requests_total{uri_path}`, every graph request before validation;
    /// count with [`Metrics::count_incoming`].
    pub incoming_requests: IntCounterVec,
    /// The children of `incoming_requests` already asked for, so that counting a request
    /// compares a path or two instead of hashing it under the vector's lock and
    /// allocating its label. Only paths that were requested are here, so `/metrics`
    /// shows exactly the series it showed before.
    incoming_by_path: Arc<Mutex<Vec<PathCounter>>>,
    /// `graph_serve_duration_seconds`, time to produce the body of a validated request.
    pub serve_duration: Histogram,
    /// `graph_response_errors_total{code,kind}`.
    pub response_errors: IntCounterVec,
    /// `http_upstream_requests_total`, upstream fetches attempted.
    pub upstream_requests: IntCounter,
    /// `http_upstream_errors_total`, upstream fetches that failed.
    pub upstream_errors: IntCounter,
    /// `graph_build_errors_total{stage}`, failed in-process builds (one-process mode).
    pub build_errors: IntCounterVec,
    /// `refresh_failing_since_timestamp_seconds`: when graph refreshes started failing
    /// (epoch seconds), 0 while they succeed.
    pub refresh_failing_since: Gauge,
}

impl Metrics {
    /// Creates and registers the metrics under the `cincinnati_pe_` prefix.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("cincinnati_pe".to_owned()), None)?;
        let build_info = IntCounterVec::new(
            Opts::new("build_info", "Build information of the policy-engine"),
            &["git_commit", "version"],
        )?;
        let incoming_requests = IntCounterVec::new(
            Opts::new(
                "graph_incoming_requests_total",
                "Total number of incoming graph requests",
            ),
            &["uri_path"],
        )?;
        let serve_duration = Histogram::with_opts(
            HistogramOpts::new(
                "graph_serve_duration_seconds",
                "Time spent producing the graph of a valid request",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 5.0,
            ]),
        )?;
        let response_errors = IntCounterVec::new(
            Opts::new(
                "graph_response_errors_total",
                "Error responses to graph requests",
            ),
            &["code", "kind"],
        )?;
        let upstream_requests = IntCounter::new(
            "http_upstream_requests_total",
            "Total number of requests to the upstream graph",
        )?;
        let upstream_errors = IntCounter::new(
            "http_upstream_errors_total",
            "Total number of failed requests to the upstream graph",
        )?;
        registry.register(Box::new(build_info.clone()))?;
        registry.register(Box::new(incoming_requests.clone()))?;
        registry.register(Box::new(serve_duration.clone()))?;
        registry.register(Box::new(response_errors.clone()))?;
        let build_errors = IntCounterVec::new(
            Opts::new(
                "graph_build_errors_total",
                "Failed in-process graph builds, by stage",
            ),
            &["stage"],
        )?;
        let refresh_failing_since = Gauge::new(
            "refresh_failing_since_timestamp_seconds",
            "When graph refreshes started failing (epoch seconds), 0 while they succeed",
        )?;
        registry.register(Box::new(upstream_requests.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(build_errors.clone()))?;
        registry.register(Box::new(refresh_failing_since.clone()))?;
        Ok(Self {
            registry,
            build_info,
            incoming_requests,
            incoming_by_path: Arc::default(),
            serve_duration,
            response_errors,
            upstream_requests,
            upstream_errors,
            build_errors,
            refresh_failing_since,
        })
    }

    /// The registry, for metrics other modules register (signatures).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts a graph request to `path` (the raw request path).
    pub fn count_incoming(&self, path: &str) {
        /// Paths remembered; others (odd spellings of a graph path) take the slow way.
        const REMEMBERED: usize = 8;
        let mut known = self
            .incoming_by_path
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, counter)) = known.iter().find(|(p, _)| **p == *path) {
            counter.inc();
            return;
        }
        let counter = self.incoming_requests.with_label_values(&[path]);
        counter.inc();
        if known.len() < REMEMBERED {
            known.push((path.into(), counter));
        }
    }

    /// Counts an error response.
    pub fn count_error(&self, error: &ApiError) {
        self.response_errors
            .with_label_values(&[error.status().as_str(), error.kind()])
            .inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Result<Vec<u8>, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_are_the_reference_ones() {
        let m = Metrics::new().unwrap();
        m.build_info.with_label_values(&[GIT_COMMIT, VERSION]).inc();
        m.count_incoming("/v1/graph");
        m.count_incoming("/v1/graph");
        m.count_incoming("/graph");
        m.serve_duration.observe(0.001);
        m.count_error(&ApiError::InvalidContentType);
        m.upstream_requests.inc();
        m.upstream_errors.inc();
        let text = String::from_utf8(m.render().unwrap()).unwrap();
        let build_info = format!(
            "cincinnati_pe_build_info{{git_commit=\"{GIT_COMMIT}\",version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        for line in [
            build_info.as_str(),
            "cincinnati_pe_graph_incoming_requests_total{uri_path=\"/v1/graph\"} 2",
            "cincinnati_pe_graph_incoming_requests_total{uri_path=\"/graph\"} 1",
            "cincinnati_pe_graph_serve_duration_seconds_bucket{le=\"0.005\"} 1",
            "cincinnati_pe_graph_response_errors_total{code=\"406\",kind=\"invalid_content_type\"} 1",
            "cincinnati_pe_http_upstream_requests_total 1",
            "cincinnati_pe_http_upstream_errors_total 1",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
