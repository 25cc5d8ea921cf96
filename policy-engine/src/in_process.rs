//! One-process mode: the policy-engine builds the graph itself with the
//! graph-builder library, from release images (an OCI layout on disk or a registry) and
//! graph-data, and hands each good graph, as built, to the refresh loop
//! ([`crate::refresh`]).
//!
//! The build is the graph-builder's own [`Pipeline`] (scrape, assemble, graph-data,
//! edge-add-remove), so one process and two processes serve the same graph. A failed
//! build keeps the last good graph; it is logged, counted in
//! `cincinnati_pe_graph_build_errors_total{stage}`, dated in
//! `cincinnati_pe_refresh_failing_since_timestamp_seconds` and shown by `/readyz`.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use graph_builder::config::common::ReleaseArgs;
use graph_builder::config::{EdgeAddRemoveSettings, ReleaseSourceSettings};
use graph_builder::graph_data_source::GraphDataSource;
use graph_builder::refresh::{GraphBuild, Pipeline, ReleaseSource};
use graph_builder::report::StatusBoard;
use graph_builder::scrape::ScrapeSettings;
use graph_data::keys::chain;

use crate::error::ApiError;
use crate::refresh::{Failure, Produced};

/// Where payload pull specs point when the layout's images are not said to be mirrored
/// elsewhere: the reference's default repository.
pub const DEFAULT_PAYLOAD_REPOSITORY: &str = "quay.io/openshift-release-dev/ocp-release";

/// The flags that turn on one-process mode: a release source (the graph-builder's flags,
/// [`ReleaseArgs`]) and what goes with it.
#[derive(Debug, Clone, Args)]
pub struct InProcessArgs {
    /// Release images (an OCI layout or a registry), registry access and graph-data.
    #[command(flatten)]
    pub releases: ReleaseArgs,
    /// `host[:port]/repository` the payloads of the OCI layout are pulled from.
    #[arg(
        long = "payload-repository",
        env = "PAYLOAD_REPOSITORY",
        default_value = DEFAULT_PAYLOAD_REPOSITORY
    )]
    pub payload_repository: String,
    /// Seconds between the end of one in-process build and the start of the next.
    #[arg(
        long = "refresh-secs",
        visible_alias = "service.pause_secs",
        env = "REFRESH_SECS",
        default_value_t = 300
    )]
    pub refresh_secs: u64,
}

/// What one-process mode builds from, validated.
#[derive(Debug, Clone)]
pub struct InProcessSettings {
    /// The release images.
    pub releases: ReleaseSourceSettings,
    /// The graph-data directory or tarball, if any.
    pub graph_data: Option<PathBuf>,
    /// Pause between builds.
    pub refresh: Duration,
}

impl InProcessArgs {
    /// The in-process settings, or `None` when no release source is given (the graph then
    /// comes from the upstream graph-builder).
    pub fn settings(&self) -> Option<InProcessSettings> {
        let r = &self.releases;
        let releases = match (&r.releases_oci_layout, &r.releases_registry) {
            (Some(dir), _) => ReleaseSourceSettings::OciLayout {
                dir: dir.clone(),
                payload_repository: self.payload_repository.clone(),
            },
            (None, Some(registry)) => ReleaseSourceSettings::Registry(Box::new(ScrapeSettings {
                registry: registry.clone(),
                repository: r.releases_repository.clone().unwrap_or_default(),
                client: r.access.client_config(),
                ..ScrapeSettings::default()
            })),
            (None, None) => return None,
        };
        Some(InProcessSettings {
            releases,
            graph_data: r.graph_data.clone(),
            refresh: Duration::from_secs(self.refresh_secs.max(1)),
        })
    }
}

/// The in-process producer: the graph-builder's pipeline, run here.
#[derive(Debug)]
pub struct InProcess {
    pipeline: Pipeline,
    refresh: Duration,
}

