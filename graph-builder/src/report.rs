//! The `/status` document's facts about building the graph, shared by the graph-builder
//! and the policy-engine's one-process mode: the last refresh (start, duration, result,
//! its error with the stage and cause), the scrape in progress, releases per arch with
//! every invalid release and its reason, the tags that could not be read and the
//! releases kept for them, a held-back shrink of the tag list, the graph-data (source, digest, age, each
//! problem with its file and field) and the graph (revision, size, age).
//!
//! Every part is a typed serde struct, so a new fact is a new field; optional parts are
//! left out until known. [`StatusBoard`] is where the refresh loop records them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::graph_data_source::GraphDataError;
use crate::refresh::{BuildFindings, Built, BuiltGraph, RefreshError, UnchangedGraph};
use crate::scrape::{kept_from_last_good, InvalidRelease, ScrapeProgress};
use crate::scrape_report::{degraded_reason, failing_reports};
pub use crate::scrape_report::{FailingTagReport, ShrinkReport};
use graph_data::keys::chain;

/// What is known about building the graph.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct BuildReport {
    /// The refresh running now, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<ProgressReport>,
    /// The last refresh that ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_refresh: Option<RefreshReport>,
    /// The releases of the last scrape that completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub releases: Option<ReleasesReport>,
    /// The graph-data of the last refresh that read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_data: Option<GraphDataReport>,
    /// The graph being served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphReport>,
}

/// The scrape of the refresh running now.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProgressReport {
    /// When the scrape started (RFC 3339, UTC).
    pub started: String,
    /// Tags handled so far.
    pub tags_done: usize,
    /// Tags listed (0 while the listing runs).
    pub tags_total: usize,
}

/// One ended refresh.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RefreshReport {
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// How long it took.
    pub duration_seconds: f64,
    /// `succeeded` or `failed`.
    pub result: &'static str,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
    /// Refreshes failed in a row (0 after a success).
    pub consecutive_failures: u64,
    /// When the current run of failures began.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
}

/// A refresh failure.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorReport {
    /// The stage that failed: `scrape`, `assemble`, `graph_data`, `apply`, `timeout`.
    pub stage: String,
    /// The error and its causes on one line.
    pub message: String,
}

/// Releases found by a scrape.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReleasesReport {
    /// All releases.
    pub total: usize,
    /// Releases per architecture (`amd64`, `arm64`, `multi`, ...).
    pub per_arch: BTreeMap<String, usize>,
    /// Release images that could not be used, each with its reason.
    pub invalid: Vec<InvalidReleaseReport>,
    /// Releases of unreadable tags kept from the last good scrape.
    pub kept_from_last_good: usize,
    /// Listed tags that could not be read, each with its reason.
    pub failing_tags: Vec<FailingTagReport>,
    /// Set when the tag list shrank to less than half and the last good releases were
    /// served instead, until the next refresh confirms it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_back_shrink: Option<ShrinkReport>,
}

/// A release image that could not be used.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InvalidReleaseReport {
    /// Its tag.
    pub tag: String,
    /// Its manifest digest.
    pub digest: String,
    /// The rule it broke: `image`, `arch`, `channels`, `duplicate_version`, `cycle`.
    pub kind: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// The graph-data read by a refresh.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GraphDataReport {
    /// The configured source (directory, tarball or image reference).
    pub source: String,
    /// `sha256:` of the graph-data tarball read, the content's revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// When this content was first read (it has not changed since), RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<String>,
    /// Seconds since then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<u64>,
    /// Every problem that made it invalid, by file and field; empty when it loaded.
    pub problems: Vec<ProblemReport>,
    /// Notable things that did not make it invalid.
    pub warnings: Vec<String>,
}

/// One graph-data problem.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProblemReport {
    /// The file, relative to the graph-data root.
    pub file: String,
    /// The field, when the problem is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The graph being served.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GraphReport {
    /// `sha256:` of the graph JSON (in one-process mode, of the graph's inputs).
    pub revision: String,
    /// Nodes (releases).
    pub nodes: usize,
    /// Unconditional edges.
    pub edges: usize,
    /// When it was built, RFC 3339.
    pub built: String,
    /// Seconds since then.
    pub age_seconds: u64,
}

/// What a successful build tells the board, from any kind of build.
struct BuildFacts<'a> {
    findings: &'a BuildFindings,
    revision: String,
    nodes: usize,
    edges: usize,
}

/// Where the refresh loop records what [`BuildReport`] shows.
#[derive(Debug, Default)]
pub struct StatusBoard {
    facts: Mutex<Facts>,
    progress: Mutex<Option<Arc<ScrapeProgress>>>,
}

#[derive(Debug, Default)]
struct Facts {
    last_refresh: Option<RefreshReport>,
    releases: Option<ReleasesReport>,
    graph_data: Option<GraphDataReport>,
    graph_data_changed: Option<SystemTime>,
    graph: Option<(GraphReport, SystemTime)>,
    failures: u64,
    failing_since: Option<SystemTime>,
}

