//! Packing release signatures into the graph-data image: the graph-data's own
//! `signatures/` tree, plus signature trees and ConfigMap files (as `oc adm release
//! mirror` and oc-mirror write them) given on the command line, merged and written in
//! the atomic store layout `signatures/<algo>/<digest>/signature-<n>`, so one image
//! carries the graph-data and the signatures into the site. Any file that does not fit
//! the layout refuses the push, naming the file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use graph_data::signatures::{
    load_configmap_dir, load_dir, parse_configmaps, parse_signature_name, Algorithm, ImageDigest,
    Loaded, Signature, SignatureLimits, SignatureProblem, StoreBuilder,
};

use super::PushError;

/// Where extra signatures come from.
#[derive(Debug, Clone, Default)]
pub struct SignatureInputs {
    /// Trees laid out as `<algo>/<digest>/signature-<n>`.
    pub trees: Vec<PathBuf>,
    /// Directories of signature ConfigMap files.
    pub configmaps: Vec<PathBuf>,
}

const TOP: &str = "signatures";

/// Replaces the `signatures/` entries of `files` with the merge of them and `inputs`;
/// returns how many signatures the image carries.
pub(super) fn merge(
    files: &mut BTreeMap<String, Option<Vec<u8>>>,
    source: &std::path::Path,
    inputs: &SignatureInputs,
) -> Result<usize, PushError> {
    let limits = SignatureLimits::default();
    let own: Vec<(String, Option<Vec<u8>>)> = {
        let keys: Vec<String> = files
            .keys()
            .filter(|k| k.as_str() == TOP || k.starts_with("signatures/"))
            .cloned()
            .collect();
        keys.into_iter()
            .map(|k| {
                let v = files.remove(&k).flatten();
                (k, v)
            })
            .collect()
    };
    let mut loaded = vec![from_files(own, limits)];
    let read = |path: &PathBuf| {
        let path = path.clone();
        move |e: graph_data::signatures::SignatureError| PushError::Read {
            path,
            reason: e.to_string(),
        }
    };
    for tree in &inputs.trees {
        loaded.push(load_dir(tree, &tree.display().to_string(), limits).map_err(read(tree))?);
    }
    for dir in &inputs.configmaps {
        loaded.push(load_configmap_dir(dir, limits).map_err(read(dir))?);
    }
    let mut builder = StoreBuilder::new(limits);
    for one in loaded {
        builder.add(one).map_err(|e| PushError::Invalid {
            path: source.to_owned(),
            report: e.to_string(),
        })?;
    }
    let (store, problems) = builder.finish();
    if !problems.is_empty() {
        let report: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(PushError::Invalid {
            path: source.to_owned(),
            report: format!(
                "{} signature problem(s):\n  {}",
                report.len(),
                report.join("\n  ")
            ),
        });
    }
    let mut digests: Vec<&ImageDigest> = store.digests().collect();
    digests.sort();
    for digest in digests {
        for (i, signature) in store.signatures(digest).iter().enumerate() {
            files.insert(
                format!(
                    "{TOP}/{}/{}/signature-{}",
                    digest.algorithm,
                    digest.hex,
                    i + 1
                ),
                Some(signature.bytes.to_vec()),
            );
        }
    }
    Ok(store.len())
}

/// The graph-data's own tree, as files read from its tarball.
fn from_files(files: Vec<(String, Option<Vec<u8>>)>, limits: SignatureLimits) -> Loaded {
    let mut loaded = Loaded::default();
    for (path, content) in files {
        let Some(bytes) = content else { continue };
        let parts: Vec<&str> = path.split('/').skip(1).collect();
        let problem = |message: &str| SignatureProblem {
            file: path.clone(),
            message: message.to_owned(),
        };
        match parts.as_slice() {
            [name] if [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e)) => {
                match String::from_utf8(bytes) {
                    Ok(text) => {
                        let mut one = parse_configmaps(&path, &text, limits);
                        loaded.signatures.append(&mut one.signatures);
                        loaded.problems.append(&mut one.problems);
                    }
                    Err(_) => loaded.problems.push(problem("not UTF-8 text")),
                }
            }
            [algo, hex, name] => {
                let digest = Algorithm::parse(algo).and_then(|a| ImageDigest::new(a, hex));
                match (digest, parse_signature_name(name)) {
                    (Some(digest), Some(index))
                        if !bytes.is_empty()
                            && bytes.len() as u64 <= limits.max_signature_bytes =>
                    {
                        let signature = Signature::new(bytes.into(), path.clone());
                        loaded.signatures.push((digest, index, signature));
                    }
                    _ => loaded.problems.push(problem(
                        "not <algo>/<lowercase hex digest>/signature-<n> (1 <= n <= 64) of 1 byte to 64 KiB",
                    )),
                }
            }
            _ => loaded.problems.push(problem(
                "neither <algo>/<digest>/signature-<n> nor a ConfigMap file",
            )),
        }
    }
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configmaps_become_the_tree_after_the_graph_data_own() {
        let hex = "ab".repeat(32);
        let dir = tempfile::tempdir().unwrap();
        let cms = dir.path().join("cms");
        std::fs::create_dir(&cms).unwrap();
        std::fs::write(
            cms.join("signature-sha256-abab.json"),
            format!(r#"{{"kind":"ConfigMap","binaryData":{{"sha256-{hex}-1":"b3RoZXI=","sha256-{hex}-2":"b3du"}}}}"#),
        )
        .unwrap();
        let mut files = BTreeMap::new();
        files.insert("version".to_owned(), Some(b"1.0.0".to_vec()));
        files.insert(TOP.to_owned(), None);
        files.insert(
            format!("{TOP}/sha256/{hex}/signature-1"),
            Some(b"own".to_vec()),
        );
        let inputs = SignatureInputs {
            trees: vec![],
            configmaps: vec![cms.clone()],
        };
        let n = merge(&mut files, dir.path(), &inputs).unwrap();
        assert_eq!(n, 2, "the duplicate of `own` is dropped");
        let got: Vec<_> = files
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.clone().map(String::from_utf8).map(Result::unwrap),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    format!("{TOP}/sha256/{hex}/signature-1"),
                    Some("own".to_owned())
                ),
                (
                    format!("{TOP}/sha256/{hex}/signature-2"),
                    Some("other".to_owned())
                ),
                ("version".to_owned(), Some("1.0.0".to_owned())),
            ]
        );

        std::fs::write(
            cms.join("bad.yaml"),
            "kind: ConfigMap\nbinaryData:\n  nope: eA==\n",
        )
        .unwrap();
        let err = merge(&mut files, dir.path(), &inputs)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.yaml: binaryData.nope: not a signature key"),
            "{err}"
        );
    }
}
