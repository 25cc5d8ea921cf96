//! Outside data that would take memory without bound if read as it claims: tar records
//! claiming gigabytes (GNU long names and links, PAX headers), endless chains of them,
//! endless manifest and config bodies, huge response headers. Each is refused before it is
//! read, in a process that stays small, with the refusal in the log.

use std::io::Write as _;

use integration_tests::fake::{Fault, DOCKER_MANIFEST};

use crate::harness::*;

/// A gzipped layer: `records` (raw 512-byte tar headers, each followed by its content
/// size in zeros, at most `cap` of it), then 1 MiB of zeros.
fn hostile_layer(records: &[(tar::EntryType, u64)], cap: u64) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for (kind, size) in records {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
        header.set_entry_type(*kind);
        header.set_size(*size);
        header.set_mode(0o644);
        header.set_cksum();
        gz.write_all(header.as_bytes()).unwrap();
        let content = (*size).min(cap).next_multiple_of(512);
        gz.write_all(&vec![0u8; content as usize]).unwrap();
    }
    gz.write_all(&vec![0u8; 1 << 20]).unwrap();
    gz.finish().unwrap()
}

#[test]
fn tar_records_claiming_gigabytes_are_refused_unread() {
    let fake = healthy_registry();
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start_serving(&fake, dir.path(), 20);
    let cases = [
        (
            vec![(tar::EntryType::GNULongName, 3 << 30)],
            "GNU long name record of 3221225472 bytes is above the 65536 byte limit",
        ),
        (
            vec![(tar::EntryType::GNULongLink, 1 << 30)],
            "GNU long link record of 1073741824 bytes is above the 65536 byte limit",
        ),
        (
            vec![(tar::EntryType::XHeader, 2 << 30)],
            "PAX header record of 2147483648 bytes is above the 1048576 byte limit",
        ),
        (
            vec![(tar::EntryType::XGlobalHeader, 2 << 30)],
            "PAX global header record of 2147483648 bytes is above the 1048576 byte limit",
        ),
        (
            vec![(tar::EntryType::GNULongName, 100); 17],
            "more than 16 long-name/PAX records describe one entry",
        ),
    ];
    for (i, (records, refusal)) in cases.into_iter().enumerate() {
        let tag = format!("hostile-{i}");
        let layer = hostile_layer(&records, 1024);
        let mark = gb.log_mark();
        fake.build(REPO, |b| {
            let layer = b.blob(layer);
            let image = b.image_with_layers(DOCKER_MANIFEST, "amd64", &[layer]);
            b.tag(&tag, &image);
        });
        let line = gb.wait_log(refusal, mark);
        assert!(line.contains(&tag), "the tag is named: {line}");
        gb.assert_alive();
        gb.assert_serves_healthy();
    }
    gb.assert_peak_rss_below(96);
    gb.figure(
        "memory",
        "tar_records_claiming_gigabytes_are_refused_unread",
    );
}

#[test]
fn endless_manifest_and_config_bodies_stop_at_their_caps() {
    let fake = healthy_registry();
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start_serving(&fake, dir.path(), 20);
    let (manifest, _) = untagged_release(&fake, "4.18.2", &["4.18.1"]);
    let config = fake.with(|s| {
        let body = &s.repos[REPO].manifests[&manifest].1;
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        json["config"]["digest"].as_str().unwrap().to_owned()
    });
    for (needle, refusal) in [
        // Fetched by digest after a HEAD on the tag.
        (
            format!("/manifests/{manifest}"),
            "the manifest is larger than 4194304 bytes",
        ),
        (
            format!("/blobs/{config}"),
            "the config blob is larger than 4194304 bytes",
        ),
    ] {
        let mark = gb.log_mark();
        script(&fake, vec![(needle, Fault::Endless)]);
        tag(&fake, "4.18.2", &manifest);
        let line = gb.wait_log(refusal, mark);
        assert!(line.contains("4.18.2"), "the tag is named: {line}");
        gb.assert_alive();
        gb.assert_serves_healthy();
    }
    gb.wait_metric("cincinnati_gb_registry_errors_total{cause=\"too_large\"}");
    gb.assert_peak_rss_below(128);
    gb.figure(
        "memory",
        "endless_manifest_and_config_bodies_stop_at_their_caps",
    );
}

#[test]
fn a_huge_response_header_is_refused() {
    let fake = healthy_registry();
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start_serving(&fake, dir.path(), 20);
    let mark = gb.log_mark();
    script(
        &fake,
        vec![("/manifests/4.18.2".into(), Fault::HugeHeader(4 << 20))],
    );
    add_release(&fake, "4.18.2", &["4.18.1"]);
    let line = gb.wait_log("message head is too large", mark);
    assert!(line.contains("tag 4.18.2"), "{line}");
    gb.wait_metric("cincinnati_gb_registry_errors_total{cause=\"transport\"}");
    gb.assert_alive();
    gb.assert_serves_healthy();
    gb.assert_peak_rss_below(128);
    gb.figure("memory", "a_huge_response_header_is_refused");
}
