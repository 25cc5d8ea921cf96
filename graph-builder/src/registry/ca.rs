//! Extra CA certificates for talking to a mirror registry.
//!
//! Every certificate of every PEM bundle (`*.pem` / `*.crt`, any case) under the directory,
//! recursing at most two levels, is added on top of the system roots. The reference read one
//! certificate per file; bundles with an intermediate and a root lost the root.
//! A file without a usable certificate is skipped with a warning naming it.
//!
//! Only certificates usable for TLS servers are trusted: the scan passes over the
//! bundles `update-ca-trust` extracts for other purposes (`email-ca-bundle.pem`,
//! `objsign-ca-bundle.pem`, and `ca-bundle.trust.crt`, whose OpenSSL trust blocks repeat
//! the TLS bundle), and it drops any certificate whose extended key usage is present
//! but allows neither `serverAuth` nor any usage. The default directory is
//! `/etc/pki/ca-trust/extracted`, so without this the e-mail and code-signing roots
//! would be trusted for the registry too. The same certificate found twice (the TLS
//! bundle and `directory-hash/`) counts once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;

use super::error::{ErrorKind, RegistryError};

/// How deep below the directory we look (the directory itself is depth 0).
const MAX_DEPTH: usize = 2;

/// Largest certificate file read (the system's full TLS bundle is about 200 KiB).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Bundles that `update-ca-trust` writes for purposes other than TLS servers.
const NOT_FOR_TLS_SERVERS: [&str; 3] = [
    "email-ca-bundle.pem",
    "objsign-ca-bundle.pem",
    "ca-bundle.trust.crt",
];

/// The certificates found in a CA directory.
#[derive(Debug, Default, Clone)]
pub struct CaCertificates {
    /// The directory scanned, if one is configured.
    pub dir: Option<PathBuf>,
    /// Every distinct certificate usable for TLS servers (DER), in file order.
    pub certificates: Vec<CertificateDer<'static>>,
    /// The files that contributed at least one certificate.
    pub files: Vec<PathBuf>,
    /// Files that looked like certificates but were not, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Certificates left out because their extended key usage excludes TLS servers.
    pub not_for_tls_servers: usize,
}

impl CaCertificates {
    /// What the client trusts, for refusal messages: the directory and how many
    /// certificates came from it.
    pub fn describe(&self) -> String {
        match &self.dir {
            Some(dir) => format!(
                "CA directory {} ({} certificate(s) loaded from {} file(s)) and the system roots",
                dir.display(),
                self.certificates.len(),
                self.files.len()
            ),
            None => "the system roots only (no CA directory configured)".to_owned(),
        }
    }
}

/// Loads every certificate under `dir`. A missing directory yields none; an unreadable one
/// is an error naming it.
pub fn load_ca_directory(dir: &Path) -> Result<CaCertificates, RegistryError> {
    let mut found = CaCertificates {
        dir: Some(dir.to_path_buf()),
        ..CaCertificates::default()
    };
    if !dir.exists() {
        tracing::debug!(dir = %dir.display(), "CA certificate directory does not exist");
        return Ok(found);
    }
    let mut files = Vec::new();
    collect_files(dir, 0, &mut files)?;
    files.sort();
    let mut seen = HashSet::new();
    for file in files {
        match read_certificates(&file) {
            Ok(certs) => {
                let mut added = 0;
                for cert in certs {
                    if !usable_for_tls_servers(&cert) {
                        found.not_for_tls_servers += 1;
                        tracing::debug!(file = %file.display(), "CA certificate not for TLS servers (extended key usage); left out");
                        continue;
                    }
                    if seen.insert(cert.as_ref().to_vec()) {
                        found.certificates.push(cert);
                        added += 1;
                    }
                }
                tracing::debug!(file = %file.display(), count = added, "loaded CA certificates");
                found.files.push(file);
            }
            Err(reason) => {
                tracing::warn!(file = %file.display(), %reason, "skipping CA file");
                found.skipped.push((file, reason));
            }
        }
    }
    tracing::debug!(trusted = %found.describe(), "CA directory scanned");
    Ok(found)
}

/// Every `CERTIFICATE` block of a PEM file; an error when it holds none.
fn read_certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let size = std::fs::metadata(file).map_err(|e| e.to_string())?.len();
    if size > MAX_FILE_BYTES {
        return Err(format!("{size} bytes, more than the {MAX_FILE_BYTES} read"));
    }
    let pem = std::fs::read(file).map_err(|e| e.to_string())?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM `CERTIFICATE` block".to_string());
    }
    Ok(certs)
}

