//! Release signatures as the cluster version operator fetches them: the containers/image
//! "atomic" signature-store layout (`<algo>=<digest>/signature-<n>`), read from what a
//! disconnected site already has, into one bounded in-memory [`SignatureStore`].
//!
//! Two repository formats are read:
//! - a `signatures/` tree shipped in graph-data, laid out as
//!   `signatures/<algo>/<digest>/signature-<n>` ([`load_dir`] for the directory,
//!   [`load_tarball`] for the same tree inside `graph-data.tar.gz`);
//! - the signature ConfigMaps that `oc adm release mirror` and oc-mirror write (YAML or
//!   JSON, `binaryData` keys `sha256-<hex>-<n>` holding base64 signatures), from a
//!   directory of such files ([`load_configmap_dir`]) or as files directly inside the
//!   `signatures/` tree.
//!
//! Nothing here checks a signature's OpenPGP content: that is the server's business,
//! with the admin's keys. Files that do not fit the layout are skipped and listed as
//! [`SignatureProblem`]s naming the file; limits on size and count end the load with a
//! [`SignatureError`] naming the file that crossed them.

mod configmap;
mod load;

use std::collections::HashMap;
use std::fmt;

use bytes::Bytes;
use sha2::{Digest, Sha256};

pub use configmap::parse_configmaps;
pub use load::{load_configmap_dir, load_dir, load_tarball};

/// Highest `n` in `signature-<n>` that is read or served. The cluster version operator
/// asks for signature-1, signature-2, … and stops at the first miss, so real stores hold
/// a handful; a bound keeps a hostile name from meaning anything.
pub const MAX_INDEX: u32 = 64;

/// The digest algorithms of the store layout: `sha256`, and the legacy `sha` directory
/// the reference also serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// `sha256`: the digest is 64 lowercase hex digits.
    Sha256,
    /// `sha`: the legacy name; the digest is lowercase hex of any length up to 128.
    Sha,
}