impl StatusBoard {
    /// Shows the progress of this release source's scrapes.
    pub fn watch_progress(&self, progress: Arc<ScrapeProgress>) {
        *self.progress.lock().unwrap_or_else(PoisonError::into_inner) = Some(progress);
    }

    /// Records a refresh that built `built`, started at `started` and took `elapsed`.
    pub fn record_success(&self, built: &Built, started: SystemTime, elapsed: Duration) {
        self.record(
            BuildFacts {
                findings: &built.findings,
                revision: format!("sha256:{}", hex::encode(built.graph_json.sha256())),
                nodes: built.nodes,
                edges: built.edges,
            },
            started,
            elapsed,
        );
    }

    /// Records a refresh that built `built` in memory (one-process mode), started at
    /// `started` and took `elapsed`. With no JSON written, the graph's revision is the
    /// `sha256:` fingerprint of its inputs (equal inputs build an equal graph).
    pub fn record_built_graph(&self, built: &BuiltGraph, started: SystemTime, elapsed: Duration) {
        self.record(
            BuildFacts {
                findings: &built.findings,
                revision: format!("sha256:{}", hex::encode(built.inputs)),
                nodes: built.graph.len(),
                edges: built.graph.edge_count(),
            },
            started,
            elapsed,
        );
    }

    /// Records a refresh (one-process mode) whose inputs were those of the graph already
    /// served, so no graph was built: the graph's own facts stay those of the last record.
    pub fn record_unchanged_graph(
        &self,
        build: &UnchangedGraph,
        started: SystemTime,
        elapsed: Duration,
    ) {
        let (nodes, edges) = self
            .lock()
            .graph
            .as_ref()
            .map_or((0, 0), |(graph, _)| (graph.nodes, graph.edges));
        self.record(
            BuildFacts {
                findings: &build.findings,
                revision: format!("sha256:{}", hex::encode(build.inputs)),
                nodes,
                edges,
            },
            started,
            elapsed,
        );
    }

    fn record(&self, built: BuildFacts<'_>, started: SystemTime, elapsed: Duration) {
        let mut facts = self.lock();
        facts.failures = 0;
        facts.failing_since = None;
        facts.last_refresh = Some(RefreshReport {
            started: rfc3339(started),
            duration_seconds: elapsed.as_secs_f64(),
            result: "succeeded",
            error: None,
            consecutive_failures: 0,
            failing_since: None,
        });
        let found = built.findings;
        facts.releases = Some(ReleasesReport {
            total: found.raw_releases,
            per_arch: found.per_arch.clone(),
            invalid: invalid_reports(&found.invalid),
            kept_from_last_good: kept_from_last_good(&found.failing),
            failing_tags: failing_reports(&found.failing),
            held_back_shrink: found.held_back_shrink.map(ShrinkReport::from),
        });
        if let Some((source, digest)) = &found.graph_data_source {
            let changed = facts.changed_since(digest);
            facts.graph_data = Some(GraphDataReport {
                source: source.clone(),
                digest: Some(digest.clone()),
                changed: Some(rfc3339(changed)),
                age_seconds: None,
                problems: Vec::new(),
                warnings: found.graph_data_warnings.clone(),
            });
        }
        let now = SystemTime::now();
        facts.graph = Some((
            GraphReport {
                revision: built.revision,
                nodes: built.nodes,
                edges: built.edges,
                built: rfc3339(now),
                age_seconds: 0,
            },
            now,
        ));
    }

    /// Records a failed refresh; returns how many failed in a row and since when.
    pub fn record_failure(
        &self,
        error: &RefreshError,
        started: SystemTime,
        elapsed: Duration,
    ) -> (u64, SystemTime) {
        let mut facts = self.lock();
        facts.failures += 1;
        let since = *facts.failing_since.get_or_insert(started);
        facts.last_refresh = Some(RefreshReport {
            started: rfc3339(started),
            duration_seconds: elapsed.as_secs_f64(),
            result: "failed",
            error: Some(ErrorReport {
                stage: error.stage().to_owned(),
                message: chain(error),
            }),
            consecutive_failures: facts.failures,
            failing_since: Some(rfc3339(since)),
        });
        if let RefreshError::GraphData(cause) = error {
            if let GraphDataError::Invalid {
                source_name,
                failure,
            } = cause.as_ref()
            {
                facts.graph_data = Some(GraphDataReport {
                    source: source_name.clone(),
                    digest: None,
                    changed: None,
                    age_seconds: None,
                    problems: problem_reports(failure),
                    warnings: Vec::new(),
                });
            }
        }
        (facts.failures, since)
    }

