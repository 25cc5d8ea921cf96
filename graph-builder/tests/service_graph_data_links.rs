//! A graph-data directory cannot make the public `/graph-data` serve a file from outside
//! the tree: a planted link to the registry credentials fails the refresh (named by
//! file), the last good graph and tarball stay, and the secret is in no served byte.

mod service;

use std::path::Path;

use service::layout::add_release;
use service::{graph_data, Service};

const ERRORS: &str = "cincinnati_gb_graph_upstream_errors_total";

/// Every file of a served tarball, by path.
fn files(tarball: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
            (path, bytes)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_link_to_the_credentials_is_never_served() {
    let layout = tempfile::tempdir().unwrap();
    add_release(layout.path(), "4.16.0", &[], "amd64");
    let gd = tempfile::tempdir().unwrap();
    graph_data(gd.path(), "stable-4.16", &["4.16.0"]);
    let secrets = tempfile::tempdir().unwrap();
    let credentials = secrets.path().join("config.json");
    let secret = b"{\"auths\":{\"mirror:5000\":{\"auth\":\"c2VjcmV0LXBhc3N3b3Jk\"}}}";
    std::fs::write(&credentials, secret).unwrap();

    let (url, dir) = (
        layout.path().display().to_string(),
        gd.path().display().to_string(),
    );
    let svc = Service::start(&[
        "--upstream.oci_layout",
        &url,
        "--registry",
        "127.0.0.1:5000",
        "--repository",
        "ocp/release",
        "--upstream.graph_data",
        &dir,
    ]);
    let good = svc.first_graph().await;
    let served = svc
        .get(&format!("{}/graph-data", svc.public))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(files(&served).iter().any(|(p, _)| p == "version"));

    // Plant a link as LICENSE: packed and served, but never parsed, so before links were
    // checked the refresh succeeded and the public port served the credentials.
    std::os::unix::fs::symlink(&credentials, gd.path().join("LICENSE")).unwrap();
    let errors = svc.metric(ERRORS).await;
    svc.metric_above(ERRORS, errors).await;
    svc.assert_failing("graph_data").await;

    assert_eq!(
        svc.graph().await,
        good,
        "the last good graph is still served"
    );
    let now = svc
        .get(&format!("{}/graph-data", svc.public))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(now, served, "the last good tarball is still served");
    for (path, bytes) in files(&now) {
        assert!(!contains(&bytes, secret), "{path} holds the secret");
    }

    // The error names the file (the refresh loop logs it; the loader says the same).
    let err = graph_data::keys::chain(
        &graph_builder::graph_data_source::pack_dir(Path::new(&dir)).unwrap_err(),
    );
    assert!(
        err.starts_with(&format!(
            "cannot read graph-data {}: it resolves to ",
            gd.path().join("LICENSE").display()
        )),
        "{err}"
    );
    svc.stop().await;
}
