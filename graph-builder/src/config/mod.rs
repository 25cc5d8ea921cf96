//! Configuration: the command line ([`Cli`]), with the `-c` file's flags under it and
//! environment fallbacks ([`common::parse_layered`]), checked into the [`Settings`] the
//! graph-builder runs with.
//!
//! One precedence, per value: command line, then environment (`GB_*`), then file, then
//! default. The reference lets the file win although its documentation says the command
//! line does; we do what it says.

pub mod cli;
pub mod common;
pub mod file;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use cli::{Args, Cli};
pub use common::{FileError, LoadError};

use crate::graph_data_source::GraphDataImageSettings;
use crate::registry::{redact_url, ClientConfig, Target};
use crate::scrape::ScrapeSettings;
use cli::{EDGE_ADD_REMOVE, GRAPH_DATA_PARSE, PLUGIN_NAMES, RELEASE_SCRAPE};
/// What the graph-builder runs with, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// 0 warn, 1 info, 2 debug, 3+ trace.
    pub verbosity: u8,
    /// `--log-format`: text or JSON lines.
    pub log_format: crate::logging::LogFormat,
    /// The main and public listeners.
    pub service: ServiceSettings,
    /// The status listener.
    pub status: SocketAddr,
    /// The refresh loop.
    pub refresh: RefreshSettings,
    /// Where release images come from.
    pub releases: ReleaseSourceSettings,
    /// Where graph-data comes from; `None`: the scraped graph is served without it.
    pub graph_data: Option<GraphDataSettings>,
    /// Whether edge-add-remove runs, and how.
    pub edge_add_remove: Option<EdgeAddRemoveSettings>,
    /// Things worth logging once logging is up (deprecated or ignored settings).
    pub warnings: Vec<String>,
}

/// The main and public listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    /// The graph listener.
    pub main: SocketAddr,
    /// The graph-data tarball listener.
    pub public: SocketAddr,
    /// Normalised route prefix: empty, or `/a/b` (leading slash, no trailing slash).
    pub path_prefix: String,
    /// Query parameters every graph request must carry.
    pub mandatory_client_parameters: BTreeSet<String>,
}

/// The refresh loop's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshSettings {
    /// Pause between the end of one refresh and the start of the next.
    pub pause: Duration,
    /// Limit on one whole refresh (always finite: a hung registry must not stall it).
    pub timeout: Duration,
}

/// Where release images come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseSourceSettings {
    /// Scrape a registry repository (boxed: the client's limits make it large).
    Registry(Box<ScrapeSettings>),
    /// Read an OCI image layout directory.
    OciLayout {
        /// The layout directory.
        dir: PathBuf,
        /// `host[:port]/repository` the payload pull specs name.
        payload_repository: String,
    },
}

impl ReleaseSourceSettings {
    /// Where releases come from, for logs and status pages: a `user:password@` in the
    /// registry URL is not shown.
    pub fn describe(&self) -> String {
        match self {
            ReleaseSourceSettings::Registry(s) => format!(
                "registry {} repository {}",
                crate::registry::redact_url(&s.registry),
                s.repository
            ),
            ReleaseSourceSettings::OciLayout { dir, .. } => {
                format!("OCI layout {}", dir.display())
            }
        }
    }
}

/// Where graph-data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphDataSettings {
    /// A directory (re-read at each refresh) or a `graph-data.tar.gz`.
    Path(PathBuf),
    /// A container image in a registry (boxed: the client's limits make it large).
    Image(Box<GraphDataImageSettings>),
}

/// How edge-add-remove runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeAddRemoveSettings {
    /// Whether graph-data risks become conditional edges.
    pub include_conditional_edges: bool,
}

/// Why the configuration is refused. Each names the file, flag or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The command line or the `-c` file is refused.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A value is out of range or malformed.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        /// The flag or key (`service.pause_secs`).
        field: String,
        /// The value as given (a URL's user and password are not shown).
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The same plugin listed twice.
    #[error("[[plugin_settings]] {0} is listed more than once")]
    DuplicatePlugin(&'static str),
    /// `[[plugin_settings]]` without a release source.
    #[error("[[plugin_settings]] has no release-scrape-dockerv2 entry (and no --releases-oci-layout): there would be no releases")]
    NoReleaseSource,
}

