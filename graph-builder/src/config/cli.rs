//! The command line: one clap struct whose flag names, aliases and defaults are the
//! reference's, each with an environment-variable fallback.
//!
//! Our additions are flags only the reference lacks: `--upstream.oci_layout` (release
//! images from an OCI layout directory) and `--upstream.graph_data` (a graph-data
//! directory or `graph-data.tar.gz` without writing a `[[plugin_settings]]` file).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};

/// Every flag of the graph-builder. Flags and their environment variables win over the
/// `-c` file; the file wins over the defaults written here.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "graph-builder",
    version,
    about = "Builds the update graph and keeps it fresh"
)]
pub struct Cli {
    /// `-v` and `--log-format`, shared with the policy-engine.
    #[command(flatten)]
    pub log: crate::logging::LogArgs,

    /// TOML configuration file (the format the operator writes as gb.toml).
    #[arg(short = 'c', long = "config", env = "GB_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Address of the main (graph) and public (graph-data) listeners.
    #[arg(
        long = "service.address",
        visible_alias = "address",
        env = "GB_SERVICE_ADDRESS",
        default_value = "127.0.0.1"
    )]
    pub service_address: IpAddr,

    /// Port of the main listener, which serves the graph.
    #[arg(
        long = "service.port",
        visible_alias = "port",
        env = "GB_SERVICE_PORT",
        default_value_t = 8080
    )]
    pub service_port: u16,

    /// Port of the public listener, which serves the graph-data tarball.
    #[arg(
        long = "service.public_port",
        visible_alias = "public_port",
        env = "GB_SERVICE_PUBLIC_PORT",
        default_value_t = 8090
    )]
    pub service_public_port: u16,

    /// Path prefix of every route on the main and public listeners.
    #[arg(
        long = "service.path_prefix",
        env = "GB_SERVICE_PATH_PREFIX",
        default_value = ""
    )]
    pub service_path_prefix: String,

    /// Query parameters every graph request must carry (comma-separated).
    #[arg(
        long = "service.mandatory_client_parameters",
        env = "GB_SERVICE_MANDATORY_CLIENT_PARAMETERS",
        value_delimiter = ','
    )]
    pub service_mandatory_client_parameters: Vec<String>,

    /// Seconds between the end of one refresh and the start of the next (must be > 0).
    #[arg(
        long = "service.pause_secs",
        env = "GB_SERVICE_PAUSE_SECS",
        default_value_t = 300
    )]
    pub service_pause_secs: u64,

    /// Seconds a whole refresh may take before it is abandoned (default: no limit).
    #[arg(
        long = "service.scrape_timeout",
        env = "GB_SERVICE_SCRAPE_TIMEOUT",
        value_name = "SECS"
    )]
    pub service_scrape_timeout: Option<u64>,

    /// Accepted for compatibility; tracing export is not supported and this is ignored.
    #[arg(long = "service.tracing_endpoint", env = "GB_SERVICE_TRACING_ENDPOINT")]
    pub service_tracing_endpoint: Option<String>,

    /// Address of the status listener (liveness, readiness, metrics).
    #[arg(
        long = "status.address",
        env = "GB_STATUS_ADDRESS",
        default_value = "127.0.0.1"
    )]
    pub status_address: IpAddr,

    /// Port of the status listener.
    #[arg(long = "status.port", env = "GB_STATUS_PORT", default_value_t = 9080)]
    pub status_port: u16,

    /// Accepted for compatibility and ignored, as by the reference.
    #[arg(long = "upstream.method", env = "GB_UPSTREAM_METHOD")]
    pub upstream_method: Option<String>,

    /// Registry holding the release images: `host[:port]`, `http://…` or `https://…`.
    #[arg(
        long = "upstream.registry.url",
        visible_alias = "registry",
        env = "GB_UPSTREAM_REGISTRY_URL",
        default_value = "quay.io"
    )]
    pub upstream_registry_url: String,

    /// Repository of the release images in that registry.
    #[arg(
        long = "upstream.registry.repository",
        visible_alias = "repository",
        env = "GB_UPSTREAM_REGISTRY_REPOSITORY",
        default_value = "openshift-release-dev/ocp-release"
    )]
    pub upstream_registry_repository: String,

    /// Docker `config.json` with the registry credentials.
    #[arg(
        long = "upstream.registry.credentials_path",
        visible_aliases = ["credentials-file", "releases-credentials"],
        env = "GB_UPSTREAM_REGISTRY_CREDENTIALS_PATH"
    )]
    pub upstream_registry_credentials_path: Option<PathBuf>,

    /// Directory of extra CA certificates (every PEM bundle, two levels deep) for the
    /// release registry, on top of the system roots; wins over a `release-scrape-dockerv2`
    /// entry's `root_certificate_dir`. `--releases-ca-dir` is the policy-engine's name.
    #[arg(
        long = "upstream.registry.ca_dir",
        visible_aliases = ["releases-ca-dir", "ca-dir"],
        env = "GB_UPSTREAM_REGISTRY_CA_DIR",
        value_name = "DIR"
    )]
    pub upstream_registry_ca_dir: Option<PathBuf>,

    /// Metadata key that receives each release's manifest digest.
    #[arg(long = "upstream.registry.manifestref_key", env = "GB_UPSTREAM_REGISTRY_MANIFESTREF_KEY", default_value = graph_data::keys::MANIFESTREF_KEY)]
    pub upstream_registry_manifestref_key: String,

    /// How many tags are scraped at once.
    #[arg(
        long = "upstream.registry.fetch_concurrency",
        env = "GB_UPSTREAM_REGISTRY_FETCH_CONCURRENCY",
        default_value_t = 16
    )]
    pub upstream_registry_fetch_concurrency: usize,

    /// Read release images from this OCI image layout directory instead of the registry;
    /// payloads still name the registry and repository above.
    #[arg(
        long = "upstream.oci_layout",
        env = "GB_UPSTREAM_OCI_LAYOUT",
        value_name = "DIR"
    )]
    pub upstream_oci_layout: Option<PathBuf>,

    /// Graph-data to apply: a directory (re-read every refresh) or a `.tar.gz` file.
    #[arg(
        long = "upstream.graph_data",
        env = "GB_UPSTREAM_GRAPH_DATA",
        value_name = "PATH"
    )]
    pub upstream_graph_data: Option<PathBuf>,
}

