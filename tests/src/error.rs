//! The harness's error type: every failure names the registry, repository, tag, digest,
//! file or command it concerns, and registry start failures carry the registry's log tail.

use std::path::PathBuf;

/// Why a harness operation (registry start, image build, push, skopeo call) failed.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The registry server binary is not installed.
    #[error("registry binary {path} not found: run hack/test.sh to install docker-registry")]
    RegistryBinaryMissing {
        /// Where the binary was expected.
        path: PathBuf,
    },
    /// A file the harness needs could not be written or read.
    #[error("{action} {path}: {source}")]
    Io {
        /// What the harness was doing ("writing", "reading", "creating").
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A helper program (docker-registry, htpasswd, skopeo) could not be run.
    #[error("running {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A helper program ran and failed.
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        /// The command line, for reproduction by hand.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// The registry did not come up.
    #[error("registry on {addr} did not start: {reason} (log {log}):\n{log_tail}")]
    RegistryStart {
        /// The address it was asked to listen on.
        addr: String,
        /// What went wrong.
        reason: String,
        /// Its log file.
        log: PathBuf,
        /// The end of its log file.
        log_tail: String,
    },
    /// An HTTP request to the registry failed below the HTTP layer.
    #[error("{method} {url}: {source}")]
    Http {
        /// The request method.
        method: &'static str,
        /// The request URL.
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered an unexpected status.
    #[error("{method} {url} answered {status}: {body}")]
    Status {
        /// The request method.
        method: &'static str,
        /// The request URL.
        url: String,
        /// The status the registry answered.
        status: reqwest::StatusCode,
        /// The response body (the registry's error JSON).
        body: String,
    },
    /// A blob upload was started but the registry gave no upload location.
    #[error("starting the upload of blob {digest} to {repository}: no Location header")]
    NoUploadLocation {
        /// The repository.
        repository: String,
        /// The blob digest.
        digest: String,
    },
    /// The test CA or server certificate could not be generated.
    #[error("generating the registry's TLS certificates: {reason}")]
    Certificate {
        /// What rcgen reported.
        reason: String,
    },
    /// A skopeo answer could not be parsed.
    #[error("parsing the output of {command}: {source}")]
    Parse {
        /// The command whose output is concerned.
        command: String,
        /// The underlying error.
        source: serde_json::Error,
    },
}
