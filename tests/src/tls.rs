//! TLS material for a registry served over HTTPS: a fresh test CA and a server
//! certificate for 127.0.0.1 signed by it, written as PEM files next to the registry.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::HarnessError;

/// The files a TLS registry uses and the CA that clients must trust.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// A directory holding only `ca.pem`: what a scraper's CA directory setting takes.
    pub ca_dir: PathBuf,
    /// The server certificate (PEM) for 127.0.0.1.
    pub certificate: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

/// Generates a CA and a server certificate for `127.0.0.1` and writes them below `dir`.
pub fn write_tls_files(dir: &Path) -> Result<TlsFiles, HarnessError> {
    let error = |e: rcgen::Error| HarnessError::Certificate {
        reason: e.to_string(),
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(error)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "integration-tests registry CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(error)?)
        .map_err(error)?;
    let server_key = KeyPair::generate().map_err(error)?;
    // rcgen turns a name that parses as an IP address into an IP subject alt name.
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .map_err(error)?
        .signed_by(&server_key, &ca)
        .map_err(error)?;

    let ca_dir = dir.join("ca");
    fs::create_dir_all(&ca_dir).map_err(|e| io_error("creating", ca_dir.clone(), e))?;
    let files = TlsFiles {
        ca_pem: ca.pem(),
        certificate: dir.join("server.pem"),
        key: dir.join("server.key"),
        ca_dir,
    };
    write(&files.ca_dir.join("ca.pem"), &files.ca_pem)?;
    write(&files.certificate, &server.pem())?;
    write(&files.key, &server_key.serialize_pem())?;
    Ok(files)
}

fn write(path: &Path, contents: &str) -> Result<(), HarnessError> {
    fs::write(path, contents).map_err(|e| io_error("writing", path.to_owned(), e))
}

fn io_error(action: &'static str, path: PathBuf, source: std::io::Error) -> HarnessError {
    HarnessError::Io {
        action,
        path,
        source,
    }
}
