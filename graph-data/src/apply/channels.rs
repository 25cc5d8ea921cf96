//! Channel membership and the exact order of the channels CSV.
//!
//! A listed version without build metadata puts every architecture of that version in
//! the channel; `4.2.14+amd64` puts only that node. The CSV order is what the reference
//! (and graph-data's `hack/graph-util.py`) produce, and what clients see in
//! `oc adm upgrade`: sort lexicographically, then stable-sort by the part after the
//! first `-` compared as a string, so `4.10` comes before `4.9`.

use std::collections::HashSet;

use super::metadata::append_csv;
use super::{VersionIndex, CHANNELS_KEY};
use crate::graph::{Graph, ReleaseId};
use crate::repo::Channel;

/// Appends each channel's name to the channels CSV of its releases (file order), then
/// sorts every release's CSV.
pub(super) fn apply_channels(graph: &mut Graph, index: &VersionIndex, channels: &[Channel]) {
    for channel in channels {
        // A release is in a channel once, however many entries of the file match it.
        let mut members: Vec<ReleaseId> = Vec::new();
        let mut seen: HashSet<ReleaseId> = HashSet::new();
        for listed in &channel.versions {
            let exact;
            let candidates: &[ReleaseId] = if listed.build.is_empty() {
                index.any_build(listed)
            } else {
                exact = graph.find(listed);
                exact.as_slice()
            };
            for &id in candidates {
                if !graph.release(id).is_abstract() && seen.insert(id) {
                    members.push(id);
                }
            }
        }
        for id in members {
            append_csv(graph.metadata_mut(id), CHANNELS_KEY, &channel.name);
        }
    }
    for id in graph.ids() {
        if let Some(csv) = graph.metadata_mut(id).get_mut(CHANNELS_KEY) {
            *csv = sort_channels(csv);
        }
    }
}

/// Sorts a channels CSV the way the reference does. A name without `-` (which would
/// crash the reference) sorts by its whole name.
pub fn sort_channels(csv: &str) -> String {
    let mut names: Vec<&str> = csv.split(',').collect();
    names.sort_unstable();
    names.sort_by_key(|name| name.split_once('-').map_or(*name, |(_, rest)| rest));
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_matches_the_reference_example() {
        assert_eq!(
            sort_channels("stable-4.9,stable-4.10,fast-4.9,candidate-4.10,fast-4.10,candidate-4.9"),
            "candidate-4.10,fast-4.10,stable-4.10,candidate-4.9,fast-4.9,stable-4.9"
        );
    }

    #[test]
    fn eus_lands_between_candidate_and_fast() {
        assert_eq!(
            sort_channels("stable-4.10,eus-4.10,fast-4.10,candidate-4.10"),
            "candidate-4.10,eus-4.10,fast-4.10,stable-4.10"
        );
    }

    #[test]
    fn names_without_a_dash_do_not_panic() {
        assert_eq!(
            sort_channels("stable-4.9,weird,candidate-4.9"),
            "candidate-4.9,stable-4.9,weird"
        );
        assert_eq!(sort_channels(""), "");
    }
}
