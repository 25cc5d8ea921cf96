//! The graph-builder's TOML file (`-c`, the operator's `gb.toml`) as flags: every key the
//! format has, `[[plugin_settings]]` entries included, maps to a flag or is checked here.
//!
//! Unknown tables, keys and plugin names are refused by name (the reference silently
//! ignores unknown plugin keys, which hides typos), and so are plugin values this
//! implementation cannot honour. When `[[plugin_settings]]` is present it replaces
//! `[upstream.registry]`, and its names become `--plugins`.

use std::path::Path;

use super::cli::{GRAPH_DATA_IMAGE, GRAPH_DATA_PARSE, PLUGIN_NAMES, RELEASE_SCRAPE};
use super::common::Key::{Flag, FlagUnlessEmpty, Ignored, OneOf, Only, Refused, Verbosity};
use super::common::{read_toml, table_flags, FileError, FileFlags, Key, SAME};

const CREDENTIALS: &str =
    "put the credentials in a docker config.json and name it in credentials_path";
const KEY_PREFIX: Key = Only(
    "io.openshift.upgrades.graph",
    "only the default is supported",
);

/// The top-level keys.
const TOP: &[(&str, Key)] = &[
    ("verbosity", Verbosity),
    ("service.address", SAME),
    ("service.port", SAME),
    ("service.public_port", SAME),
    ("service.path_prefix", SAME),
    ("service.mandatory_client_parameters", SAME),
    ("service.pause_secs", SAME),
    (
        "service.scrape_timeout_secs",
        Flag("service.scrape_timeout"),
    ),
    ("service.tracing_endpoint", SAME),
    ("status.address", SAME),
    ("status.port", SAME),
    ("upstream.method", SAME),
    (
        "upstream.pause_secs",
        Ignored("[upstream] pause_secs is deprecated and has no effect: use [service] pause_secs"),
    ),
    ("upstream.registry.url", Flag("releases-registry")),
    ("upstream.registry.repository", Flag("releases-repository")),
    (
        "upstream.registry.credentials_path",
        FlagUnlessEmpty("releases-credentials"),
    ),
    ("upstream.registry.manifestref_key", SAME),
    ("upstream.registry.fetch_concurrency", SAME),
    ("upstream.oci_layout", Flag("releases-oci-layout")),
    ("upstream.graph_data", Flag("graph-data")),
];

/// The keys of each plugin.
fn plugin_keys(name: &str) -> &'static [(&'static str, Key)] {
    match name {
        RELEASE_SCRAPE => &[
            ("name", Ignored("")),
            ("registry", Flag("releases-registry")),
            ("repository", Flag("releases-repository")),
            ("manifestref_key", Flag("upstream.registry.manifestref_key")),
            (
                "fetch_concurrency",
                Flag("upstream.registry.fetch_concurrency"),
            ),
            ("username", Refused(CREDENTIALS)),
            ("password", Refused(CREDENTIALS)),
            ("credentials_path", FlagUnlessEmpty("releases-credentials")),
            ("root_certificate_dir", Flag("releases-ca-dir")),
        ],
        GRAPH_DATA_IMAGE => &[
            ("name", Ignored("")),
            ("registry", Flag("graph-data-image.registry")),
            ("repository", Flag("graph-data-image.repository")),
            ("tag", Flag("graph-data-image.tag")),
            (
                "output_directory",
                Flag("graph-data-image.output_directory"),
            ),
            ("graph_data_path", Flag("graph-data-image.graph_data_path")),
            (
                "output_allowlist",
                Refused("the graph-data allowlist is fixed"),
            ),
            ("username", Refused(CREDENTIALS)),
            ("password", Refused(CREDENTIALS)),
            (
                "credentials_path",
                FlagUnlessEmpty("graph-data-image.credentials"),
            ),
            ("root_certificate_dir", Flag("graph-data-image.ca_dir")),
            (
                "verify_signature",
                Only("false", "signature verification is not implemented"),
            ),
            ("signature_baseurl", Ignored("")),
            ("public_keys_path", Ignored("")),
        ],
        GRAPH_DATA_PARSE => &[
            ("name", Ignored("")),
            ("data_directory", Flag("graph-data")),
            ("key_prefix", KEY_PREFIX),
            ("default_arch", Ignored("")),
            (
                "disallowed_errors",
                OneOf(&[
                    "file",
                    "invalid_extension",
                    "missing_extension",
                    "deserialize",
                ]),
            ),
        ],
        _ => &[
            ("name", Ignored("")),
            ("key_prefix", KEY_PREFIX),
            (
                "remove_all_edges_value",
                Only("*", "only the default \"*\" is supported"),
            ),
            (
                "remove_consumed_metadata",
                Only("false", "only false (the default) is supported"),
            ),
            (
                "include_conditional_edges",
                Flag("edge-add-remove.include_conditional_edges"),
            ),
        ],
    }
}

