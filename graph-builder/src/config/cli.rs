//! The graph-builder's command line: the shared groups ([`super::common`]) and the flags
//! only the graph-builder takes, the reference's names kept as canonical names or aliases.
//! Every flag reads `GB_<STEM>` from the environment when not given.
//!
//! Some flags exist so that every `gb.toml` key has one: the graph-data image
//! (`--graph-data-image.*`), the plugin list (`--plugins`) and the edge-add-remove option.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};

use super::common::{prefix_env, ListenArgs, ReleaseArgs};

/// The plugin names `[[plugin_settings]]` entries (and `--plugins`) may use.
pub const PLUGIN_NAMES: [&str; 4] = [
    RELEASE_SCRAPE,
    GRAPH_DATA_IMAGE,
    GRAPH_DATA_PARSE,
    EDGE_ADD_REMOVE,
];
/// Scrape release images from a registry.
pub const RELEASE_SCRAPE: &str = "release-scrape-dockerv2";
/// Fetch graph-data from a container image.
pub const GRAPH_DATA_IMAGE: &str = "dkrv2-secondary-metadata-scrape";
/// Apply a graph-data directory.
pub const GRAPH_DATA_PARSE: &str = "openshift-secondary-metadata-parse";
/// Add and remove edges from metadata, compute conditional edges.
pub const EDGE_ADD_REMOVE: &str = "edge-add-remove";

/// Every flag of the graph-builder.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "graph-builder",
    version,
    about = "Builds the update graph and keeps it fresh",
    // A flag given twice keeps its last value (a file may name one value twice).
    args_override_self = true,
    mut_args(|a| prefix_env(a, "GB_"))
)]
pub struct Cli {
    /// `-v` and `--log-format`, shared with the policy-engine.
    #[command(flatten)]
    pub log: crate::logging::LogArgs,

    /// TOML configuration file (the format the operator writes as gb.toml); the command
    /// line and the environment win over it.
    #[arg(short = 'c', long = "config", env = "CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// The main and status listeners.
    #[command(flatten)]
    pub listen: ListenArgs,

    /// Port of the public listener, which serves the graph-data tarball.
    #[arg(
        long = "service.public_port",
        visible_alias = "public_port",
        env = "SERVICE_PUBLIC_PORT",
        default_value_t = 8090
    )]
    pub public_port: u16,

    /// Seconds between the end of one refresh and the start of the next (must be > 0).
    #[arg(
        long = "service.pause_secs",
        visible_alias = "refresh-secs",
        env = "SERVICE_PAUSE_SECS",
        default_value_t = 300
    )]
    pub pause_secs: u64,

    /// Seconds a whole refresh may take before it is abandoned (must be > 0). Finite so
    /// that a registry that stops answering cannot stall refreshes forever; a cold scrape
    /// cut short keeps what it finished in the scrape cache, so the next one goes on.
    #[arg(
        long = "service.scrape_timeout",
        env = "SERVICE_SCRAPE_TIMEOUT",
        value_name = "SECS",
        default_value_t = 900
    )]
    pub scrape_timeout: u64,

    /// Where the releases and graph-data come from.
    #[command(flatten)]
    pub releases: ReleaseArgs,

    /// Metadata key that receives each release's manifest digest.
    #[arg(long = "upstream.registry.manifestref_key", env = "UPSTREAM_REGISTRY_MANIFESTREF_KEY", default_value = graph_data::keys::MANIFESTREF_KEY)]
    pub manifestref_key: String,

    /// How many tags are scraped at once.
    #[arg(
        long = "upstream.registry.fetch_concurrency",
        env = "UPSTREAM_REGISTRY_FETCH_CONCURRENCY",
        default_value_t = 16
    )]
    pub fetch_concurrency: usize,

    /// Graph-data from a container image.
    #[command(flatten)]
    pub graph_data_image: GraphDataImageArgs,

    /// The plugin chain a `[[plugin_settings]]` list names (comma-separated); empty:
    /// the default chain (scrape, then edge-add-remove).
    #[arg(long = "plugins", env = "PLUGINS", value_delimiter = ',', value_parser = PLUGIN_NAMES)]
    pub plugins: Vec<String>,

    /// Whether graph-data risks become conditional edges.
    #[arg(long = "edge-add-remove.include_conditional_edges", env = "EDGE_ADD_REMOVE_INCLUDE_CONDITIONAL_EDGES", action = clap::ArgAction::Set, default_value_t = true)]
    pub include_conditional_edges: bool,
}

