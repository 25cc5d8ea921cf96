//! The refresh loop: build the graph at start, then again `pause` after the
//! end of each build; swap each good graph in atomically; on failure keep serving the
//! last good graph, log the error chain and count it.
//!
//! One build ([`Pipeline::build`]) is the reference's plugin chain as plain functions
//! called in order: scrape the releases, assemble the graph, fetch and load the
//! graph-data, apply it, run edge-add-remove, serialize. The release source is an enum,
//! so a build runs the same way against a registry or an OCI layout on disk.
//!
//! A build whose inputs (the releases' pull specs and the graph-data tarball) are those of
//! the last one reuses its graph JSON instead of assembling, applying and serializing
//! again (`reuse`): an unchanged mirror, the usual case, costs the scrape alone and holds
//! one graph JSON, not two.

mod reuse;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use graph_data::apply::ApplyError;
use graph_data::keys::chain;
use graph_data::provenance::Provenance;
use graph_data::Graph;
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use crate::assemble::{assemble, AssembleError};
use crate::config::{EdgeAddRemoveSettings, RefreshSettings, ReleaseSourceSettings};
use crate::cycles::leave_out_cycles;
use crate::graph_data_source::{self, GraphDataError, GraphDataSource};
use crate::graph_json::GraphJson;
use crate::scrape::{
    FailingTag, InvalidRelease, LayoutScraper, ScrapeError, ScrapeOutcome, Scraper, ShrinkHeldBack,
};
use crate::status::{AppState, Published};

/// Where release images come from.
#[derive(Debug)]
pub enum ReleaseSource {
    /// A registry repository; the scraper keeps its digest cache across refreshes.
    Registry(Box<Scraper>),
    /// An OCI image layout directory, re-read at each refresh with the same digest cache.
    OciLayout(LayoutScraper),
}

impl ReleaseSource {
    /// Builds the source the settings describe.
    pub fn new(settings: &ReleaseSourceSettings) -> Result<ReleaseSource, ScrapeError> {
        Ok(match settings {
            ReleaseSourceSettings::Registry(s) => {
                ReleaseSource::Registry(Box::new(Scraper::new((**s).clone())?))
            }
            ReleaseSourceSettings::OciLayout {
                dir,
                payload_repository,
            } => ReleaseSource::OciLayout(LayoutScraper::new(
                dir.clone(),
                payload_repository.clone(),
            )),
        })
    }

    /// The progress of its scrapes.
    pub fn progress(&self) -> Arc<crate::scrape::ScrapeProgress> {
        match self {
            ReleaseSource::Registry(scraper) => scraper.progress(),
            ReleaseSource::OciLayout(scraper) => scraper.progress(),
        }
    }

    async fn scrape(&self) -> Result<ScrapeOutcome, ScrapeError> {
        match self {
            ReleaseSource::Registry(scraper) => scraper.scrape().await,
            ReleaseSource::OciLayout(scraper) => scraper.scrape().await,
        }
    }
}