/// False only for a certificate whose extended key usage is present and allows neither
/// `serverAuth` nor any usage. A certificate that does not parse is kept: the TLS
/// library decides about it, as it did before this filter.
fn usable_for_tls_servers(cert: &CertificateDer<'_>) -> bool {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return true;
    };
    match parsed.extended_key_usage() {
        Ok(Some(eku)) => eku.value.server_auth || eku.value.any,
        _ => true,
    }
}

fn collect_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), RegistryError> {
    let io_err = |source| {
        RegistryError::setup(ErrorKind::CaDirectory {
            path: dir.to_path_buf(),
            source,
        })
    };
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        // `metadata` follows symlinks, which is how ca-trust links its bundles.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                collect_files(&path, depth + 1, out)?;
            }
        } else if is_certificate_name(&path) && !is_other_purpose_bundle(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_certificate_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("pem") || e.eq_ignore_ascii_case("crt"))
}

fn is_other_purpose_bundle(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| NOT_FOR_TLS_SERVERS.contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_pem(name: &str) -> String {
        rcgen::generate_simple_self_signed(vec![name.to_string()])
            .unwrap()
            .cert
            .pem()
    }

    fn cert_with_usage(name: &str, usages: Vec<rcgen::ExtendedKeyUsagePurpose>) -> String {
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.extended_key_usages = usages;
        params
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap()
            .pem()
    }

    #[test]
    fn bundles_contribute_every_certificate_and_depth_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("pem");
        std::fs::create_dir_all(sub.join("deeper/too-deep")).unwrap();
        let bundle = format!("{}{}", cert_pem("a.example"), cert_pem("b.example"));
        std::fs::write(sub.join("bundle.PEM"), bundle).unwrap();
        std::fs::write(sub.join("deeper/one.Crt"), cert_pem("c.example")).unwrap();
        std::fs::write(sub.join("deeper/too-deep/ignored.pem"), cert_pem("d")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), cert_pem("e")).unwrap();
        std::fs::write(dir.path().join("garbage.crt"), "not a certificate").unwrap();

        let found = load_ca_directory(dir.path()).unwrap();
        assert_eq!(found.certificates.len(), 3);
        assert_eq!(found.files.len(), 2);
        assert_eq!(found.skipped.len(), 1);
        assert!(found.skipped[0].0.ends_with("garbage.crt"));
        assert_eq!(
            found.describe(),
            format!(
                "CA directory {} (3 certificate(s) loaded from 2 file(s)) and the system roots",
                dir.path().display()
            )
        );
    }

    #[test]
    fn only_certificates_for_tls_servers_are_trusted() {
        use rcgen::ExtendedKeyUsagePurpose::{Any, ClientAuth, CodeSigning, ServerAuth};
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("pem");
        std::fs::create_dir_all(&pem).unwrap();
        let tls = cert_pem("tls.example");
        // ca-trust's layout: the same root in the TLS bundle and in directory-hash/.
        std::fs::write(pem.join("tls-ca-bundle.pem"), &tls).unwrap();
        std::fs::create_dir_all(pem.join("directory-hash")).unwrap();
        std::fs::write(pem.join("directory-hash/0123abcd.0.pem"), &tls).unwrap();
        std::fs::write(pem.join("email-ca-bundle.pem"), cert_pem("mail.example")).unwrap();
        std::fs::write(pem.join("objsign-ca-bundle.pem"), cert_pem("code.example")).unwrap();
        let bundle = [
            cert_with_usage("server.example", vec![ServerAuth, ClientAuth]),
            cert_with_usage("any.example", vec![Any]),
            cert_with_usage("signing.example", vec![CodeSigning]),
            cert_with_usage("client.example", vec![ClientAuth]),
        ]
        .concat();
        std::fs::write(dir.path().join("site.pem"), bundle).unwrap();

        let found = load_ca_directory(dir.path()).unwrap();

        assert_eq!(found.certificates.len(), 3, "tls once, server, any");
        assert_eq!(found.not_for_tls_servers, 2);
        let names: Vec<_> = found
            .files
            .iter()
            .map(|f| f.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "pem/directory-hash/0123abcd.0.pem",
                "pem/tls-ca-bundle.pem",
                "site.pem"
            ]
        );
    }

    #[test]
    fn missing_directory_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let found = load_ca_directory(&dir.path().join("absent")).unwrap();
        assert!(found.certificates.is_empty() && found.skipped.is_empty());
    }
}
