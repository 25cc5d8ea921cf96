//! Provenance: why the graph looks the way it does, recorded while it is built.
//!
//! The Cincinnati graph only carries the edges that survived. To answer "why is there no
//! update from X to Y?", the builder keeps, next to the graph:
//!
//! - every unconditional edge that applying graph-data removed (or turned into a
//!   conditional one), with the rule that removed it and the graph-data file behind it;
//! - for every channel file, the versions it lists;
//! - the risk name -> blocked-edges file of every conditional block;
//! - every version a channel or a release's `previous`/`next` names that the mirror lacks.
//!
//! It is compact: graph-data paths and versions are interned once and records refer to
//! them by index (a removed edge is 16 bytes). The same structure is the JSON the
//! graph-builder serves, and [`Provenance::from_json`] checks every index of a document
//! it did not write, so a hostile or truncated answer fails closed with a clear error.

use std::collections::{BTreeSet, HashMap, HashSet};

use regex::Regex;
use semver::{BuildMetadata, Version};
use serde::{Deserialize, Serialize};

use crate::apply::{self, ApplyError};
use crate::graph::{Graph, ReleaseId};
use crate::keys;
use crate::repo::GraphData;

/// Path of the raw metadata file, relative to the graph-data root.
pub const RAW_METADATA_FILE: &str = "raw/metadata.json";

/// Upper bound of a provenance document a reader accepts, in bytes.
pub const MAX_JSON_BYTES: usize = 256 * 1024 * 1024;

/// The rule that removed an unconditional edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// A plain blocked-edges file.
    Blocked,
    /// A conditional blocked-edges file (the edge lives on as a conditional edge).
    ConditionalRisk,
    /// Release metadata (`previous.remove`, `next.remove`, or a removal regex not from
    /// blocked-edges): from `raw/metadata.json` or the release image itself.
    RemovedByMetadata,
}

/// One removed edge; `from`/`to` index [`Provenance::versions`], `file` indexes
/// [`Provenance::files`] (`None`: the release image's own metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedEdge {
    /// Source release.
    pub from: u32,
    /// Target release.
    pub to: u32,
    /// The rule.
    pub rule: Rule,
    /// The graph-data file responsible, if any.
    pub file: Option<u32>,
}

/// A channel file and the versions it lists (indices into [`Provenance::versions`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRecord {
    /// The channel name.
    pub name: String,
    /// Index of the channel file in [`Provenance::files`].
    pub file: u32,
    /// The versions listed, as written (usually without build metadata).
    pub versions: Vec<u32>,
}

/// A version a channel or a release names that the mirror lacks, on one architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingRecord {
    /// The version with its architecture (`4.16.3+amd64`), index into
    /// [`Provenance::versions`].
    pub version: u32,
    /// The channel file listing it (index into [`Provenance::files`]), or `None` when only
    /// a release's `previous`/`next` names it.
    pub channel_file: Option<u32>,
}

/// A conditional block's risk name and the blocked-edges file declaring it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskRecord {
    /// The risk name, as the conditional edges carry it.
    pub name: String,
    /// The target version the block names (as written).
    pub to: String,
    /// Index of the file in [`Provenance::files`].
    pub file: u32,
}

/// Everything recorded about one build of the graph.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Graph-data files, relative to the graph-data root.
    pub files: Vec<String>,
    /// Versions the records name.
    pub versions: Vec<String>,
    /// Channel files, in file order.
    pub channels: Vec<ChannelRecord>,
    /// Unconditional edges removed while applying graph-data.
    pub removed: Vec<RemovedEdge>,
    /// Conditional blocks, in file order.
    pub risks: Vec<RiskRecord>,
    /// Versions named but not mirrored.
    pub missing: Vec<MissingRecord>,
    /// (from, to) version text -> index in `removed`; built by readers only, so the
    /// graph-builder holds no index it never uses.
    #[serde(skip)]
    removed_index: HashMap<(String, String), usize>,
}

/// Why a provenance document is refused.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// Larger than [`MAX_JSON_BYTES`].
    #[error("provenance document of {0} bytes exceeds the limit of {MAX_JSON_BYTES} bytes")]
    TooLarge(usize),
    /// Not JSON of the expected shape.
    #[error("provenance document is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// An index points outside its table.
    #[error("provenance document: {field} index {index} is out of range ({len} entries)")]
    Index {
        /// The field holding the index.
        field: &'static str,
        /// The index.
        index: u32,
        /// The size of the table.
        len: usize,
    },
    /// A version entry is not SemVer.
    #[error("provenance document: version {0:?} is not SemVer")]
    Version(String),
}

