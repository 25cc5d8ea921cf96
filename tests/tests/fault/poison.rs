//! One poisoned release never freezes the graph, even on a cold start with no earlier
//! graph to fall back on: release images with a `previous` that is not SemVer, a cycle,
//! one version under two digests, an architecture that is a list or 10 KB long, and
//! metadata that claims channels are each left out and named (in the log, on `/status`
//! with their kind, and counted by reason on `/metrics`), and the healthy releases are
//! served from the first refresh on.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use graph_data::keys::CHANNELS_KEY;
use integration_tests::fake::{metadata_json, DOCKER_MANIFEST};

use crate::harness::*;

/// A release image to push.
struct Image<'a> {
    tag: &'a str,
    arch: &'a str,
    version: &'a str,
    previous: &'a [&'a str],
    /// Release-metadata `metadata` keys.
    extra: &'a [(&'a str, &'a str)],
    /// The kind it is left out as; empty for a healthy one.
    kind: &'a str,
}

/// The versions of the served graph's concrete nodes (those with a payload), without
/// their build metadata.
fn concrete(gb: &GraphBuilder) -> BTreeSet<String> {
    let (code, body) = gb.get(true, "/graph");
    assert_eq!(code, 200, "{body}");
    let graph: serde_json::Value = serde_json::from_str(&body).unwrap();
    graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n.get("payload").is_some())
        .map(|n| {
            let version = n["version"].as_str().unwrap();
            version.split('+').next().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn poisoned_releases_are_dropped_and_named_on_a_cold_start() {
    let fake = healthy_registry();
    let long_arch = "a".repeat(10 * 1024);
    let image = |tag, arch, version, previous, extra, kind| Image {
        tag,
        arch,
        version,
        previous,
        extra,
        kind,
    };
    let poisoned = [
        image("bad-previous", "amd64", "4.19.0", &["4.18.x"], &[], "image"),
        // 4.19.2 lists 4.19.1 as previous and the other way round: 4.19.1 declares the
        // downward edge that closes the cycle, so it is the one left out.
        image("cycle-low", "amd64", "4.19.1", &["4.19.2"], &[], "cycle"),
        image("twin-a", "amd64", "4.19.3", &[], &[], "duplicate_version"),
        image(
            "twin-b",
            "amd64",
            "4.19.3",
            &[],
            &[("url", "https://example.com/twin")],
            "duplicate_version",
        ),
        image("arch-list", "amd64,arm64", "4.19.4", &[], &[], "arch"),
        image("arch-long", &long_arch, "4.19.5", &[], &[], "arch"),
        image(
            "claims-channels",
            "amd64",
            "4.19.6",
            &[],
            &[(CHANNELS_KEY, "stable-4.18")],
            "channels",
        ),
        // The healthy end of the cycle.
        image("cycle-high", "amd64", "4.19.2", &["4.19.1"], &[], ""),
    ];
    fake.build(REPO, |b| {
        for p in &poisoned {
            let metadata = metadata_json(p.version, p.previous, p.extra);
            let digest = b.release(DOCKER_MANIFEST, p.arch, &metadata);
            b.tag(p.tag, &digest);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start(&fake, dir.path(), 20, &[]);
    gb.wait_log("graph refreshed", 0);
    let mut served = set(&HEALTHY);
    served.insert("4.19.2".to_owned());
    assert_eq!(concrete(&gb), served);
    // 4.19.2 still names the left-out 4.19.1 as its `previous`: a version named but not
    // scraped is an abstract node (no payload), as for any unknown version.
    let mut named = served.clone();
    named.insert("4.19.1".to_owned());
    assert_eq!(gb.versions(), named);

    let expected: BTreeMap<&str, &str> = poisoned
        .iter()
        .filter(|p| !p.kind.is_empty())
        .map(|p| (p.tag, p.kind))
        .collect();
    let releases = gb.status_doc()["releases"].clone();
    let invalid: BTreeMap<&str, &str> = releases["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["tag"].as_str().unwrap(), i["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(invalid, expected, "{releases}");
    for entry in releases["invalid"].as_array().unwrap() {
        let reason = entry["reason"].as_str().unwrap();
        assert!(!reason.is_empty() && !reason.contains('\n'), "{entry}");
        // A 10 KB architecture is quoted, not copied, into the reason.
        assert!(reason.len() < 1024, "{entry}");
    }
    for (kind, count) in [
        ("image", 1.0),
        ("cycle", 1.0),
        ("duplicate_version", 2.0),
        ("arch", 2.0),
        ("channels", 1.0),
    ] {
        assert_eq!(
            gb.metric(&format!(
                "cincinnati_gb_graph_invalid_releases_by_reason{{reason=\"{kind}\"}}"
            )),
            count,
            "{kind}"
        );
    }
    let logs = gb.logs();
    for (tag, kind) in &expected {
        assert!(
            logs.iter().any(|l| l.contains("release image ignored")
                && (l.contains(&format!("tag={tag} ")) || l.contains(&format!("tag=\"{tag}\" ")))
                && l.contains(&format!("kind=\"{kind}\" "))),
            "no log line names {tag} ({kind}):\n{}",
            logs.join("\n")
        );
    }
    // A later refresh is just as healthy.
    let mark = gb.log_mark();
    gb.wait_log("graph refreshed", mark);
    assert_eq!(concrete(&gb), served);
    gb.assert_alive();
    gb.assert_peak_rss_below(96);
    gb.assert_wall_below(Duration::from_secs(30));
    gb.figure(
        "poison",
        "poisoned_releases_are_dropped_and_named_on_a_cold_start",
    );
}

#[test]
fn a_rogue_image_claiming_a_served_version_changes_nothing() {
    let fake = healthy_registry();
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start_serving(&fake, dir.path(), 20);
    let graph_before = gb.get(true, "/graph").1;
    let published = fake.with(|s| {
        let tags = &s.repos[REPO].tags;
        tags.iter().find(|(t, _)| t == "4.18.1").unwrap().1.clone()
    });
    let mark = gb.log_mark();
    let rogue = fake.build(REPO, |b| {
        let metadata = metadata_json("4.18.1", &[], &[("url", "https://example.com/rogue")]);
        let digest = b.release(DOCKER_MANIFEST, "amd64", &metadata);
        b.tag("rogue", &digest);
        digest
    });
    let line = gb.wait_log("release image ignored", mark);
    assert!(line.contains("tag=rogue "), "{line}");
    assert!(line.contains(&format!("digest={rogue} ")), "{line}");
    assert!(
        line.contains(&format!("the published {published} is kept")),
        "{line}"
    );
    wait_until("/status names the rogue", || {
        gb.status_doc()["releases"]["invalid"][0]["tag"] == "rogue"
    });
    assert_eq!(
        gb.status_doc()["releases"]["invalid"][0]["kind"],
        "duplicate_version"
    );
    assert_eq!(
        gb.metric("cincinnati_gb_graph_invalid_releases_by_reason{reason=\"duplicate_version\"}"),
        1.0
    );
    // The graph is the same, to the byte: the published payload was not replaced.
    assert_eq!(gb.get(true, "/graph").1, graph_before);
    gb.assert_alive();
    gb.assert_peak_rss_below(96);
    gb.assert_wall_below(Duration::from_secs(30));
    gb.figure(
        "poison",
        "a_rogue_image_claiming_a_served_version_changes_nothing",
    );
}
