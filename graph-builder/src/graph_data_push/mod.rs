//! Builds a graph-data container image and pushes it to a registry:
//! what oc-mirror does for `graph: true`, without internet or a container engine.
//!
//! Two layouts, matching the graph-builder's `graph_data_path` settings:
//! - oc-mirror: the data under `/var/lib/cincinnati-graph-data`, on top of a base image
//!   already in the registry, with the command that copies the data to
//!   `/var/lib/cincinnati/graph-data` (what the operator's init container runs);
//! - flat: the data at the image root, no base, no command (it cannot run as an init
//!   container; the graph-builder reads it with `graph_data_path = "/"`).
//!
//! The image is OCI (manifest and config media types) and built deterministically, so an
//! unchanged tree pushes the same manifest digest.

mod image_layer;
mod signatures;

use std::path::PathBuf;

use bytes::Bytes;
use serde_json::{json, Value};

pub use image_layer::{build_layer, build_layer_with_signatures, Layer, OC_MIRROR_ROOT};
pub use signatures::SignatureInputs;

use crate::registry::manifest::{parse_manifest, Manifest, OCI_MANIFEST};
use crate::registry::push::{ImageReference, PushClient};
use crate::registry::{ClientConfig, RegistryError};

/// The default command of an oc-mirror graph-data image.
pub const OC_MIRROR_CMD: [&str; 3] = [
    "/bin/bash",
    "-c",
    "exec cp -rp /var/lib/cincinnati-graph-data/* /var/lib/cincinnati/graph-data",
];
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Where the graph-data goes in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLayout {
    /// Under `/var/lib/cincinnati-graph-data`, on top of the base image `repository:tag`
    /// (in the same registry).
    OcMirror {
        /// `repository:tag` of the base image.
        base: String,
    },
    /// At the image root, no base.
    Flat,
}

/// What to push.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// A graph-data directory or `graph-data.tar.gz` (validated by the caller).
    pub graph_data: PathBuf,
    /// `[http://]host[:port]/repository:tag`.
    pub to: String,
    /// The layout.
    pub layout: ImageLayout,
    /// Credentials, CA directory, retries and limits of the registry client.
    pub client: ClientConfig,
}

/// Why the image could not be built or pushed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The graph-data could not be read.
    #[error("cannot read graph-data {}: {reason}", path.display())]
    Read {
        /// The directory or tarball.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The graph-data is invalid; nothing was pushed.
    #[error("graph-data {} is invalid, not pushing:\n{report}", path.display())]
    Invalid {
        /// The directory or tarball.
        path: PathBuf,
        /// The validator's report (every problem, one a line).
        report: String,
    },
    /// The base image is not usable.
    #[error("base image {reference}: {reason}")]
    Base {
        /// `host/repository:tag`.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry refused or failed (the error names registry, repository and item).
    #[error("pushing {reference}")]
    Registry {
        /// `host/repository:tag` being pushed (or read, for the base).
        reference: String,
        /// The registry client's error.
        #[source]
        source: RegistryError,
    },
}

/// The result of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `host/repository:tag`.
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
}

/// Validates the graph-data, builds the image and pushes layer, config and manifest.
pub async fn push_graph_data_image(request: &PushRequest) -> Result<Pushed, PushError> {
    push_graph_data_image_with(request, &SignatureInputs::default()).await
}

/// [`push_graph_data_image`], with release signatures from `signatures` merged into the
/// image's `signatures/` tree.
pub async fn push_graph_data_image_with(
    request: &PushRequest,
    signatures: &SignatureInputs,
) -> Result<Pushed, PushError> {
    validate(&request.graph_data)?;
    let to = ImageReference::parse(&request.to).map_err(registry_error(&request.to))?;
    let client = PushClient::new(&to.registry, &to.repository, request.client.clone())
        .map_err(registry_error(&request.to))?;
    let reference = format!("{}/{}:{}", client.target().host, to.repository, to.tag);
    let wrap = registry_error(&reference);

    let (prefix, base) = match &request.layout {
        ImageLayout::Flat => ("", None),
        ImageLayout::OcMirror { base } => (OC_MIRROR_ROOT, Some(base.as_str())),
    };
    let graph_data = request.graph_data.clone();
    let prefix = prefix.to_owned();
    let signatures = signatures.clone();
    let layer = tokio::task::spawn_blocking(move || {
        build_layer_with_signatures(&graph_data, &prefix, &signatures)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;

    let (mut config, mut layers) = match base {
        None => (
            json!({
                "architecture": "amd64",
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
            }),
            Vec::new(),
        ),
        Some(base) => base_image(&client, &to.registry, base).await?,
    };
    if base.is_some() {
        config["config"]["Cmd"] = json!(OC_MIRROR_CMD);
    }
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array_mut()
        .ok_or_else(|| PushError::Base {
            reference: base.unwrap_or_default().to_owned(),
            reason: "config has no rootfs.diff_ids".to_owned(),
        })?;
    diff_ids.push(json!(layer.diff_id));
    if let Some(history) = config.get_mut("history").and_then(Value::as_array_mut) {
        history.push(json!({"created_by": "graph-data image push"}));
    }

    let layer_size = layer.gzip.len();
    let layer_digest = client
        .push_blob(Bytes::from(layer.gzip))
        .await
        .map_err(&wrap)?;
    layers.push(json!({"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": layer_size}));
    let config = Bytes::from(serde_json::to_vec(&config).expect("JSON values serialise"));
    let config_size = config.len();
    let config_digest = client.push_blob(config).await.map_err(&wrap)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": layers,
    });
    let manifest = Bytes::from(serde_json::to_vec(&manifest).expect("JSON values serialise"));
    let digest = client
        .push_manifest(&to.tag, OCI_MANIFEST, manifest)
        .await
        .map_err(&wrap)?;
    drop(wrap);
    Ok(Pushed { reference, digest })
}