/// The parsed command line, and which of its values were given (on the command line or
/// through the environment) rather than defaulted.
#[derive(Debug, Clone)]
pub struct Args {
    /// The values, defaults filled in.
    pub cli: Cli,
    /// Ids (field names) of the arguments that were given.
    pub given: BTreeSet<String>,
}

impl Args {
    /// Parses `args` (the first item is the program name).
    pub fn try_parse_from<I, T>(args: I) -> Result<Args, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let command = Cli::command();
        let matches = command.clone().try_get_matches_from(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        let given = command
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .filter(|id| {
                matches!(
                    matches.value_source(id),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
            })
            .map(str::to_owned)
            .collect();
        Ok(Args { cli, given })
    }

    /// Whether the argument with this id (the [`Cli`] field name) was given.
    pub fn is_given(&self, id: &str) -> bool {
        self.given.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn aliases_and_given_tracking() {
        let args = Args::try_parse_from([
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
        assert_eq!(args.cli.service_address.to_string(), "::1");
        assert_eq!(args.cli.service_port, 1);
        assert_eq!(args.cli.service_public_port, 2);
        assert_eq!(args.cli.upstream_registry_url, "http://127.0.0.1:5000");
        assert_eq!(args.cli.upstream_registry_repository, "ocp/release");
        assert!(args.is_given("service_port"));
        assert!(!args.is_given("status_port"));
        assert_eq!(args.cli.status_port, 9080);
        assert_eq!(args.cli.service_pause_secs, 300);
    }

    #[test]
    fn mandatory_parameters_are_comma_separated() {
        let args = Args::try_parse_from([
            "graph-builder",
            "--service.mandatory_client_parameters",
            "channel,arch",
        ])
        .unwrap();
        assert_eq!(
            args.cli.service_mandatory_client_parameters,
            ["channel", "arch"]
        );
    }
}
