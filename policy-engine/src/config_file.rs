//! The reference's TOML configuration file (`-c`) as flags, parsed by clap with the
//! command line ([`graph_builder::config::common::parse_layered`]): the command line
//! and the environment win over the file, which wins over the defaults. Unknown keys and
//! `[[policy]]` tables (custom plugin chains, which this service does not have) are
//! refused, naming the file and the key.

use std::path::Path;

use graph_builder::config::common::Key::Verbosity;
use graph_builder::config::common::{read_toml, table_flags, FileError, FileFlags, Key, SAME};

/// Every key of the file, in the order its flags are written.
const KEYS: &[(&str, Key)] = &[
    ("verbosity", Verbosity),
    ("service.address", SAME),
    ("service.port", SAME),
    ("service.path_prefix", SAME),
    ("service.mandatory_client_parameters", SAME),
    ("service.tracing_endpoint", SAME),
    ("service.backlog", SAME),
    ("service.max_connections", SAME),
    ("service.max_connection_rate", SAME),
    ("service.keep_alive", SAME),
    ("service.client_timeout", SAME),
    ("status.address", SAME),
    ("status.port", SAME),
    ("upstream.method", SAME),
    ("upstream.cincinnati.url", SAME),
];

/// Reads `path` and returns the flags it stands for.
pub fn flags(path: &Path) -> Result<FileFlags, FileError> {
    let mut out = FileFlags::default();
    table_flags(path, "", &read_toml(path)?, KEYS, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use graph_data::keys::chain;

    use super::*;

    fn flags_from_str(path: &Path, toml: &str) -> Result<Vec<String>, FileError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(path);
        std::fs::write(&file, toml).unwrap();
        let flags = flags(&file).map_err(|e| match e {
            FileError::Key {
                section,
                key,
                problem,
                ..
            } => FileError::Key {
                path: path.to_owned(),
                section,
                key,
                problem,
            },
            other => other,
        })?;
        Ok(flags
            .flags
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect())
    }

    const FULL: &str = r#"
verbosity = "vvv"
[service]
address = "::"
port = 8090
path_prefix = "/api/upgrades_info"
mandatory_client_parameters = ["channel", "id"]
keep_alive = 30
[status]
port = 9090
[upstream.cincinnati]
url = "http://gb:8080/v1/graph"
"#;

    #[test]
    fn every_reference_key_becomes_a_flag() {
        let flags = flags_from_str(Path::new("pe.toml"), FULL).unwrap();
        assert_eq!(
            flags,
            [
                "-vvv",
                "--service.address=::",
                "--service.port=8090",
                "--service.path_prefix=/api/upgrades_info",
                "--service.mandatory_client_parameters=channel,id",
                "--service.keep_alive=30",
                "--status.port=9090",
                "--upstream.cincinnati.url=http://gb:8080/v1/graph",
            ]
        );
    }

    #[test]
    fn policies_unknown_keys_and_bad_verbosity_are_errors_naming_the_file() {
        // The message names the file; the cause (the key) follows in the chain.
        let text = |toml: &str| chain(&flags_from_str(Path::new("pe.toml"), toml).unwrap_err());
        let err = text("[[policy]]\nname = \"x\"\n");
        assert!(err.starts_with("config file pe.toml:"), "{err}");
        assert!(err.contains("policy"), "{err}");
        let err = text("[service]\nprot = 1\n");
        assert!(err.contains("prot"), "{err}");
        let err = text("verbosity = \"debug\"\n");
        assert!(err.contains("field `verbosity`"), "{err}");
    }
}