/// Why one refresh failed. The stage names are metric label values.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Listing or reading the release images failed.
    #[error("scraping the release images failed")]
    Scrape(#[source] Box<ScrapeError>),
    /// The scraped releases do not form a graph.
    #[error("assembling the graph failed")]
    Assemble(#[source] Box<AssembleError>),
    /// Graph-data could not be read or is invalid.
    #[error("loading graph-data failed")]
    GraphData(#[source] Box<GraphDataError>),
    /// Graph-data or release metadata could not be applied.
    #[error("applying graph-data failed")]
    Apply(#[source] Box<ApplyError>),
    /// The whole refresh took longer than allowed; `during` says where it was.
    #[error("the refresh did not finish within {limit:?} ({during})")]
    Timeout {
        /// The limit (`--service.scrape_timeout`).
        limit: Duration,
        /// What it was doing when stopped, e.g. `scraping tags 1200/2000`.
        during: String,
    },
}

impl RefreshError {
    /// The stage that failed.
    pub fn stage(&self) -> &'static str {
        match self {
            RefreshError::Scrape(_) => "scrape",
            RefreshError::Assemble(_) => "assemble",
            RefreshError::GraphData(_) => "graph_data",
            RefreshError::Apply(_) => "apply",
            RefreshError::Timeout { .. } => "timeout",
        }
    }
}

/// What a build reports besides the graph: what the scrape found and what the graph-data
/// said. The same for every kind of build, so `/status` and the metrics read it once.
#[derive(Debug, Clone)]
pub struct BuildFindings {
    /// Releases the scrape found.
    pub raw_releases: usize,
    /// Those releases per architecture.
    pub per_arch: BTreeMap<String, usize>,
    /// Release images left out: unusable, or poisoning the graph (cycles included).
    pub invalid: Vec<InvalidRelease>,
    /// Listed tags the scrape could not read (their releases kept when known).
    pub failing: Vec<FailingTag>,
    /// Set when the scrape held back a shrunken tag list and served the last good one.
    pub held_back_shrink: Option<ShrinkHeldBack>,
    /// The graph-data source and the `sha256:` of the tarball applied, if any.
    pub graph_data_source: Option<(String, String)>,
    /// The graph-data's warnings (`file: message`).
    pub graph_data_warnings: Vec<String>,
}

/// A graph built in memory, for a caller that serves it itself (one-process mode).
#[derive(Debug)]
pub struct BuiltGraph {
    /// The graph, graph-data applied.
    pub graph: Graph,
    /// Why edges were removed or made conditional, and what is missing.
    pub provenance: Provenance,
    /// The graph-data tarball applied, if any.
    pub graph_data: Option<Bytes>,
    /// What the scrape found and the graph-data said.
    pub findings: BuildFindings,
    /// The sha256 of what the graph was built from (every release's pull spec, in version
    /// order, and the graph-data tarball): equal inputs build an equal graph, so a caller
    /// can skip publishing a graph that cannot have changed.
    pub inputs: [u8; 32],
    /// Where the time went.
    pub timings: Timings,
}

/// What [`Pipeline::build_graph_since`] made.
#[derive(Debug)]
pub enum GraphBuild {
    /// A graph built from new inputs.
    New(Box<BuiltGraph>),
    /// The inputs are the ones the caller's graph was built from: no graph.
    Unchanged(Box<UnchangedGraph>),
}

impl GraphBuild {
    /// The graph of a build that had no `last` to compare with.
    fn into_new(self) -> BuiltGraph {
        match self {
            GraphBuild::New(built) => *built,
            GraphBuild::Unchanged(_) => unreachable!("nothing to compare with, so built"),
        }
    }
}

/// A build whose inputs did not change: what it found, without the graph.
#[derive(Debug)]
pub struct UnchangedGraph {
    /// What the scrape found and the graph-data said.
    pub findings: BuildFindings,
    /// The inputs' fingerprint, equal to the caller's.
    pub inputs: [u8; 32],
    /// Where the time went (no assembly, apply or serialization).
    pub timings: Timings,
}

/// A successful build, serialized for the graph-builder's own routes.
#[derive(Debug)]
pub struct Built {
    /// The raw graph JSON.
    pub graph_json: GraphJson,
    /// Why edges were removed or made conditional, and what is missing (JSON).
    pub provenance: Bytes,
    /// The graph-data tarball applied, if any.
    pub graph_data: Option<Bytes>,
    /// What the scrape found and the graph-data said.
    pub findings: BuildFindings,
    /// Nodes of the graph.
    pub nodes: usize,
    /// Unconditional edges of the graph.
    pub edges: usize,
    /// Where the time went.
    pub timings: Timings,
}

/// Time spent in each step of a build.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Listing and reading the release images.
    pub scrape: Duration,
    /// Fetching, unpacking and validating graph-data.
    pub graph_data: Duration,
    /// Building the graph from the releases.
    pub assemble: Duration,
    /// Applying graph-data and edge-add-remove.
    pub apply: Duration,
    /// Writing the JSON.
    pub serialize: Duration,
}

/// The steps of one refresh.
#[derive(Debug)]
pub struct Pipeline {
    /// Release images.
    pub releases: ReleaseSource,
    /// Graph-data, if configured.
    pub graph_data: Option<GraphDataSource>,
    /// Whether edge-add-remove runs, and how.
    pub edge_add_remove: Option<EdgeAddRemoveSettings>,
    /// What the last serialized build made of its inputs.
    last: Mutex<Option<reuse::Reusable>>,
}

/// What a build gathered before it turns it into a graph.
struct Gathered {
    outcome: ScrapeOutcome,
    /// The graph-data source's name and tarball.
    tarball: Option<(String, Bytes)>,
    /// The fingerprint of both (`inputs_digest`).
    inputs: [u8; 32],
    timings: Timings,
}

impl Pipeline {
    /// A pipeline over these sources.
    pub fn new(
        releases: ReleaseSource,
        graph_data: Option<GraphDataSource>,
        edge_add_remove: Option<EdgeAddRemoveSettings>,
    ) -> Pipeline {
        Pipeline {
            releases,
            graph_data,
            edge_add_remove,
            last: Mutex::default(),
        }
    }

    /// Runs every step once and serializes the graph (the graph-builder's raw graph JSON);
    /// when the inputs are those of the last build, its graph JSON is reused.
    pub async fn build(&self) -> Result<Built, RefreshError> {
        let gathered = self.gather().await?;
        let inputs = gathered.inputs;
        let last = self.last.lock().expect("pipeline lock").clone();
        if let Some(last) = last.filter(|last| last.inputs == inputs) {
            return Ok(last.reuse(gathered.outcome, gathered.timings));
        }
        let edge_add_remove = self.edge_add_remove;
        let built = tokio::task::spawn_blocking(move || process(gathered, edge_add_remove, None))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?
            .into_new();
        // Serializing a full-scale graph is CPU work: off the async workers too.
        let serialized = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let graph_json = GraphJson::encode(&built.graph);
            let (nodes, edges) = (built.graph.len(), built.graph.edge_count());
            // Gone before the provenance is written, so the two never add up at the peak.
            drop(built.graph);
            let provenance = Bytes::from(built.provenance.to_json());
            let mut timings = built.timings;
            timings.serialize = started.elapsed();
            Built {
                graph_json,
                provenance,
                graph_data: built.graph_data,
                findings: built.findings,
                nodes,
                edges,
                timings,
            }
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        *self.last.lock().expect("pipeline lock") = Some(reuse::Reusable::new(inputs, &serialized));
        Ok(serialized)
    }

    /// Runs every step once and returns the graph itself, not JSON.
    pub async fn build_graph(&self) -> Result<BuiltGraph, RefreshError> {
        Ok(self.build_graph_since(None).await?.into_new())
    }

    /// As [`Pipeline::build_graph`], but when the inputs are those `last` fingerprints
    /// (see [`BuiltGraph::inputs`]) the graph is not assembled again: the caller holds it
    /// already. Everything else (the scrape's findings, the graph-data's warnings) is
    /// as a full build reports it.
    pub async fn build_graph_since(
        &self,
        last: Option<&[u8; 32]>,
    ) -> Result<GraphBuild, RefreshError> {
        let gathered = self.gather().await?;
        let edge_add_remove = self.edge_add_remove;
        let last = last.copied();
        // Assembly and graph-data are CPU work on a graph of thousands of nodes: keep it
        // off the async workers.
        tokio::task::spawn_blocking(move || process(gathered, edge_add_remove, last))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// Scrapes the releases and fetches the graph-data.
    async fn gather(&self) -> Result<Gathered, RefreshError> {
        let mut timings = Timings::default();
        let started = Instant::now();
        let outcome = self
            .releases
            .scrape()
            .await
            .map_err(|e| RefreshError::Scrape(Box::new(e)))?;
        for invalid in &outcome.invalid {
            tracing::warn!(tag = %invalid.tag, digest = %invalid.digest, kind = invalid.kind.as_str(), error = %invalid.error, "release image ignored");
        }
        timings.scrape = started.elapsed();
        let started = Instant::now();
        let tarball = match &self.graph_data {
            Some(source) => Some((
                source.name(),
                source
                    .fetch()
                    .await
                    .map_err(|e| RefreshError::GraphData(Box::new(e)))?,
            )),
            None => None,
        };
        timings.graph_data = started.elapsed();
        let inputs = inputs_digest(&outcome, tarball.as_ref().map(|(_, bytes)| bytes));
        Ok(Gathered {
            outcome,
            tarball,
            inputs,
            timings,
        })
    }
}

/// Builds the graph, or, when the inputs are those `last` fingerprints, everything but the
/// graph.
fn process(
    gathered: Gathered,
    edge_add_remove: Option<EdgeAddRemoveSettings>,
    last: Option<[u8; 32]>,
) -> Result<GraphBuild, RefreshError> {
    let Gathered {
        outcome,
        tarball,
        inputs,
        mut timings,
    } = gathered;
    let started = Instant::now();
    let ScrapeOutcome {
        mut releases,
        mut invalid,
        failing,
        held_back_shrink,
        ..
    } = outcome;
    leave_out_cycles(&mut releases, &mut invalid);
    let unchanged = last == Some(inputs);
    let graph = if unchanged {
        None
    } else {
        Some(assemble(&releases).map_err(|e| RefreshError::Assemble(Box::new(e)))?)
    };
    // The releases (hundreds of `previous` versions each) are in the graph now; holding
    // them through apply and serialize would add tens of MB to the peak at full scale.
    let raw_releases = releases.len();
    let mut per_arch = BTreeMap::new();
    for release in &releases {
        *per_arch.entry(release.arch.clone()).or_insert(0) += 1;
    }
    drop(releases);
    timings.assemble = started.elapsed();
    let started = Instant::now();
    let data = match &tarball {
        Some((source, bytes)) => {
            let data = graph_data_source::load(source, bytes)
                .map_err(|e| RefreshError::GraphData(Box::new(e)))?;
            for warning in &data.warnings {
                tracing::warn!(%source, %warning, "graph-data");
            }
            Some(data)
        }
        None => None,
    };
    timings.graph_data += started.elapsed();
    let graph_data_source = tarball
        .as_ref()
        .map(|(source, bytes)| (source.clone(), crate::report::sha256(bytes)));
    let graph_data_warnings = data
        .as_ref()
        .map(|d| d.warnings.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    let findings = BuildFindings {
        raw_releases,
        per_arch,
        invalid,
        failing,
        held_back_shrink,
        graph_data_source,
        graph_data_warnings,
    };
    let Some(mut graph) = graph else {
        return Ok(GraphBuild::Unchanged(Box::new(UnchangedGraph {
            findings,
            inputs,
            timings,
        })));
    };
    let started = Instant::now();
    let risks = edge_add_remove.map(|settings| match &data {
        Some(data) if settings.include_conditional_edges => data.risks.as_slice(),
        _ => &[],
    });
    // Applies graph-data and edge-add-remove, recording why edges went (the planner).
    let provenance = graph_data::provenance::apply_recorded(&mut graph, data.as_ref(), risks)
        .map_err(|e| RefreshError::Apply(Box::new(e)))?;
    drop(data);
    timings.apply = started.elapsed();
    Ok(GraphBuild::New(Box::new(BuiltGraph {
        graph,
        provenance,
        graph_data: tarball.map(|(_, bytes)| bytes),
        findings,
        inputs,
        timings,
    })))
}

/// The sha256 of the releases' pull specs (which name their manifest digests) in version
/// order, then of the graph-data tarball.
fn inputs_digest(outcome: &ScrapeOutcome, tarball: Option<&Bytes>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for release in &outcome.releases {
        hasher.update(release.version.to_string().as_bytes());
        hasher.update([0]);
        hasher.update(release.payload.as_bytes());
        hasher.update([0]);
    }
    hasher.update([0xff]);
    if let Some(tarball) = tarball {
        hasher.update(tarball);
    }
    hasher.finalize().into()
}

/// Runs refreshes until `stop` is cancelled: the first at once, the next `pause` after
/// the end of the previous one. A refresh in progress is abandoned when `stop` fires.
pub(crate) async fn run(
    pipeline: Arc<Pipeline>,
    state: Arc<AppState>,
    settings: RefreshSettings,
    stop: CancellationToken,
) {
    state.set_live(true);
    state
        .metrics
        .build_info
        .with_label_values(&[crate::GIT_COMMIT, crate::VERSION])
        .inc();
    let mut first = true;
    loop {
        state.metrics.upstream_scrapes_total.inc();
        let started = Instant::now();
        let started_at = SystemTime::now();
        // A timed-out refresh is dropped at its next await point, and the blocking layer
        // readers it started stop with their downloads. Unlike the reference, no runtime
        // or thread is leaked.
        let limit = settings.timeout;
        let attempt = async {
            let build = pipeline.build();
            tokio::pin!(build);
            tokio::select! {
                result = &mut build => result,
                // Read while the build is still alive: dropping it ends its progress.
                () = tokio::time::sleep(limit) => Err(RefreshError::Timeout {
                    limit,
                    during: stopped_during(state.board.progress()),
                }),
            }
        };
        let result = tokio::select! {
            result = attempt => result,
            () = stop.cancelled() => return,
        };
        let elapsed = started.elapsed();
        match result {
            Ok(built) => {
                state.board.record_success(&built, started_at, elapsed);
                record_success(&state, built, elapsed, first);
                first = false;
            }
            Err(error) => {
                state.board.record_failure(&error, started_at, elapsed);
                record_failure(&state, &error);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(settings.pause) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Where a timed-out refresh was, from its scrape's progress: the admin's first clue to
/// whether the registry or the graph-data was slow.
fn stopped_during(progress: Option<crate::scrape::ProgressReading>) -> String {
    match progress {
        Some(p) if p.running && p.total == 0 => "while listing tags".to_owned(),
        Some(p) if p.running => format!("while scraping tags, {}/{} done", p.done, p.total),
        Some(_) => "after the scrape, while loading graph-data or building the graph".to_owned(),
        None => "before the scrape started".to_owned(),
    }
}

fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn record_success(state: &AppState, built: Built, elapsed: Duration, first: bool) {
    let m = &state.metrics;
    let found = &built.findings;
    m.upstream_raw_releases.set(found.raw_releases as i64);
    m.final_releases.set(built.nodes as i64);
    m.final_edges.set(built.edges as i64);
    m.invalid_releases.set(found.invalid.len() as i64);
    m.record_scrape_health(
        &found.invalid,
        &found.failing,
        found.held_back_shrink.is_some(),
    );
    if first {
        m.initial_upstream_scrape_duration
            .set(elapsed.as_secs_f64());
    } else {
        m.upstream_scrapes_duration.observe(elapsed.as_secs_f64());
    }
    let now = SystemTime::now();
    m.last_successful_refresh_timestamp.set(epoch_secs(now));
    m.refresh_failing_since_timestamp.set(0.0);
    if let Some(failure) = state.failure() {
        tracing::info!(failed_refreshes = failure.count, "refresh recovered");
    }
    let (releases, nodes, edges, timings) =
        (found.raw_releases, built.nodes, built.edges, built.timings);
    // Published first, so whoever reads the record finds the graph served.
    state.publish(Published {
        graph_json: built.graph_json,
        provenance: built.provenance,
        graph_data: built.graph_data,
        at: now,
    });
    tracing::info!(
        releases,
        nodes,
        edges,
        seconds = elapsed.as_secs_f64(),
        scrape_secs = timings.scrape.as_secs_f64(),
        graph_data_secs = timings.graph_data.as_secs_f64(),
        assemble_secs = timings.assemble.as_secs_f64(),
        apply_secs = timings.apply.as_secs_f64(),
        serialize_secs = timings.serialize.as_secs_f64(),
        "graph refreshed"
    );
}

fn record_failure(state: &AppState, error: &RefreshError) {
    let m = &state.metrics;
    m.upstream_errors_total.inc();
    m.refresh_errors_total
        .with_label_values(&[error.stage()])
        .inc();
    let failure = state.record_failure(error.stage(), chain(error));
    m.refresh_failing_since_timestamp
        .set(epoch_secs(failure.since));
    let serving = match state.current() {
        Some(p) => format!("the graph built at {:.0} (epoch seconds)", epoch_secs(p.at)),
        None => "no graph yet".to_owned(),
    };
    tracing::error!(
        stage = failure.stage,
        failed_refreshes = failure.count,
        failing_since = epoch_secs(failure.since),
        serving = %serving,
        "refresh failed: {}",
        failure.message
    );
}