/// Graph-data fetched from a container image (given a registry and repository).
#[derive(Debug, Clone, clap::Args)]
pub struct GraphDataImageArgs {
    /// Registry of the graph-data image: `host[:port]` or `http://host[:port]`.
    #[arg(
        long = "graph-data-image.registry",
        env = "GRAPH_DATA_IMAGE_REGISTRY",
        value_name = "HOST[:PORT]"
    )]
    pub registry: Option<String>,
    /// Repository of the graph-data image.
    #[arg(
        long = "graph-data-image.repository",
        env = "GRAPH_DATA_IMAGE_REPOSITORY",
        value_name = "REPO"
    )]
    pub repository: Option<String>,
    /// Tag of the graph-data image.
    #[arg(
        long = "graph-data-image.tag",
        env = "GRAPH_DATA_IMAGE_TAG",
        default_value = "latest"
    )]
    pub tag: String,
    /// Where the unpacked graph-data and `graph-data.tar.gz` are written.
    #[arg(
        long = "graph-data-image.output_directory",
        env = "GRAPH_DATA_IMAGE_OUTPUT_DIRECTORY",
        value_name = "DIR"
    )]
    pub output_directory: Option<PathBuf>,
    /// Graph-data root inside the image.
    #[arg(
        long = "graph-data-image.graph_data_path",
        env = "GRAPH_DATA_IMAGE_GRAPH_DATA_PATH",
        default_value = "/"
    )]
    pub graph_data_path: String,
    /// Docker `config.json` with credentials for that registry.
    #[arg(
        long = "graph-data-image.credentials",
        env = "GRAPH_DATA_IMAGE_CREDENTIALS",
        value_name = "PATH"
    )]
    pub credentials: Option<PathBuf>,
    /// Directory of extra CA certificates for that registry (default: `--releases-ca-dir`'s
    /// default).
    #[arg(
        long = "graph-data-image.ca_dir",
        env = "GRAPH_DATA_IMAGE_CA_DIR",
        value_name = "DIR"
    )]
    pub ca_dir: Option<PathBuf>,
}

/// The command line as given (program name first), checked by clap; the `-c` file is
/// read when the settings are loaded, which use this parse rather than parse again.
#[derive(Debug, Clone)]
pub struct Args {
    /// The raw arguments.
    pub argv: Vec<OsString>,
    /// What clap made of them.
    pub(super) matches: clap::ArgMatches,
}

impl Args {
    /// Checks `args` (the first item is the program name) against the flags.
    pub fn try_parse_from<I, T>(args: I) -> Result<Args, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let argv: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let matches = Cli::command().try_get_matches_from(&argv)?;
        Ok(Args { argv, matches })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Loading the settings uses the parse `try_parse_from` made, not a second one of
    /// `argv` (here changed after the parse to tell them apart).
    #[test]
    fn the_command_line_is_parsed_once() {
        let mut args = Args::try_parse_from(["graph-builder", "--service.port", "1234"]).unwrap();
        args.argv = ["graph-builder", "--service.port", "4321"]
            .map(OsString::from)
            .to_vec();
        let settings = crate::config::Settings::load(&args).unwrap();
        assert_eq!(settings.service.main.port(), 1234);
    }

    #[test]
    fn aliases() {
        let cli = Cli::try_parse_from([
            "graph-builder",
            "--address",
            "::1",
            "--port",
            "1",
            "--registry",
            "http://127.0.0.1:5000",
            "--repository",
            "ocp/release",
            "--credentials-file",
            "/c.json",
            "--public_port",
            "2",
        ])
        .unwrap();
        assert_eq!(cli.listen.service_address.to_string(), "::1");
        assert_eq!(cli.listen.service_port, 1);
        assert_eq!(cli.public_port, 2);
        assert_eq!(
            cli.releases.releases_registry.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(
            cli.releases.releases_repository.as_deref(),
            Some("ocp/release")
        );
        assert_eq!(cli.listen.status_port, 9080);
        assert_eq!(cli.pause_secs, 300);
    }

    #[test]
    fn mandatory_parameters_are_comma_separated() {
        let cli = Cli::try_parse_from([
            "graph-builder",
            "--service.mandatory_client_parameters",
            "channel,arch",
        ])
        .unwrap();
        assert_eq!(cli.listen.mandatory_client_parameters, ["channel", "arch"]);
    }
}
