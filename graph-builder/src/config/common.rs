//! What both binaries share about configuration: the command-line groups they flatten
//! in ([`ListenArgs`], [`ReleaseArgs`] with its [`RegistryAccessArgs`], and [`crate::logging::LogArgs`]), and how a TOML
//! config file joins the command line ([`parse_layered`]).
//!
//! One precedence in both binaries, per value: command line, then environment, then
//! file, then default. The file is turned into flags, which clap parses in front of the
//! real command line, minus those whose argument the command line or the environment
//! already set; clap's own rule (command line over environment over default) does the
//! rest. `-v` counts, so the file's `verbosity` is dropped as a whole when `-v` is given.
//!
//! Environment names written in these groups are stems: each binary puts its own prefix
//! (`GB_`, `PE_`) in front of every stem ([`prefix_env`]), so `SERVICE_PORT` reads
//! `GB_SERVICE_PORT` in one binary and `PE_SERVICE_PORT` in the other.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command, Parser};

/// The trust directory of RHEL-like systems, where the operator mounts registry CAs.
pub const DEFAULT_CA_DIR: &str = "/etc/pki/ca-trust/extracted";

/// The listeners and request checks: the main (graph or API) listener and the status one.
/// Defaults are the graph-builder's; the policy-engine moves the ports to 8081 and 9081.
#[derive(Debug, Clone, clap::Args)]
pub struct ListenArgs {
    /// Address of the main listener (and of the graph-builder's public one).
    #[arg(
        long = "service.address",
        visible_alias = "address",
        env = "SERVICE_ADDRESS",
        default_value = "127.0.0.1"
    )]
    pub service_address: IpAddr,
    /// Port of the main listener: the graph-builder's graph, the policy-engine's API.
    #[arg(
        long = "service.port",
        visible_alias = "port",
        env = "SERVICE_PORT",
        default_value_t = 8080
    )]
    pub service_port: u16,
    /// Path prefix of every route; slashes are normalised (`a/b/` → `/a/b`), and an
    /// explicitly empty value means no prefix.
    #[arg(long = "service.path_prefix", env = "SERVICE_PATH_PREFIX")]
    pub path_prefix: Option<String>,
    /// Query parameters every graph request must carry (comma-separated).
    #[arg(
        long = "service.mandatory_client_parameters",
        env = "MANDATORY_CLIENT_PARAMETERS",
        value_delimiter = ','
    )]
    pub mandatory_client_parameters: Vec<String>,
    /// Accepted for compatibility; tracing export is not supported and this is ignored.
    #[arg(long = "service.tracing_endpoint", env = "SERVICE_TRACING_ENDPOINT")]
    pub tracing_endpoint: Option<String>,
    /// Address of the status listener (liveness, readiness, metrics).
    #[arg(
        long = "status.address",
        env = "STATUS_ADDRESS",
        default_value = "127.0.0.1"
    )]
    pub status_address: IpAddr,
    /// Port of the status listener.
    #[arg(long = "status.port", env = "STATUS_PORT", default_value_t = 9080)]
    pub status_port: u16,
    /// Accepted for compatibility and ignored.
    #[arg(long = "upstream.method", env = "UPSTREAM_METHOD")]
    pub upstream_method: Option<String>,
}

/// Where the releases (and their graph-data) come from, and how the registry is reached.
#[derive(Debug, Clone, clap::Args)]
pub struct ReleaseArgs {
    /// Registry holding the release images: `host[:port]` (HTTPS) or `http://host[:port]`.
    /// The graph-builder's default is `quay.io`; in the policy-engine it turns on
    /// one-process mode.
    #[arg(long = "releases-registry", visible_aliases = ["upstream.registry.url", "registry"], env = "RELEASES_REGISTRY", value_name = "HOST[:PORT]")]
    pub releases_registry: Option<String>,
    /// Repository of the release images in that registry (graph-builder default:
    /// `openshift-release-dev/ocp-release`).
    #[arg(long = "releases-repository", visible_aliases = ["upstream.registry.repository", "repository"], env = "RELEASES_REPOSITORY", value_name = "REPO")]
    pub releases_repository: Option<String>,
    /// How the registry is reached: credentials and extra CAs.
    #[command(flatten)]
    pub access: RegistryAccessArgs,
    /// Read the release images from this OCI image layout directory instead.
    #[arg(
        long = "releases-oci-layout",
        visible_alias = "upstream.oci_layout",
        env = "RELEASES_OCI_LAYOUT",
        value_name = "DIR"
    )]
    pub releases_oci_layout: Option<PathBuf>,
    /// Graph-data: a directory (re-read at each refresh) or a `graph-data.tar.gz`.
    #[arg(
        long = "graph-data",
        visible_alias = "upstream.graph_data",
        env = "GRAPH_DATA",
        value_name = "DIR|TARBALL"
    )]
    pub graph_data: Option<PathBuf>,
}

