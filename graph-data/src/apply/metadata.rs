//! The metadata-writing steps of applying graph-data: raw metadata,
//! plain blocked edges and the removal part of conditional blocks.
//!
//! Abstract releases never get metadata (the reference cannot write to them either).

use std::collections::BTreeSet;

use semver::BuildMetadata;

use super::{VersionIndex, PREVIOUS_REMOVE_REGEX_KEY};
use crate::graph::Graph;
use crate::repo::{ConditionalBlock, PlainBlock, RawEntry};

/// Merges `raw/metadata.json` into every release of each listed version (all
/// architectures): an existing key gets `,<value>` appended.
pub(super) fn apply_raw(graph: &mut Graph, index: &VersionIndex, raw: &[RawEntry]) {
    for entry in raw {
        for &id in index.any_build(&entry.version) {
            if graph.release(id).is_abstract() {
                continue;
            }
            let metadata = graph.metadata_mut(id);
            for (key, value) in &entry.metadata {
                append_csv(metadata, key, value);
            }
        }
    }
}

/// Sets `previous.remove_regex` = `from` on each target of each plain block, in file
/// order, so for two blocks of one target the last file (by name) wins.
///
/// Targets: the exact node when `to` has build metadata; `<to>+s390x` when `to` has the
/// legacy prerelease `s390x` (`4.2.11-s390x`); otherwise `to` with every build seen in
/// the graph (every architecture, and no build).
pub(super) fn apply_plain_blocks(graph: &mut Graph, blocks: &[PlainBlock]) {
    let builds: BTreeSet<BuildMetadata> = graph
        .releases()
        .map(|(_, r)| r.version.build.clone())
        .collect();
    for block in blocks {
        let targets: Vec<semver::Version> = if !block.to.build.is_empty() {
            vec![block.to.clone()]
        } else if block.to.pre.as_str() == "s390x" {
            let mut to = block.to.clone();
            to.build = BuildMetadata::new("s390x").expect("s390x is valid build metadata");
            vec![to]
        } else {
            builds
                .iter()
                .map(|b| {
                    let mut to = block.to.clone();
                    to.build = b.clone();
                    to
                })
                .collect()
        };
        for to in targets {
            let Some(id) = graph.find(&to) else { continue };
            if graph.release(id).is_abstract() {
                continue;
            }
            graph.metadata_mut(id).insert(
                PREVIOUS_REMOVE_REGEX_KEY.to_owned(),
                block.from.as_str().to_owned(),
            );
        }
    }
}

/// For each conditional block, appends `|<from>` to `previous.remove_regex` (or sets it)
/// on every architecture of `to`, so the conditional edges leave the unconditional ones.
/// Build metadata written in `to` is ignored here, as in the reference.
pub(super) fn apply_risk_removals(
    graph: &mut Graph,
    index: &VersionIndex,
    risks: &[ConditionalBlock],
) {
    for risk in risks {
        for &id in index.any_build(&risk.to) {
            if graph.release(id).is_abstract() {
                continue;
            }
            graph
                .metadata_mut(id)
                .entry(PREVIOUS_REMOVE_REGEX_KEY.to_owned())
                .and_modify(|v| {
                    v.push('|');
                    v.push_str(risk.from.as_str());
                })
                .or_insert_with(|| risk.from.as_str().to_owned());
        }
    }
}

/// Inserts `value` under `key`, or appends `,value` to what is there.
pub(super) fn append_csv(metadata: &mut crate::release::Metadata, key: &str, value: &str) {
    match metadata.get_mut(key) {
        Some(existing) => {
            existing.push(',');
            existing.push_str(value);
        }
        None => {
            metadata.insert(key.to_owned(), value.to_owned());
        }
    }
}
