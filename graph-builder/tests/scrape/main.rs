//! Scrapes against the in-process fake registry (`fake`) and OCI layouts: the behaviour a
//! real registry will not produce on demand (auth challenges, tiny pages, 503 bursts, lies,
//! broken layers). One binary, modules by theme.

mod auth;
mod credentials;
mod failures;
mod fake;
mod layout;
mod push;
mod releases;

use fake::*;
use graph_builder::scrape::Scraper;

pub(crate) const REPO: &str = "ocp/release";

/// Three releases, a component image, a signature tag.
pub(crate) fn populate(fake: &FakeRegistry) {
    fake.build(REPO, |b| {
        for (tag, version, previous) in [
            ("4.14.1-x86_64", "4.14.1", vec![]),
            ("4.14.2-x86_64", "4.14.2", vec!["4.14.1"]),
            ("4.14.3-x86_64", "4.14.3", vec!["4.14.1", "4.14.2"]),
        ] {
            let d = b.release(
                DOCKER_MANIFEST,
                "amd64",
                &metadata_json(version, &previous, &[]),
            );
            b.tag(tag, &d);
        }
        let c = b.component("amd64", "etcd");
        b.tag("etcd", &c);
        let sig = b.component("amd64", "signature");
        b.tag("sha256-0123.sig", &sig);
    });
}

pub(crate) fn scraper(fake: &FakeRegistry) -> Scraper {
    Scraper::new(settings(fake, REPO)).unwrap()
}

pub(crate) fn one_release(fake: &FakeRegistry) -> String {
    fake.build(REPO, |b| {
        let d = b.release(DOCKER_MANIFEST, "amd64", &metadata_json("4.18.0", &[], &[]));
        b.tag("4.18.0", &d);
        d
    })
}

#[test]
fn scrapers_and_their_futures_can_cross_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let scraper = Scraper::new(graph_builder::scrape::ScrapeSettings {
        registry: "http://127.0.0.1:9".into(),
        client: Default::default(),
        ..Default::default()
    })
    .unwrap();
    send_sync(&scraper);
    send(&scraper.scrape());
    let layout = graph_builder::scrape::LayoutScraper::new("/nonexistent", "r.example/x");
    send_sync(&layout);
    send(&layout.scrape());
}
