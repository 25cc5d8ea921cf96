//! Credentials go to the registry origin only and are never shown: the binary, given a
//! docker `config.json`, scrapes a fake that asks for Basic or Bearer auth and redirects
//! every blob to storage on a second origin, which must never see an `Authorization`, not
//! even when it asks for one; a `user:password@` in the registry URL appears neither in
//! the log nor on `/status`.

use std::time::Duration;

use base64::Engine as _;
use integration_tests::fake::FakeRegistry;

use crate::harness::*;

const USER: &str = "puller";
const PASSWORD: &str = "pw-0f9c2e7d-never-shown";

/// Storage on a second origin holding the same content as `front`, which now asks for
/// credentials (`bearer` or Basic) and redirects blobs there.
fn front_and_storage(front: &FakeRegistry, bearer: bool) -> FakeRegistry {
    let storage = FakeRegistry::start();
    let (tags, manifests, blobs) = front.with(|s| {
        let repo = &s.repos[REPO];
        (
            repo.tags.clone(),
            repo.manifests.clone(),
            repo.blobs.clone(),
        )
    });
    storage.with(|s| {
        let repo = s.repos.entry(REPO.to_owned()).or_default();
        (repo.tags, repo.manifests, repo.blobs) = (tags, manifests, blobs);
    });
    let credentials = Some((USER.to_owned(), PASSWORD.to_owned()));
    front.with(|s| {
        s.behaviour.blob_redirect = Some(storage.url());
        if bearer {
            s.behaviour.bearer = credentials;
            s.behaviour.token = "token-for-the-front-only".into();
        } else {
            s.behaviour.basic = credentials;
        }
    });
    storage
}

