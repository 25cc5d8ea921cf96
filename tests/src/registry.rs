//! A real CNCF distribution registry (Debian's `docker-registry`) on 127.0.0.1 for one
//! test: its config, storage and log live in a temporary directory, it is stopped by PID
//! when the [`TestRegistry`] is dropped, and it can require htpasswd basic auth and serve
//! HTTPS with a certificate from a test CA.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::tls::{write_tls_files, TlsFiles};
use crate::HarnessError;

/// Where Debian's `docker-registry` package installs the server.
pub const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// Readiness polling: 100 x 50 ms.
const READY_POLLS: u32 = 100;
const READY_INTERVAL: Duration = Duration::from_millis(50);
/// Another process may take the free port between our probe and the registry's bind.
const PORT_ATTEMPTS: u32 = 5;
/// SIGTERM grace before SIGKILL: 50 x 20 ms.
const STOP_POLLS: u32 = 50;
const STOP_INTERVAL: Duration = Duration::from_millis(20);

/// A user name and password for basic auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

/// A server certificate chain and its key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCertificate {
    /// The leaf, then any intermediates (PEM).
    pub chain: PathBuf,
    /// The leaf's private key (PEM).
    pub key: PathBuf,
}

/// How to configure a [`TestRegistry`].
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Require basic auth with these credentials (bcrypt htpasswd file) for every request.
    pub basic_auth: Option<Credentials>,
    /// Write the access log (one line per request) to the log file; benchmarks turn it off.
    pub access_log: bool,
    /// Serve HTTPS with a server certificate signed by a fresh test CA.
    pub tls: bool,
    /// Serve HTTPS with this certificate chain and key instead (any shape: self-signed,
    /// expired, for another name); the harness's own pushes then skip verification, since
    /// the certificate is what the test puts to the client under test.
    pub server_certificate: Option<ServerCertificate>,
    /// The registry server binary; [`REGISTRY_BINARY`] unless a test says otherwise.
    pub binary: PathBuf,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            basic_auth: None,
            access_log: true,
            tls: false,
            server_certificate: None,
            binary: PathBuf::from(REGISTRY_BINARY),
        }
    }
}

impl RegistryOptions {
    /// An anonymous registry that anyone may push to and pull from.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// A registry that requires basic auth as `username`/`password` for every request.
    pub fn private(username: &str, password: &str) -> Self {
        Self {
            basic_auth: Some(Credentials {
                username: username.to_owned(),
                password: password.to_owned(),
            }),
            ..Self::default()
        }
    }
}

/// A running registry; dropping it stops the server process and deletes its storage.
#[derive(Debug)]
pub struct TestRegistry {
    child: Option<Child>,
    port: u16,
    log_path: PathBuf,
    credentials: Option<Credentials>,
    tls: Option<TlsFiles>,
    custom_certificate: bool,
    dir: TempDir,
}

impl TestRegistry {
    /// Writes a config into a fresh temporary directory, starts the registry on a free
    /// loopback port and waits until `/v2/` answers.
    pub fn start(options: RegistryOptions) -> Result<Self, HarnessError> {
        let binary = options.binary.as_path();
        if !binary.is_file() {
            return Err(HarnessError::RegistryBinaryMissing {
                path: binary.to_owned(),
            });
        }
        let parent = storage_parent();
        let dir = tempfile::Builder::new()
            .prefix("test-registry-")
            .tempdir_in(&parent)
            .map_err(|source| io_error("creating a directory in", parent, source))?;
        let htpasswd = match &options.basic_auth {
            Some(credentials) => Some(write_htpasswd(dir.path(), credentials)?),
            None => None,
        };
        let tls = if options.tls {
            Some(write_tls_files(dir.path())?)
        } else {
            None
        };
        let served = match (&options.server_certificate, &tls) {
            (Some(custom), _) => Some(custom.clone()),
            (None, Some(tls)) => Some(ServerCertificate {
                chain: tls.certificate.clone(),
                key: tls.key.clone(),
            }),
            (None, None) => None,
        };
        let log_path = dir.path().join("registry.log");
        let config_path = dir.path().join("config.yml");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            let config = config_yaml(
                dir.path(),
                port,
                htpasswd.as_deref(),
                served.as_ref(),
                options.access_log,
            );
            fs::write(&config_path, config)
                .map_err(|source| io_error("writing", config_path.clone(), source))?;
            let mut child = spawn(binary, &config_path, &log_path)?;
            match wait_ready(&mut child, port) {
                Ok(()) => {
                    return Ok(TestRegistry {
                        child: Some(child),
                        port,
                        log_path,
                        credentials: options.basic_auth,
                        tls,
                        custom_certificate: options.server_certificate.is_some(),
                        dir,
                    })
                }
                Err(reason) => {
                    stop_child(child);
                    let log_tail = tail(&log_path);
                    if log_tail.contains("address already in use") && attempt < PORT_ATTEMPTS {
                        continue;
                    }
                    return Err(HarnessError::RegistryStart {
                        addr: format!("127.0.0.1:{port}"),
                        reason,
                        log: log_path,
                        log_tail,
                    });
                }
            }
        }
    }

    /// `127.0.0.1:PORT`, the registry host as image references spell it.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` (or `https://` with TLS), the base URL of the registry API.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() || self.custom_certificate {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.host_port())
    }

    /// The test CA that signed the server certificate, when the registry serves HTTPS.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// Whether it serves a certificate given by the test ([`RegistryOptions::server_certificate`]).
    pub fn serves_custom_certificate(&self) -> bool {
        self.custom_certificate
    }

    /// The registry's log file (warnings, errors, and the access log unless disabled).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last 40 lines of the registry log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log_path)
    }

    /// The registry server's process id while it runs (benchmarks read its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The credentials the registry requires, if it is private.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// A scratch directory that lives as long as the registry (for config.json files,
    /// OCI layouts and the like).
    pub fn scratch_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a docker `config.json` at `path` holding `credentials` for this registry
    /// (key `127.0.0.1:PORT`), as a pull secret would.
    pub fn write_docker_config(
        &self,
        path: &Path,
        credentials: &Credentials,
    ) -> Result<(), HarnessError> {
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", credentials.username, credentials.password));
        let config = serde_json::json!({ "auths": { self.host_port(): { "auth": auth } } });
        fs::write(path, config.to_string()).map_err(|e| io_error("writing", path.to_owned(), e))
    }

    /// Stops the server (SIGTERM by PID, then SIGKILL after a bounded wait) and reaps it.
    /// Idempotent; the storage stays until the value is dropped.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_child(child);
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(binary: &Path, config: &Path, log_path: &Path) -> Result<Child, HarnessError> {
    let log =
        fs::File::create(log_path).map_err(|e| io_error("creating", log_path.to_owned(), e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| io_error("opening", log_path.to_owned(), e))?;
    Command::new(binary)
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|source| HarnessError::Spawn {
            program: binary.display().to_string(),
            source,
        })
}

