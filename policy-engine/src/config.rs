//! Configuration: the command line (with `PE_*` environment fallbacks and the `-c`
//! file's flags under it, [`Cli::load`]) and the validated [`Settings`] the service runs
//! on. The listener, release-source and logging flags are the graph-builder's
//! ([`graph_builder::config::common`]), so both binaries spell them the same.
//!
//! Flag names are the reference's, so the operator's command line
//! works verbatim. Deliberate differences, all documented on the flags:
//! - an explicitly empty `--service.path_prefix` (or `/`) means "no prefix" (`/graph`);
//!   the reference turns it into `/`, serving the unlikely `//graph`;
//! - the connection tuning defaults are actix's, not the reference's (backlog 10 and 10
//!   connections per worker make a 64-connection client queue in the kernel);
//! - `--service.tracing_endpoint` and `--upstream.method` are accepted and ignored;
//! - the command line and the environment win over the `-c` file (the reference lets
//!   the file win).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use graph_builder::config::common::{parse_layered, prefix_env, ListenArgs, LoadError};
use graph_builder::registry::redact_url;

use crate::in_process::{InProcessArgs, InProcessSettings};
use crate::upstream::UpstreamSettings;

/// The policy-engine's command line.
#[derive(Debug, Parser)]
#[command(
    name = "policy-engine",
    version,
    about = "Serve the Cincinnati update graph per channel and architecture",
    // A flag given twice keeps its last value.
    args_override_self = true,
    mut_args(|a| prefix_env(a, "PE_")),
    mut_arg("service_port", |a| a.default_value("8081")),
    mut_arg("status_port", |a| a.default_value("9081")),
    mut_arg("releases_oci_layout", |a| a.conflicts_with_all(["releases_registry", "upstream_url"])),
    mut_arg("releases_registry", |a| a.conflicts_with("upstream_url").requires("releases_repository"))
)]
pub struct Cli {
    /// TOML configuration file with the reference's keys; the command line and the
    /// environment win over it.
    #[arg(short = 'c', long = "config", env = "CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// `-v` and `--log-format`, shared with the graph-builder.
    #[command(flatten)]
    pub log: graph_builder::logging::LogArgs,
    /// The public API and status listeners (ports 8081 and 9081 here).
    #[command(flatten)]
    pub listen: ListenArgs,
    /// Listen backlog of the public socket.
    #[arg(
        long = "service.backlog",
        env = "SERVICE_BACKLOG",
        default_value_t = 2048
    )]
    pub backlog: u32,
    /// Maximum concurrent connections per worker.
    #[arg(
        long = "service.max_connections",
        env = "SERVICE_MAX_CONNECTIONS",
        default_value_t = 25_000
    )]
    pub max_connections: usize,
    /// Maximum connections being accepted concurrently (TLS handshakes) per worker.
    #[arg(
        long = "service.max_connection_rate",
        env = "SERVICE_MAX_CONNECTION_RATE",
        default_value_t = 256
    )]
    pub max_connection_rate: usize,
    /// Keep-alive of idle connections in seconds (actix's 5 s when unset).
    #[arg(long = "service.keep_alive", env = "SERVICE_KEEP_ALIVE")]
    pub keep_alive: Option<u64>,
    /// Time a client has to send its first request, in seconds.
    #[arg(
        long = "service.client_timeout",
        env = "SERVICE_CLIENT_TIMEOUT",
        default_value_t = 5
    )]
    pub client_timeout: u64,
    /// The graph-builder's graph URL.
    #[arg(
        long = "upstream.cincinnati.url",
        env = "UPSTREAM_URL",
        default_value = "http://localhost:8080/graph"
    )]
    pub upstream_url: String,
    /// Seconds between upstream fetches once a graph is held.
    #[arg(
        long = "upstream.cincinnati.refresh_secs",
        env = "UPSTREAM_REFRESH_SECS",
        default_value_t = 60
    )]
    pub upstream_refresh_secs: u64,
    /// Timeout of one upstream fetch, in seconds.
    #[arg(
        long = "upstream.cincinnati.timeout_secs",
        env = "UPSTREAM_TIMEOUT_SECS",
        default_value_t = 30
    )]
    pub upstream_timeout_secs: u64,
    /// One-process mode: build the graph here instead of fetching it.
    #[command(flatten)]
    pub in_process: InProcessArgs,
    /// Release signatures: sources and keys.
    #[command(flatten)]
    pub signatures: crate::signatures::SignatureArgs,
}

