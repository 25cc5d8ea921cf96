//! The graph-builder's Prometheus metrics: the reference's `cincinnati_gb_*` names, so existing dashboards keep working, plus a few of ours that say
//! what is failing and since when. The registry belongs to the application state; there
//! are no global metrics.

use prometheus::{
    Encoder as _, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::scrape::{kept_from_last_good, FailingTag, InvalidKind, InvalidRelease};

/// Buckets of `graph_upstream_scrapes_duration`, in seconds, as in the reference.
const SCRAPE_BUCKETS: [f64; 9] = [5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0, 30.0];

/// Every metric of the graph-builder, registered in its own registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// `build_info{git_commit,version}`: 1 once the refresh loop started.
    pub build_info: IntCounterVec,
    /// Releases found by the last successful scrape, before any processing.
    pub upstream_raw_releases: IntGauge,
    /// Nodes of the served graph (abstract nodes included).
    pub final_releases: IntGauge,
    /// Unix time of the last successful refresh.
    pub last_successful_refresh_timestamp: Gauge,
    /// Refresh attempts.
    pub upstream_scrapes_total: IntCounter,
    /// Failed refreshes, whatever failed.
    pub upstream_errors_total: IntCounter,
    /// Seconds the first successful refresh took.
    pub initial_upstream_scrape_duration: Gauge,
    /// Seconds of later successful refreshes.
    pub upstream_scrapes_duration: Histogram,
    /// Graph requests by path.
    pub incoming_requests_total: IntCounterVec,
    /// Error responses by status code and kind.
    pub response_errors_total: IntCounterVec,
    /// Ours: failed refreshes by the stage that failed (`scrape`, `graph_data`, …).
    pub refresh_errors_total: IntCounterVec,
    /// Ours: registry errors met by the scrapes, by cause (`digest_mismatch`,
    /// `blob_mismatch`, `too_large`, `timed_out`, `status`, ...), whether or not they
    /// failed a refresh.
    pub registry_errors_total: IntCounterVec,
    /// Ours: Unix time of the first failure of the current run of failed refreshes; 0
    /// while the last refresh succeeded.
    pub refresh_failing_since_timestamp: Gauge,
    /// Ours: unconditional edges of the served graph.
    pub final_edges: IntGauge,
    /// Ours: tags listed by the scrape in progress (or the last one).
    pub scrape_tags_listed: IntGauge,
    /// Ours: tags handled so far by the scrape in progress (or the last one).
    pub scrape_tags_done: IntGauge,
    /// Ours: 1 while a scrape runs.
    pub scrape_running: IntGauge,
    /// Ours: release images the last completed scrape could not use.
    pub invalid_releases: IntGauge,
    /// Ours: Unix time the graph-data content last changed (0 before it is read).
    pub graph_data_changed_timestamp: Gauge,
    /// Ours: the invalid releases of the last completed scrape by `reason` (the rule
    /// broken: `image`, `arch`, `channels`, `duplicate_version`, `cycle`).
    pub invalid_releases_by_reason: IntGaugeVec,
    /// Ours: listed tags the last completed scrape could not read.
    pub scrape_tags_failing: IntGauge,
    /// Ours: releases of those tags kept from the last good scrape.
    pub scrape_releases_kept_from_last_good: IntGauge,
    /// Ours: 1 when the last completed scrape held back a shrunken tag list.
    pub scrape_tag_list_shrink_held_back: IntGauge,
}

