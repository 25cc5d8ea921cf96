//! Extra CA certificates for talking to a mirror registry.
//!
//! Every certificate of every PEM bundle (`*.pem` / `*.crt`, any case) under the directory,
//! recursing at most two levels, is added on top of the system roots. The reference read one
//! certificate per file; bundles with an intermediate and a root lost the root (B §8.6).
//! A file without a usable certificate is skipped with a warning naming it.

use std::path::{Path, PathBuf};

use super::error::{ErrorKind, RegistryError};

/// How deep below the directory we look (the directory itself is depth 0).
const MAX_DEPTH: usize = 2;

/// The certificates found in a CA directory.
#[derive(Debug, Default)]
pub struct CaCertificates {
    /// Every certificate, in file order.
    pub certificates: Vec<reqwest::Certificate>,
    /// The files that contributed at least one certificate.
    pub files: Vec<PathBuf>,
    /// Files that looked like certificates but were not, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Loads every certificate under `dir`. A missing directory yields none; an unreadable one
/// is an error naming it.
pub fn load_ca_directory(dir: &Path) -> Result<CaCertificates, RegistryError> {
    let mut found = CaCertificates::default();
    if !dir.exists() {
        tracing::debug!(dir = %dir.display(), "CA certificate directory does not exist");
        return Ok(found);
    }
    let mut files = Vec::new();
    collect_files(dir, 0, &mut files)?;
    files.sort();
    for file in files {
        let outcome = std::fs::read(&file)
            .map_err(|e| e.to_string())
            .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string()))
            .and_then(|certs| {
                if certs.is_empty() {
                    Err("no PEM `CERTIFICATE` block".to_string())
                } else {
                    Ok(certs)
                }
            });
        match outcome {
            Ok(certs) => {
                tracing::debug!(file = %file.display(), count = certs.len(), "loaded CA certificates");
                found.certificates.extend(certs);
                found.files.push(file);
            }
            Err(reason) => {
                tracing::warn!(file = %file.display(), %reason, "skipping CA file");
                found.skipped.push((file, reason));
            }
        }
    }
    Ok(found)
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
        } else if is_certificate_name(&path) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_pem(name: &str) -> String {
        rcgen::generate_simple_self_signed(vec![name.to_string()])
            .unwrap()
            .cert
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
    }

    #[test]
    fn missing_directory_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let found = load_ca_directory(&dir.path().join("absent")).unwrap();
        assert!(found.certificates.is_empty() && found.skipped.is_empty());
    }
}