/// The path prefix in one-process mode when none is given.
pub const IN_PROCESS_PATH_PREFIX: &str = "/api/upgrades_info";

/// A configuration that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Both servers would listen on the same socket.
    #[error("--service.address/--service.port and --status.address/--status.port are both {0}")]
    SameSocket(SocketAddr),
    /// The upstream URL does not parse.
    #[error("--upstream.cincinnati.url {url:?} is not a URL")]
    UpstreamUrl {
        /// The value given, without a user and password.
        url: String,
        /// Why it does not parse.
        source: url::ParseError,
    },
    /// `--graph-data` without a release source to apply it to.
    #[error("--graph-data needs --releases-oci-layout or --releases-registry (the graph-data is applied to the releases they hold)")]
    GraphDataWithoutReleases,
    /// A signature flag is unusable.
    #[error(transparent)]
    Signatures(#[from] crate::signatures::SignatureConfigError),
}

/// Validated settings of one policy-engine.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Socket of the public API.
    pub service: SocketAddr,
    /// Socket of the status server.
    pub status: SocketAddr,
    /// Normalised path prefix: empty or `/a/b`.
    pub path_prefix: String,
    /// Parameters every graph request must carry.
    pub mandatory_client_parameters: BTreeSet<String>,
    /// Listen backlog of the public socket (used by whoever binds it).
    pub backlog: u32,
    /// Maximum concurrent connections per worker.
    pub max_connections: usize,
    /// Maximum connections being accepted concurrently per worker.
    pub max_connection_rate: usize,
    /// Keep-alive of idle connections; actix's default when `None`.
    pub keep_alive: Option<Duration>,
    /// Time a client has to send its first request.
    pub client_timeout: Duration,
    /// Number of HTTP workers of the public server; one per CPU when `None`.
    pub workers: Option<usize>,
    /// The upstream graph-builder (used when `in_process` is `None`).
    pub upstream: UpstreamSettings,
    /// One-process mode: what to build the graph from.
    pub in_process: Option<InProcessSettings>,
    /// Release signatures: where they come from and the keys they are checked with.
    pub signatures: crate::signatures::SignatureSettings,
}

impl Cli {
    /// Parses `argv` (program name first) with the `-c` file's flags under it.
    pub fn load<I, T>(argv: I) -> Result<Cli, LoadError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        parse_layered::<Cli>(&argv, crate::config_file::flags).map(|(cli, _)| cli)
    }

    /// Checks the command line and turns it into settings.
    pub fn settings(self) -> Result<Settings, ConfigError> {
        let listen = &self.listen;
        let service = SocketAddr::new(listen.service_address, listen.service_port);
        let status = SocketAddr::new(listen.status_address, listen.status_port);
        if service == status {
            return Err(ConfigError::SameSocket(service));
        }
        let upstream_url =
            url::Url::parse(&self.upstream_url).map_err(|source| ConfigError::UpstreamUrl {
                url: redact_url(&self.upstream_url),
                source,
            })?;
        let in_process = self.in_process.settings();
        if in_process.is_none() && self.in_process.releases.graph_data.is_some() {
            return Err(ConfigError::GraphDataWithoutReleases);
        }
        let signatures = self.signatures.settings(
            in_process.as_ref().and_then(|p| p.graph_data.as_ref()),
            Some(&upstream_url).filter(|_| in_process.is_none()),
        )?;
        let default_prefix = match in_process {
            Some(_) => IN_PROCESS_PATH_PREFIX,
            None => "",
        };
        Ok(Settings {
            service,
            status,
            path_prefix: normalize_prefix(
                self.listen.path_prefix.as_deref().unwrap_or(default_prefix),
            ),
            mandatory_client_parameters: parse_params(
                &self.listen.mandatory_client_parameters.join(","),
            ),
            backlog: self.backlog,
            max_connections: self.max_connections,
            max_connection_rate: self.max_connection_rate,
            keep_alive: self.keep_alive.map(Duration::from_secs),
            client_timeout: Duration::from_secs(self.client_timeout),
            workers: None,
            upstream: UpstreamSettings {
                url: self.upstream_url,
                timeout: Duration::from_secs(self.upstream_timeout_secs),
                refresh: Duration::from_secs(self.upstream_refresh_secs.max(1)),
                max_body_bytes: crate::upstream::DEFAULT_MAX_BODY_BYTES,
            },
            in_process,
            signatures,
        })
    }
}