    /// The report as of now.
    pub fn report(&self) -> BuildReport {
        let now = SystemTime::now();
        let age = |t: SystemTime| now.duration_since(t).unwrap_or_default().as_secs();
        let facts = self.lock();
        let in_progress = self
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|p| p.read())
            .filter(|r| r.running)
            .map(|r| ProgressReport {
                started: r.started.map(rfc3339).unwrap_or_default(),
                tags_done: r.done,
                tags_total: r.total,
            });
        let mut graph_data = facts.graph_data.clone();
        if let (Some(report), Some(changed)) = (&mut graph_data, facts.graph_data_changed) {
            if report.digest.is_some() {
                report.age_seconds = Some(age(changed));
            }
        }
        BuildReport {
            in_progress,
            last_refresh: facts.last_refresh.clone(),
            releases: facts.releases.clone(),
            graph_data,
            graph: facts.graph.as_ref().map(|(graph, at)| GraphReport {
                age_seconds: age(*at),
                ..graph.clone()
            }),
        }
    }

    /// The scrape progress of the release source, if it is watched.
    pub fn progress(&self) -> Option<crate::scrape::ProgressReading> {
        self.progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|p| p.read())
    }

    /// The registry errors the scrapes met so far, by cause.
    pub fn registry_errors(&self) -> Vec<(&'static str, u64)> {
        self.progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|p| p.registry_errors())
            .unwrap_or_default()
    }

    /// When the graph-data content last changed, as a Unix time (for the metric).
    pub fn graph_data_changed(&self) -> Option<SystemTime> {
        self.lock().graph_data_changed
    }

    /// Why there is no graph yet, for readiness: the scrape's progress or the last error.
    pub fn not_ready_reason(&self) -> String {
        let report = self.report();
        let mut reason = match &report.last_refresh {
            Some(RefreshReport {
                error: Some(error),
                consecutive_failures,
                ..
            }) => format!(
                "no graph yet: {consecutive_failures} refresh(es) failed, the last at stage {}: {}",
                error.stage, error.message
            ),
            _ => "no graph yet: the first refresh has not finished".to_owned(),
        };
        if let Some(progress) = &report.in_progress {
            reason.push_str(&format!(
                "; a refresh is running, scraping tags {}/{}",
                progress.tags_done, progress.tags_total
            ));
        }
        reason
    }

    /// Why the graph served is degraded, on one line: tags that could not be read (and
    /// the releases kept for them), a held-back tag list shrink. `None` when neither.
    pub fn degraded_reason(&self) -> Option<String> {
        degraded_reason(self.lock().releases.as_ref()?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Facts> {
        self.facts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Facts {
    /// When content `digest` was first seen (now, if it differs from the last one).
    fn changed_since(&mut self, digest: &str) -> SystemTime {
        let same = self
            .graph_data
            .as_ref()
            .and_then(|g| g.digest.as_deref())
            .is_some_and(|d| d == digest);
        match (same, self.graph_data_changed) {
            (true, Some(changed)) => changed,
            _ => {
                let now = SystemTime::now();
                self.graph_data_changed = Some(now);
                now
            }
        }
    }
}

fn invalid_reports(invalid: &[InvalidRelease]) -> Vec<InvalidReleaseReport> {
    invalid
        .iter()
        .map(|i| InvalidReleaseReport {
            tag: i.tag.clone(),
            digest: i.digest.clone(),
            kind: i.kind.as_str(),
            reason: i.error.clone(),
        })
        .collect()
}

fn problem_reports(failure: &graph_data::repo::LoadFailure) -> Vec<ProblemReport> {
    use graph_data::repo::{LoadFailure, Problem};
    match failure {
        LoadFailure::Open { path, source } => vec![ProblemReport {
            file: path.display().to_string(),
            field: None,
            message: source.to_string(),
        }],
        LoadFailure::Invalid(errors) => errors
            .iter()
            .map(|e| match &e.problem {
                Problem::Field { field, message } => ProblemReport {
                    file: e.file.clone(),
                    field: Some(field.clone()),
                    message: message.clone(),
                },
                other => ProblemReport {
                    file: e.file.clone(),
                    field: None,
                    message: other.to_string(),
                },
            })
            .collect(),
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// RFC 3339 in UTC, to the second.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    utc(secs)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (proleptic Gregorian, days from civil).
pub fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_798_761_599), "2026-12-31T23:59:59Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn graph_data_problems_keep_file_and_field() {
        use graph_data::repo::{LoadError, LoadFailure, Problem};
        let failure = LoadFailure::Invalid(vec![
            LoadError::field("blocked-edges/4.1.10.yaml", "name", "missing"),
            LoadError::new("channels", Problem::Missing { why: "a directory" }),
        ]);
        assert_eq!(
            serde_json::to_value(problem_reports(&failure)).unwrap(),
            serde_json::json!([
                {"file": "blocked-edges/4.1.10.yaml", "field": "name", "message": "missing"},
                {"file": "channels", "message": "missing (a directory)"}
            ])
        );
    }
}
