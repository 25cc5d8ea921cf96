//! The TOML configuration file (`-c`), in the reference's format, including
//! `[[plugin_settings]]`: exactly what the operator writes as `gb.toml` parses.
//!
//! These are raw values: every field is optional and nothing is checked beyond its type.
//! Unknown tables, keys and plugin names are refused, and the error names them (the
//! reference silently ignores unknown plugin keys, which hides typos).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `"v"`, `"vv"` or `"vvv"`.
    pub verbosity: Option<String>,
    /// `[service]`.
    #[serde(default)]
    pub service: ServiceFile,
    /// `[status]`.
    #[serde(default)]
    pub status: StatusFile,
    /// `[upstream]`.
    #[serde(default)]
    pub upstream: UpstreamFile,
    /// `[[plugin_settings]]`: when present, they replace `[upstream.registry]`.
    #[serde(default)]
    pub plugin_settings: Vec<PluginSettings>,
}

/// `[service]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    /// Listen address of the main and public listeners.
    pub address: Option<IpAddr>,
    /// Main port.
    pub port: Option<u16>,
    /// Public port.
    pub public_port: Option<u16>,
    /// Route prefix.
    pub path_prefix: Option<String>,
    /// Required query parameters.
    pub mandatory_client_parameters: Option<Vec<String>>,
    /// Seconds between refreshes.
    pub pause_secs: Option<u64>,
    /// Whole-refresh timeout in seconds.
    pub scrape_timeout_secs: Option<u64>,
    /// Ignored (no tracing export).
    pub tracing_endpoint: Option<String>,
}

/// `[status]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusFile {
    /// Listen address of the status listener.
    pub address: Option<IpAddr>,
    /// Status port.
    pub port: Option<u16>,
}

/// `[upstream]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    /// Ignored, as by the reference.
    pub method: Option<String>,
    /// Deprecated by the reference, no effect (a warning says so).
    pub pause_secs: Option<u64>,
    /// `[upstream.registry]`.
    pub registry: Option<RegistryFile>,
    /// Our addition: release images from an OCI layout directory.
    pub oci_layout: Option<PathBuf>,
    /// Our addition: a graph-data directory or `.tar.gz`.
    pub graph_data: Option<PathBuf>,
}

/// `[upstream.registry]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFile {
    /// Registry, with optional scheme.
    pub url: Option<String>,
    /// Repository of the release images.
    pub repository: Option<String>,
    /// Docker `config.json`.
    pub credentials_path: Option<PathBuf>,
    /// Metadata key of the manifest digest.
    pub manifestref_key: Option<String>,
    /// Tags scraped at once.
    pub fetch_concurrency: Option<usize>,
}

/// One `[[plugin_settings]]` entry, selected by its `name`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "name")]
pub enum PluginSettings {
    /// Scrape release images from a registry.
    #[serde(rename = "release-scrape-dockerv2")]
    ReleaseScrape(ReleaseScrapePlugin),
    /// Fetch graph-data from a container image.
    #[serde(rename = "dkrv2-secondary-metadata-scrape")]
    GraphDataImage(GraphDataImagePlugin),
    /// Apply a graph-data directory.
    #[serde(rename = "openshift-secondary-metadata-parse")]
    GraphDataParse(GraphDataParsePlugin),
    /// Add and remove edges from metadata, compute conditional edges.
    #[serde(rename = "edge-add-remove")]
    EdgeAddRemove(EdgeAddRemovePlugin),
}

impl PluginSettings {
    /// The `name` the entry was written with.
    pub fn name(&self) -> &'static str {
        match self {
            PluginSettings::ReleaseScrape(_) => "release-scrape-dockerv2",
            PluginSettings::GraphDataImage(_) => "dkrv2-secondary-metadata-scrape",
            PluginSettings::GraphDataParse(_) => "openshift-secondary-metadata-parse",
            PluginSettings::EdgeAddRemove(_) => "edge-add-remove",
        }
    }
}