impl Algorithm {
    /// Parses an algorithm name as it appears in a path or URL.
    pub fn parse(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha" => Some(Algorithm::Sha),
            _ => None,
        }
    }

    /// The name in paths and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha => "sha",
        }
    }

    /// Whether `digest` is well formed for this algorithm.
    pub fn valid_digest(self, digest: &str) -> bool {
        let hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        match self {
            Algorithm::Sha256 => digest.len() == 64 && hex(digest),
            Algorithm::Sha => !digest.is_empty() && digest.len() <= 128 && hex(digest),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses `signature-<n>` with `1 <= n <= MAX_INDEX` and no leading zeros or sign.
pub fn parse_signature_name(name: &str) -> Option<u32> {
    let n = name.strip_prefix("signature-")?;
    if n.is_empty() || n.len() > 3 || n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = n.parse().ok()?;
    (1..=MAX_INDEX).contains(&n).then_some(n)
}

/// A release image digest: algorithm and lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageDigest {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The hex digits.
    pub hex: String,
}

impl ImageDigest {
    /// A digest, if `hex` is well formed for `algorithm`.
    pub fn new(algorithm: Algorithm, hex: &str) -> Option<ImageDigest> {
        algorithm.valid_digest(hex).then(|| ImageDigest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// Parses `sha256:<hex>` (a manifest reference) or `sha256=<hex>` (a store path).
    pub fn parse(text: &str) -> Option<ImageDigest> {
        let (algo, hex) = text.split_once([':', '='])?;
        ImageDigest::new(Algorithm::parse(algo)?, hex)
    }
}

impl fmt::Display for ImageDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

/// One stored signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The exact bytes (an OpenPGP message), served as they are.
    pub bytes: Bytes,
    /// A strong entity tag: the quoted hex SHA-256 of the bytes.
    pub etag: String,
    /// Where it was read from (`signatures/sha256/<hex>/signature-1`, or
    /// `<file>: binaryData.sha256-<hex>-1`), for reports.
    pub origin: String,
}

impl Signature {
    /// A signature read from `origin`.
    pub fn new(bytes: Bytes, origin: String) -> Signature {
        let etag = format!("\"{}\"", hex::encode(Sha256::digest(&bytes)));
        Signature {
            bytes,
            etag,
            origin,
        }
    }
}

/// Caps on what a load may read; each is checked before the bytes are kept.
#[derive(Debug, Clone, Copy)]
pub struct SignatureLimits {
    /// Largest single signature, in bytes (real ones are under 2 KiB).
    pub max_signature_bytes: u64,
    /// Largest ConfigMap file, in bytes.
    pub max_configmap_bytes: u64,
    /// Most signatures in the store.
    pub max_signatures: usize,
    /// Largest sum of signature sizes, in bytes.
    pub max_total_bytes: u64,
    /// Most directory entries or tarball entries looked at.
    pub max_entries: usize,
}

impl Default for SignatureLimits {
    fn default() -> Self {
        Self {
            max_signature_bytes: 64 << 10,
            max_configmap_bytes: 16 << 20,
            max_signatures: 100_000,
            max_total_bytes: 256 << 20,
            max_entries: 400_000,
        }
    }
}

/// A file (or ConfigMap key) that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureProblem {
    /// The file, relative to the source, with the key for ConfigMaps.
    pub file: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for SignatureProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// Why a load stopped.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// A directory or file of the source cannot be read.
    #[error("cannot read signatures from {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The source crossed a limit; `file` is where it did.
    #[error("{file}: {message}")]
    Limit {
        /// The file being read when the limit was crossed.
        file: String,
        /// Which limit.
        message: String,
    },
    /// The tarball cannot be decoded.
    #[error("{file}: not a readable tar.gz: {message}")]
    Archive {
        /// The tarball.
        file: String,
        /// The decoder's error.
        message: String,
    },
}

/// Signatures by release digest, merged from any number of sources.
///
/// Each digest's signatures are numbered 1, 2, … in the order their sources were added
/// (and, within a source, by their own number), with byte-identical duplicates dropped:
/// the cluster version operator stops at the first missing number, so merged stores must
/// have no gaps.
#[derive(Debug, Clone, Default)]
pub struct SignatureStore {
    by_digest: HashMap<ImageDigest, Vec<Signature>>,
    count: usize,
    total_bytes: u64,
}

impl SignatureStore {
    /// Signature `index` (1-based) of `digest`.
    pub fn get(&self, digest: &ImageDigest, index: u32) -> Option<&Signature> {
        let list = self.by_digest.get(digest)?;
        list.get(usize::try_from(index).ok()?.checked_sub(1)?)
    }

    /// Every signature of `digest`, in serving order.
    pub fn signatures(&self, digest: &ImageDigest) -> &[Signature] {
        self.by_digest.get(digest).map_or(&[], Vec::as_slice)
    }

    /// The digests that have signatures, in no particular order.
    pub fn digests(&self) -> impl Iterator<Item = &ImageDigest> {
        self.by_digest.keys()
    }

    /// How many signatures are stored.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no signature is stored.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The sum of the stored signatures' sizes.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Keeps the signatures `keep` accepts, renumbering what is left of each digest from
    /// 1 (so no gap is served); returns the ones dropped, with their digest.
    pub fn retain(
        &mut self,
        mut keep: impl FnMut(&ImageDigest, &Signature) -> bool,
    ) -> Vec<(ImageDigest, Signature)> {
        let mut dropped = Vec::new();
        self.by_digest.retain(|digest, list| {
            let (kept, gone): (Vec<_>, Vec<_>) = std::mem::take(list)
                .into_iter()
                .partition(|s| keep(digest, s));
            dropped.extend(gone.into_iter().map(|s| (digest.clone(), s)));
            *list = kept;
            !list.is_empty()
        });
        self.count = self.by_digest.values().map(Vec::len).sum();
        self.total_bytes = self
            .by_digest
            .values()
            .flatten()
            .map(|s| s.bytes.len() as u64)
            .sum();
        dropped
    }
}

/// One source's signatures as read, before merging.
#[derive(Debug, Default)]
pub struct Loaded {
    /// `(digest, own number, signature)`; numbers may have gaps or repeat across files.
    pub signatures: Vec<(ImageDigest, u32, Signature)>,
    /// Files and keys skipped.
    pub problems: Vec<SignatureProblem>,
}

/// Merges sources in order into one store, within `limits`.
#[derive(Debug)]
pub struct StoreBuilder {
    limits: SignatureLimits,
    store: SignatureStore,
    problems: Vec<SignatureProblem>,
}

impl StoreBuilder {
    /// An empty store bounded by `limits`.
    pub fn new(limits: SignatureLimits) -> StoreBuilder {
        StoreBuilder {
            limits,
            store: SignatureStore::default(),
            problems: Vec::new(),
        }
    }

    /// Adds one source's signatures after those already added.
    pub fn add(&mut self, mut loaded: Loaded) -> Result<(), SignatureError> {
        self.problems.append(&mut loaded.problems);
        // Stable: files of one source keep their reading order for equal numbers.
        loaded
            .signatures
            .sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        for (digest, _, signature) in loaded.signatures {
            let list = self.store.by_digest.entry(digest).or_default();
            if list.iter().any(|s| s.bytes == signature.bytes) {
                continue;
            }
            if list.len() >= MAX_INDEX as usize {
                self.problems.push(SignatureProblem {
                    file: signature.origin,
                    message: format!("more than {MAX_INDEX} signatures for one digest"),
                });
                continue;
            }
            if self.store.count >= self.limits.max_signatures {
                return Err(SignatureError::Limit {
                    file: signature.origin,
                    message: format!("more than {} signatures", self.limits.max_signatures),
                });
            }
            let size = signature.bytes.len() as u64;
            if self.store.total_bytes + size > self.limits.max_total_bytes {
                return Err(SignatureError::Limit {
                    file: signature.origin,
                    message: format!(
                        "signatures above the {} byte limit in all",
                        self.limits.max_total_bytes
                    ),
                });
            }
            self.store.count += 1;
            self.store.total_bytes += size;
            list.push(signature);
        }
        Ok(())
    }

    /// The merged store and every problem met.
    pub fn finish(self) -> (SignatureStore, Vec<SignatureProblem>) {
        (self.store, self.problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> ImageDigest {
        ImageDigest::new(Algorithm::Sha256, &c.to_string().repeat(64)).unwrap()
    }

    fn sig(text: &str, origin: &str) -> Signature {
        Signature::new(Bytes::from(text.to_owned()), origin.to_owned())
    }

    #[test]
    fn names_and_digests_are_strict() {
        assert_eq!(parse_signature_name("signature-1"), Some(1));
        assert_eq!(parse_signature_name("signature-64"), Some(64));
        for bad in [
            "signature-0",
            "signature-01",
            "signature-65",
            "signature-99999999999999999999",
            "signature-+1",
            "signature-",
            "signature-1/",
            "sig-1",
        ] {
            assert_eq!(parse_signature_name(bad), None, "{bad}");
        }
        assert!(ImageDigest::parse(&format!("sha256:{}", "a".repeat(64))).is_some());
        assert!(ImageDigest::parse(&format!("sha256={}", "0".repeat(64))).is_some());
        assert!(ImageDigest::parse(&format!("sha256={}", "A".repeat(64))).is_none());
        assert!(ImageDigest::parse(&format!("sha256={}", "a".repeat(63))).is_none());
        assert!(ImageDigest::parse("sha512=abc").is_none());
        assert!(ImageDigest::parse("sha=..").is_none());
        assert!(ImageDigest::parse("sha=abc").is_some());
    }

    #[test]
    fn merging_numbers_from_one_without_gaps_or_duplicates() {
        let mut b = StoreBuilder::new(SignatureLimits::default());
        b.add(Loaded {
            signatures: vec![
                (digest('a'), 3, sig("third", "x/3")),
                (digest('a'), 1, sig("first", "x/1")),
            ],
            problems: vec![],
        })
        .unwrap();
        b.add(Loaded {
            signatures: vec![
                (digest('a'), 1, sig("first", "cm")),
                (digest('a'), 2, sig("other", "cm2")),
                (digest('b'), 7, sig("b", "cm3")),
            ],
            problems: vec![SignatureProblem {
                file: "f".into(),
                message: "m".into(),
            }],
        })
        .unwrap();
        let (store, problems) = b.finish();
        assert_eq!(problems.len(), 1);
        assert_eq!(store.len(), 4);
        let a: Vec<_> = store
            .signatures(&digest('a'))
            .iter()
            .map(|s| s.origin.as_str())
            .collect();
        assert_eq!(a, ["x/1", "x/3", "cm2"]);
        assert_eq!(store.get(&digest('b'), 1).unwrap().origin, "cm3");
        assert!(store.get(&digest('b'), 2).is_none());
        assert!(store.get(&digest('b'), 0).is_none());
        assert_eq!(
            store.get(&digest('b'), 1).unwrap().etag,
            format!("\"{}\"", hex::encode(Sha256::digest(b"b")))
        );
    }

    #[test]
    fn limits_name_the_file_that_crossed_them() {
        let limits = SignatureLimits {
            max_signatures: 1,
            ..SignatureLimits::default()
        };
        let mut b = StoreBuilder::new(limits);
        let err = b
            .add(Loaded {
                signatures: vec![
                    (digest('a'), 1, sig("one", "f/1")),
                    (digest('a'), 2, sig("two", "f/2")),
                ],
                problems: vec![],
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "f/2: more than 1 signatures");

        let limits = SignatureLimits {
            max_total_bytes: 5,
            ..SignatureLimits::default()
        };
        let mut b = StoreBuilder::new(limits);
        let err = b
            .add(Loaded {
                signatures: vec![
                    (digest('a'), 1, sig("one", "f/1")),
                    (digest('b'), 1, sig("three", "g/1")),
                ],
                problems: vec![],
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "g/1: signatures above the 5 byte limit in all"
        );
    }

    #[test]
    fn retain_renumbers() {
        let mut b = StoreBuilder::new(SignatureLimits::default());
        b.add(Loaded {
            signatures: vec![
                (digest('a'), 1, sig("bad", "1")),
                (digest('a'), 2, sig("good", "2")),
                (digest('b'), 1, sig("bad too", "3")),
            ],
            problems: vec![],
        })
        .unwrap();
        let (mut store, _) = b.finish();
        let mut dropped = store.retain(|_, s| s.bytes.as_ref() == b"good");
        dropped.sort_by(|a, b| a.1.origin.cmp(&b.1.origin));
        assert_eq!(dropped.len(), 2);
        assert_eq!(dropped[0].1.origin, "1");
        assert_eq!(store.get(&digest('a'), 1).unwrap().origin, "2");
        assert_eq!(store.len(), 1);
        assert_eq!(store.total_bytes(), 4);
        assert_eq!(store.digests().count(), 1);
    }
}
