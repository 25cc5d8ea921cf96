//! The `[[plugin_settings]]` entries turned into settings: which of the reference's
//! plugins are listed, the registry to scrape (plugin entry, `[upstream.registry]`, then
//! flags), the graph-data path and the edge-add-remove options. Plugin keys whose values
//! we cannot honour are refused by name rather than ignored.

use std::path::Path;

use super::file::{self, ConfigFile, PluginSettings};
use super::{invalid, Args, ConfigError, EdgeAddRemoveSettings, GraphDataSettings};
use crate::graph_data_source::GraphDataImageSettings;
use crate::registry::{ClientConfig, Target};
use crate::scrape::ScrapeSettings;

const DEFAULT_KEY_PREFIX: &str = "io.openshift.upgrades.graph";
const DISALLOWED_ERROR_KINDS: [&str; 4] = [
    "file",
    "invalid_extension",
    "missing_extension",
    "deserialize",
];

/// The plugin entries by kind, each at most once.
#[derive(Default)]
pub(super) struct Plugins<'a> {
    pub(super) release_scrape: Option<&'a file::ReleaseScrapePlugin>,
    pub(super) graph_data_image: Option<&'a file::GraphDataImagePlugin>,
    pub(super) graph_data_parse: Option<&'a file::GraphDataParsePlugin>,
    pub(super) edge_add_remove: Option<&'a file::EdgeAddRemovePlugin>,
}

impl<'a> Plugins<'a> {
    pub(super) fn collect(entries: &'a [PluginSettings]) -> Result<Plugins<'a>, ConfigError> {
        fn once<'b, T>(
            slot: &mut Option<&'b T>,
            value: &'b T,
            name: &'static str,
        ) -> Result<(), ConfigError> {
            match slot.replace(value) {
                Some(_) => Err(ConfigError::DuplicatePlugin(name)),
                None => Ok(()),
            }
        }
        let mut p = Plugins::default();
        for entry in entries {
            let name = entry.name();
            match entry {
                PluginSettings::ReleaseScrape(s) => once(&mut p.release_scrape, s, name)?,
                PluginSettings::GraphDataImage(s) => once(&mut p.graph_data_image, s, name)?,
                PluginSettings::GraphDataParse(s) => once(&mut p.graph_data_parse, s, name)?,
                PluginSettings::EdgeAddRemove(s) => once(&mut p.edge_add_remove, s, name)?,
            }
        }
        Ok(p)
    }
}

/// The registry to scrape: `release-scrape-dockerv2` if listed, else `[upstream.registry]`,
/// then the given `--upstream.registry.*` flags over either.
pub(super) fn scrape_settings(
    args: &Args,
    file: &ConfigFile,
    plugins: &Plugins<'_>,
) -> Result<ScrapeSettings, ConfigError> {
    const PLUGIN: &str = "release-scrape-dockerv2";
    let cli = &args.cli;
    let mut s = ScrapeSettings {
        registry: cli.upstream_registry_url.clone(),
        repository: cli.upstream_registry_repository.clone(),
        manifestref_key: cli.upstream_registry_manifestref_key.clone(),
        fetch_concurrency: cli.upstream_registry_fetch_concurrency,
        ..ScrapeSettings::default()
    };
    s.client.credentials_path = cli.upstream_registry_credentials_path.clone();
    if let Some(p) = plugins.release_scrape {
        for (key, value) in [("username", &p.username), ("password", &p.password)] {
            if value.is_some() {
                return Err(ConfigError::Unsupported {
                    plugin: PLUGIN,
                    key,
                    reason: "put the credentials in a docker config.json and name it in credentials_path".to_owned(),
                });
            }
        }
        let file_values = file::RegistryFile {
            url: p.registry.clone(),
            repository: p.repository.clone(),
            credentials_path: p.credentials_path.clone(),
            manifestref_key: p.manifestref_key.clone(),
            fetch_concurrency: p.fetch_concurrency,
        };
        apply_registry_file(args, &mut s, &file_values);
        if let Some(dir) = &p.root_certificate_dir {
            s.client.ca_dir = Some(dir.clone());
        }
    } else if file.plugin_settings.is_empty() {
        if let Some(r) = &file.upstream.registry {
            apply_registry_file(args, &mut s, r);
        }
    }
    if let Some(dir) = &cli.upstream_registry_ca_dir {
        s.client.ca_dir = Some(dir.clone());
    }
    // The reference treats an empty credentials path as unset.
    if s.client.credentials_path.as_deref() == Some(Path::new("")) {
        s.client.credentials_path = None;
    }
    if s.fetch_concurrency == 0 {
        return Err(invalid(
            "upstream.registry.fetch_concurrency",
            0,
            "must be greater than 0",
        ));
    }
    Target::parse(&s.registry, &s.repository).map_err(|e| {
        invalid(
            "upstream.registry.url",
            format!(
                "{}/{}",
                crate::registry::redact_url(&s.registry),
                s.repository
            ),
            e.to_string(),
        )
    })?;
    Ok(s)
}