/// Refuses graph-data the service would refuse to load, with the validator's report.
fn validate(path: &std::path::Path) -> Result<(), PushError> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code =
        graph_data::validate::run(path, &mut out, &mut err).map_err(|e| PushError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if code == graph_data::validate::EXIT_OK {
        return Ok(());
    }
    out.extend_from_slice(&err);
    Err(PushError::Invalid {
        path: path.to_owned(),
        report: String::from_utf8_lossy(&out).trim_end().to_owned(),
    })
}

fn registry_error(reference: &str) -> impl Fn(RegistryError) -> PushError + '_ {
    move |source| PushError::Registry {
        reference: reference.to_owned(),
        source,
    }
}

/// The base image's config and layer descriptors (as OCI), its layers made present in the
/// target repository (mounted, or copied when the registry will not mount).
async fn base_image(
    client: &PushClient,
    registry: &str,
    base: &str,
) -> Result<(Value, Vec<Value>), PushError> {
    let base_error = |reason: String| PushError::Base {
        reference: base.to_owned(),
        reason,
    };
    let (repository, tag) = base
        .rsplit_once(':')
        .filter(|(r, t)| !r.is_empty() && !t.is_empty() && !t.contains('/'))
        .ok_or_else(|| base_error("expected repository:tag".to_owned()))?;
    let base_client = client
        .for_repository(repository)
        .map_err(registry_error(base))?;
    let reference = format!("{registry}/{base}");
    let wrap = registry_error(&reference);
    let mut wanted = tag.to_owned();
    let image = loop {
        let manifest = base_client
            .manifest(&wanted)
            .await
            .map_err(&wrap)?
            .ok_or_else(|| base_error(format!("{wanted} not found in the registry")))?;
        match parse_manifest(manifest.content_type.as_deref(), &manifest.body)
            .map_err(base_error)?
        {
            Manifest::Image(image) => break image,
            // Graph-data is the same on every platform: take linux/amd64 (or the first).
            Manifest::Index(index) if wanted == tag => {
                let entry = index
                    .manifests
                    .iter()
                    .find(|e| {
                        e.platform
                            .as_ref()
                            .is_some_and(|p| p.architecture == "amd64" && p.os == "linux")
                    })
                    .or(index.manifests.first())
                    .ok_or_else(|| base_error("an empty index".to_owned()))?;
                wanted = entry.digest.clone();
            }
            _ => return Err(base_error(format!("{wanted} is not an image manifest"))),
        }
    };
    let config = base_client
        .small_blob(&image.config.digest)
        .await
        .map_err(&wrap)?
        .ok_or_else(|| base_error(format!("config {} not found", image.config.digest)))?;
    let config: Value = serde_json::from_slice(&config)
        .map_err(|e| base_error(format!("config is not JSON: {e}")))?;
    let mut layers = Vec::new();
    for descriptor in &image.layers {
        copy_blob(client, &base_client, repository, &descriptor.digest)
            .await
            .map_err(&wrap)?;
        let media_type = match descriptor.media_type.as_deref() {
            None | Some(DOCKER_LAYER_GZIP) => OCI_LAYER_GZIP,
            Some(other) => other,
        };
        layers.push(json!({
            "mediaType": media_type,
            "digest": descriptor.digest,
            "size": descriptor.size,
        }));
    }
    Ok((config, layers))
}

/// Makes blob `digest` of repository `from` present in the client's repository.
async fn copy_blob(
    client: &PushClient,
    from_client: &PushClient,
    from: &str,
    digest: &str,
) -> Result<(), RegistryError> {
    if client.blob_exists(digest).await? || client.mount_blob(digest, from).await? {
        return Ok(());
    }
    let bytes = from_client.blob(digest).await?;
    client.push_blob(bytes).await.map(drop)
}