/// The edges of a graph at one moment, sorted, to compare before and after a step.
#[derive(Debug, Clone)]
pub struct EdgeSnapshot(Vec<(ReleaseId, ReleaseId)>);

impl EdgeSnapshot {
    /// The graph's unconditional edges now.
    pub fn take(graph: &Graph) -> Self {
        let mut edges: Vec<_> = graph.edges().collect();
        edges.sort_unstable();
        Self(edges)
    }
}

/// Interning tables while recording.
#[derive(Default)]
struct Interner {
    files: Vec<String>,
    file_index: HashMap<String, u32>,
    versions: Vec<String>,
    version_index: HashMap<String, u32>,
}

impl Interner {
    fn file(&mut self, file: &str) -> u32 {
        intern(&mut self.files, &mut self.file_index, file)
    }

    fn version(&mut self, version: &str) -> u32 {
        intern(&mut self.versions, &mut self.version_index, version)
    }
}

fn intern(table: &mut Vec<String>, index: &mut HashMap<String, u32>, value: &str) -> u32 {
    if let Some(&i) = index.get(value) {
        return i;
    }
    let i = u32::try_from(table.len()).expect("fewer than 2^32 interned strings");
    table.push(value.to_owned());
    index.insert(value.to_owned(), i);
    i
}

/// Runs the graph-builder's whole graph-data step ([`apply::apply`] when there is
/// graph-data, then [`apply::edge_add_remove`] with `risks`) and records its provenance.
pub fn apply_recorded(
    graph: &mut Graph,
    data: Option<&GraphData>,
    edge_add_remove: Option<&[crate::repo::ConditionalBlock]>,
) -> Result<Provenance, ApplyError> {
    if let Some(data) = data {
        apply::apply(graph, data);
    }
    let before = EdgeSnapshot::take(graph);
    if let Some(risks) = edge_add_remove {
        apply::edge_add_remove(graph, risks)?;
    }
    Ok(Provenance::record(graph, data, &before))
}

impl Provenance {
    /// Records the provenance of `graph`, built from `data`, whose unconditional edges were
    /// `before` when edge-add-remove started.
    pub fn record(graph: &Graph, data: Option<&GraphData>, before: &EdgeSnapshot) -> Self {
        let mut interner = Interner::default();
        let mut out = Provenance::default();
        let empty = GraphData::empty();
        let data = data.unwrap_or(&empty);

        for channel in &data.channels {
            let file = interner.file(&channel.file);
            let versions = channel
                .versions
                .iter()
                .map(|v| interner.version(&v.to_string()))
                .collect();
            out.channels.push(ChannelRecord {
                name: channel.name.clone(),
                file,
                versions,
            });
        }
        for block in &data.risks {
            let file = interner.file(&block.file);
            out.risks.push(RiskRecord {
                name: block.risk.name.clone(),
                to: block.to.to_string(),
                file,
            });
        }

        out.removed = removed_edges(graph, data, before, &mut interner);
        out.missing = missing_versions(graph, data, &mut interner);
        out.files = interner.files;
        out.versions = interner.versions;
        out
    }

