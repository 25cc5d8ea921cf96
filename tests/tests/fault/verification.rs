//! Content that is not what its digest or descriptor says: layers with other bytes, empty
//! or cut short, child manifests with the wrong digest, and 5xx answers. Each is named in
//! the log and counted by cause on `/metrics`, and none is remembered: once the registry
//! serves the right bytes, the release appears.

use integration_tests::fake::{digest_of, Blob, Fault};

use crate::harness::*;

/// The stored bytes of blob `digest`.
fn stored(fake: &integration_tests::fake::FakeRegistry, digest: &str) -> Vec<u8> {
    fake.with(|s| match &s.repos[REPO].blobs[digest] {
        Blob::Stored(bytes) => bytes.to_vec(),
        other => panic!("{other:?}"),
    })
}

#[test]
fn wrong_empty_or_cut_layers_are_named_and_never_taken_for_plain_ones() {
    let fake = healthy_registry();
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start_serving(&fake, dir.path(), 20);
    let (manifest, top) = untagged_release(&fake, "4.18.2", &["4.18.1"]);
    let bytes = stored(&fake, &top);
    let mut other = bytes.clone();
    *other.last_mut().unwrap() ^= 0xff;
    let cases = [
        (
            Fault::Body(other.clone().into()),
            format!("blob {top} hashes to {}", digest_of(&other)),
        ),
        (
            Fault::Empty,
            format!(
                "blob {top} is 0 bytes, its descriptor gives {}",
                bytes.len()
            ),
        ),
        (
            Fault::Truncated(bytes.len() / 2),
            format!(
                "blob {top} is {} bytes, its descriptor gives {}",
                bytes.len() / 2,
                bytes.len()
            ),
        ),
    ];
    for (i, (fault, cause)) in cases.into_iter().enumerate() {
        let mark = gb.log_mark();
        script(&fake, vec![(format!("/blobs/{top}"), fault)]);
        if i == 0 {
            tag(&fake, "4.18.2", &manifest);
        }
        let line = gb.wait_log(&cause, mark);
        assert!(line.contains("4.18.2"), "the tag is named: {line}");
        gb.assert_alive();
        gb.assert_serves_healthy();
    }
    gb.wait_metric("cincinnati_gb_registry_errors_total{cause=\"blob_mismatch\"}");
    // The right bytes again: the release was not remembered as "not a release".
    script(&fake, vec![]);
    wait_until("4.18.2 is served", || gb.versions().contains("4.18.2"));
    gb.assert_peak_rss_below(128);
    gb.figure(
        "verification",
        "wrong_empty_or_cut_layers_are_named_and_never_taken_for_plain_ones",
    );
}

#[test]
fn a_child_manifest_with_the_wrong_digest_and_a_5xx_are_named() {
    let fake = healthy_registry();
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start_serving(&fake, dir.path(), 20);
    let (child, list) = fake.build(REPO, |b| {
        let metadata = integration_tests::fake::metadata_json("4.18.2", &["4.18.1"], &[]);
        let child = b.release(integration_tests::fake::DOCKER_MANIFEST, "amd64", &metadata);
        let list = b.list(
            integration_tests::fake::DOCKER_LIST,
            &[("amd64", child.as_str())],
        );
        (child, list)
    });
    let mark = gb.log_mark();
    let lie = b"{\"schemaVersion\":2}".to_vec();
    script(
        &fake,
        vec![(
            format!("/manifests/{child}"),
            Fault::Body(lie.clone().into()),
        )],
    );
    tag(&fake, "4.18.2", &list);
    gb.wait_log(
        &format!(
            "digest mismatch: expected {child}, content hashes to {}",
            digest_of(&lie)
        ),
        mark,
    );
    gb.wait_metric("cincinnati_gb_registry_errors_total{cause=\"digest_mismatch\"}");
    gb.assert_alive();
    gb.assert_serves_healthy();

    let mark = gb.log_mark();
    script(
        &fake,
        vec![("/manifests/4.18.2".into(), Fault::Status(500))],
    );
    let line = gb.wait_log("500", mark);
    assert!(line.contains("4.18.2"), "{line}");
    gb.wait_metric("cincinnati_gb_registry_errors_total{cause=\"status\"}");
    gb.assert_alive();
    gb.assert_serves_healthy();
    script(&fake, vec![]);
    wait_until("4.18.2 is served", || gb.versions().contains("4.18.2"));
    gb.assert_peak_rss_below(128);
    gb.figure(
        "verification",
        "a_child_manifest_with_the_wrong_digest_and_a_5xx_are_named",
    );
}