/// A docker `config.json` with the credentials for `host`.
fn docker_config(dir: &std::path::Path, host: &str) -> std::path::PathBuf {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let path = dir.join("config.json");
    let json = serde_json::json!({"auths": {host: {"auth": auth}}});
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

/// Panics if the password, or the `user:password` pair in any spelling, shows.
fn assert_not_shown(gb: &GraphBuilder) {
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let status = gb.get(false, "/status").1;
    for text in [gb.logs().join("\n"), status] {
        assert!(!text.contains(PASSWORD), "the password shows:\n{text}");
        assert!(
            !text.contains(&pair),
            "the encoded credentials show:\n{text}"
        );
    }
}

#[test]
fn credentials_from_a_docker_config_never_reach_the_blob_storage() {
    for bearer in [false, true] {
        let scheme = if bearer { "Bearer" } else { "Basic" };
        let front = healthy_registry();
        let storage = front_and_storage(&front, bearer);
        let dir = tempfile::tempdir().unwrap();
        graph_data(dir.path(), &CHANNEL);
        let config = docker_config(dir.path(), &front.host());
        let config = config.to_str().unwrap();
        let mut gb = GraphBuilder::start(&front, dir.path(), 20, &["--credentials-file", config]);
        gb.wait_log("graph refreshed", 0);
        assert_eq!(gb.versions(), set(&HEALTHY), "{scheme}");
        let (front_authorized, token_scopes) =
            front.with(|s| (s.authorized.clone(), s.token_scopes.clone()));
        assert!(
            front_authorized
                .iter()
                .any(|r| r.contains("/manifests/4.18.1")),
            "{scheme}: the front saw credentials: {front_authorized:?}"
        );
        assert_eq!(!token_scopes.is_empty(), bearer, "{token_scopes:?}");
        // Configs and layers of both releases came from storage, none with credentials.
        let (storage_requests, storage_authorized) =
            storage.with(|s| (s.log.clone(), s.authorized.clone()));
        let blobs = storage_requests
            .iter()
            .filter(|r| r.starts_with(&format!("GET /v2/{REPO}/blobs/sha256:")))
            .count();
        assert!(blobs >= 4, "{scheme}: {storage_requests:?}");
        assert_eq!(storage_authorized, Vec::<String>::new(), "{scheme}");
        assert_not_shown(&gb);
        gb.assert_alive();
        gb.assert_peak_rss_below(96);
        gb.assert_wall_below(Duration::from_secs(30));
        gb.figure(
            "credentials",
            &format!("credentials_from_a_docker_config_never_reach_the_blob_storage/{scheme}"),
        );
    }
}

#[test]
fn a_password_in_the_registry_url_is_never_shown() {
    let front = healthy_registry();
    let storage = front_and_storage(&front, false);
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let url = format!("http://{USER}:{PASSWORD}@{}", front.host());
    let args: Vec<String> = [
        "--upstream.registry.url",
        &url,
        "--upstream.registry.repository",
        REPO,
        "--upstream.graph_data",
        dir.path().to_str().unwrap(),
    ]
    .map(str::to_owned)
    .into();
    let mut gb = GraphBuilder::start_with(20, &args);
    gb.wait_log("graph refreshed", 0);
    assert_eq!(gb.versions(), set(&HEALTHY));
    assert!(front.with(|s| !s.authorized.is_empty()));
    assert_eq!(storage.with(|s| s.authorized.clone()), Vec::<String>::new());
    // The registry is still named in the log, without the user info.
    let finished = gb.wait_log("scrape finished", 0);
    assert!(
        finished.contains(&format!("registry={} ", front.host())),
        "{finished}"
    );
    // A failing refresh names the registry in its error: still masked.
    let mark = gb.log_mark();
    front.with(|s| s.behaviour.fail_always = Some(("/tags/list".into(), 500)));
    gb.wait_log("500", mark);
    wait_until("/status names the failure", || {
        gb.status_doc()["last_refresh"]["result"] == "failed"
    });
    assert_not_shown(&gb);
    assert!(!gb.logs().join("\n").contains(USER), "the user shows");
    gb.assert_alive();
    gb.assert_serves_healthy();
    gb.assert_peak_rss_below(96);
    gb.assert_wall_below(Duration::from_secs(30));
    gb.figure(
        "credentials",
        "a_password_in_the_registry_url_is_never_shown",
    );
}

#[test]
fn storage_asking_for_credentials_does_not_get_them() {
    let front = healthy_registry();
    let storage = front_and_storage(&front, false);
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let config = docker_config(dir.path(), &front.host());
    let config = config.to_str().unwrap();
    let mut gb = GraphBuilder::start(&front, dir.path(), 20, &["--credentials-file", config]);
    gb.wait_log("graph refreshed", 0);
    assert_eq!(gb.versions(), set(&HEALTHY));
    // Storage now answers 401 with a Basic challenge, to a new release's blobs.
    storage.with(|s| s.behaviour.basic = Some((USER.to_owned(), PASSWORD.to_owned())));
    storage.clear_log();
    let mark = gb.log_mark();
    add_release(&front, "4.18.2", &["4.18.1"]);
    let (tags, manifests, blobs) = front.with(|s| {
        let repo = &s.repos[REPO];
        (
            repo.tags.clone(),
            repo.manifests.clone(),
            repo.blobs.clone(),
        )
    });
    storage.with(|s| {
        let repo = s.repos.get_mut(REPO).unwrap();
        (repo.tags, repo.manifests, repo.blobs) = (tags, manifests, blobs);
    });
    let line = gb.wait_log("cannot read a listed tag", mark);
    assert!(line.contains("tag=4.18.2"), "{line}");
    assert!(line.contains("401"), "{line}");
    assert!(
        storage.with(|s| s.log.iter().any(|r| r.contains("/blobs/"))),
        "the new release's blobs were asked of storage"
    );
    assert_eq!(storage.with(|s| s.authorized.clone()), Vec::<String>::new());
    assert_not_shown(&gb);
    gb.assert_alive();
    assert_eq!(gb.versions(), set(&HEALTHY));
    gb.assert_peak_rss_below(96);
    gb.assert_wall_below(Duration::from_secs(30));
    gb.figure(
        "credentials",
        "storage_asking_for_credentials_does_not_get_them",
    );
}