    /// The compact JSON document the graph-builder serves.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("provenance serializes")
    }

    /// Reads a document written by [`Provenance::to_json`], checking its size and every
    /// index.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ProvenanceError> {
        if bytes.len() > MAX_JSON_BYTES {
            return Err(ProvenanceError::TooLarge(bytes.len()));
        }
        let mut p: Provenance = serde_json::from_slice(bytes)?;
        p.check()?;
        p.build_index();
        Ok(p)
    }

    fn check(&self) -> Result<(), ProvenanceError> {
        let files = self.files.len();
        let versions = self.versions.len();
        let within = |field, index: u32, len: usize| {
            if (index as usize) < len {
                Ok(())
            } else {
                Err(ProvenanceError::Index { field, index, len })
            }
        };
        for v in &self.versions {
            Version::parse(v).map_err(|_| ProvenanceError::Version(v.clone()))?;
        }
        for c in &self.channels {
            within("channels.file", c.file, files)?;
            for &v in &c.versions {
                within("channels.versions", v, versions)?;
            }
        }
        for r in &self.removed {
            within("removed.from", r.from, versions)?;
            within("removed.to", r.to, versions)?;
            if let Some(f) = r.file {
                within("removed.file", f, files)?;
            }
        }
        for r in &self.risks {
            within("risks.file", r.file, files)?;
        }
        for m in &self.missing {
            within("missing.version", m.version, versions)?;
            if let Some(f) = m.channel_file {
                within("missing.channel_file", f, files)?;
            }
        }
        Ok(())
    }

    /// The file at an index.
    pub fn file(&self, index: u32) -> &str {
        &self.files[index as usize]
    }

    /// The version at an index.
    pub fn version(&self, index: u32) -> &str {
        &self.versions[index as usize]
    }

    /// The channel file of a channel, if graph-data has one.
    pub fn channel(&self, name: &str) -> Option<&ChannelRecord> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// Whether channel `name` lists `version` (exactly, or without build metadata).
    pub fn channel_lists(&self, name: &str, version: &Version) -> bool {
        let plain = apply::base(version).to_string();
        let exact = version.to_string();
        self.channel(name).is_some_and(|c| {
            c.versions.iter().any(|&v| {
                let listed = self.version(v);
                listed == plain || listed == exact
            })
        })
    }

    /// The names of the channels listing `version` (any build).
    pub fn channels_listing(&self, version: &Version) -> Vec<&str> {
        let plain = apply::base(version).to_string();
        self.channels
            .iter()
            .filter(|c| c.versions.iter().any(|&v| self.version(v) == plain))
            .map(|c| c.name.as_str())
            .collect()
    }

    /// Indexes the removed edges for [`Provenance::removal`].
    pub fn build_index(&mut self) {
        self.removed_index = self
            .removed
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    (
                        self.version(r.from).to_owned(),
                        self.version(r.to).to_owned(),
                    ),
                    i,
                )
            })
            .collect();
    }

    /// How the edge `from -> to` (versions with arch) was removed, if it was.
    pub fn removal(&self, from: &str, to: &str) -> Option<&RemovedEdge> {
        if !self.removed_index.is_empty() {
            return self
                .removed_index
                .get(&(from.to_owned(), to.to_owned()))
                .map(|&i| &self.removed[i]);
        }
        self.removed
            .iter()
            .find(|r| self.version(r.from) == from && self.version(r.to) == to)
    }

    /// The blocked-edges files of the risks named `name`.
    pub fn risk_files(&self, name: &str) -> Vec<&str> {
        let mut files: Vec<&str> = self
            .risks
            .iter()
            .filter(|r| r.name == name)
            .map(|r| self.file(r.file))
            .collect();
        files.dedup();
        files
    }
}

impl GraphData {
    /// Graph-data with nothing in it: what a build without graph-data applies.
    pub fn empty() -> Self {
        GraphData {
            schema_version: Version::new(1, 0, 0),
            channels: Vec::new(),
            blocks: Vec::new(),
            risks: Vec::new(),
            raw_metadata: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// Edges present in `before` and gone now, each attributed to the rule that removed it.
fn removed_edges(
    graph: &Graph,
    data: &GraphData,
    before: &EdgeSnapshot,
    interner: &mut Interner,
) -> Vec<RemovedEdge> {
    // Edges that live on as conditional edges are in the graph itself (with their risks,
    // whose files `risks` records): only edges gone for good are recorded, which keeps
    // the record small at full scale (hundreds of thousands of conditional pairs).
    let mut conditional: Vec<(ReleaseId, ReleaseId)> = graph
        .conditional_edges()
        .iter()
        .flat_map(|g| g.edges.iter())
        .filter_map(|e| Some((graph.find(&e.from)?, graph.find(&e.to)?)))
        .collect();
    conditional.sort_unstable();
    // Blocks by target version without build metadata, so each edge checks only its own.
    let mut risks_by_target: HashMap<Version, Vec<&crate::repo::ConditionalBlock>> = HashMap::new();
    for block in &data.risks {
        risks_by_target
            .entry(apply::base(&block.to))
            .or_default()
            .push(block);
    }
    let mut blocks_by_target: HashMap<Version, Vec<&crate::repo::PlainBlock>> = HashMap::new();
    for block in &data.blocks {
        let mut target = apply::base(&block.to);
        // The legacy `4.2.11-s390x` names the release `4.2.11+s390x`.
        if target.pre.as_str() == "s390x" {
            target.pre = semver::Prerelease::EMPTY;
        }
        blocks_by_target.entry(target).or_default().push(block);
    }
    let raw_removes: HashSet<Version> = data
        .raw_metadata
        .iter()
        .filter(|e| {
            e.metadata.contains_key(keys::PREVIOUS_REMOVE_KEY)
                || e.metadata.contains_key(keys::PREVIOUS_REMOVE_REGEX_KEY)
        })
        .map(|e| apply::base(&e.version))
        .collect();
    let raw_next_removes: HashSet<Version> = data
        .raw_metadata
        .iter()
        .filter(|e| e.metadata.contains_key(keys::NEXT_REMOVE_KEY))
        .map(|e| apply::base(&e.version))
        .collect();
    // Compiled once: many targets share a regex.
    let mut regexes: HashMap<String, Option<Regex>> = HashMap::new();
    let mut out = Vec::new();
    for &(from, to) in &before.0 {
        if graph.has_edge(from, to) || conditional.binary_search(&(from, to)).is_ok() {
            continue;
        }
        let (f, t) = (graph.release(from), graph.release(to));
        let (fv, tv) = (f.version.to_string(), t.version.to_string());
        let target = apply::base(&t.version);
        let blocks = Blocks {
            risks: risks_by_target.get(&target).map_or(&[], Vec::as_slice),
            plain: blocks_by_target.get(&target).map_or(&[], Vec::as_slice),
        };
        let (rule, file) = attribute(
            &blocks,
            (&f.version, &fv, &f.metadata),
            (&t.version, &t.metadata),
            &raw_removes,
            &raw_next_removes,
            &mut regexes,
        );
        let file = file.map(|name| interner.file(name));
        out.push(RemovedEdge {
            from: interner.version(&fv),
            to: interner.version(&tv),
            rule,
            file,
        });
    }
    out.shrink_to_fit();
    out
}

/// The rule and file that removed `from -> to`, checked in the order that makes the
/// answer most useful: a conditional edge is reported as a risk even if a plain block
/// also matched, since the client sees it conditional.
/// The blocked-edges files naming one target version (any build), in file order.
struct Blocks<'a> {
    risks: &'a [&'a crate::repo::ConditionalBlock],
    plain: &'a [&'a crate::repo::PlainBlock],
}