/// `release-scrape-dockerv2` keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseScrapePlugin {
    /// Registry, with optional scheme (default `quay.io`).
    pub registry: Option<String>,
    /// Repository (default `openshift-release-dev/ocp-release`).
    pub repository: Option<String>,
    /// Metadata key of the manifest digest.
    pub manifestref_key: Option<String>,
    /// Tags scraped at once (default 16).
    pub fetch_concurrency: Option<usize>,
    /// Inline user name (refused: use `credentials_path`).
    pub username: Option<String>,
    /// Inline password (refused: use `credentials_path`).
    pub password: Option<String>,
    /// Docker `config.json`; an empty string means unset.
    pub credentials_path: Option<PathBuf>,
    /// Extra CA certificates (default `/etc/pki/ca-trust/extracted/`).
    pub root_certificate_dir: Option<PathBuf>,
}

/// `dkrv2-secondary-metadata-scrape` keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphDataImagePlugin {
    /// Registry of the graph-data image.
    pub registry: Option<String>,
    /// Repository of the graph-data image (required).
    pub repository: Option<String>,
    /// Tag (default `latest`).
    pub tag: Option<String>,
    /// Where the unpacked graph-data and `graph-data.tar.gz` go (required).
    pub output_directory: Option<PathBuf>,
    /// Graph-data root inside the image (default `/`).
    pub graph_data_path: Option<String>,
    /// Extra path regexes to keep (refused: the allowlist is fixed).
    pub output_allowlist: Option<Vec<String>>,
    /// Inline user name (refused).
    pub username: Option<String>,
    /// Inline password (refused).
    pub password: Option<String>,
    /// Docker `config.json`.
    pub credentials_path: Option<PathBuf>,
    /// Extra CA certificates.
    pub root_certificate_dir: Option<PathBuf>,
    /// Signature verification (only `false` is supported).
    pub verify_signature: Option<bool>,
    /// Signature store (unused without verification).
    pub signature_baseurl: Option<String>,
    /// Public keys (unused without verification).
    pub public_keys_path: Option<PathBuf>,
}

/// `openshift-secondary-metadata-parse` keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphDataParsePlugin {
    /// The graph-data directory (or `.tar.gz`).
    pub data_directory: Option<PathBuf>,
    /// Metadata key prefix (only the default is supported).
    pub key_prefix: Option<String>,
    /// Unused by the reference too.
    pub default_arch: Option<String>,
    /// Which graph-data errors fail the refresh. We fail on every error, always.
    pub disallowed_errors: Option<Vec<String>>,
}

/// `edge-add-remove` keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeAddRemovePlugin {
    /// Metadata key prefix (only the default is supported).
    pub key_prefix: Option<String>,
    /// Value of `previous.remove` meaning "all" (only `*` is supported).
    pub remove_all_edges_value: Option<String>,
    /// Whether consumed keys are dropped (only `false` is supported).
    pub remove_consumed_metadata: Option<bool>,
    /// Whether conditional edges are computed (default true).
    pub include_conditional_edges: Option<bool>,
}

impl ConfigFile {
    /// Reads and parses a file.
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        ConfigFile::parse(&text).map_err(|source| ConfigError::ParseFile {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Parses file content.
    pub fn parse(text: &str) -> Result<ConfigFile, toml::de::Error> {
        toml::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_plugin_names_are_named() {
        let err = ConfigFile::parse("[[plugin_settings]]\nname = \"quay-metadata\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("quay-metadata"), "{text}");
        assert!(text.contains("release-scrape-dockerv2"), "{text}");
    }

    #[test]
    fn unknown_plugin_keys_are_named() {
        let err = ConfigFile::parse(
            "[[plugin_settings]]\nname = \"edge-add-remove\"\nkey_prefx = \"x\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("key_prefx"), "{err}");
    }

    #[test]
    fn unknown_top_level_keys_are_named() {
        let err = ConfigFile::parse("[service]\npause = 3\n").unwrap_err();
        assert!(err.to_string().contains("pause"), "{err}");
    }

    #[test]
    fn plugin_entries_keep_their_keys() {
        let file = ConfigFile::parse(
            "[[plugin_settings]]\nname = \"release-scrape-dockerv2\"\nregistry = \"r\"\nfetch_concurrency = 4\n",
        )
        .unwrap();
        let [PluginSettings::ReleaseScrape(p)] = file.plugin_settings.as_slice() else {
            panic!("{file:?}");
        };
        assert_eq!(p.registry.as_deref(), Some("r"));
        assert_eq!(p.fetch_concurrency, Some(4));
    }
}