/// Polls `/v2/` until it answers 200 or 401, the process dies, or the polls run out.
fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    for _ in 0..READY_POLLS {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the registry exited with {status}"));
        }
        // 401: a private registry; 400: an HTTPS one, which answers a plain HTTP request
        // with "400 Client sent an HTTP request to an HTTPS server".
        if let Some(200 | 400 | 401) = probe_v2(port) {
            return Ok(());
        }
        std::thread::sleep(READY_INTERVAL);
    }
    Err(format!(
        "/v2/ did not answer within {:?}",
        READY_INTERVAL * READY_POLLS
    ))
}

/// SIGTERM by PID, a bounded wait, then SIGKILL; always reaps the child.
fn stop_child(mut child: Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // The child may already have exited; ESRCH is fine.
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    for _ in 0..STOP_POLLS {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(STOP_INTERVAL);
    }
    // `Child::kill` sends SIGKILL to this child's PID only.
    let _ = child.kill();
    let _ = child.wait();
}

/// The last 40 lines of a log file.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Where registry storage goes: `/dev/shm` when the machine has it, since thousands of
/// small files written and deleted on a slow virtual disk cost tens of seconds per test.
fn storage_parent() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// One `GET /v2/` over a plain socket; returns the HTTP status if the server answered.
fn probe_v2(port: u16) -> Option<u16> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    // "HTTP/1.1 200"
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A port that was free a moment ago (the registry binds it itself, hence the retries).
fn free_port() -> Result<u16, HarnessError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|source| io_error("binding", "127.0.0.1:0".into(), source))?;
    let port = listener
        .local_addr()
        .map_err(|source| io_error("reading the address of", "127.0.0.1:0".into(), source))?
        .port();
    Ok(port)
}

fn config_yaml(
    dir: &Path,
    port: u16,
    htpasswd: Option<&Path>,
    tls: Option<&ServerCertificate>,
    access_log: bool,
) -> String {
    let storage = dir.join("storage");
    let mut config = format!(
        "version: 0.1\n\
         log:\n  level: warn\n  formatter: text\n  accesslog:\n    disabled: {}\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
         cache:\n    blobdescriptor: inmemory\n  maintenance:\n    uploadpurging:\n      \
         enabled: false\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: integration-tests-only\n",
        !access_log,
        storage.display(),
    );
    if let Some(tls) = tls {
        config.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            tls.chain.display(),
            tls.key.display()
        ));
    }
    if let Some(path) = htpasswd {
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: integration-tests\n    path: {}\n",
            path.display()
        ));
    }
    config
}

/// Writes a bcrypt htpasswd file (the only hash distribution accepts) with `htpasswd -Bbn`.
fn write_htpasswd(dir: &Path, credentials: &Credentials) -> Result<PathBuf, HarnessError> {
    let program = "htpasswd";
    let output = Command::new(program)
        .args(["-Bbn", &credentials.username, &credentials.password])
        .output()
        .map_err(|source| HarnessError::Spawn {
            program: format!("{program} (run hack/test.sh to install apache2-utils)"),
            source,
        })?;
    if !output.status.success() {
        return Err(HarnessError::Command {
            command: format!("htpasswd -Bbn {} ***", credentials.username),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let path = dir.join("htpasswd");
    fs::write(&path, &output.stdout).map_err(|source| io_error("writing", path.clone(), source))?;
    Ok(path)
}

fn io_error(action: &'static str, path: PathBuf, source: std::io::Error) -> HarnessError {
    HarnessError::Io {
        action,
        path,
        source,
    }
}