fn invalid(field: &str, value: impl ToString, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl Settings {
    /// Reads the `-c` file if one is given, merges it under the command line and checks
    /// the result.
    pub fn load(args: &Args) -> Result<Settings, ConfigError> {
        let (cli, warnings) = common::layer_file::<Cli>(&args.argv, &args.matches, file::flags)?;
        Settings::from_cli(cli, warnings)
    }

    /// Checks the merged command line.
    pub fn from_cli(cli: Cli, mut warnings: Vec<String>) -> Result<Settings, ConfigError> {
        let listen = &cli.listen;
        let service = ServiceSettings {
            main: SocketAddr::new(listen.service_address, listen.service_port),
            public: SocketAddr::new(listen.service_address, cli.public_port),
            path_prefix: graph_data::keys::normalize_prefix(
                listen.path_prefix.as_deref().unwrap_or(""),
            ),
            mandatory_client_parameters: listen
                .mandatory_client_parameters
                .iter()
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
        };
        let status = SocketAddr::new(listen.status_address, listen.status_port);
        check_distinct_ports(&service, status)?;
        if cli.pause_secs == 0 {
            return Err(invalid("service.pause_secs", 0, "must be greater than 0"));
        }
        if cli.scrape_timeout == 0 {
            return Err(invalid(
                "service.scrape_timeout",
                0,
                "must be greater than 0",
            ));
        }
        let refresh = RefreshSettings {
            pause: Duration::from_secs(cli.pause_secs),
            timeout: Duration::from_secs(cli.scrape_timeout),
        };
        if listen.tracing_endpoint.is_some() {
            warnings.push(
                "service.tracing_endpoint is ignored: tracing export is not supported".to_owned(),
            );
        }

        let mut plugins: Vec<&'static str> = Vec::new();
        for name in &cli.plugins {
            // Clap accepts only these names; the lookup gives the `'static` one.
            let name = PLUGIN_NAMES
                .into_iter()
                .find(|n| n == name)
                .unwrap_or(RELEASE_SCRAPE);
            if plugins.contains(&name) {
                return Err(ConfigError::DuplicatePlugin(name));
            }
            plugins.push(name);
        }
        let listed = |name| plugins.is_empty() || plugins.contains(&name);
        let graph_data = graph_data_settings(
            &cli,
            listed(GRAPH_DATA_PARSE) && !plugins.is_empty(),
            &mut warnings,
        )?;
        let edge_add_remove = listed(EDGE_ADD_REMOVE).then_some(EdgeAddRemoveSettings {
            include_conditional_edges: cli.include_conditional_edges,
        });
        let releases = &cli.releases;
        let scrape = ScrapeSettings {
            registry: releases
                .releases_registry
                .clone()
                .unwrap_or_else(|| "quay.io".to_owned()),
            repository: releases
                .releases_repository
                .clone()
                .unwrap_or_else(|| "openshift-release-dev/ocp-release".to_owned()),
            client: releases.access.client_config(),
            fetch_concurrency: cli.fetch_concurrency,
            manifestref_key: cli.manifestref_key.clone(),
        };
        if scrape.fetch_concurrency == 0 {
            return Err(invalid(
                "upstream.registry.fetch_concurrency",
                0,
                "must be greater than 0",
            ));
        }
        let target = check_target("releases-registry", &scrape.registry, &scrape.repository)?;
        let releases = match releases.releases_oci_layout.clone() {
            Some(dir) => ReleaseSourceSettings::OciLayout {
                dir,
                payload_repository: format!("{}/{}", target.host, target.repository),
            },
            None if !listed(RELEASE_SCRAPE) => return Err(ConfigError::NoReleaseSource),
            None => ReleaseSourceSettings::Registry(Box::new(scrape)),
        };
        Ok(Settings {
            verbosity: cli.log.verbosity,
            log_format: cli.log.log_format,
            service,
            status,
            refresh,
            releases,
            graph_data,
            edge_add_remove,
            warnings,
        })
    }
}

/// Parses a registry and repository; the error shows the registry without its password.
fn check_target(field: &str, registry: &str, repository: &str) -> Result<Target, ConfigError> {
    Target::parse(registry, repository).map_err(|e| {
        invalid(
            field,
            format!("{}/{repository}", redact_url(registry)),
            e.to_string(),
        )
    })
}

/// The graph-data: `--graph-data` (or a file key), else the image, else nothing, which
/// is an error when the plugin list names the parse step.
fn graph_data_settings(
    cli: &Cli,
    parse_listed: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<GraphDataSettings>, ConfigError> {
    let image = &cli.graph_data_image;
    let image = match (&image.registry, &image.repository) {
        (None, None) => None,
        (Some(registry), Some(repository)) => {
            check_target("graph-data-image.registry", registry, repository)?;
            let defaults = ScrapeSettings::default().client;
            Some(GraphDataImageSettings {
                registry: registry.clone(),
                repository: repository.clone(),
                tag: image.tag.clone(),
                client: ClientConfig {
                    credentials_path: image.credentials.clone(),
                    ca_dir: image.ca_dir.clone().or(defaults.ca_dir),
                    ..defaults
                },
                graph_data_path: image.graph_data_path.clone(),
                output_directory: image.output_directory.clone(),
            })
        }
        (Some(_), None) => {
            return Err(invalid(
                "graph-data-image.repository",
                "",
                "required with --graph-data-image.registry",
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "graph-data-image.registry",
                "",
                "required with --graph-data-image.repository",
            ))
        }
    };
    Ok(match (&cli.releases.graph_data, image) {
        (Some(path), _) => Some(GraphDataSettings::Path(path.clone())),
        (None, Some(image)) => Some(GraphDataSettings::Image(Box::new(image))),
        (None, None) if parse_listed => {
            return Err(invalid(
                "[[plugin_settings]] openshift-secondary-metadata-parse data_directory",
                "",
                "required (or give --graph-data)",
            ))
        }
        (None, None) => {
            warnings.push(
                "no graph-data configured (--graph-data, openshift-secondary-metadata-parse \
                 or dkrv2-secondary-metadata-scrape): releases carry no channels"
                    .to_owned(),
            );
            None
        }
    })
}

fn check_distinct_ports(service: &ServiceSettings, status: SocketAddr) -> Result<(), ConfigError> {
    let clash = |a: SocketAddr, b: SocketAddr| {
        a.port() == b.port()
            && a.port() != 0
            && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
    };
    if clash(service.main, service.public) {
        return Err(invalid(
            "service.public_port",
            service.public.port(),
            "same as service.port",
        ));
    }
    for (field, addr) in [
        ("service.port", service.main),
        ("service.public_port", service.public),
    ] {
        if clash(addr, status) {
            return Err(invalid(
                "status.port",
                status.port(),
                format!("same address and port as {field}"),
            ));
        }
    }
    Ok(())
}
