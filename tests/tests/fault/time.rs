//! Answers that take for ever: a manifest dripping one byte at a time, a layer without
//! end, a tag list without end. The refresh timeout ends each, names itself in the log and
//! on `/metrics`, and nothing keeps running after it: the fake sees its connection closed
//! (the blocking layer reader stopped too), and the next refresh starts on time.

use std::time::{Duration, Instant};

use integration_tests::fake::Fault;

use crate::harness::*;

const TIMEOUT_SECS: u64 = 3;

/// Waits until the fake sends no scripted body any more: the client hung up.
fn wait_hung_up(fake: &integration_tests::fake::FakeRegistry) -> Duration {
    let open = fake.with(|s| std::sync::Arc::clone(&s.open_bodies));
    wait_until("the fake's scripted bodies end", || {
        open.load(std::sync::atomic::Ordering::SeqCst) == 0
    })
}

/// Stores what `prepare` adds, scripts the faults it returns, then lets `publish` make it
/// visible (so that no refresh sees it without its faults); waits for the timeout to be
/// logged, checks that it came in time and that the connection is gone, and that the
/// healthy graph is still served.
fn times_out(
    test: &str,
    prepare: impl FnOnce(&integration_tests::fake::FakeRegistry) -> Vec<(String, Fault)>,
    publish: impl FnOnce(&integration_tests::fake::FakeRegistry),
) {
    let fake = healthy_registry();
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start_serving(&fake, dir.path(), TIMEOUT_SECS);
    let mark = gb.log_mark();
    let faults = prepare(&fake);
    script(&fake, faults);
    publish(&fake);
    let injected = Instant::now();
    let line = gb.wait_log(
        &format!("the refresh did not finish within {TIMEOUT_SECS}s"),
        mark,
    );
    let waited = injected.elapsed();
    // No new refresh meets the fault (the next starts a second after this one), so the
    // fake's bodies end only if the timed-out refresh let go of its connection.
    script(&fake, vec![]);
    fake.with(|s| s.behaviour.endless_pages = None);
    let hung_up = wait_hung_up(&fake);
    assert!(hung_up < Duration::from_secs(2), "hung up {hung_up:?} late");
    assert!(line.contains("stage=\"timeout\""), "{line}");
    // The message says where the refresh was stopped.
    assert!(line.contains("(while "), "{line}");
    // A refresh that had just started when the fault came, then the one that hit it.
    assert!(
        waited < Duration::from_secs(2 * TIMEOUT_SECS + 4),
        "timed out after {waited:?}"
    );
    gb.wait_metric("cincinnati_gb_graph_refresh_errors_total{stage=\"timeout\"}");
    gb.assert_alive();
    gb.assert_serves_healthy();
    gb.assert_peak_rss_below(128);
    gb.figure("time", test);
}

#[test]
fn a_manifest_dripping_past_the_refresh_timeout_ends_with_its_connection() {
    // Fetched by digest after a HEAD on the tag: the digest is where it drips.
    let manifest = std::cell::RefCell::new(String::new());
    times_out(
        "a_manifest_dripping_past_the_refresh_timeout_ends_with_its_connection",
        |fake| {
            let (digest, _) = untagged_release(fake, "4.18.2", &["4.18.1"]);
            let drip = Fault::Drip {
                every: Duration::from_millis(100),
                chunk: 1,
                total: 1 << 20,
            };
            let needle = format!("/manifests/{digest}");
            *manifest.borrow_mut() = digest;
            vec![(needle, drip)]
        },
        |fake| tag(fake, "4.18.2", &manifest.borrow()),
    );
}

#[test]
fn an_endless_layer_ends_with_the_refresh_timeout_and_its_reader_thread() {
    // The layer claims a terabyte and sends zeros (an empty tar, then padding for ever):
    // it is read on a blocking thread to the end its descriptor gives, so only the
    // refresh timeout, reaching into that thread, stops it.
    let layer = integration_tests::fake::digest_of(b"endless");
    let needle = format!("/blobs/{layer}");
    times_out(
        "an_endless_layer_ends_with_the_refresh_timeout_and_its_reader_thread",
        |_| vec![(needle, Fault::Endless)],
        move |fake| {
            fake.build(REPO, |b| {
                let image = b.image_with_layers(
                    integration_tests::fake::DOCKER_MANIFEST,
                    "amd64",
                    &[(layer.clone(), 1 << 40)],
                );
                b.tag("4.18.2", &image);
            });
        },
    );
}

