//! Checking release signatures against the admin's OpenPGP public keys, with rPGP (the
//! `pgp` crate: pure Rust, so the image build needs no C crypto library, and maintained
//! with regular releases; sequoia-openpgp's default backend needs the nettle C library and
//! its pure-Rust backend is flagged experimental).
//!
//! A signature is what `skopeo standalone-sign` and the release tooling write: an
//! OpenPGP signed message (usually compressed) whose literal data is the "atomic
//! container signature" JSON. It is valid for a release when a configured key (or one of
//! its subkeys) made it and its `critical.image["docker-manifest-digest"]` is the digest
//! it is stored under, so a good signature filed under another release is refused.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use graph_data::signatures::ImageDigest;
use pgp::composed::{Deserializable, Message, SignedPublicKey};
use pgp::types::KeyDetails;
use serde::Deserialize;

/// Largest key file read, in bytes.
const MAX_KEY_FILE_BYTES: u64 = 1 << 20;
/// Most key files read from a directory.
const MAX_KEY_FILES: usize = 1000;
/// Largest signed payload read out of a signature (real ones are about 300 bytes); a
/// bound against compression bombs.
const MAX_PAYLOAD_BYTES: u64 = 64 << 10;

/// Why the keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file or directory cannot be read.
    #[error("cannot read public keys from {}: {source}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file holds no usable OpenPGP public key.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Too many files, or a file too large.
    #[error("{}: {message}", path.display())]
    Limit {
        /// The file or directory.
        path: PathBuf,
        /// Which limit.
        message: String,
    },
}

/// Why one signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The bytes are not an OpenPGP signed message.
    #[error("not an OpenPGP signed message: {0}")]
    Format(String),
    /// No configured key made it (or the content was altered).
    #[error("not signed by any configured key")]
    NoKey,
    /// The signed content is not an atomic container signature.
    #[error("the signed content is not an atomic container signature: {0}")]
    Content(String),
    /// It signs another image.
    #[error("it signs {claimed}, not {expected}")]
    Digest {
        /// The digest in the signed content.
        claimed: String,
        /// The digest it is stored under.
        expected: String,
    },
}

/// The admin's public keys.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
    /// The fingerprints, for logs.
    pub fingerprints: Vec<String>,
}

impl Keyring {
    /// Loads every key of `path`: an armored or binary key file (several keys allowed),
    /// or a directory of such files (one level; names starting with `.` skipped, as
    /// Kubernetes mounts ConfigMaps and Secrets).
    pub fn load(path: &Path) -> Result<Keyring, KeyError> {
        let read = |p: &Path| {
            let p = p.to_owned();
            move |source| KeyError::Read { path: p, source }
        };
        let meta = std::fs::metadata(path).map_err(read(path))?;
        let files = if meta.is_dir() {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(path).map_err(read(path))? {
                let entry = entry.map_err(read(path))?;
                if entry.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                let file = entry.path();
                if std::fs::metadata(&file).map_err(read(&file))?.is_file() {
                    files.push(file);
                }
                if files.len() > MAX_KEY_FILES {
                    return Err(KeyError::Limit {
                        path: path.to_owned(),
                        message: format!("more than {MAX_KEY_FILES} key files"),
                    });
                }
            }
            files.sort();
            files
        } else {
            vec![path.to_owned()]
        };
        let mut keys = Vec::new();
        for file in files {
            let mut bytes = Vec::new();
            std::fs::File::open(&file)
                .map_err(read(&file))?
                .take(MAX_KEY_FILE_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(read(&file))?;
            if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
                return Err(KeyError::Limit {
                    path: file,
                    message: format!("above the {MAX_KEY_FILE_BYTES} byte limit for a key file"),
                });
            }
            let mut found = parse_keys(&bytes).map_err(|message| KeyError::Invalid {
                path: file.clone(),
                message,
            })?;
            keys.append(&mut found);
        }
        if keys.is_empty() {
            return Err(KeyError::Invalid {
                path: path.to_owned(),
                message: "no OpenPGP public key found".to_owned(),
            });
        }
        let fingerprints = keys
            .iter()
            .map(|k| hex::encode_upper(k.fingerprint().as_bytes()))
            .collect();
        Ok(Keyring { keys, fingerprints })
    }

    /// Checks that `signature` is a signature by one of the keys of the image `digest`.
    pub fn verify(&self, signature: &[u8], digest: &ImageDigest) -> Result<(), VerifyError> {
        let payload = self.signed_payload(signature)?;
        check_claim(&payload, digest)
    }

