//! Applying one image layer to the graph-data files collected so far: keep the
//! graph-data files under the graph-data root, honour whiteouts (`.wh.name` deletes a
//! file of a lower layer, `.wh..wh..opq` empties a directory of lower layers). The
//! layer's digest and size are checked by the stream it is read from (the registry
//! session's verified blob stream), which fails its last read on a mismatch: a layer is
//! read to its end here so that the check always runs.
//!
//! Every read is bounded: tar records ([`graph_data::bounded_tar`]), decompressed bytes
//! and entries per layer, and the files kept across the image (count and bytes, the
//! graph-data tarball caps). Links, devices and FIFOs at a graph-data path are refused by
//! name: nothing is written to disk, so they could never be followed, but a link where
//! the format expects a file means the image is not what its author thinks.

use std::io::Read;

use graph_data::bounded_tar::{self, HeaderLimits, Limited};
use graph_data::repo::TarLimits;

use super::pack::{Entries, ROOT_FILES, YAML_DIRS};
use crate::oci_layer::{decompress, normal_parts, whiteout, Decoded, Whiteout};
use crate::registry::blocking::Stop;

/// Most bytes one layer may decompress to (base OS layers under the graph-data included).
const LAYER_DECOMPRESSED_CAP: u64 = 2 << 30;
/// Most tar entries in one layer (a UBI base layer has about 15k).
const LAYER_ENTRIES_CAP: u64 = 1_000_000;

fn refused(message: String) -> std::io::Error {
    std::io::Error::other(message)
}

/// Applies one layer to `files` (paths relative to the graph-data root): keeps the
/// graph-data files under `root`, applies whiteouts, and reads `reader` to its end. `stop`,
/// when given, is checked before every read of the decompressed bytes too, so that an
/// abandoned download stops decompressing at once.
pub(super) fn extract(
    reader: impl Read,
    root: &[String],
    files: Entries,
    stop: Option<&Stop>,
) -> std::io::Result<Entries> {
    let limits = TarLimits::default();
    let mut reader = reader;
    let mut upper = Entries::new();
    let mut whiteouts = Vec::new();
    {
        let decoded = match decompress(&mut reader)? {
            Decoded::Tar(tar) => tar,
            Decoded::Unsupported(kind) => {
                return Err(refused(format!(
                    "the layer is {kind}-compressed, which is not supported"
                )))
            }
        };
        let decoded: Box<dyn Read + '_> = match stop {
            Some(stop) => Box::new(stop.guard(decoded)),
            None => decoded,
        };
        let mut archive = tar::Archive::new(Limited::new(decoded, LAYER_DECOMPRESSED_CAP));
        let mut kept_bytes: u64 = files.values().flatten().map(|b| b.len() as u64).sum();
        let entries = bounded_tar::entries(&mut archive, HeaderLimits::default())
            .map_err(std::io::Error::other)?;
        for (count, entry) in entries.enumerate() {
            if count as u64 >= LAYER_ENTRIES_CAP {
                return Err(refused(format!(
                    "more than {LAYER_ENTRIES_CAP} entries in one layer"
                )));
            }
            let mut entry = entry.map_err(std::io::Error::other)?;
            let Some(parts) = normal_parts(&entry.path) else {
                continue;
            };
            if let Some((name, parent)) = parts.split_last() {
                if let Some(hidden) = name.strip_prefix(".wh.") {
                    if let Some(w) = whiteout(root, parent, hidden) {
                        whiteouts.push(w);
                    }
                    continue;
                }
            }
            let Some(rel) = parts.strip_prefix(root) else {
                continue;
            };
            let rel = rel.join("/");
            let kind = entry.kind;
            let graph_data_path = wanted(&rel, true) || wanted(&rel, false);
            if kind.is_dir() && wanted(&rel, true) {
                upper.insert(rel, None);
            } else if kind.is_file() && wanted(&rel, false) {
                if entry.size > limits.max_entry_bytes {
                    return Err(refused(format!(
                        "{rel} is {} bytes, larger than {} bytes",
                        entry.size, limits.max_entry_bytes
                    )));
                }
                kept_bytes += entry.size;
                if kept_bytes > limits.max_total_bytes {
                    return Err(refused(format!(
                        "the graph-data files are larger than {} bytes in all",
                        limits.max_total_bytes
                    )));
                }
                let mut bytes = Vec::with_capacity(entry.size as usize);
                (&mut entry.data)
                    .take(limits.max_entry_bytes + 1)
                    .read_to_end(&mut bytes)?;
                upper.insert(rel, Some(bytes));
            } else if graph_data_path && !rel.is_empty() && !kind.is_dir() && !kind.is_file() {
                return Err(refused(format!(
                    "{rel} is a {kind:?} entry: links, devices and FIFOs are not allowed in graph-data"
                )));
            }
        }
        // Read what the tar reader left unread (padding, trailing blocks).
        std::io::copy(&mut archive.into_inner(), &mut std::io::sink())?;
    }
    // And the end of the layer itself, where its stream reports a mismatch.
    std::io::copy(&mut reader, &mut std::io::sink())?;
    let mut files = files;
    for w in &whiteouts {
        apply_whiteout(&mut files, w);
    }
    files.extend(upper);
    if files.len() > limits.max_entries {
        return Err(refused(format!(
            "more than {} graph-data files",
            limits.max_entries
        )));
    }
    Ok(files)
}

