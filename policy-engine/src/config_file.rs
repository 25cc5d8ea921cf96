//! The reference's TOML configuration file (`-c`), fed through the same
//! parser as the command line.
//!
//! The file becomes flags placed before the real command line, and every flag may be
//! given more than once with the last one winning, so the command line overrides the
//! file (the reference does the opposite, against its own docs), and the file overrides
//! environment variables and defaults. The one exception is `verbosity`: `-v` counts,
//! so the file's and the command line's add up. Unknown keys and `[[policy]]` tables (custom
//! plugin chains, which this service does not have) are errors naming the file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file cannot be read.
    #[error("reading config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape.
    #[error("config file {}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        source: toml::de::Error,
    },
    /// A field holds a value no flag takes.
    #[error("config file {path}: field `{field}`: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field, dotted.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    verbosity: Option<String>,
    #[serde(default)]
    service: Service,
    #[serde(default)]
    status: Status,
    #[serde(default)]
    upstream: Upstream,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Service {
    address: Option<String>,
    port: Option<u16>,
    path_prefix: Option<String>,
    mandatory_client_parameters: Option<Vec<String>>,
    tracing_endpoint: Option<String>,
    backlog: Option<u32>,
    max_connections: Option<usize>,
    max_connection_rate: Option<usize>,
    keep_alive: Option<u64>,
    client_timeout: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Status {
    address: Option<String>,
    port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Upstream {
    method: Option<String>,
    #[serde(default)]
    cincinnati: Cincinnati,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cincinnati {
    url: Option<String>,
}

/// Reads `path` and returns the flags it stands for.
pub fn flags(path: &Path) -> Result<Vec<OsString>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.to_owned(),
        source,
    })?;
    flags_from_str(path, &text)
}

fn flags_from_str(path: &Path, text: &str) -> Result<Vec<OsString>, FileError> {
    let file: File = toml::from_str(text).map_err(|source| FileError::Parse {
        path: path.to_owned(),
        source,
    })?;
    let mut out: Vec<String> = Vec::new();
    if let Some(verbosity) = file.verbosity.filter(|v| !v.is_empty()) {
        if !verbosity.chars().all(|c| c == 'v') {
            return Err(FileError::Invalid {
                path: path.to_owned(),
                field: "verbosity",
                problem: format!("{verbosity:?} is not a run of `v`s such as \"vv\""),
            });
        }
        out.push(format!("-{verbosity}"));
    }
    let mut push = |flag: &str, value: Option<String>| {
        if let Some(value) = value {
            out.push(format!("--{flag}={value}"));
        }
    };
    let s = file.service;
    push("service.address", s.address);
    push("service.port", s.port.map(|v| v.to_string()));
    push("service.path_prefix", s.path_prefix);
    push(
        "service.mandatory_client_parameters",
        s.mandatory_client_parameters.map(|v| v.join(",")),
    );
    push("service.tracing_endpoint", s.tracing_endpoint);
    push("service.backlog", s.backlog.map(|v| v.to_string()));
    push(
        "service.max_connections",
        s.max_connections.map(|v| v.to_string()),
    );
    push(
        "service.max_connection_rate",
        s.max_connection_rate.map(|v| v.to_string()),
    );
    push("service.keep_alive", s.keep_alive.map(|v| v.to_string()));
    push(
        "service.client_timeout",
        s.client_timeout.map(|v| v.to_string()),
    );
    push("status.address", file.status.address);
    push("status.port", file.status.port.map(|v| v.to_string()));
    push("upstream.method", file.upstream.method);
    push("upstream.cincinnati.url", file.upstream.cincinnati.url);
    Ok(out.into_iter().map(OsString::from).collect())
}

#[cfg(test)]
mod tests {
    use graph_data::keys::chain;

    use super::*;

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
        let flags: Vec<&str> = flags.iter().map(|f| f.to_str().unwrap()).collect();
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
