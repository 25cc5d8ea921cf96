//! Applying one image layer to the graph-data files collected so far: keep the
//! graph-data files under the graph-data root, honour whiteouts (`.wh.name` deletes a
//! file of a lower layer, `.wh..wh..opq` empties a directory), and check the layer's
//! digest over the bytes as they stream by.

use std::io::{BufRead as _, BufReader, Read};
use std::path::{Component, Path};

use sha2::{Digest as _, Sha256};

use super::pack::{Entries, ROOT_FILES, YAML_DIRS};

/// Largest graph-data file kept from a layer.
const FILE_CAP: u64 = 16 << 20;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Hashes what is read through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Applies one layer to `files` (paths relative to the graph-data root): keeps the
/// graph-data files under `root`, applies whiteouts, and checks the layer digest.
pub(super) fn extract(
    reader: impl Read,
    root: &[String],
    digest: &str,
    mut files: Entries,
) -> std::io::Result<Entries> {
    let mut hashing = Hashing {
        inner: reader,
        hasher: Sha256::new(),
    };
    {
        let mut buffered = BufReader::with_capacity(64 * 1024, &mut hashing);
        let gzip = buffered.fill_buf()?.starts_with(&GZIP_MAGIC);
        let decoded: Box<dyn Read + '_> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let mut archive = tar::Archive::new(decoded);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let Some(parts) = normal_parts(&entry.path_bytes()) else {
                continue;
            };
            let Some(rel) = parts.strip_prefix(root) else {
                continue;
            };
            if let Some((name, parent)) = rel.split_last() {
                if let Some(hidden) = name.strip_prefix(".wh.") {
                    whiteout(&mut files, parent, hidden);
                    continue;
                }
            }
            let kind = entry.header().entry_type();
            let rel = rel.join("/");
            if kind.is_dir() && wanted(&rel, true) {
                files.insert(rel, None);
            } else if kind.is_file() && wanted(&rel, false) {
                if entry.size() > FILE_CAP {
                    return Err(std::io::Error::other(format!(
                        "{rel} is larger than {FILE_CAP} bytes"
                    )));
                }
                let mut bytes = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut bytes)?;
                files.insert(rel, Some(bytes));
            }
        }
        // Hash what the tar reader left unread (padding, trailing blocks).
        std::io::copy(&mut archive.into_inner(), &mut std::io::sink())?;
    }
    let actual = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
    if actual != digest {
        return Err(std::io::Error::other(format!(
            "content digest is {actual}, not the layer digest"
        )));
    }
    Ok(files)
}

/// The normal components of a tar path; `None` for `..` (never extracted).
fn normal_parts(path: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(path).ok()?;
    let mut parts = Vec::new();
    for c in Path::new(text).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => return None,
            _ => {}
        }
    }
    Some(parts)
}

/// Whether a path relative to the graph-data root is part of graph-data: the root files,
/// the two YAML directories and their direct children.
fn wanted(rel: &str, is_dir: bool) -> bool {
    if !is_dir && ROOT_FILES.contains(&rel) {
        return true;
    }
    match rel.split_once('/') {
        None => is_dir && YAML_DIRS.contains(&rel),
        Some((dir, name)) => YAML_DIRS.contains(&dir) && !name.contains('/'),
    }
}

/// `parent/.wh.name` deletes `parent/name` from lower layers; `.wh..wh..opq` empties
/// `parent`.
fn whiteout(files: &mut Entries, parent: &[String], hidden: &str) {
    let parent = parent.join("/");
    let target = match hidden {
        ".wh..opq" => parent.clone(),
        name if parent.is_empty() => name.to_owned(),
        name => format!("{parent}/{name}"),
    };
    let opaque = hidden == ".wh..opq";
    files.retain(|path, _| {
        let inside = target.is_empty() || path.starts_with(&format!("{target}/"));
        !(inside || (!opaque && *path == target))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, content) in entries {
            let mut header = tar::Header::new_gnu();
            match content {
                Some(c) => {
                    header.set_size(c.len() as u64);
                    header.set_entry_type(tar::EntryType::Regular);
                    tar.append_data(&mut header, path, c.as_bytes()).unwrap();
                }
                None => {
                    header.set_size(0);
                    header.set_entry_type(tar::EntryType::Directory);
                    tar.append_data(&mut header, path, std::io::empty())
                        .unwrap();
                }
            }
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
        gz.finish().unwrap()
    }

    fn apply(bytes: &[u8], root: &[&str], files: Entries) -> std::io::Result<Entries> {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        let root: Vec<String> = root.iter().map(|s| s.to_string()).collect();
        extract(bytes, &root, &digest, files)
    }

    #[test]
    fn keeps_only_graph_data_under_the_root_and_honours_whiteouts() {
        let root = ["var", "lib", "cincinnati-graph-data"];
        let base = layer(&[
            ("etc/os-release", Some("ID=ubi")),
            ("var/lib/cincinnati-graph-data/version", Some("1.1.0\n")),
            ("./var/lib/cincinnati-graph-data/channels/", None),
            (
                "var/lib/cincinnati-graph-data/channels/a-4.1.yaml",
                Some("a"),
            ),
            (
                "var/lib/cincinnati-graph-data/channels/b-4.1.yaml",
                Some("b"),
            ),
            (
                "var/lib/cincinnati-graph-data/channels/deep/c.yaml",
                Some("c"),
            ),
            ("var/lib/cincinnati-graph-data/README.md", Some("r")),
            (
                "var/lib/cincinnati-graph-data/raw/metadata.json",
                Some("{}"),
            ),
        ]);
        let files = apply(&base, &root, Entries::new()).unwrap();
        let names: Vec<_> = files.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "channels",
                "channels/a-4.1.yaml",
                "channels/b-4.1.yaml",
                "raw/metadata.json",
                "version"
            ]
        );
        let top = layer(&[
            (
                "var/lib/cincinnati-graph-data/channels/.wh.a-4.1.yaml",
                Some(""),
            ),
            ("var/lib/cincinnati-graph-data/version", Some("1.2.0\n")),
        ]);
        let files = apply(&top, &root, files).unwrap();
        assert!(!files.contains_key("channels/a-4.1.yaml"));
        assert!(files.contains_key("channels/b-4.1.yaml"));
        assert_eq!(files["version"].as_deref(), Some(&b"1.2.0\n"[..]));
        let opaque = layer(&[(
            "var/lib/cincinnati-graph-data/channels/.wh..wh..opq",
            Some(""),
        )]);
        let files = apply(&opaque, &root, files).unwrap();
        assert!(
            !files.keys().any(|k| k.starts_with("channels/")),
            "{files:?}"
        );
    }

    #[test]
    fn flat_images_and_digest_mismatches() {
        let flat = layer(&[
            ("version", Some("1.1.0\n")),
            ("blocked-edges/x.yaml", Some("x")),
        ]);
        let files = apply(&flat, &[], Entries::new()).unwrap();
        assert_eq!(files.len(), 2);
        let err = extract(&flat[..], &[], "sha256:00", Entries::new()).unwrap_err();
        assert!(err.to_string().contains("not the layer digest"), "{err}");
    }
}
