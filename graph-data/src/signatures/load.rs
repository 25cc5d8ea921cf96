//! Reading signature sources: the `signatures/` tree on disk or inside a
//! `graph-data.tar.gz`, and a directory of ConfigMap files.
//!
//! Symbolic links are followed on disk (Kubernetes mounts ConfigMaps through them) and
//! names starting with `.` are skipped (the `..data` links of such mounts). In a tarball,
//! links, devices, absolute paths and `..` are refused. Every file is size-checked
//! before it is read.

use std::fs;
use std::io::Read;
use std::path::{Component, Path};

use bytes::Bytes;
use flate2::read::GzDecoder;
use tar::EntryType;

use super::configmap::parse_configmaps;
use super::{
    parse_signature_name, Algorithm, ImageDigest, Loaded, Signature, SignatureError,
    SignatureLimits, SignatureProblem,
};

/// The directory of the tree inside graph-data.
pub(crate) const SIGNATURES_DIR: &str = "signatures";

fn is_configmap_name(name: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.len() > ext.len() && name.ends_with(ext))
}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> SignatureError + '_ {
    move |source| SignatureError::Read {
        path: path.display().to_string(),
        source,
    }
}

/// Sorted names of `dir`'s children, dot-names left out, within the entry budget.
fn children(dir: &Path, budget: &mut usize, limit: usize) -> Result<Vec<String>, SignatureError> {
    let mut names = Vec::new();
    for child in fs::read_dir(dir).map_err(read_error(dir))? {
        let child = child.map_err(read_error(dir))?;
        *budget += 1;
        if *budget > limit {
            return Err(SignatureError::Limit {
                file: dir.display().to_string(),
                message: format!("more than {limit} directory entries"),
            });
        }
        let name = child.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Reads at most `limit` bytes of a regular file; `None` (with a problem) if larger.
fn read_bounded(
    path: &Path,
    shown: &str,
    limit: u64,
    problems: &mut Vec<SignatureProblem>,
) -> Result<Option<Vec<u8>>, SignatureError> {
    let file = fs::File::open(path).map_err(read_error(path))?;
    let mut buf = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(read_error(path))?;
    if buf.len() as u64 > limit {
        problems.push(SignatureProblem {
            file: shown.to_owned(),
            message: format!("above the {limit} byte limit"),
        });
        return Ok(None);
    }
    Ok(Some(buf))
}

/// Reads a `signatures/` directory laid out as `<algo>/<digest>/signature-<n>`, plus any
/// ConfigMap files directly in it. A missing directory holds no signature. `label` is
/// how files are named in problems (`signatures` for graph-data's own tree).
pub fn load_dir(
    root: &Path,
    label: &str,
    limits: SignatureLimits,
) -> Result<Loaded, SignatureError> {
    let mut loaded = Loaded::default();
    match fs::metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(loaded),
        Err(e) => return Err(read_error(root)(e)),
        Ok(meta) if !meta.is_dir() => {
            return Err(read_error(root)(std::io::Error::other("not a directory")))
        }
        Ok(_) => {}
    }
    let mut budget = 0;
    let problem = |loaded: &mut Loaded, file: String, message: &str| {
        loaded.problems.push(SignatureProblem {
            file,
            message: message.to_owned(),
        })
    };
    for name in children(root, &mut budget, limits.max_entries)? {
        let path = root.join(&name);
        let shown = format!("{label}/{name}");
        let meta = fs::metadata(&path).map_err(read_error(&path))?;
        if meta.is_file() && is_configmap_name(&name) {
            read_configmap(&path, &shown, limits, &mut loaded)?;
            continue;
        }
        let Some(algorithm) = Algorithm::parse(&name).filter(|_| meta.is_dir()) else {
            problem(
                &mut loaded,
                shown,
                "neither a digest algorithm directory (`sha256`) nor a ConfigMap file",
            );
            continue;
        };
        for hex in children(&path, &mut budget, limits.max_entries)? {
            let digest_path = path.join(&hex);
            let shown = format!("{label}/{name}/{hex}");
            let Some(digest) = ImageDigest::new(algorithm, &hex) else {
                problem(
                    &mut loaded,
                    shown,
                    "not a lowercase hex digest of this algorithm",
                );
                continue;
            };
            if !fs::metadata(&digest_path)
                .map_err(read_error(&digest_path))?
                .is_dir()
            {
                problem(&mut loaded, shown, "not a directory");
                continue;
            }
            for file in children(&digest_path, &mut budget, limits.max_entries)? {
                let file_path = digest_path.join(&file);
                let shown = format!("{label}/{name}/{hex}/{file}");
                let Some(index) = parse_signature_name(&file) else {
                    problem(&mut loaded, shown, "not named signature-<n> (1 <= n <= 64)");
                    continue;
                };
                if !fs::metadata(&file_path)
                    .map_err(read_error(&file_path))?
                    .is_file()
                {
                    problem(&mut loaded, shown, "not a regular file");
                    continue;
                }
                let Some(bytes) = read_bounded(
                    &file_path,
                    &shown,
                    limits.max_signature_bytes,
                    &mut loaded.problems,
                )?
                else {
                    continue;
                };
                if bytes.is_empty() {
                    problem(&mut loaded, shown, "an empty signature");
                    continue;
                }
                loaded.signatures.push((
                    digest.clone(),
                    index,
                    Signature::new(Bytes::from(bytes), shown),
                ));
            }
        }
    }
    Ok(loaded)
}

fn read_configmap(
    path: &Path,
    shown: &str,
    limits: SignatureLimits,
    loaded: &mut Loaded,
) -> Result<(), SignatureError> {
    let Some(bytes) = read_bounded(
        path,
        shown,
        limits.max_configmap_bytes,
        &mut loaded.problems,
    )?
    else {
        return Ok(());
    };
    match String::from_utf8(bytes) {
        Ok(text) => {
            let mut one = parse_configmaps(shown, &text, limits);
            loaded.signatures.append(&mut one.signatures);
            loaded.problems.append(&mut one.problems);
        }
        Err(_) => loaded.problems.push(SignatureProblem {
            file: shown.to_owned(),
            message: "not UTF-8 text".to_owned(),
        }),
    }
    Ok(())
}

/// Reads every ConfigMap file (`.yaml`, `.yml`, `.json`) directly in `dir` (oc-mirror's
/// `cluster-resources` works as it is: objects other than ConfigMaps with `binaryData`
/// are passed over); other files are listed as problems.
pub fn load_configmap_dir(dir: &Path, limits: SignatureLimits) -> Result<Loaded, SignatureError> {
    let mut loaded = Loaded::default();
    let mut budget = 0;
    for name in children(dir, &mut budget, limits.max_entries)? {
        let path = dir.join(&name);
        let shown = path.display().to_string();
        let meta = fs::metadata(&path).map_err(read_error(&path))?;
        if meta.is_file() && is_configmap_name(&name) {
            read_configmap(&path, &shown, limits, &mut loaded)?;
        } else {
            loaded.problems.push(SignatureProblem {
                file: shown,
                message: "not a ConfigMap file (.yaml, .yml or .json)".to_owned(),
            });
        }
    }
    Ok(loaded)
}

/// Reads the `signatures/` tree of a `graph-data.tar.gz` (at its root, or under the one
/// directory that wraps a GitHub-style tarball); `label` names the tarball in errors.
pub fn load_tarball(
    label: &str,
    tarball: &[u8],
    limits: SignatureLimits,
) -> Result<Loaded, SignatureError> {
    let mut loaded = Loaded::default();
    let archive_error = |e: std::io::Error| SignatureError::Archive {
        file: label.to_owned(),
        message: e.to_string(),
    };
    let mut archive = tar::Archive::new(GzDecoder::new(tarball));
    for (count, entry) in archive.entries().map_err(archive_error)?.enumerate() {
        if count >= limits.max_entries {
            return Err(SignatureError::Limit {
                file: label.to_owned(),
                message: format!("more than {} entries", limits.max_entries),
            });
        }
        let mut entry = entry.map_err(archive_error)?;
        let Some(parts) = normal_parts(&entry.path_bytes()) else {
            // The graph-data loader reports unsafe paths; they are never signatures.
            continue;
        };
        let rest = match parts.as_slice() {
            [top, rest @ ..] if top == SIGNATURES_DIR => rest,
            [_, top, rest @ ..] if top == SIGNATURES_DIR => rest,
            _ => continue,
        };
        let shown = format!("{SIGNATURES_DIR}/{}", rest.join("/"));
        let kind = entry.header().entry_type();
        if kind == EntryType::Directory || rest.is_empty() {
            continue;
        }
        if !matches!(kind, EntryType::Regular | EntryType::Continuous) {
            loaded.problems.push(SignatureProblem {
                file: shown,
                message: "not a regular file (links are refused)".to_owned(),
            });
            continue;
        }
        let size = entry.size();
        let (limit, target) = match rest {
            [name] if is_configmap_name(name) => (limits.max_configmap_bytes, None),
            [algo, hex, file] => {
                let digest = Algorithm::parse(algo).and_then(|a| ImageDigest::new(a, hex));
                let index = parse_signature_name(file);
                match (digest, index) {
                    (Some(d), Some(i)) => (limits.max_signature_bytes, Some((d, i))),
                    _ => {
                        loaded.problems.push(SignatureProblem {
                            file: shown,
                            message: "not <algo>/<lowercase hex digest>/signature-<n> (sha256 or sha, 1 <= n <= 64)".to_owned(),
                        });
                        continue;
                    }
                }
            }
            _ => {
                loaded.problems.push(SignatureProblem {
                    file: shown,
                    message: "neither <algo>/<digest>/signature-<n> nor a ConfigMap file"
                        .to_owned(),
                });
                continue;
            }
        };
        if size > limit {
            loaded.problems.push(SignatureProblem {
                file: shown,
                message: format!("above the {limit} byte limit"),
            });
            continue;
        }
        let mut buf = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(archive_error)?;
        match target {
            Some(_) if buf.is_empty() => loaded.problems.push(SignatureProblem {
                file: shown,
                message: "an empty signature".to_owned(),
            }),
            Some((digest, index)) => {
                loaded
                    .signatures
                    .push((digest, index, Signature::new(Bytes::from(buf), shown)))
            }
            None => match String::from_utf8(buf) {
                Ok(text) => {
                    let mut one = parse_configmaps(&shown, &text, limits);
                    loaded.signatures.append(&mut one.signatures);
                    loaded.problems.append(&mut one.problems);
                }
                Err(_) => loaded.problems.push(SignatureProblem {
                    file: shown,
                    message: "not UTF-8 text".to_owned(),
                }),
            },
        }
    }
    Ok(loaded)
}

/// The normal components of a tarball path, or `None` if it is absolute, has `..` or is
/// not UTF-8.
fn normal_parts(path: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(path).ok()?;
    let mut parts = Vec::new();
    for c in Path::new(text).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?.to_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;

    const HEX: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    fn write(root: &Path, name: &str, content: &[u8]) {
        let path = root.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    #[test]
    fn a_directory_tree_with_configmaps_and_strays() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, &format!("sha256/{HEX}/signature-1"), b"one");
        write(root, &format!("sha256/{HEX}/signature-2"), b"two");
        write(root, &format!("sha256/{HEX}/signature-0"), b"zero");
        write(root, &format!("sha256/{HEX}/signature-3"), &[0u8; 10]);
        write(root, &format!("sha256/{HEX}/signature-4"), b"");
        write(root, "sha256/NOTHEX/signature-1", b"x");
        write(root, "md5/abc/signature-1", b"x");
        write(root, ".hidden", b"x");
        write(
            root,
            "cm.yaml",
            format!("kind: ConfigMap\nbinaryData:\n  sha256-{HEX}-1: Y209\n").as_bytes(),
        );
        let limits = SignatureLimits {
            max_signature_bytes: 8,
            ..SignatureLimits::default()
        };
        let loaded = load_dir(root, "signatures", limits).unwrap();
        let got: Vec<_> = loaded
            .signatures
            .iter()
            .map(|(_, n, s)| (*n, s.bytes.as_ref(), s.origin.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    1,
                    &b"cm="[..],
                    &*format!("signatures/cm.yaml: binaryData.sha256-{HEX}-1")
                ),
                (
                    1,
                    &b"one"[..],
                    &*format!("signatures/sha256/{HEX}/signature-1")
                ),
                (
                    2,
                    &b"two"[..],
                    &*format!("signatures/sha256/{HEX}/signature-2")
                ),
            ]
        );
        let problems: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "signatures/md5: neither a digest algorithm directory (`sha256`) nor a ConfigMap file".to_owned(),
                format!("signatures/sha256/{HEX}/signature-0: not named signature-<n> (1 <= n <= 64)"),
                format!("signatures/sha256/{HEX}/signature-3: above the 8 byte limit"),
                format!("signatures/sha256/{HEX}/signature-4: an empty signature"),
                "signatures/sha256/NOTHEX: not a lowercase hex digest of this algorithm".to_owned(),
            ]
        );
        assert!(load_dir(&root.join("absent"), "x", limits)
            .unwrap()
            .signatures
            .is_empty());
        let entries = SignatureLimits {
            max_entries: 3,
            ..limits
        };
        let err = load_dir(root, "signatures", entries)
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("more than 3 directory entries"), "{err}");
    }

    fn tarball(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (name, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(EntryType::Regular);
            tar.append_data(&mut header, name, *bytes).unwrap();
        }
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(EntryType::Symlink);
        link.set_size(0);
        tar.append_link(
            &mut link,
            format!("signatures/sha256/{HEX}/signature-9"),
            "/etc/passwd",
        )
        .unwrap();
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn a_tarball_tree() {
        let one = format!("./signatures/sha256/{HEX}/signature-1");
        let wrapped = format!("wrap/signatures/sha256/{HEX}/signature-2");
        let bad = format!("signatures/sha256/{HEX}/signature-65");
        let cm = format!("kind: ConfigMap\nbinaryData:\n  sha256-{HEX}-3: Y209\n");
        let bytes = tarball(&[
            ("version", b"1.0.0"),
            (&one, b"one"),
            (&wrapped, b"two"),
            (&bad, b"x"),
            ("signatures/oc-mirror.yaml", cm.as_bytes()),
        ]);
        let loaded = load_tarball("graph-data.tar.gz", &bytes, SignatureLimits::default()).unwrap();
        let got: Vec<_> = loaded
            .signatures
            .iter()
            .map(|(_, n, s)| (*n, s.bytes.as_ref()))
            .collect();
        assert_eq!(got, [(1, &b"one"[..]), (2, &b"two"[..]), (3, &b"cm="[..])]);
        let problems: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems[0].starts_with(&format!("signatures/sha256/{HEX}/signature-65: not <algo>"))
        );
        assert_eq!(
            problems[1],
            format!("signatures/sha256/{HEX}/signature-9: not a regular file (links are refused)")
        );
        let err = load_tarball("t.tar.gz", b"not gzip", SignatureLimits::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("t.tar.gz: not a readable tar.gz"),
            "{err}"
        );
    }
}
