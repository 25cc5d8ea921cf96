//! Cosign signature images, as `cosign sign` pushes them next to the signed image.

use bytes::Bytes;
use serde_json::json;

use super::{sha256_digest, Blob, Format, Image};

/// A cosign signature image for `signed_digest`, tagged `sha256-<hex>.sig` by convention
/// ([`signature_tag`]): an OCI manifest whose single layer is a simple-signing JSON
/// payload, not a tar.
pub fn signature_image(signed_digest: &str, reference: &str) -> Image {
    let payload = json!({
        "critical": {
            "identity": { "docker-reference": reference },
            "image": { "docker-manifest-digest": signed_digest },
            "type": "cosign container image signature",
        },
        "optional": null,
    })
    .to_string();
    let layer = Blob::new("application/vnd.dev.cosign.simplesigning.v1+json", payload);
    let config = json!({
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [layer.digest] },
    });
    let config = Blob::new(Format::Oci.config_type(), config.to_string());
    let mut layer_descriptor = layer.descriptor();
    layer_descriptor["annotations"] =
        json!({ "dev.cosignproject.cosign/signature": "MEUCIQDsynthetic" });
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": Format::Oci.manifest_type(),
        "config": config.descriptor(),
        "layers": [layer_descriptor],
    });
    let manifest = Bytes::from(serde_json::to_vec(&manifest).expect("JSON value"));
    Image {
        media_type: Format::Oci.manifest_type().to_owned(),
        digest: sha256_digest(&manifest),
        manifest,
        config,
        layers: vec![layer],
        arch: String::new(),
    }
}

/// The tag cosign gives the signature of `signed_digest`: `sha256-<hex>.sig`.
pub fn signature_tag(signed_digest: &str) -> String {
    format!("{}.sig", signed_digest.replacen(':', "-", 1))
}