/// Whether a path relative to the graph-data root is part of graph-data: the root files,
/// the two YAML directories and their direct children.
fn wanted(rel: &str, is_dir: bool) -> bool {
    if super::signatures::wanted(rel) {
        return true;
    }
    if !is_dir && ROOT_FILES.contains(&rel) {
        return true;
    }
    match rel.split_once('/') {
        None => is_dir && YAML_DIRS.contains(&rel),
        Some((dir, name)) => YAML_DIRS.contains(&dir) && !name.contains('/'),
    }
}

/// Removes what a whiteout hides, by key range: linear in what is removed, so a layer
/// of many whiteouts over many files stays fast.
fn apply_whiteout(files: &mut Entries, w: &Whiteout) {
    let (exact, prefix) = match w {
        Whiteout::All => {
            files.clear();
            return;
        }
        Whiteout::Path(p) => (Some(p.as_str()), format!("{p}/")),
        Whiteout::Opaque(p) if p.is_empty() => {
            files.clear();
            return;
        }
        Whiteout::Opaque(p) => (None, format!("{p}/")),
    };
    if let Some(exact) = exact {
        files.remove(exact);
    }
    let under: Vec<String> = files
        .range::<String, _>(prefix.clone()..)
        .map(|(k, _)| k)
        .take_while(|k| k.starts_with(&prefix))
        .cloned()
        .collect();
    for k in under {
        files.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(tar: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, tar).unwrap();
        gz.finish().unwrap()
    }

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
        let root: Vec<String> = root.iter().map(|s| s.to_string()).collect();
        extract(bytes, &root, files, None)
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
    fn flat_images() {
        let flat = layer(&[
            ("version", Some("1.1.0\n")),
            ("blocked-edges/x.yaml", Some("x")),
        ]);
        let files = apply(&flat, &[], Entries::new()).unwrap();
        assert_eq!(files.len(), 2);
    }

    /// A layer is read to the end of its stream, where the registry session's verified
    /// stream reports a digest or size mismatch: the check always runs, and its error is
    /// what the extraction fails with.
    #[tokio::test]
    async fn digest_and_size_mismatches_of_the_layer_stream_fail_the_extraction() {
        use crate::registry::blocking::read_on_blocking_thread;
        use crate::registry::error::blob_mismatch;
        use crate::registry::manifest::sha256_digest;
        use crate::registry::verify::verified;

        let flat = layer(&[("version", Some("1.1.0\n"))]);
        let len = flat.len() as u64;
        let digest = sha256_digest(&flat);
        let read = |digest: &str, size: Option<u64>| {
            let chunk: std::io::Result<bytes::Bytes> = Ok(flat.clone().into());
            let stream = verified(Box::pin(futures::stream::iter([chunk])), digest, size);
            read_on_blocking_thread(stream, |reader, stop| {
                extract(reader, &[], Entries::new(), Some(&stop))
            })
        };
        let files = read(&digest, Some(len)).await.unwrap().unwrap();
        assert_eq!(files.len(), 1);

        let short = read(&digest, Some(len + 1)).await.unwrap().unwrap_err();
        assert_eq!(
            blob_mismatch(&short).map(ToString::to_string),
            Some(format!(
                "blob {digest} is {len} bytes, its descriptor gives {}",
                len + 1
            ))
        );
        let other = sha256_digest(b"other");
        let wrong = read(&other, Some(len)).await.unwrap().unwrap_err();
        assert_eq!(
            blob_mismatch(&wrong).map(ToString::to_string),
            Some(format!("blob {other} hashes to {digest}"))
        );
    }

    #[test]
    fn whiteouts_hide_lower_layers_only_and_may_remove_the_whole_root() {
        let root = ["g"];
        let base = layer(&[
            ("g/version", Some("1.1.0\n")),
            ("g/channels/a.yaml", Some("a")),
            ("g/channels/b.yaml", Some("b")),
        ]);
        let files = apply(&base, &root, Entries::new()).unwrap();
        // A whiteout and a new file of the same name in one layer: the new file stays.
        let top = layer(&[
            ("g/channels/a.yaml", Some("a2")),
            ("g/channels/.wh.a.yaml", Some("")),
            ("g/channels/.wh.b.yaml", Some("")),
        ]);
        let files = apply(&top, &root, files).unwrap();
        assert_eq!(files["channels/a.yaml"].as_deref(), Some(&b"a2"[..]));
        assert!(!files.contains_key("channels/b.yaml"));
        assert!(files.contains_key("version"));
        // Deleting the root's parent directory deletes everything below.
        let gone = layer(&[(".wh.g", Some(""))]);
        assert!(apply(&gone, &root, files.clone()).unwrap().is_empty());
        let opaque_root = layer(&[("g/.wh..wh..opq", Some("")), ("g/version", Some("2"))]);
        let after = apply(&opaque_root, &root, files).unwrap();
        assert_eq!(after.keys().collect::<Vec<_>>(), ["version"]);
    }

    #[test]
    fn links_devices_and_fifos_at_graph_data_paths_are_refused_by_name() {
        for (kind, path) in [
            (tar::EntryType::Symlink, "channels/x.yaml"),
            (tar::EntryType::Link, "LICENSE"),
            (tar::EntryType::Char, "version"),
            (tar::EntryType::Fifo, "blocked-edges/y.yaml"),
            (tar::EntryType::Symlink, "channels"),
        ] {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(0);
            if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
                h.set_link_name("/var/lib/cincinnati/registry-credentials/config.json")
                    .unwrap();
            }
            b.append_data(&mut h, path, std::io::empty()).unwrap();
            let bytes = gzip(&b.into_inner().unwrap());
            let err = apply(&bytes, &[], Entries::new()).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("{path} is a {kind:?} entry: links, devices and FIFOs are not allowed in graph-data")
            );
        }
        // Outside the graph-data files, a link is none of our business.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_link_name("/etc/passwd").unwrap();
        b.append_data(&mut h, "etc/mtab", std::io::empty()).unwrap();
        let bytes = gzip(&b.into_inner().unwrap());
        assert!(apply(&bytes, &[], Entries::new()).unwrap().is_empty());
    }

    #[test]
    fn a_huge_pax_header_is_refused_before_it_is_read() {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_size(2 << 30);
        h.set_path("pax").unwrap();
        h.set_cksum();
        let plain =
            std::io::Cursor::new(h.as_bytes().to_vec()).chain(std::io::repeat(b'a').take(2 << 30));
        let gz = flate2::read::GzEncoder::new(plain, flate2::Compression::fast());
        let err = extract(gz, &[], Entries::new(), None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "PAX header record of 2147483648 bytes is above the 1048576 byte limit"
        );
    }

    #[test]
    fn many_whiteouts_over_many_files_stay_linear() {
        let mut files = Entries::new();
        for i in 0..50_000 {
            files.insert(format!("channels/c{i}.yaml"), Some(Vec::new()));
        }
        let mut b = tar::Builder::new(Vec::new());
        for i in 0..50_000 {
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            b.append_data(&mut h, format!("channels/.wh.c{i}.yaml"), std::io::empty())
                .unwrap();
        }
        let bytes = gzip(&b.into_inner().unwrap());
        // With a scan of every file per whiteout this would be 2.5e9 comparisons.
        assert!(apply(&bytes, &[], files).unwrap().is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ))]

        /// Any layer (graph-data paths, whiteouts, links and specials, flipped bytes)
        /// is applied or refused, never a panic, and what is kept stays graph-data.
        #[test]
        fn any_layer_is_applied_or_refused(
            entries in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "version", "LICENSE", "raw/metadata.json", "channels", "channels/a.yaml",
                        "channels/.wh.a.yaml", ".wh..wh..opq", "channels/.wh..wh..opq",
                        "blocked-edges/b.yaml", "blocked-edges/deep/c.yaml", "etc/passwd", ".wh.channels",
                    ]),
                    proptest::sample::select(vec![
                        tar::EntryType::Regular, tar::EntryType::Directory, tar::EntryType::Symlink,
                        tar::EntryType::Link, tar::EntryType::Fifo, tar::EntryType::GNULongName,
                        tar::EntryType::XHeader,
                    ]),
                ),
                0..10,
            ),
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), 1u8..), 0..3),
        ) {
            let mut tar = Vec::new();
            for (path, kind) in &entries {
                let mut h = tar::Header::new_gnu();
                h.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
                h.set_entry_type(*kind);
                h.set_size(3);
                h.set_cksum();
                tar.extend_from_slice(h.as_bytes());
                tar.extend_from_slice(b"abc");
                tar.resize(tar.len() + 509, 0);
            }
            tar.resize(tar.len() + 1024, 0);
            for (at, xor) in flips {
                let at = at % tar.len();
                tar[at] ^= xor;
            }
            let bytes = gzip(&tar);
            let mut lower = Entries::new();
            lower.insert("channels/z.yaml".to_owned(), Some(b"z".to_vec()));
            if let Ok(files) = apply(&bytes, &[], lower) {
                for path in files.keys() {
                    proptest::prop_assert!(wanted(path, true) || wanted(path, false), "{path}");
                }
            }
        }
    }
}