/// Reads `path` and returns the flags it stands for.
pub fn flags(path: &Path) -> Result<FileFlags, FileError> {
    let mut table = read_toml(path)?;
    let plugins = match table.remove("plugin_settings") {
        None => Vec::new(),
        Some(toml::Value::Array(entries)) => entries,
        Some(_) => {
            return Err(key_error(
                path,
                "",
                "plugin_settings",
                "expected [[plugin_settings]] tables",
            ))
        }
    };
    let mut out = FileFlags::default();
    if !plugins.is_empty() {
        plugin_flags(path, &plugins, &mut out)?;
        if let Some(toml::Value::Table(upstream)) = table.get_mut("upstream") {
            if upstream.remove("registry").is_some() {
                out.warnings.push(
                    "[upstream.registry] is ignored: [[plugin_settings]] replaces it".to_owned(),
                );
            }
        }
    }
    // After the plugins, so `[upstream] graph_data` wins over a plugin's data_directory.
    table_flags(path, "", &table, TOP, &mut out)?;
    Ok(out)
}

fn plugin_flags(
    path: &Path,
    entries: &[toml::Value],
    out: &mut FileFlags,
) -> Result<(), FileError> {
    let mut names = Vec::new();
    for entry in entries {
        let Some(entry) = entry.as_table() else {
            return Err(key_error(
                path,
                "",
                "plugin_settings",
                "expected [[plugin_settings]] tables",
            ));
        };
        let name = match entry.get("name").and_then(toml::Value::as_str) {
            Some(name) if PLUGIN_NAMES.contains(&name) => name,
            other => {
                let problem = format!("{:?} is not one of {PLUGIN_NAMES:?}", other.unwrap_or(""));
                return Err(key_error(path, "[[plugin_settings]] ", "name", &problem));
            }
        };
        let section = format!("[[plugin_settings]] {name} ");
        if name == GRAPH_DATA_IMAGE {
            for required in ["registry", "repository"] {
                if entry
                    .get(required)
                    .and_then(toml::Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(key_error(path, &section, required, "required"));
                }
            }
        }
        let mut flags = FileFlags::default();
        table_flags(path, &section, entry, plugin_keys(name), &mut flags)?;
        // With an image, the graph-data comes from it; the parse entry names where it goes.
        let image = entries
            .iter()
            .any(|e| e.get("name").and_then(toml::Value::as_str) == Some(GRAPH_DATA_IMAGE));
        if name == GRAPH_DATA_PARSE && image {
            flags
                .flags
                .retain(|f| !f.to_string_lossy().starts_with("--graph-data="));
        }
        out.flags.extend(flags.flags);
        out.warnings.extend(flags.warnings);
        names.push(name);
    }
    out.flags
        .push(format!("--plugins={}", names.join(",")).into());
    Ok(())
}

fn key_error(path: &Path, section: &str, key: &str, problem: &str) -> FileError {
    FileError::Key {
        path: path.to_owned(),
        section: section.to_owned(),
        key: key.to_owned(),
        problem: problem.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags_of(toml: &str) -> Result<Vec<String>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gb.toml");
        std::fs::write(&path, toml).unwrap();
        flags(&path)
            .map(|f| {
                f.flags
                    .iter()
                    .map(|f| f.to_string_lossy().into_owned())
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn unknown_plugin_names_are_named() {
        let text = flags_of("[[plugin_settings]]\nname = \"quay-metadata\"\n").unwrap_err();
        assert!(text.contains("quay-metadata"), "{text}");
        assert!(text.contains("release-scrape-dockerv2"), "{text}");
    }

    #[test]
    fn unknown_plugin_keys_are_named() {
        let err = flags_of("[[plugin_settings]]\nname = \"edge-add-remove\"\nkey_prefx = \"x\"\n")
            .unwrap_err();
        assert!(err.contains("key_prefx"), "{err}");
    }

    #[test]
    fn unknown_top_level_keys_are_named() {
        let err = flags_of("[service]\npause = 3\n").unwrap_err();
        assert!(err.contains("service.pause"), "{err}");
    }

    #[test]
    fn plugin_entries_keep_their_keys() {
        let flags = flags_of(
            "[[plugin_settings]]\nname = \"release-scrape-dockerv2\"\nregistry = \"r\"\nfetch_concurrency = 4\n",
        )
        .unwrap();
        assert_eq!(
            flags,
            [
                "--releases-registry=r",
                "--upstream.registry.fetch_concurrency=4",
                "--plugins=release-scrape-dockerv2"
            ]
        );
    }
}