#[test]
fn an_endless_tag_list_ends_with_the_refresh_timeout() {
    times_out(
        "an_endless_tag_list_ends_with_the_refresh_timeout",
        |_| vec![],
        |fake| fake.with(|s| s.behaviour.endless_pages = Some(1)),
    );
}

#[test]
fn empty_tag_pages_linking_on_are_refused_at_once() {
    let fake = healthy_registry();
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start_serving(&fake, dir.path(), 20);
    let mark = gb.log_mark();
    fake.with(|s| s.behaviour.endless_pages = Some(0));
    let started = Instant::now();
    gb.wait_log("lists no tag but links to another page", mark);
    assert!(started.elapsed() < Duration::from_secs(5));
    gb.wait_metric("cincinnati_gb_registry_errors_total{cause=\"protocol\"}");
    gb.assert_alive();
    gb.assert_serves_healthy();
    gb.figure("time", "empty_tag_pages_linking_on_are_refused_at_once");
}

/// A gzipped layer holding minimal graph-data (listing [`HEALTHY`]) at its root.
fn graph_data_layer() -> Vec<u8> {
    let tree = tempfile::tempdir().unwrap();
    graph_data(tree.path(), &HEALTHY);
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    builder.append_dir_all(".", tree.path()).unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

#[test]
fn an_endless_graph_data_image_layer_ends_with_the_refresh_timeout_and_its_thread() {
    const IMAGE: &str = "openshift/graph-image";
    let fake = healthy_registry();
    let good = fake.build(IMAGE, |b| {
        let layer = b.blob(graph_data_layer());
        let image =
            b.image_with_layers(integration_tests::fake::DOCKER_MANIFEST, "amd64", &[layer]);
        b.tag("latest", &image);
        image
    });
    assert!(!good.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gb.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[plugin_settings]]
name = "release-scrape-dockerv2"
registry = "{base}"
repository = "{REPO}"

[[plugin_settings]]
name = "dkrv2-secondary-metadata-scrape"
registry = "{base}"
repository = "{IMAGE}"
output_directory = "{out}"

[[plugin_settings]]
name = "openshift-secondary-metadata-parse"
data_directory = "{out}"

[[plugin_settings]]
name = "edge-add-remove"
"#,
            base = fake.url(),
            out = dir.path().join("out").display()
        ),
    )
    .unwrap();
    let args = ["-c".to_owned(), config.to_str().unwrap().to_owned()];
    let mut gb = GraphBuilder::start_with(TIMEOUT_SECS, &args);
    gb.wait_log("graph refreshed", 0);
    gb.assert_serves_healthy();

    // A new image whose one layer claims a terabyte and never ends: the digest of the
    // graph-data it would unpack is checked at its end, so it is read on a blocking thread
    // until the refresh timeout stops that thread.
    let endless = integration_tests::fake::digest_of(b"endless graph-data");
    let mark = gb.log_mark();
    script(&fake, vec![(format!("/blobs/{endless}"), Fault::Endless)]);
    fake.build(IMAGE, |b| {
        let image = b.image_with_layers(
            integration_tests::fake::DOCKER_MANIFEST,
            "amd64",
            &[(endless.clone(), 1 << 40)],
        );
        b.tag("latest", &image);
    });
    let injected = Instant::now();
    let line = gb.wait_log(
        &format!("the refresh did not finish within {TIMEOUT_SECS}s"),
        mark,
    );
    let waited = injected.elapsed();
    script(&fake, vec![]);
    let hung_up = wait_hung_up(&fake);
    assert!(hung_up < Duration::from_secs(2), "hung up {hung_up:?} late");
    assert!(line.contains("stage=\"timeout\""), "{line}");
    assert!(
        waited < Duration::from_secs(2 * TIMEOUT_SECS + 4),
        "timed out after {waited:?}"
    );
    gb.assert_alive();
    gb.assert_serves_healthy();
    gb.assert_peak_rss_below(128);
    gb.figure(
        "time",
        "an_endless_graph_data_image_layer_ends_with_the_refresh_timeout_and_its_thread",
    );
}
