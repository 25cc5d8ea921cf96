//! The signature ConfigMaps that `oc adm release mirror --release-image-signature-to-dir`
//! and oc-mirror write: a ConfigMap (YAML or JSON, several per file as YAML documents or
//! a `kind: List`) whose `binaryData` keys are `sha256-<hex>-<n>` and whose values are
//! the base64 of the signature. oc-mirror's is `mirrored-release-signatures` in
//! `working-dir/cluster-resources/signature-configmap.{json,yaml}`.

use base64::Engine;
use bytes::Bytes;
use serde_yaml_ng::Value;

use super::{
    parse_signature_name, Algorithm, ImageDigest, Loaded, Signature, SignatureLimits,
    SignatureProblem,
};

/// Most YAML documents and list items read from one file.
const MAX_OBJECTS: usize = 10_000;

/// Reads every signature in the ConfigMaps of `text`, naming `file` in problems.
pub fn parse_configmaps(file: &str, text: &str, limits: SignatureLimits) -> Loaded {
    let mut loaded = Loaded::default();
    let problem = |loaded: &mut Loaded, where_: String, message: String| {
        loaded.problems.push(SignatureProblem {
            file: where_,
            message,
        })
    };
    let mut objects = Vec::new();
    for (i, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        if i >= MAX_OBJECTS {
            problem(
                &mut loaded,
                file.to_owned(),
                format!("more than {MAX_OBJECTS} YAML documents"),
            );
            break;
        }
        match serde::Deserialize::deserialize(document) {
            Ok(Value::Null) => {}
            Ok(Value::Mapping(m)) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                match m.get("items").and_then(Value::as_sequence) {
                    Some(items) => objects.extend(items.iter().take(MAX_OBJECTS).cloned()),
                    None => problem(
                        &mut loaded,
                        file.to_owned(),
                        "a List without an `items` sequence".to_owned(),
                    ),
                }
            }
            Ok(value) => objects.push(value),
            Err(e) => {
                problem(&mut loaded, file.to_owned(), format!("invalid YAML: {e}"));
                break;
            }
        }
    }
    for object in objects {
        // oc-mirror writes its signature ConfigMap next to other cluster resources
        // (ImageDigestMirrorSets, CatalogSources, the UpdateService): anything that is not
        // a ConfigMap with `binaryData` is not about signatures, and is passed over.
        if object.get("kind").and_then(Value::as_str) != Some("ConfigMap") {
            continue;
        }
        let Some(data) = object.get("binaryData").and_then(Value::as_mapping) else {
            continue;
        };
        for (key, value) in data {
            let Some(key) = key.as_str() else {
                problem(
                    &mut loaded,
                    format!("{file}: binaryData"),
                    "a key that is not a string".to_owned(),
                );
                continue;
            };
            let at = format!("{file}: binaryData.{key}");
            let Some((digest, index)) = parse_key(key) else {
                problem(
                    &mut loaded,
                    at,
                    "not a signature key (`sha256-<64 hex>-<n>`, 1 <= n <= 64)".to_owned(),
                );
                continue;
            };
            let Some(text) = value.as_str() else {
                problem(&mut loaded, at, "the value is not a string".to_owned());
                continue;
            };
            // base64 is 4/3 of the data: refuse before decoding.
            if text.len() as u64 > limits.max_signature_bytes / 3 * 4 + 4 {
                problem(
                    &mut loaded,
                    at,
                    format!(
                        "above the {} byte limit per signature",
                        limits.max_signature_bytes
                    ),
                );
                continue;
            }
            let compact: String = text.split_ascii_whitespace().collect();
            match base64::engine::general_purpose::STANDARD.decode(compact) {
                Ok(bytes) if bytes.is_empty() => {
                    problem(&mut loaded, at, "an empty signature".to_owned())
                }
                Ok(bytes) if bytes.len() as u64 > limits.max_signature_bytes => problem(
                    &mut loaded,
                    at,
                    format!(
                        "above the {} byte limit per signature",
                        limits.max_signature_bytes
                    ),
                ),
                Ok(bytes) => {
                    loaded
                        .signatures
                        .push((digest, index, Signature::new(Bytes::from(bytes), at)))
                }
                Err(e) => problem(&mut loaded, at, format!("not base64: {e}")),
            }
        }
    }
    loaded
}

