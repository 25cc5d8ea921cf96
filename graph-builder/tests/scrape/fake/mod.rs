//! The in-process fake registry of the integration-tests crate, plus what only these
//! tests need: a TLS front and scrape settings pointing at the fake.
#![allow(dead_code)]

pub mod tls;

pub use integration_tests::fake::*;

/// Settings for scraping `repo` on the fake, with no CA directory.
pub fn settings(fake: &FakeRegistry, repo: &str) -> graph_builder::scrape::ScrapeSettings {
    graph_builder::scrape::ScrapeSettings {
        registry: fake.url(),
        repository: repo.to_string(),
        client: Default::default(),
        ..Default::default()
    }
}