fn attribute<'a>(
    data: &Blocks<'a>,
    from: (&Version, &str, &crate::Metadata),
    to: (&Version, &crate::Metadata),
    raw_removes: &HashSet<Version>,
    raw_next_removes: &HashSet<Version>,
    regexes: &mut HashMap<String, Option<Regex>>,
) -> (Rule, Option<&'a str>) {
    let (from_version, from_text, from_metadata) = from;
    let (to_version, to_metadata) = to;
    let to_base = apply::base(to_version);
    let from_base = apply::base(from_version);
    let raw = |set: &HashSet<Version>, v: &Version| set.contains(v).then_some(RAW_METADATA_FILE);

    let names = |csv: &str, v: &Version| {
        csv.split(',')
            .map(str::trim)
            .any(|e| e == "*" || Version::parse(e).is_ok_and(|p| apply::base(&p) == apply::base(v)))
    };
    if to_metadata
        .get(keys::PREVIOUS_REMOVE_KEY)
        .is_some_and(|csv| names(csv, from_version))
    {
        return (Rule::RemovedByMetadata, raw(raw_removes, &to_base));
    }
    if from_metadata
        .get(keys::NEXT_REMOVE_KEY)
        .is_some_and(|csv| names(csv, to_version))
    {
        return (Rule::RemovedByMetadata, raw(raw_next_removes, &from_base));
    }
    for block in data.risks {
        let targets = if block.to.build.is_empty() {
            apply::base(&block.to) == to_base
        } else {
            block.to == *to_version
        };
        if targets && (block.from.as_str() == ".*" || block.from.is_match(from_text)) {
            return (Rule::ConditionalRisk, Some(&block.file));
        }
    }
    // The last plain block naming the target wins, as when it was applied.
    let plain = data.plain.iter().rev().find(|b| {
        if !b.to.build.is_empty() {
            b.to == *to_version
        } else if b.to.pre.as_str() == "s390x" {
            let mut v = b.to.clone();
            v.build = BuildMetadata::new("s390x").expect("valid build metadata");
            v == *to_version
        } else {
            apply::base(&b.to) == to_base && b.to.pre == to_version.pre
        }
    });
    if let Some(block) = plain {
        if block.from.is_match(from_text) {
            return (Rule::Blocked, Some(&block.file));
        }
    }
    // Otherwise a regex the release carries itself or raw metadata added.
    let by_regex = to_metadata
        .get(keys::PREVIOUS_REMOVE_REGEX_KEY)
        .and_then(|pattern| {
            regexes
                .entry(pattern.clone())
                .or_insert_with(|| Regex::new(pattern).ok())
                .as_ref()
                .map(|re| re.is_match(from_text))
        })
        .unwrap_or(false);
    if by_regex {
        return (Rule::RemovedByMetadata, raw(raw_removes, &to_base));
    }
    (Rule::RemovedByMetadata, None)
}

