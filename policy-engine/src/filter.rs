//! The per-request view of the graph: validated client parameters, and the channel and
//! architecture filters as pure functions over [`graph_data::Graph`].
//!
//! The reference runs two plugins in a row (channel filter, then arch filter); here one
//! pass keeps a release iff it is concrete, lists the channel and lists the arch, so the
//! result is the same graph without the intermediate copy.

use std::collections::HashMap;
use std::sync::LazyLock;

use graph_data::{ConditionalEdge, ConditionalUpdateEdge, Graph, Release};
use regex::Regex;
use semver::{BuildMetadata, Version};

use crate::error::ApiError;

// The metadata keys the filters read; the arch key is removed from every node served.
pub use graph_data::keys::{ARCH_KEY, CHANNELS_KEY};
/// The architecture assumed when the client sends none.
pub const DEFAULT_ARCH: &str = "amd64";

const CHANNEL_PATTERN: &str = r"^[0-9a-z\-\.]+$";
const ARCH_PATTERN: &str = r"^[0-9a-z]+$";

static CHANNEL_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(CHANNEL_PATTERN).expect("channel pattern is a valid regex"));
static ARCH_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(ARCH_PATTERN).expect("arch pattern is a valid regex"));

/// The filtering parameters of a graph request, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphParams {
    /// The requested channel, matching `^[0-9a-z\-\.]+$`.
    pub channel: String,
    /// The requested architecture, matching `^[0-9a-z]+$`; `amd64` when absent.
    pub arch: String,
}

impl GraphParams {
    /// Validates `channel` then `arch`, in the reference's order, from the decoded query.
    /// Other parameters (`version`, `id`, anything else) are ignored.
    pub fn from_query(query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let channel = query
            .get("channel")
            .ok_or_else(|| ApiError::MissingParams(vec!["channel".to_owned()]))?;
        if !CHANNEL_RE.is_match(channel) {
            return Err(ApiError::InvalidParams(format!(
                "channel '{channel}' does not match regex '{CHANNEL_PATTERN}'"
            )));
        }
        let arch = query.get("arch").map_or(DEFAULT_ARCH, String::as_str);
        if !ARCH_RE.is_match(arch) {
            return Err(ApiError::InvalidParams(format!(
                "arch '{arch}' does not match regex '{ARCH_PATTERN}'"
            )));
        }
        Ok(Self {
            channel: channel.clone(),
            arch: arch.to_owned(),
        })
    }
}

/// Whether the comma-separated list under `key` holds `value` (entries trimmed).
pub fn csv_contains(release: &Release, key: &str, value: &str) -> bool {
    release
        .metadata
        .get(key)
        .is_some_and(|csv| csv.split(',').any(|entry| entry.trim() == value))
}

/// The graph a client of `channel` on `arch` sees: concrete releases listing both, with
/// the arch build identifier stripped from versions and the arch key dropped from
/// metadata; edges and conditional edges between kept releases only; empty conditional
/// groups dropped.
pub fn filter(graph: &Graph, channel: &str, arch: &str) -> Result<Graph, ApiError> {
    let mut out = Graph::new();
    // Original version -> stripped version, for the releases that are kept.
    let mut kept: HashMap<&Version, Version> = HashMap::new();
    let mut ids = HashMap::new();
    for (id, release) in graph.releases() {
        if release.is_abstract()
            || !csv_contains(release, CHANNELS_KEY, channel)
            || !csv_contains(release, ARCH_KEY, arch)
        {
            continue;
        }
        let version = strip_arch(&release.version, arch)?;
        let mut metadata = release.metadata.clone();
        metadata.remove(ARCH_KEY);
        let payload = release.payload.clone().unwrap_or_default();
        let new_id = out
            .add_release(Release::concrete(version.clone(), payload, metadata))
            .map_err(|e| {
                ApiError::ArchVersion(format!("release {} for arch {arch}: {e}", release.version))
            })?;
        kept.insert(&release.version, version);
        ids.insert(id, new_id);
    }
    for (from, to) in graph.edges() {
        if let (Some(&f), Some(&t)) = (ids.get(&from), ids.get(&to)) {
            // The source graph is a DAG and stripping one build identifier cannot
            // reorder it, so this cannot cycle; report it rather than panic if it does.
            out.add_edge(f, t)
                .map_err(|e| ApiError::PluginExecution(format!("filtering edges: {e}")))?;
        }
    }
    let conditional = graph
        .conditional_edges()
        .iter()
        .filter_map(|group| {
            let edges: Vec<ConditionalUpdateEdge> = group
                .edges
                .iter()
                .filter(|e| {
                    has_build_identifier(&e.from, arch) && has_build_identifier(&e.to, arch)
                })
                .filter_map(|e| {
                    Some(ConditionalUpdateEdge {
                        from: kept.get(&e.from)?.clone(),
                        to: kept.get(&e.to)?.clone(),
                    })
                })
                .collect();
            (!edges.is_empty()).then(|| ConditionalEdge {
                edges,
                risks: group.risks.clone(),
            })
        })
        .collect();
    out.set_conditional_edges(conditional);
    Ok(out)
}

/// The reference keeps a conditional pair only if both versions name the arch (it checks
/// by substring; a build identifier is the exact form of that check, and pairs whose
/// releases were filtered out are dropped anyway).
fn has_build_identifier(version: &Version, arch: &str) -> bool {
    version.build.split('.').any(|id| id == arch)
}

/// Removes the build identifier equal to `arch`; other build identifiers stay.
fn strip_arch(version: &Version, arch: &str) -> Result<Version, ApiError> {
    if !has_build_identifier(version, arch) {
        return Ok(version.clone());
    }
    let rest: Vec<&str> = version.build.split('.').filter(|id| *id != arch).collect();
    let build = if rest.is_empty() {
        BuildMetadata::EMPTY
    } else {
        BuildMetadata::new(&rest.join(".")).map_err(|e| {
            ApiError::ArchVersion(format!("stripping arch {arch} from {version}: {e}"))
        })?
    };
    Ok(Version {
        build,
        ..version.clone()
    })
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