/// How a registry is reached: its credentials and the extra CAs trusted for it. Part of
/// [`ReleaseArgs`], and on its own in the tools that push to a registry.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryAccessArgs {
    /// Docker `config.json` with the registry credentials.
    #[arg(long = "releases-credentials", visible_aliases = ["upstream.registry.credentials_path", "credentials-file"], env = "RELEASES_CREDENTIALS", value_name = "PATH")]
    pub releases_credentials: Option<PathBuf>,
    /// Directory of extra CA certificates (every PEM bundle, two levels deep) trusted for
    /// the registry on top of the system roots.
    #[arg(long = "releases-ca-dir", visible_aliases = ["upstream.registry.ca_dir", "ca-dir"], env = "RELEASES_CA_DIR", value_name = "DIR", default_value = DEFAULT_CA_DIR)]
    pub releases_ca_dir: PathBuf,
}

impl RegistryAccessArgs {
    /// The registry client's configuration for these credentials and CAs.
    pub fn client_config(&self) -> crate::registry::ClientConfig {
        crate::registry::ClientConfig {
            credentials_path: self.releases_credentials.clone(),
            ca_dir: Some(self.releases_ca_dir.clone()),
            ..crate::registry::ClientConfig::default()
        }
    }
}

/// Puts `prefix` in front of an argument's environment stem (see the module doc).
pub fn prefix_env(arg: Arg, prefix: &str) -> Arg {
    let name = match arg.get_env().and_then(|e| e.to_str()) {
        Some(stem) if !stem.starts_with(prefix) => format!("{prefix}{stem}"),
        _ => return arg,
    };
    arg.env(name)
}

/// A config file that cannot be used. Each names the file, and the key when there is one.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file cannot be read.
    #[error("cannot read config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("config file {}: line {line}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where, 1-based.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A key that is unknown, or whose value cannot be honoured.
    #[error("config file {}: field `{section}{key}`: {problem}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Empty, or the `[[plugin_settings]]` entry the key is in (with a trailing space).
        section: String,
        /// The key, dotted.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// A value the flag it became does not take (clap's message names the flag).
    #[error("config file {}: {message}", path.display())]
    Flag {
        /// The file.
        path: PathBuf,
        /// Clap's first line.
        message: String,
    },
}

/// Why the configuration could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The command line (or the environment) is refused; `--help` and `--version` come
    /// here too, for the caller to print (`clap::Error::exit`).
    #[error("{}", one_line(.0))]
    CommandLine(clap::Error),
    /// The config file is refused.
    #[error(transparent)]
    File(#[from] FileError),
}

/// The first paragraph of a clap error on one line, without its `error: ` label: it
/// names the flag (the usage and tips that follow are left out).
pub fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect();
    let first = first.join(" ");
    first.strip_prefix("error: ").unwrap_or(&first).to_owned()
}

/// What a config file stands for: flags (`--name=value` or `-vvv`), and things to log.
#[derive(Debug, Default)]
pub struct FileFlags {
    /// The flags, in file-key order.
    pub flags: Vec<OsString>,
    /// Deprecated or ignored keys, worth a warning.
    pub warnings: Vec<String>,
}

/// The flag named as the key (`service.port` → `--service.port`).
pub const SAME: Key = Key::Flag("");

