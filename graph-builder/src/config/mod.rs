//! Configuration in two named steps: the raw inputs ([`Args`] from the
//! command line and environment, [`ConfigFile`] from `-c`) become validated [`Settings`]
//! in [`Settings::from_parts`].
//!
//! Precedence, per value: a flag (or its environment variable) wins over the file, and
//! the file wins over the default. The reference merges the other way round (the file
//! wins) although its documentation says the command line does; we do what it says.
//! The `--upstream.registry.*` flags also win over a `release-scrape-dockerv2` entry.

pub mod cli;
pub mod file;
mod plugins;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use cli::{Args, Cli};
pub use file::{ConfigFile, PluginSettings};

use crate::graph_data_source::GraphDataImageSettings;
use crate::registry::Target;
use crate::scrape::ScrapeSettings;
use plugins::{edge_add_remove_settings, graph_data_settings, scrape_settings, Plugins};

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
    /// Limit on one whole refresh.
    pub timeout: Option<Duration>,
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
    /// The `-c` file cannot be read.
    #[error("cannot read config file {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The `-c` file is not valid TOML of our format (unknown keys and plugins included).
    #[error("invalid config file {}", path.display())]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the key and line).
        source: Box<toml::de::Error>,
    },
    /// A value is out of range or malformed.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        /// The flag or key (`service.pause_secs`).
        field: String,
        /// The value as given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A plugin key whose value this implementation does not support.
    #[error("[[plugin_settings]] {plugin}: key `{key}` is not supported: {reason}")]
    Unsupported {
        /// The plugin `name`.
        plugin: &'static str,
        /// The key.
        key: &'static str,
        /// What to do instead.
        reason: String,
    },
    /// The same plugin listed twice.
    #[error("[[plugin_settings]] {0} is listed more than once")]
    DuplicatePlugin(&'static str),
    /// `[[plugin_settings]]` without a release source.
    #[error("[[plugin_settings]] has no release-scrape-dockerv2 entry (and no --upstream.oci_layout): there would be no releases")]
    NoReleaseSource,
}

pub(super) fn invalid(field: &str, value: impl ToString, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl Settings {
    /// Reads the `-c` file if one is given, then validates everything.
    pub fn load(args: &Args) -> Result<Settings, ConfigError> {
        let file = match &args.cli.config {
            Some(path) => ConfigFile::read(path)?,
            None => ConfigFile::default(),
        };
        Settings::from_parts(args, file)
    }

    /// The second step: merges the command line over the file and validates the result.
    pub fn from_parts(args: &Args, file: ConfigFile) -> Result<Settings, ConfigError> {
        let cli = &args.cli;
        let mut warnings = Vec::new();
        // A given flag wins; otherwise the file; otherwise the default clap filled in.
        macro_rules! merged {
            ($id:literal, $cli:expr, $file:expr) => {
                if args.is_given($id) {
                    $cli.clone()
                } else {
                    $file.clone().unwrap_or_else(|| $cli.clone())
                }
            };
        }

        let verbosity = if cli.log.verbosity > 0 {
            cli.log.verbosity
        } else {
            match file.verbosity.as_deref() {
                None | Some("") => 0,
                Some(v) if v.chars().all(|c| c == 'v') => u8::try_from(v.len()).unwrap_or(u8::MAX),
                Some(v) => {
                    return Err(invalid("verbosity", v, "expected \"v\", \"vv\" or \"vvv\""))
                }
            }
        };

        let address: IpAddr = merged!("service_address", cli.service_address, file.service.address);
        let port: u16 = merged!("service_port", cli.service_port, file.service.port);
        let public_port: u16 = merged!(
            "service_public_port",
            cli.service_public_port,
            file.service.public_port
        );
        let prefix: String = merged!(
            "service_path_prefix",
            cli.service_path_prefix,
            file.service.path_prefix
        );
        let mandatory: Vec<String> = merged!(
            "service_mandatory_client_parameters",
            cli.service_mandatory_client_parameters,
            file.service.mandatory_client_parameters
        );
        let status_address: IpAddr =
            merged!("status_address", cli.status_address, file.status.address);
        let status_port: u16 = merged!("status_port", cli.status_port, file.status.port);
        let service = ServiceSettings {
            main: SocketAddr::new(address, port),
            public: SocketAddr::new(address, public_port),
            path_prefix: graph_data::keys::normalize_prefix(&prefix),
            mandatory_client_parameters: mandatory
                .iter()
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
        };
        let status = SocketAddr::new(status_address, status_port);
        check_distinct_ports(&service, status)?;

        let pause_secs: u64 = merged!(
            "service_pause_secs",
            cli.service_pause_secs,
            file.service.pause_secs
        );
        if pause_secs == 0 {
            return Err(invalid("service.pause_secs", 0, "must be greater than 0"));
        }
        let timeout_secs = if args.is_given("service_scrape_timeout") {
            cli.service_scrape_timeout
        } else {
            file.service
                .scrape_timeout_secs
                .or(cli.service_scrape_timeout)
        };
        if timeout_secs == Some(0) {
            return Err(invalid(
                "service.scrape_timeout_secs",
                0,
                "must be greater than 0 (omit it for no limit)",
            ));
        }
        let refresh = RefreshSettings {
            pause: Duration::from_secs(pause_secs),
            timeout: timeout_secs.map(Duration::from_secs),
        };

        if cli.service_tracing_endpoint.is_some() || file.service.tracing_endpoint.is_some() {
            warnings.push(
                "service.tracing_endpoint is ignored: tracing export is not supported".to_owned(),
            );
        }
        if file.upstream.pause_secs.is_some() {
            warnings.push(
                "[upstream] pause_secs is deprecated and has no effect: use [service] pause_secs"
                    .to_owned(),
            );
        }

        let plugins = Plugins::collect(&file.plugin_settings)?;
        if !file.plugin_settings.is_empty() && file.upstream.registry.is_some() {
            warnings
                .push("[upstream.registry] is ignored: [[plugin_settings]] replaces it".to_owned());
        }
        let graph_data = graph_data_settings(args, &file, &plugins, &mut warnings)?;
        let edge_add_remove = if file.plugin_settings.is_empty() {
            Some(EdgeAddRemoveSettings {
                include_conditional_edges: true,
            })
        } else {
            plugins
                .edge_add_remove
                .map(edge_add_remove_settings)
                .transpose()?
        };
        let scrape = scrape_settings(args, &file, &plugins)?;
        let oci_layout = if args.is_given("upstream_oci_layout") {
            cli.upstream_oci_layout.clone()
        } else {
            file.upstream.oci_layout.clone()
        };
        let releases = match oci_layout {
            Some(dir) => {
                let target = Target::parse(&scrape.registry, &scrape.repository).map_err(|e| {
                    invalid(
                        "upstream.registry.url",
                        crate::registry::redact_url(&scrape.registry),
                        e.to_string(),
                    )
                })?;
                ReleaseSourceSettings::OciLayout {
                    dir,
                    payload_repository: format!("{}/{}", target.host, target.repository),
                }
            }
            None if !file.plugin_settings.is_empty() && plugins.release_scrape.is_none() => {
                return Err(ConfigError::NoReleaseSource)
            }
            None => ReleaseSourceSettings::Registry(Box::new(scrape)),
        };

        Ok(Settings {
            verbosity,
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