/// Copies the file's registry values where no flag was given.
fn apply_registry_file(args: &Args, s: &mut ScrapeSettings, r: &file::RegistryFile) {
    if !args.is_given("upstream_registry_url") {
        if let Some(v) = &r.url {
            s.registry.clone_from(v);
        }
    }
    if !args.is_given("upstream_registry_repository") {
        if let Some(v) = &r.repository {
            s.repository.clone_from(v);
        }
    }
    if !args.is_given("upstream_registry_credentials_path") && r.credentials_path.is_some() {
        s.client.credentials_path.clone_from(&r.credentials_path);
    }
    if !args.is_given("upstream_registry_manifestref_key") {
        if let Some(v) = &r.manifestref_key {
            s.manifestref_key.clone_from(v);
        }
    }
    if !args.is_given("upstream_registry_fetch_concurrency") {
        if let Some(v) = r.fetch_concurrency {
            s.fetch_concurrency = v;
        }
    }
}

/// The graph-data path: `--upstream.graph_data`, else `[upstream] graph_data`, else the
/// parse plugin's `data_directory`.
pub(super) fn graph_data_settings(
    args: &Args,
    file: &ConfigFile,
    plugins: &Plugins<'_>,
    warnings: &mut Vec<String>,
) -> Result<Option<GraphDataSettings>, ConfigError> {
    const PARSE: &str = "openshift-secondary-metadata-parse";
    if let Some(p) = plugins.graph_data_parse {
        if p.key_prefix
            .as_deref()
            .is_some_and(|k| k != DEFAULT_KEY_PREFIX)
        {
            return Err(ConfigError::Unsupported {
                plugin: PARSE,
                key: "key_prefix",
                reason: format!("only the default {DEFAULT_KEY_PREFIX:?} is supported"),
            });
        }
        for kind in p.disallowed_errors.iter().flatten() {
            if !DISALLOWED_ERROR_KINDS.contains(&kind.as_str()) {
                return Err(invalid(
                    &format!("[[plugin_settings]] {PARSE} disallowed_errors"),
                    kind,
                    format!("expected one of {DISALLOWED_ERROR_KINDS:?}"),
                ));
            }
        }
    }
    let image = plugins.graph_data_image.map(image_settings).transpose()?;
    let given = if args.is_given("upstream_graph_data") {
        args.cli.upstream_graph_data.clone()
    } else {
        file.upstream.graph_data.clone()
    };
    if let Some(path) = given {
        return Ok(Some(GraphDataSettings::Path(path)));
    }
    if let Some(image) = image {
        return Ok(Some(GraphDataSettings::Image(Box::new(image))));
    }
    match plugins.graph_data_parse.map(|p| p.data_directory.clone()) {
        Some(Some(path)) => Ok(Some(GraphDataSettings::Path(path))),
        Some(None) => Err(invalid(
            &format!("[[plugin_settings]] {PARSE} data_directory"),
            "",
            "required (or give --upstream.graph_data)",
        )),
        None => {
            warnings.push(
                "no graph-data configured (--upstream.graph_data, openshift-secondary-metadata-parse \
                 or dkrv2-secondary-metadata-scrape): releases carry no channels"
                    .to_owned(),
            );
            Ok(None)
        }
    }
}