/// Versions named but not mirrored: channel entries without a concrete release on an
/// architecture the mirror has, and abstract releases (named only by `previous`/`next`).
fn missing_versions(
    graph: &Graph,
    data: &GraphData,
    interner: &mut Interner,
) -> Vec<MissingRecord> {
    let arches: BTreeSet<BuildMetadata> = graph
        .releases()
        .filter(|(_, r)| !r.is_abstract())
        .map(|(_, r)| r.version.build.clone())
        .collect();
    let concrete = |v: &Version| {
        graph
            .find(v)
            .is_some_and(|id| !graph.release(id).is_abstract())
    };
    let mut out = Vec::new();
    let mut seen: HashSet<(String, u32)> = HashSet::new();
    for channel in &data.channels {
        let file = interner.file(&channel.file);
        // Only the architectures the mirror serves this channel on: a channel nobody
        // mirrored for an architecture has no gap there, it is simply not offered.
        let served: BTreeSet<&BuildMetadata> = arches
            .iter()
            .filter(|b| {
                channel.versions.iter().any(|listed| {
                    concrete(&Version {
                        build: (*b).clone(),
                        ..apply::base(listed)
                    })
                })
            })
            .collect();
        for listed in &channel.versions {
            let candidates: Vec<Version> = if listed.build.is_empty() {
                served
                    .iter()
                    .map(|b| Version {
                        build: (*b).clone(),
                        ..listed.clone()
                    })
                    .collect()
            } else {
                vec![listed.clone()]
            };
            for v in candidates {
                if concrete(&v) {
                    continue;
                }
                let text = v.to_string();
                if seen.insert((text.clone(), file)) {
                    out.push(MissingRecord {
                        version: interner.version(&text),
                        channel_file: Some(file),
                    });
                }
            }
        }
    }
    let named: HashSet<u32> = out.iter().map(|m| m.version).collect();
    for (_, release) in graph.releases().filter(|(_, r)| r.is_abstract()) {
        let version = interner.version(&release.version.to_string());
        if !named.contains(&version) {
            out.push(MissingRecord {
                version,
                channel_file: None,
            });
        }
    }
    out.shrink_to_fit();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Provenance {
        let mut p = Provenance {
            files: vec!["blocked-edges/4.1.1.yaml".into(), "channels/a.yaml".into()],
            versions: vec!["4.1.0+amd64".into(), "4.1.1+amd64".into(), "4.1.1".into()],
            channels: vec![ChannelRecord {
                name: "a".into(),
                file: 1,
                versions: vec![2],
            }],
            removed: vec![RemovedEdge {
                from: 0,
                to: 1,
                rule: Rule::Blocked,
                file: Some(0),
            }],
            ..Provenance::default()
        };
        p.build_index();
        p
    }

    #[test]
    fn the_document_round_trips_and_answers_lookups() {
        let p = sample();
        let back = Provenance::from_json(&p.to_json()).unwrap();
        assert_eq!(back, p);
        let removed = back.removal("4.1.0+amd64", "4.1.1+amd64").unwrap();
        assert_eq!((removed.rule, removed.file), (Rule::Blocked, Some(0)));
        assert!(back.removal("4.1.1+amd64", "4.1.0+amd64").is_none());
        let v = Version::parse("4.1.1+amd64").unwrap();
        assert!(back.channel_lists("a", &v));
        assert_eq!(back.channels_listing(&v), ["a"]);
        let json = String::from_utf8(p.to_json()).unwrap();
        assert!(json.contains(r#""rule":"blocked""#), "{json}");
    }

    #[test]
    fn hostile_documents_fail_closed_naming_the_field() {
        let mut p = sample();
        p.removed[0].to = 7;
        let err = Provenance::from_json(&p.to_json()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "provenance document: removed.to index 7 is out of range (3 entries)"
        );
        let mut p = sample();
        p.versions[2] = "not-a-version".into();
        assert!(matches!(
            Provenance::from_json(&p.to_json()),
            Err(ProvenanceError::Version(v)) if v == "not-a-version"
        ));
        assert!(matches!(
            Provenance::from_json(b"[1,2]"),
            Err(ProvenanceError::Json(_))
        ));
    }
}