/// What a file key becomes.
#[derive(Debug, Clone, Copy)]
pub enum Key {
    /// `--flag=value`; arrays become comma-separated.
    Flag(&'static str),
    /// `--flag=value`, nothing for an empty string (which means unset).
    FlagUnlessEmpty(&'static str),
    /// `"v"`, `"vv"`, ... as `-v`, `-vv`, ...
    Verbosity,
    /// Accepted with no effect; the text (if any) is logged as a warning.
    Ignored(&'static str),
    /// Accepted with this value only (as text); any other is refused with the reason.
    Only(&'static str, &'static str),
    /// Refused whatever the value (which is not shown), with the reason.
    Refused(&'static str),
    /// Each element must be one of these; no flag.
    OneOf(&'static [&'static str]),
}

/// Reads a TOML file into its top-level table; syntax errors come as one line.
pub fn read_toml(path: &Path) -> Result<toml::Table, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.parse::<toml::Table>().map_err(|e| FileError::Syntax {
        path: path.to_owned(),
        line: e
            .span()
            .map_or(1, |s| text[..s.start].matches('\n').count() + 1),
        message: e.message().replace('\n', " "),
    })
}

/// Adds the flags of `table`'s keys (dotted, nested tables included) as `keys` says,
/// in the order of `keys`; a key not listed is refused by name.
pub fn table_flags(
    path: &Path,
    section: &str,
    table: &toml::Table,
    keys: &[(&'static str, Key)],
    out: &mut FileFlags,
) -> Result<(), FileError> {
    let refuse = |key: &str, problem: String| FileError::Key {
        path: path.to_owned(),
        section: section.to_owned(),
        key: key.to_owned(),
        problem,
    };
    let mut leaves = Vec::new();
    flatten("", table, &mut leaves);
    if let Some((unknown, _)) = leaves
        .iter()
        .find(|(k, _)| !keys.iter().any(|(n, _)| n == k))
    {
        let known: Vec<&str> = keys.iter().map(|(n, _)| *n).collect();
        return Err(refuse(
            unknown,
            format!("unknown key (known: {})", known.join(", ")),
        ));
    }
    for (name, key) in keys {
        let Some((_, value)) = leaves.iter().find(|(k, _)| k == name) else {
            continue;
        };
        let text = text(value);
        let key = match *key {
            Key::Flag("") => Key::Flag(name),
            Key::FlagUnlessEmpty("") => Key::FlagUnlessEmpty(name),
            other => other,
        };
        match key {
            Key::Flag(flag) => out.flags.push(format!("--{flag}={text}").into()),
            Key::FlagUnlessEmpty(flag) if !text.is_empty() => {
                out.flags.push(format!("--{flag}={text}").into())
            }
            Key::FlagUnlessEmpty(_) => {}
            Key::Verbosity if text.chars().all(|c| c == 'v') => {
                if !text.is_empty() {
                    out.flags.push(format!("-{text}").into());
                }
            }
            Key::Verbosity => {
                return Err(refuse(
                    name,
                    format!("{text:?} is not a run of `v`s such as \"vv\""),
                ))
            }
            Key::Ignored("") => {}
            Key::Ignored(warning) => out.warnings.push(warning.to_owned()),
            Key::Only(allowed, _) if text == allowed => {}
            Key::Only(_, reason) => {
                return Err(refuse(name, format!("{text:?} is not supported: {reason}")))
            }
            // Not echoed: the value may be a password.
            Key::Refused(reason) => return Err(refuse(name, format!("not supported: {reason}"))),
            Key::OneOf(allowed) => {
                if let Some(bad) = text
                    .split(',')
                    .find(|e| !e.is_empty() && !allowed.contains(e))
                {
                    return Err(refuse(name, format!("{bad:?} is not one of {allowed:?}")));
                }
            }
        }
    }
    Ok(())
}

fn flatten<'a>(prefix: &str, table: &'a toml::Table, out: &mut Vec<(String, &'a toml::Value)>) {
    for (key, value) in table {
        let dotted = format!("{prefix}{key}");
        match value {
            toml::Value::Table(inner) => flatten(&format!("{dotted}."), inner, out),
            _ => out.push((dotted, value)),
        }
    }
}

fn text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Parses `argv` with the flags of the `-c` file (read by `file_flags`) in front of it,
/// except those the command line or environment already set. Returns the parsed command
/// line and the file's warnings.
pub fn parse_layered<C: Parser>(
    argv: &[OsString],
    file_flags: impl FnOnce(&Path) -> Result<FileFlags, FileError>,
) -> Result<(C, Vec<String>), LoadError> {
    let first = C::command()
        .try_get_matches_from(argv)
        .map_err(LoadError::CommandLine)?;
    layer_file::<C>(argv, &first, file_flags)
}

/// [`parse_layered`] for a command line already parsed on its own (`first`, the
/// matches of `argv`): the command line is parsed again only when a `-c` file adds
/// flags to it.
pub fn layer_file<C: Parser>(
    argv: &[OsString],
    first: &ArgMatches,
    file_flags: impl FnOnce(&Path) -> Result<FileFlags, FileError>,
) -> Result<(C, Vec<String>), LoadError> {
    let command = C::command();
    let Some(path) = first.get_one::<PathBuf>("config").cloned() else {
        return Ok((from_matches(first)?, Vec::new()));
    };
    let FileFlags { flags, warnings } = file_flags(&path)?;
    let mut merged: Vec<OsString> = argv.iter().take(1).cloned().collect();
    merged.extend(
        flags
            .into_iter()
            .filter(|f| !set_outside_file(&command, first, f)),
    );
    merged.extend(argv.iter().skip(1).cloned());
    let flag_error = |e: clap::Error| FileError::Flag {
        path: path.clone(),
        message: one_line(&e),
    };
    let matches = command.try_get_matches_from(merged).map_err(flag_error)?;
    Ok((C::from_arg_matches(&matches).map_err(flag_error)?, warnings))
}

fn from_matches<C: Parser>(matches: &ArgMatches) -> Result<C, LoadError> {
    C::from_arg_matches(matches).map_err(LoadError::CommandLine)
}

/// Whether the argument a file flag (`--long=value` or `-vvv`) stands for was set on the
/// command line or through the environment.
fn set_outside_file(command: &Command, matches: &ArgMatches, flag: &OsString) -> bool {
    let flag = flag.to_string_lossy();
    let arg = match flag.strip_prefix("--") {
        Some(long) => {
            let name = long.split('=').next().unwrap_or_default();
            command.get_arguments().find(|a| a.get_long() == Some(name))
        }
        None => {
            let short = flag.chars().nth(1);
            command.get_arguments().find(|a| a.get_short() == short)
        }
    };
    arg.is_some_and(|a| {
        matches!(
            matches.value_source(a.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    })
}