    /// The signed content, if a key made the signature.
    fn signed_payload(&self, signature: &[u8]) -> Result<Vec<u8>, VerifyError> {
        let format = |e: &dyn std::fmt::Display| VerifyError::Format(e.to_string());
        let message = if signature.starts_with(b"-----BEGIN PGP") {
            Message::from_armor(BufReader::new(signature))
                .map(|(m, _)| m)
                .map_err(|e| format(&e))?
        } else {
            Message::from_bytes(signature).map_err(|e| format(&e))?
        };
        let mut message = message.decompress().map_err(|e| format(&e))?;
        if !message.is_signed() {
            return Err(VerifyError::Format("the message is not signed".to_owned()));
        }
        let mut payload = Vec::new();
        (&mut message)
            .take(MAX_PAYLOAD_BYTES + 1)
            .read_to_end(&mut payload)
            .map_err(|e| format(&e))?;
        if payload.len() as u64 > MAX_PAYLOAD_BYTES {
            return Err(VerifyError::Format(format!(
                "signed content above {MAX_PAYLOAD_BYTES} bytes"
            )));
        }
        for key in &self.keys {
            if message.verify(key).is_ok() {
                return Ok(payload);
            }
            if key
                .public_subkeys
                .iter()
                .any(|sub| message.verify(sub).is_ok())
            {
                return Ok(payload);
            }
        }
        Err(VerifyError::NoKey)
    }
}

/// Parses armored or binary public keys (several per file).
fn parse_keys(bytes: &[u8]) -> Result<Vec<SignedPublicKey>, String> {
    let text = std::str::from_utf8(bytes).ok();
    let parsed: Vec<pgp::errors::Result<SignedPublicKey>> =
        match text.filter(|t| t.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
            Some(text) => {
                let (keys, _) = SignedPublicKey::from_armor_many(text.as_bytes())
                    .map_err(|e| format!("not an armored public key: {e}"))?;
                keys.collect()
            }
            None => SignedPublicKey::from_bytes_many(bytes)
                .map_err(|e| format!("not an OpenPGP public key: {e}"))?
                .collect(),
        };
    let mut keys = Vec::new();
    for key in parsed {
        let key = key.map_err(|e| format!("not an OpenPGP public key: {e}"))?;
        key.verify_bindings().map_err(|e| {
            format!(
                "public key {} does not verify: {e}",
                hex::encode_upper(key.fingerprint().as_bytes())
            )
        })?;
        keys.push(key);
    }
    Ok(keys)
}

#[derive(Deserialize)]
struct Atomic {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: Image,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

/// The claim check: the content is an atomic container signature of `digest`.
fn check_claim(payload: &[u8], digest: &ImageDigest) -> Result<(), VerifyError> {
    let atomic: Atomic =
        serde_json::from_slice(payload).map_err(|e| VerifyError::Content(e.to_string()))?;
    if atomic.critical.kind != "atomic container signature" {
        return Err(VerifyError::Content(format!(
            "critical.type is `{}`",
            atomic.critical.kind
        )));
    }
    let expected = digest.to_string();
    if atomic.critical.image.digest != expected {
        return Err(VerifyError::Digest {
            claimed: atomic.critical.image.digest,
            expected,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use graph_data::signatures::Algorithm;

    #[test]
    fn the_claim_must_be_the_stored_digest() {
        let hex = "ab".repeat(32);
        let digest = ImageDigest::new(Algorithm::Sha256, &hex).unwrap();
        let good = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r/x"}},"image":{{"docker-manifest-digest":"sha256:{hex}"}},"type":"atomic container signature"}},"optional":{{}}}}"#
        );
        assert_eq!(check_claim(good.as_bytes(), &digest), Ok(()));
        let other = good.replace(&hex, &"cd".repeat(32));
        assert_eq!(
            check_claim(other.as_bytes(), &digest)
                .unwrap_err()
                .to_string(),
            format!("it signs sha256:{}, not sha256:{hex}", "cd".repeat(32))
        );
        let kind = good.replace("atomic container signature", "cosign");
        assert!(matches!(
            check_claim(kind.as_bytes(), &digest),
            Err(VerifyError::Content(_))
        ));
        assert!(matches!(
            check_claim(b"{}", &digest),
            Err(VerifyError::Content(_))
        ));
    }
}
