//! `graph-data`: tooling for graph-data trees. `validate` checks a tree offline (its rules
//! live in the graph-data library); `plan`, `explain` and `gaps` ask the update planner; `image push` builds a graph-data image and pushes it to
//! a registry, which is why this binary lives in the graph-builder crate (the graph-data
//! crate does no network I/O).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use graph_builder::config::common::{prefix_env, RegistryAccessArgs};
use graph_builder::graph_data_push::{
    push_graph_data_image_with, ImageLayout, PushError, PushRequest, SignatureInputs,
};
use graph_builder::plan_cli::{self, Question};

/// The environment names of the shared flags here are this prefix and the stem the
/// services use (`GRAPH_DATA_RELEASES_REGISTRY`), as the services prefix theirs with
/// `GB_` and `PE_`.
const ENV_PREFIX: &str = "GRAPH_DATA_";

/// Tooling for graph-data trees (channels, blocked edges, raw metadata).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a graph-data directory or graph-data.tar.gz with the rules the service
    /// applies. Exit status: 0 valid, 1 problems (all printed), 2 usage or I/O error.
    Validate {
        /// The graph-data directory or `.tar.gz` file.
        path: PathBuf,
    },
    /// The update path with the fewest hops from one version to another (or to the newest
    /// reachable). Exit status: 0 a path, 1 none (reasons printed), 2 error.
    #[command(mut_args(|a| prefix_env(a, ENV_PREFIX)))]
    Plan {
        #[command(flatten)]
        source: graph_builder::plan_cli::SourceArgs,
        /// The current version.
        #[arg(long)]
        from: semver::Version,
        /// The target version; the newest reachable when absent.
        #[arg(long)]
        to: Option<semver::Version>,
    },
    /// Why the graph offers (or not) the update from one version to another. Exit
    /// status: 0 an edge, 1 none (reasons printed), 2 error.
    #[command(mut_args(|a| prefix_env(a, ENV_PREFIX)))]
    Explain {
        #[command(flatten)]
        source: graph_builder::plan_cli::SourceArgs,
        /// The current version.
        #[arg(long)]
        from: semver::Version,
        /// The target version.
        #[arg(long)]
        to: semver::Version,
    },
    /// The versions a channel lists that the mirror lacks, and which would help.
    #[command(mut_args(|a| prefix_env(a, ENV_PREFIX)))]
    Gaps {
        #[command(flatten)]
        source: graph_builder::plan_cli::SourceArgs,
    },
    /// Graph-data container images.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Validate a graph-data tree, build an OCI image of it and push it straight to a
    /// registry (no container engine); prints `<image>@<digest>`. Exit status: 0 pushed,
    /// 1 invalid graph-data (every problem printed, nothing pushed), 2 any other error.
    #[command(
        mut_args(|a| prefix_env(a, ENV_PREFIX)),
        // The names this command took before it shared the services' flags.
        mut_arg("releases_credentials", |a| a.visible_alias("credentials"))
    )]
    Push {
        /// The graph-data directory or `graph-data.tar.gz`.
        #[arg(long)]
        graph_data: PathBuf,
        /// `<registry>/<repository>:<tag>`; `http://` before the registry for plain HTTP.
        #[arg(long)]
        to: String,
        /// `oc-mirror`: data under /var/lib/cincinnati-graph-data on top of --base, with
        /// the command the operator's init container runs (graph-builder
        /// `graph_data_path = "/var/lib/cincinnati-graph-data"`). `flat`: data at the image
        /// root, no base and no command, so a flat image cannot run as the operator's init
        /// container (graph-builder `graph_data_path = "/"`).
        #[arg(long, value_enum, default_value_t = Layout::OcMirror)]
        layout: Layout,
        /// `<repository>:<tag>` of the base image, in the same registry (oc-mirror layout;
        /// for example a mirrored `ubi9/ubi:latest`).
        #[arg(long)]
        base: Option<String>,
        /// Credentials and CAs for the registry, with the services' flags
        /// (`--releases-credentials`, `--releases-ca-dir`).
        #[command(flatten)]
        access: RegistryAccessArgs,
        /// Release signatures to carry in the image's `signatures/` tree, from a tree laid
        /// out as `<algo>/<digest>/signature-<n>` (repeatable; merged after the
        /// graph-data's own `signatures/`).
        #[arg(long = "signatures", value_name = "DIR")]
        signatures: Vec<PathBuf>,
        /// Release signatures from a directory of signature ConfigMaps, as `oc adm release
        /// mirror` and oc-mirror write them (repeatable); written in the tree layout.
        #[arg(long = "signature-configmaps", value_name = "DIR")]
        signature_configmaps: Vec<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Layout {
    OcMirror,
    Flat,
}

fn validate(path: &std::path::Path) -> u8 {
    match graph_data::validate::run(
        path,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    ) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("graph-data: cannot write the report: {e:#}");
            graph_data::validate::EXIT_IO
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { path } => ExitCode::from(validate(&path)),
        Command::Plan { source, from, to } => {
            ExitCode::from(plan_cli::run(&source, &Question::Plan { from, to }))
        }
        Command::Explain { source, from, to } => {
            ExitCode::from(plan_cli::run(&source, &Question::Explain { from, to }))
        }
        Command::Gaps { source } => ExitCode::from(plan_cli::run(&source, &Question::Gaps)),
        Command::Image {
            command:
                ImageCommand::Push {
                    graph_data,
                    to,
                    layout,
                    base,
                    access,
                    signatures,
                    signature_configmaps,
                },
        } => {
            let signatures = SignatureInputs {
                trees: signatures,
                configmaps: signature_configmaps,
            };
            let layout = match (layout, base) {
                (Layout::Flat, _) => ImageLayout::Flat,
                (Layout::OcMirror, Some(base)) => ImageLayout::OcMirror { base },
                (Layout::OcMirror, None) => {
                    eprintln!(
                        "graph-data: the oc-mirror layout needs --base <repository:tag> \
                         (or use --layout flat)"
                    );
                    return ExitCode::from(2);
                }
            };
            let request = PushRequest {
                graph_data,
                to,
                layout,
                client: access.client_config(),
            };
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("graph-data: cannot start the async runtime: {e}");
                    return ExitCode::from(2);
                }
            };
            match runtime.block_on(push_graph_data_image_with(&request, &signatures)) {
                Ok(pushed) => {
                    println!("{}@{}", pushed.reference, pushed.digest);
                    ExitCode::SUCCESS
                }
                // Refused before anything was pushed: every problem, as `validate` prints.
                Err(PushError::Invalid { path, report }) => {
                    eprintln!("{report}");
                    eprintln!("graph-data: not pushing {}: invalid", path.display());
                    ExitCode::from(graph_data::validate::EXIT_PROBLEMS)
                }
                Err(e) => {
                    eprintln!("graph-data: {:#}", anyhow::Error::new(e));
                    ExitCode::from(2)
                }
            }
        }
    }
}