/// `sha256-<hex>-<n>` → digest and n.
fn parse_key(key: &str) -> Option<(ImageDigest, u32)> {
    let (algo, rest) = key.split_once('-')?;
    let (hex, n) = rest.rsplit_once('-')?;
    let digest = ImageDigest::new(Algorithm::parse(algo)?, hex)?;
    let index = parse_signature_name(&format!("signature-{n}"))?;
    Some((digest, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0a9f1e3a7b4c2d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";

    #[test]
    fn reads_yaml_json_lists_and_documents() {
        let yaml = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sha256-{HEX}\n  namespace: openshift-config-managed\n  labels:\n    release.openshift.io/verification-signatures: \"\"\nbinaryData:\n  sha256-{HEX}-1: aGVsbG8=\n  sha256-{HEX}-2: |\n    d29y\n    bGQ=\n---\nkind: List\nitems:\n- kind: ConfigMap\n  binaryData:\n    sha256-{HEX}-3: Zm9v\n"
        );
        let loaded = parse_configmaps("sig.yaml", &yaml, SignatureLimits::default());
        assert_eq!(loaded.problems, []);
        let got: Vec<_> = loaded
            .signatures
            .iter()
            .map(|(d, n, s)| (d.hex.as_str(), *n, s.bytes.as_ref(), s.origin.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    HEX,
                    1,
                    &b"hello"[..],
                    &*format!("sig.yaml: binaryData.sha256-{HEX}-1")
                ),
                (
                    HEX,
                    2,
                    &b"world"[..],
                    &*format!("sig.yaml: binaryData.sha256-{HEX}-2")
                ),
                (
                    HEX,
                    3,
                    &b"foo"[..],
                    &*format!("sig.yaml: binaryData.sha256-{HEX}-3")
                ),
            ]
        );

        let json = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","binaryData":{{"sha256-{HEX}-1":"aGVsbG8="}}}}"#
        );
        let loaded = parse_configmaps("sig.json", &json, SignatureLimits::default());
        assert_eq!(loaded.problems, []);
        assert_eq!(loaded.signatures.len(), 1);
    }

    #[test]
    fn bad_keys_and_values_are_named_and_skipped() {
        let yaml = format!(
            "kind: ConfigMap\nbinaryData:\n  sha256-{HEX}-0: aGVsbG8=\n  sha512-{HEX}-1: aGVsbG8=\n  sha256-../../x-1: aGVsbG8=\n  sha256-{HEX}-2: '!!!'\n  sha256-{HEX}-3: ''\n  sha256-{HEX}-4: aGVsbG8=\n---\nkind: Secret\n"
        );
        let limits = SignatureLimits {
            max_signature_bytes: 4,
            ..SignatureLimits::default()
        };
        let loaded = parse_configmaps("cm.yaml", &yaml, limits);
        assert_eq!(loaded.signatures.len(), 0);
        let problems: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
        // The Secret is passed over: not every object of a directory is about signatures.
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(problems[0].starts_with(&format!(
            "cm.yaml: binaryData.sha256-{HEX}-0: not a signature key"
        )));
        assert!(problems[3].contains("not base64"), "{}", problems[3]);
        assert!(
            problems[4].ends_with("an empty signature"),
            "{}",
            problems[4]
        );
        assert!(
            problems[5].ends_with("above the 4 byte limit per signature"),
            "{}",
            problems[5]
        );

        let loaded = parse_configmaps("x.yaml", "a: [", SignatureLimits::default());
        assert!(loaded.problems[0].message.starts_with("invalid YAML"));
    }
}