/// `dkrv2-secondary-metadata-scrape` keys as image settings.
fn image_settings(p: &file::GraphDataImagePlugin) -> Result<GraphDataImageSettings, ConfigError> {
    const PLUGIN: &str = "dkrv2-secondary-metadata-scrape";
    let unsupported = |key, reason: &str| ConfigError::Unsupported {
        plugin: PLUGIN,
        key,
        reason: reason.to_owned(),
    };
    if p.username.is_some() || p.password.is_some() {
        let key = if p.username.is_some() {
            "username"
        } else {
            "password"
        };
        return Err(unsupported(
            key,
            "put the credentials in a docker config.json and name it in credentials_path",
        ));
    }
    if p.output_allowlist.is_some() {
        return Err(unsupported(
            "output_allowlist",
            "the graph-data allowlist is fixed",
        ));
    }
    if p.verify_signature == Some(true) {
        return Err(unsupported(
            "verify_signature",
            "signature verification is not implemented",
        ));
    }
    let required = |key: &str, value: &Option<String>| {
        value.clone().filter(|v| !v.is_empty()).ok_or_else(|| {
            invalid(
                &format!("[[plugin_settings]] {PLUGIN} {key}"),
                "",
                "required",
            )
        })
    };
    let registry = required("registry", &p.registry)?;
    let repository = required("repository", &p.repository)?;
    Target::parse(&registry, &repository).map_err(|e| {
        invalid(
            &format!("[[plugin_settings]] {PLUGIN} registry"),
            &registry,
            e.to_string(),
        )
    })?;
    let defaults = ScrapeSettings::default();
    Ok(GraphDataImageSettings {
        registry,
        repository,
        tag: p.tag.clone().unwrap_or_else(|| "latest".to_owned()),
        client: ClientConfig {
            credentials_path: p.credentials_path.clone().filter(|c| c.as_os_str() != ""),
            ca_dir: p.root_certificate_dir.clone().or(defaults.client.ca_dir),
            ..defaults.client
        },
        graph_data_path: p.graph_data_path.clone().unwrap_or_else(|| "/".to_owned()),
        output_directory: p.output_directory.clone(),
    })
}

pub(super) fn edge_add_remove_settings(
    p: &file::EdgeAddRemovePlugin,
) -> Result<EdgeAddRemoveSettings, ConfigError> {
    const PLUGIN: &str = "edge-add-remove";
    let unsupported = |key, reason: &str| ConfigError::Unsupported {
        plugin: PLUGIN,
        key,
        reason: reason.to_owned(),
    };
    if p.key_prefix
        .as_deref()
        .is_some_and(|k| k != DEFAULT_KEY_PREFIX)
    {
        return Err(unsupported(
            "key_prefix",
            "only the default \"io.openshift.upgrades.graph\" is supported",
        ));
    }
    if p.remove_all_edges_value
        .as_deref()
        .is_some_and(|v| v != "*")
    {
        return Err(unsupported(
            "remove_all_edges_value",
            "only the default \"*\" is supported",
        ));
    }
    if p.remove_consumed_metadata == Some(true) {
        return Err(unsupported(
            "remove_consumed_metadata",
            "only false (the default) is supported",
        ));
    }
    Ok(EdgeAddRemoveSettings {
        include_conditional_edges: p.include_conditional_edges.unwrap_or(true),
    })
}
