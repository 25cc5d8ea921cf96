//! Huge layers are streamed: a 64 MiB layer without release-metadata is read through with
//! flat peak memory, and a 64 MiB layer whose metadata comes first is abandoned right after
//! it. A separate test binary, so no other test disturbs the process's VmHWM.

#[path = "scrape/fake/mod.rs"]
mod fake;

use fake::*;
use graph_builder::scrape::Scraper;

const HUGE: u64 = 64 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// Peak resident set size of this process, in bytes.
fn vm_hwm() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

fn huge_image(fake: &FakeRegistry, repo: &str, tag: &str, metadata_first: Option<Vec<u8>>) {
    fake.build(repo, |b| {
        // Layers are not digest-checked (they are abandoned mid-stream), so a name will do.
        let digest = digest_of(tag.as_bytes());
        let blob = Blob::Generated {
            size: HUGE,
            metadata_first: metadata_first.map(Into::into),
        };
        b.repo.blobs.insert(digest.clone(), blob);
        let image = b.image_with_layers(DOCKER_MANIFEST, "amd64", &[(digest, HUGE as usize)]);
        b.tag(tag, &image);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_layers_are_streamed_not_buffered() {
    let fake = FakeRegistry::start();
    huge_image(&fake, "warmup", "small", None);
    fake.with(|s| {
        if let Some(Blob::Generated { size, .. }) =
            s.repos.get_mut("warmup").unwrap().blobs.values_mut().next()
        {
            *size = MIB;
        }
    });
    huge_image(
        &fake,
        "first",
        "4.17.0",
        Some(metadata_json("4.17.0", &[], &[])),
    );
    huge_image(&fake, "component", "etcd", None);

    // Warm up the client, the runtime and the fake so their one-off allocations are counted
    // before the baseline.
    let warmup = Scraper::new(settings(&fake, "warmup"))
        .unwrap()
        .scrape()
        .await
        .unwrap();
    assert_eq!(warmup.stats.not_releases, 1);

    let first = Scraper::new(settings(&fake, "first"))
        .unwrap()
        .scrape()
        .await
        .unwrap();
    assert_eq!(first.releases.len(), 1);
    assert!(
        first.stats.blob_bytes < 4 * MIB,
        "read {} bytes of a 64 MiB layer whose metadata comes first",
        first.stats.blob_bytes
    );

    eprintln!(
        "metadata-first layer: read {} KiB of {} MiB",
        first.stats.blob_bytes / 1024,
        HUGE / MIB
    );
    let before = vm_hwm();
    let component = Scraper::new(settings(&fake, "component"))
        .unwrap()
        .scrape()
        .await
        .unwrap();
    let after = vm_hwm();
    assert_eq!(component.stats.not_releases, 1);
    assert!(
        component.stats.blob_bytes > HUGE,
        "the whole layer went through"
    );
    let growth = after.saturating_sub(before);
    eprintln!(
        "VmHWM before {} MiB, after {} MiB, growth {} KiB for a {} MiB layer",
        before / MIB,
        after / MIB,
        growth / 1024,
        HUGE / MIB
    );
    assert!(growth < 16 * MIB, "peak memory grew by {growth} bytes");
    fake.stop().await;
}