impl InProcess {
    /// Sets up the release source (registry client, CA directory) and the pipeline.
    pub fn new(settings: &InProcessSettings) -> Result<InProcess, ApiError> {
        let releases = ReleaseSource::new(&settings.releases).map_err(|error| {
            ApiError::UpstreamFetch(format!(
                "cannot set up the release source: {}",
                chain(&error)
            ))
        })?;
        tracing::info!(releases = %settings.releases.describe(), graph_data = ?settings.graph_data, "building the graph in-process");
        Ok(InProcess {
            pipeline: Pipeline::new(
                releases,
                settings.graph_data.clone().map(GraphDataSource::Path),
                // As the operator's chain: previous/next add-remove, risks as conditional
                // edges.
                Some(EdgeAddRemoveSettings {
                    include_conditional_edges: true,
                }),
            ),
            refresh: settings.refresh,
        })
    }

    pub(crate) fn refresh(&self) -> Duration {
        self.refresh
    }

    /// Shows the progress of the builds' scrapes on `board`.
    pub(crate) fn attach(&self, board: &StatusBoard) {
        board.watch_progress(self.pipeline.releases.progress());
    }

    /// One build, recorded on `board` for `/status`: `Unchanged` when the releases and
    /// graph-data are those `last` fingerprints. The graph is handed over as built, with
    /// no JSON in between, with its provenance for the planner.
    pub(crate) async fn produce(
        &self,
        last: Option<&[u8; 32]>,
        board: &StatusBoard,
    ) -> Result<Produced, Failure> {
        let (started, started_at) = (Instant::now(), SystemTime::now());
        // Unchanged inputs are not assembled again: the graph served is theirs.
        let result = self.pipeline.build_graph_since(last).await;
        match &result {
            Ok(GraphBuild::New(built)) => {
                board.record_built_graph(built, started_at, started.elapsed())
            }
            Ok(GraphBuild::Unchanged(build)) => {
                board.record_unchanged_graph(build, started_at, started.elapsed())
            }
            Err(error) => {
                board.record_failure(error, started_at, started.elapsed());
            }
        }
        match result {
            Ok(GraphBuild::Unchanged(_)) => Ok(Produced::Unchanged),
            Ok(GraphBuild::New(built)) => {
                let built = *built;
                tracing::info!(
                    releases = built.findings.raw_releases,
                    nodes = built.graph.len(),
                    edges = built.graph.edge_count(),
                    "graph built in-process"
                );
                Ok(Produced::New {
                    graph: built.graph,
                    fingerprint: built.inputs,
                    provenance: Some(Box::new(built.provenance)),
                })
            }
            Err(error) => {
                let stage = error.stage();
                // Anonymous clients learn which stage failed; the registry, repository,
                // user name and the registry's own words go to the log and `/status`.
                Err(Failure {
                    error: ApiError::UpstreamFetch(format!(
                        "building the graph ({stage}) failed; the service log and status port say why"
                    )),
                    detail: Some(format!("building the graph ({stage}): {}", chain(&error))),
                    build_stage: Some(stage),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::{Cli, ConfigError};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("pe").chain(args.iter().copied()))
    }

    #[test]
    fn a_layout_turns_on_one_process_mode_with_the_operators_prefix() {
        let s = parse(&["--releases-oci-layout", "data/l", "--graph-data", "gd"])
            .unwrap()
            .settings()
            .unwrap();
        assert_eq!(s.path_prefix, "/api/upgrades_info");
        let p = s.in_process.unwrap();
        assert_eq!(
            p.releases,
            ReleaseSourceSettings::OciLayout {
                dir: "data/l".into(),
                payload_repository: DEFAULT_PAYLOAD_REPOSITORY.into(),
            }
        );
        assert_eq!(p.graph_data, Some("gd".into()));
        assert_eq!(p.refresh, Duration::from_secs(300));
        let s = parse(&["--releases-oci-layout", "l", "--service.path_prefix", ""])
            .unwrap()
            .settings()
            .unwrap();
        assert_eq!(s.path_prefix, "", "an explicit prefix wins");
        // No source: today's behaviour, the upstream graph-builder and no prefix.
        let s = parse(&[]).unwrap().settings().unwrap();
        assert!(s.in_process.is_none());
        assert_eq!(s.path_prefix, "");
    }

    #[test]
    fn a_registry_source_carries_repository_credentials_and_ca() {
        let s = parse(&[
            "--releases-registry",
            "http://127.0.0.1:5000",
            "--releases-repository",
            "ocp/release",
            "--releases-credentials",
            "/run/config.json",
            "--refresh-secs",
            "0",
        ])
        .unwrap()
        .settings()
        .unwrap();
        let p = s.in_process.unwrap();
        let ReleaseSourceSettings::Registry(scrape) = p.releases else {
            panic!("{:?}", p.releases)
        };
        assert_eq!(scrape.registry, "http://127.0.0.1:5000");
        assert_eq!(scrape.repository, "ocp/release");
        assert_eq!(
            scrape.client.credentials_path,
            Some("/run/config.json".into())
        );
        assert_eq!(
            scrape.client.ca_dir,
            Some("/etc/pki/ca-trust/extracted".into())
        );
        assert_eq!(p.refresh, Duration::from_secs(1), "0 would spin");
    }

    #[test]
    fn contradictory_or_incomplete_sources_are_refused() {
        for args in [
            &[
                "--releases-oci-layout",
                "l",
                "--releases-registry",
                "r",
                "--releases-repository",
                "x",
            ][..],
            &[
                "--releases-oci-layout",
                "l",
                "--upstream.cincinnati.url",
                "http://127.0.0.1:8080/graph",
            ],
            &["--releases-registry", "r"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
        let err = parse(&["--graph-data", "gd"])
            .unwrap()
            .settings()
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::GraphDataWithoutReleases),
            "{err}"
        );
        assert!(err.to_string().contains("--graph-data"));
    }

    fn sample_settings() -> InProcessSettings {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        parse(&[
            "--releases-oci-layout",
            root.join("data/sample-releases").to_str().unwrap(),
            "--graph-data",
            root.join("data/graph-data").to_str().unwrap(),
        ])
        .unwrap()
        .settings()
        .unwrap()
        .in_process
        .unwrap()
    }

    #[tokio::test]
    async fn an_unchanged_rebuild_is_unchanged_and_the_graph_is_the_graph_builders() {
        let settings = sample_settings();
        let producer = InProcess::new(&settings).unwrap();
        let board = StatusBoard::default();
        let Produced::New {
            graph, fingerprint, ..
        } = producer.produce(None, &board).await.unwrap()
        else {
            panic!("the first build is new")
        };
        assert_eq!(graph.len(), 328);
        let first = board.report();
        assert!(matches!(
            producer.produce(Some(&fingerprint), &board).await.unwrap(),
            Produced::Unchanged
        ));
        // Not assembled again, and `/status` says the same of releases and graph.
        let unchanged = board.report();
        assert_eq!(unchanged.releases, first.releases);
        let facts = |r: &graph_builder::report::BuildReport| {
            r.graph
                .as_ref()
                .map(|g| (g.revision.clone(), g.nodes, g.edges))
        };
        assert_eq!(facts(&unchanged), facts(&first));
        assert_eq!(facts(&first).unwrap().1, 328);
        assert_eq!(
            unchanged.last_refresh.as_ref().map(|r| r.result),
            Some("succeeded")
        );
        let Produced::New {
            fingerprint: again, ..
        } = producer.produce(Some(&[0; 32]), &board).await.unwrap()
        else {
            panic!("another fingerprint builds again")
        };
        assert_eq!(again, fingerprint);
        // The graph handed over is, byte for byte, the graph-builder's raw graph.
        let built = producer.pipeline.build().await.unwrap();
        assert_eq!(graph_data::wire::to_json(&graph), built.graph_json.to_vec());
    }
}