impl Metrics {
    /// Creates and registers every metric under the `cincinnati_gb_` prefix.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("cincinnati_gb".to_owned()), None)?;
        let metrics = Metrics {
            build_info: IntCounterVec::new(
                Opts::new("build_info", "Build information"),
                &["git_commit", "version"],
            )?,
            upstream_raw_releases: IntGauge::new(
                "graph_upstream_raw_releases",
                "Releases found by the scrape, before processing",
            )?,
            final_releases: IntGauge::new(
                "graph_final_releases",
                "Releases in the served graph, abstract ones included",
            )?,
            last_successful_refresh_timestamp: Gauge::new(
                "graph_last_successful_refresh_timestamp",
                "UTC epoch seconds of the last successful refresh",
            )?,
            upstream_scrapes_total: IntCounter::new(
                "graph_upstream_scrapes_total",
                "Refresh attempts",
            )?,
            upstream_errors_total: IntCounter::new(
                "graph_upstream_errors_total",
                "Failed refreshes",
            )?,
            initial_upstream_scrape_duration: Gauge::new(
                "graph_initial_upstream_scrape_duration",
                "Seconds of the first successful refresh",
            )?,
            upstream_scrapes_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "graph_upstream_scrapes_duration",
                    "Seconds of successful refreshes after the first",
                )
                .buckets(SCRAPE_BUCKETS.to_vec()),
            )?,
            incoming_requests_total: IntCounterVec::new(
                Opts::new("graph_incoming_requests_total", "Graph requests"),
                &["uri_path"],
            )?,
            response_errors_total: IntCounterVec::new(
                Opts::new("graph_response_errors_total", "Error responses"),
                &["code", "kind"],
            )?,
            refresh_errors_total: IntCounterVec::new(
                Opts::new(
                    "graph_refresh_errors_total",
                    "Failed refreshes by the stage that failed",
                ),
                &["stage"],
            )?,
            registry_errors_total: IntCounterVec::new(
                Opts::new(
                    "registry_errors_total",
                    "Registry errors met by the scrapes, by cause",
                ),
                &["cause"],
            )?,
            refresh_failing_since_timestamp: Gauge::new(
                "graph_refresh_failing_since_timestamp",
                "UTC epoch seconds of the first of the current failed refreshes, 0 if none",
            )?,
            final_edges: IntGauge::new(
                "graph_final_edges",
                "Unconditional edges in the served graph",
            )?,
            scrape_tags_listed: IntGauge::new(
                "scrape_tags_listed",
                "Tags listed by the scrape in progress, or by the last one",
            )?,
            scrape_tags_done: IntGauge::new(
                "scrape_tags_done",
                "Tags handled so far by the scrape in progress, or by the last one",
            )?,
            scrape_running: IntGauge::new("scrape_running", "1 while a scrape runs")?,
            invalid_releases: IntGauge::new(
                "graph_invalid_releases",
                "Release images the last completed scrape could not use (see /status)",
            )?,
            graph_data_changed_timestamp: Gauge::new(
                "graph_data_changed_timestamp_seconds",
                "UTC epoch seconds when the graph-data content last changed, 0 before it is read",
            )?,
            invalid_releases_by_reason: IntGaugeVec::new(
                Opts::new(
                    "graph_invalid_releases_by_reason",
                    "Release images the last completed scrape left out, by the rule they broke",
                ),
                &["reason"],
            )?,
            scrape_tags_failing: IntGauge::new(
                "scrape_tags_failing",
                "Listed tags the last completed scrape could not read (see /status)",
            )?,
            scrape_releases_kept_from_last_good: IntGauge::new(
                "scrape_releases_kept_from_last_good",
                "Releases of unreadable tags kept from the last good scrape",
            )?,
            scrape_tag_list_shrink_held_back: IntGauge::new(
                "scrape_tag_list_shrink_held_back",
                "1 when the last completed scrape held back a tag list less than half as long as the last good one",
            )?,
            registry,
        };
        // Every reason's series exists from the start, at zero.
        metrics.record_scrape_health(&[], &[], false);
        let r = &metrics.registry;
        r.register(Box::new(metrics.build_info.clone()))?;
        r.register(Box::new(metrics.upstream_raw_releases.clone()))?;
        r.register(Box::new(metrics.final_releases.clone()))?;
        r.register(Box::new(metrics.last_successful_refresh_timestamp.clone()))?;
        r.register(Box::new(metrics.upstream_scrapes_total.clone()))?;
        r.register(Box::new(metrics.upstream_errors_total.clone()))?;
        r.register(Box::new(metrics.initial_upstream_scrape_duration.clone()))?;
        r.register(Box::new(metrics.upstream_scrapes_duration.clone()))?;
        r.register(Box::new(metrics.incoming_requests_total.clone()))?;
        r.register(Box::new(metrics.response_errors_total.clone()))?;
        r.register(Box::new(metrics.refresh_errors_total.clone()))?;
        r.register(Box::new(metrics.registry_errors_total.clone()))?;
        r.register(Box::new(metrics.refresh_failing_since_timestamp.clone()))?;
        r.register(Box::new(metrics.final_edges.clone()))?;
        r.register(Box::new(metrics.scrape_tags_listed.clone()))?;
        r.register(Box::new(metrics.scrape_tags_done.clone()))?;
        r.register(Box::new(metrics.scrape_running.clone()))?;
        r.register(Box::new(metrics.invalid_releases.clone()))?;
        r.register(Box::new(metrics.graph_data_changed_timestamp.clone()))?;
        r.register(Box::new(metrics.invalid_releases_by_reason.clone()))?;
        r.register(Box::new(metrics.scrape_tags_failing.clone()))?;
        r.register(Box::new(
            metrics.scrape_releases_kept_from_last_good.clone(),
        ))?;
        r.register(Box::new(metrics.scrape_tag_list_shrink_held_back.clone()))?;
        Ok(metrics)
    }

    /// Sets the scrape's health gauges from a completed build.
    pub fn record_scrape_health(
        &self,
        invalid: &[InvalidRelease],
        failing: &[FailingTag],
        held_back_shrink: bool,
    ) {
        for kind in InvalidKind::ALL {
            let count = invalid.iter().filter(|i| i.kind == kind).count();
            self.invalid_releases_by_reason
                .with_label_values(&[kind.as_str()])
                .set(count as i64);
        }
        self.scrape_tags_failing.set(failing.len() as i64);
        self.scrape_releases_kept_from_last_good
            .set(kept_from_last_good(failing) as i64);
        self.scrape_tag_list_shrink_held_back
            .set(i64::from(held_back_shrink));
    }

    /// The text exposition format.
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
    fn names_carry_the_reference_prefix() {
        let m = Metrics::new().unwrap();
        m.build_info.with_label_values(&["abc", "1.2.3"]).inc();
        m.upstream_errors_total.inc();
        m.response_errors_total
            .with_label_values(&["406", "invalid_content_type"])
            .inc();
        let text = String::from_utf8(m.render().unwrap()).unwrap();
        for name in [
            "cincinnati_gb_build_info{git_commit=\"abc\",version=\"1.2.3\"} 1",
            "cincinnati_gb_graph_upstream_raw_releases 0",
            "cincinnati_gb_graph_final_releases 0",
            "cincinnati_gb_graph_last_successful_refresh_timestamp 0",
            "cincinnati_gb_graph_upstream_scrapes_total 0",
            "cincinnati_gb_graph_upstream_errors_total 1",
            "cincinnati_gb_graph_initial_upstream_scrape_duration 0",
            "cincinnati_gb_graph_upstream_scrapes_duration_bucket{le=\"5\"} 0",
            "cincinnati_gb_graph_response_errors_total{code=\"406\",kind=\"invalid_content_type\"} 1",
            "cincinnati_gb_graph_invalid_releases_by_reason{reason=\"cycle\"} 0",
            "cincinnati_gb_scrape_tags_failing 0",
            "cincinnati_gb_scrape_releases_kept_from_last_good 0",
            "cincinnati_gb_scrape_tag_list_shrink_held_back 0",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