impl Settings {
    /// The defaults of the command line, for tests and embedders.
    pub fn defaults() -> Self {
        Cli::try_parse_from(["policy-engine"])
            .expect("the default command line parses")
            .settings()
            .expect("the default command line is valid")
    }
}

pub use graph_data::keys::normalize_prefix;

/// Comma-separated names, trimmed, empty ones dropped, deduplicated.
pub fn parse_params(csv: &str) -> BTreeSet<String> {
    csv.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_command_line_works_verbatim() {
        let cli = Cli::try_parse_from([
            "/usr/bin/policy-engine",
            "-vv",
            "--service.address",
            "::",
            "--service.mandatory_client_parameters",
            "channel",
            "--service.path_prefix",
            "/api/upgrades_info",
            "--service.port",
            "8081",
            "--status.address",
            "::",
            "--status.port",
            "9081",
            "--upstream.cincinnati.url",
            "http://localhost:8080/v1/graph",
        ])
        .unwrap();
        assert_eq!(cli.log.verbosity, 2);
        assert_eq!(
            Cli::try_parse_from(["pe", "-v", "-v"])
                .unwrap()
                .log
                .verbosity,
            2
        );
        let s = cli.settings().unwrap();
        assert_eq!(s.service, "[::]:8081".parse().unwrap());
        assert_eq!(s.status, "[::]:9081".parse().unwrap());
        assert_eq!(s.path_prefix, "/api/upgrades_info");
        assert_eq!(s.mandatory_client_parameters, parse_params("channel"));
        assert_eq!(s.upstream.url, "http://localhost:8080/v1/graph");
        assert_eq!(s.upstream.timeout, Duration::from_secs(30));
    }

    #[test]
    fn defaults_are_the_references() {
        let s = Settings::defaults();
        assert_eq!(s.service, "127.0.0.1:8081".parse().unwrap());
        assert_eq!(s.status, "127.0.0.1:9081".parse().unwrap());
        assert_eq!(s.path_prefix, "");
        assert!(s.mandatory_client_parameters.is_empty());
        assert_eq!(s.upstream.url, "http://localhost:8080/graph");
        assert_eq!(s.upstream.refresh, Duration::from_secs(60));
    }

    #[test]
    fn same_socket_and_bad_url_are_refused() {
        let cli = Cli::try_parse_from(["pe", "--status.port", "8081"]).unwrap();
        assert!(matches!(cli.settings(), Err(ConfigError::SameSocket(_))));
        let cli = Cli::try_parse_from(["pe", "--upstream.cincinnati.url", "not a url"]).unwrap();
        let err = cli.settings().unwrap_err().to_string();
        assert!(
            err.contains("--upstream.cincinnati.url \"not a url\""),
            "{err}"
        );
    }

    #[test]
    fn the_command_line_wins_over_the_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pe.toml");
        let toml = "[service]\nport = 8090\nmandatory_client_parameters = [\"id\"]\n[status]\nport = 9090\n";
        std::fs::write(&path, toml).unwrap();
        let args = ["pe", "-c", path.to_str().unwrap(), "--service.port", "8081"];
        let s = Cli::load(args).unwrap().settings().unwrap();
        assert_eq!(s.service.port(), 8081);
        assert_eq!(s.status.port(), 9090);
        assert_eq!(s.mandatory_client_parameters, parse_params("id"));
        assert_eq!(s.upstream.url, "http://localhost:8080/graph");
        let missing = dir.path().join("nope.toml");
        let missing = Cli::load(["pe", "-c", missing.to_str().unwrap()]);
        assert!(missing.unwrap_err().to_string().contains("nope.toml"));
    }

    #[test]
    fn prefixes_and_parameter_lists_normalise() {
        assert_eq!(normalize_prefix("//a/b/c//"), "/a/b/c");
        assert_eq!(normalize_prefix("a/b/c"), "/a/b/c");
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(parse_params("foo , , bar,foo"), parse_params("bar,foo"));
        assert_eq!(parse_params("").len(), 0);
    }
}
