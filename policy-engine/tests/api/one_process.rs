//! One-process mode: the README's first command (the bundled OCI layout of sample
//! releases and the bundled graph-data) answers the README's curl, a failed rebuild
//! keeps the last good graph while readiness and metrics say what is wrong, and a tag that
//! cannot be read leaves readiness 200 but degraded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use policy_engine::Cli;

use crate::cvo::cvo_problems;
use crate::harness::{get, Pe};

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The README's command line, with the paths made absolute (tests run in the crate dir).
fn readme_settings(layout: &Path) -> policy_engine::Settings {
    let graph_data = repo_root().join("data/graph-data");
    let mut settings = Cli::try_parse_from([
        "policy-engine".as_ref(),
        "--releases-oci-layout".as_ref(),
        layout.as_os_str(),
        "--graph-data".as_ref(),
        graph_data.as_os_str(),
    ])
    .unwrap()
    .settings()
    .unwrap();
    settings.workers = Some(1);
    settings
}

const README_CURL: &str = "/api/upgrades_info/v1/graph?channel=stable-4.16";

#[tokio::test]
async fn the_readme_command_answers_the_readme_curl() {
    let settings = readme_settings(&repo_root().join("data/sample-releases"));
    let pe = Pe::with_settings(settings).await;
    // Requests before the first build wait for it; this is the README's curl.
    let answer = get(&format!("{}{README_CURL}", pe.base), &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // curl sends `Accept: */*`, as reqwest does.
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let doc = answer.json();
    assert_eq!(cvo_problems(&doc), Vec::<String>::new());
    let nodes = doc["nodes"].as_array().unwrap();
    let edges = doc["edges"].as_array().unwrap();
    let conditional = doc["conditionalEdges"].as_array().unwrap();
    // amd64 by default: every 4.15.z and 4.16.z of the channel file.
    assert_eq!(nodes.len(), 110, "{}", answer.text());
    assert!(edges.len() > 1000, "{} edges", edges.len());
    assert!(!conditional.is_empty());
    for node in nodes {
        let m = &node["metadata"];
        let channels = m["io.openshift.upgrades.graph.release.channels"]
            .as_str()
            .unwrap();
        assert!(channels.split(',').any(|c| c == "stable-4.16"), "{node}");
        assert!(m["url"].as_str().unwrap().starts_with("https://"), "{node}");
        assert!(node["payload"]
            .as_str()
            .unwrap()
            .starts_with("quay.io/openshift-release-dev/ocp-release@sha256:"));
    }
    let multi = get(&format!("{}{README_CURL}&arch=multi", pe.base), &[]).await;
    let multi = multi.json();
    assert_eq!(cvo_problems(&multi), Vec::<String>::new());
    assert_eq!(multi["nodes"].as_array().unwrap().len(), 6);
    for node in multi["nodes"].as_array().unwrap() {
        assert_eq!(
            node["metadata"]["release.openshift.io/architecture"],
            "multi"
        );
    }
    let ready = get(&format!("{}/readyz", pe.status), &[]).await;
    assert_eq!(ready.summary(), "200 -\n");

    let status = get(&format!("{}/status", pe.status), &[]).await;
    assert_eq!(status.status, 200);
    let doc = status.json();
    assert_eq!(doc["service"], "policy-engine");
    assert_eq!(doc["ready"], true);
    assert_eq!(
        doc["origin"],
        format!(
            "one-process: releases from OCI layout {}, graph-data {}",
            repo_root().join("data/sample-releases").display(),
            repo_root().join("data/graph-data").display()
        )
    );
    assert_eq!(doc["served"]["revision"], 1);
    assert_eq!(doc["last_refresh"]["result"], "succeeded");
    let per_arch = doc["releases"]["per_arch"].as_object().unwrap();
    assert_eq!(
        per_arch.keys().collect::<Vec<_>>(),
        ["amd64", "arm64", "multi"]
    );
    assert_eq!(per_arch["multi"], 6);
    let sum: u64 = per_arch.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(doc["releases"]["total"], sum);
    assert_eq!(doc["releases"]["invalid"], serde_json::json!([]));
    assert_eq!(doc["graph_data"]["problems"], serde_json::json!([]));
    assert_eq!(doc["graph"]["nodes"], doc["served"]["nodes"]);

    // The bundled graph-data carries no signatures and none are configured: every
    // release counts as unsigned, and signatures do not count as configured (so the
    // unsigned-releases alert stays quiet on a site that takes them elsewhere).
    let mut signatures = serde_json::Value::Null;
    for _ in 0..150 {
        signatures = get(&format!("{}/signatures", pe.status), &[]).await.json();
        if signatures["coverage"]["per_arch"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let coverage = &signatures["coverage"];
    assert_eq!(coverage["configured"], false, "{coverage}");
    assert_eq!(coverage["signed"], 0, "{coverage}");
    assert_eq!(coverage["unsigned"], sum, "{coverage}");
    assert_eq!(signatures["releases_without_signature"], sum);
    for (arch, releases) in per_arch {
        assert_eq!(
            coverage["per_arch"][arch],
            serde_json::json!({"signed": 0, "unsigned": releases}),
            "{coverage}"
        );
    }
    let metrics = get(&format!("{}/metrics", pe.status), &[]).await.text();
    for line in [
        "cincinnati_pe_signatures_configured 0",
        "cincinnati_pe_releases_signed{arch=\"multi\"} 0",
        "cincinnati_pe_releases_unsigned{arch=\"multi\"} 6",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    pe.stop().await;
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_failed_rebuild_keeps_the_last_graph_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    copy_dir(&repo_root().join("data/sample-releases"), &layout);
    let mut settings = readme_settings(&layout);
    settings.in_process.as_mut().unwrap().refresh = Duration::from_secs(1);
    let pe = Pe::with_settings(settings).await;
    let url = format!("{}{README_CURL}", pe.base);
    let before = get(&url, &[]).await;
    assert_eq!(before.status, 200);

    std::fs::remove_file(layout.join("index.json")).unwrap();
    let mut ready = get(&format!("{}/readyz", pe.status), &[]).await;
    for _ in 0..100 {
        if !ready.body.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = get(&format!("{}/readyz", pe.status), &[]).await;
    }
    assert_eq!(ready.status, 200);
    let text = ready.text();
    assert!(text.contains("the last refresh failed"), "{text}");
    assert!(text.contains("index.json"), "{text}");
    let metrics = get(&format!("{}/metrics", pe.status), &[]).await.text();
    assert!(
        metrics.contains("cincinnati_pe_graph_build_errors_total{stage=\"scrape\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("cincinnati_pe_refresh_failing_since_timestamp_seconds 0\n"));
    let after = get(&url, &[]).await;
    assert_eq!((after.status, &after.body), (before.status, &before.body));
    let doc = get(&format!("{}/status", pe.status), &[]).await.json();
    assert_eq!(doc["ready"], true);
    assert_eq!(doc["served"]["revision"], 1);
    assert_eq!(doc["last_refresh"]["result"], "failed");
    assert_eq!(doc["last_refresh"]["error"]["stage"], "scrape");
    let message = doc["last_refresh"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("index.json"), "{message}");
    assert!(doc["last_error"]["message"]
        .as_str()
        .unwrap()
        .contains("index.json"));
    pe.stop().await;
}

#[tokio::test]
async fn without_a_graph_readiness_names_the_missing_layout() {
    let missing = repo_root().join("data/no-such-layout");
    let pe = Pe::with_settings(readme_settings(&missing)).await;
    let answer = get(&format!("{}{README_CURL}", pe.base), &[]).await;
    assert_eq!(answer.status, 500, "{}", answer.text());
    assert_eq!(answer.json()["kind"], "failed_upstream_fetch");
    let ready = get(&format!("{}/readyz", pe.status), &[]).await;
    assert_eq!(ready.status, 503);
    assert!(ready.text().contains("no-such-layout"), "{}", ready.text());
    let doc = get(&format!("{}/status", pe.status), &[]).await.json();
    assert_eq!(doc["ready"], false);
    let not_ready = doc["not_ready"].as_str().unwrap();
    assert!(not_ready.starts_with("no graph yet: "), "{not_ready}");
    assert!(not_ready.contains("no-such-layout"), "{not_ready}");
    assert!(doc.get("served").is_none(), "{doc}");
    pe.stop().await;
}

/// A registry that refuses everything with a Basic challenge and an error body naming
/// things only operators should read; answers on a background task until aborted.
async fn refusing_registry() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut request = vec![0; 8192];
            let _ = stream.read(&mut request).await;
            let body = r#"{"errors":[{"code":"DENIED","message":"internal-registry-note"}]}"#;
            let answer = format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"r\"\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (addr.to_string(), task)
}

#[tokio::test]
async fn registry_hosts_users_and_error_bodies_stay_off_the_public_api() {
    let (host, registry) = refusing_registry().await;
    let ca_dir = tempfile::tempdir().unwrap();
    let registry_url = format!("http://robot:s3cret@{host}");
    let mut settings = Cli::try_parse_from([
        "policy-engine".as_ref(),
        "--releases-registry".as_ref(),
        registry_url.as_ref(),
        "--releases-repository".as_ref(),
        "ocp/private-release".as_ref(),
        "--releases-ca-dir".as_ref(),
        ca_dir.path().as_os_str(),
    ])
    .unwrap()
    .settings()
    .unwrap();
    settings.workers = Some(1);
    let pe = Pe::with_settings(settings).await;

    let answer = get(&format!("{}{README_CURL}", pe.base), &[]).await;

    assert_eq!(answer.status, 500, "{}", answer.text());
    assert_eq!(
        answer.json(),
        serde_json::json!({
            "kind": "failed_upstream_fetch",
            "value": "failed to fetch upstream graph: building the graph (scrape) failed; \
                      the service log and status port say why",
        })
    );
    // The status port has the whole story, still without the password.
    let doc = get(&format!("{}/status", pe.status), &[]).await.json();
    let message = doc["last_error"]["message"].as_str().unwrap();
    for expected in [
        host.as_str(),
        "ocp/private-release",
        "robot",
        "internal-registry-note",
    ] {
        assert!(message.contains(expected), "{expected}: {message}");
    }
    let everything = format!(
        "{doc}{}",
        get(&format!("{}/readyz", pe.status), &[]).await.text()
    );
    assert!(!everything.contains("s3cret"), "{everything}");
    pe.stop().await;
    registry.abort();
}

#[tokio::test]
async fn a_tag_whose_manifest_is_gone_is_reported_and_readiness_says_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    copy_dir(&repo_root().join("data/sample-releases"), &layout);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "4.16.4-x86_64")
        .and_then(|m| m["digest"].as_str())
        .expect("the sample layout tags 4.16.4-x86_64")
        .to_owned();
    let blob = layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    std::fs::remove_file(blob).unwrap();

    // A cold start: the release cannot be kept, the rest of the graph is served.
    let pe = Pe::with_settings(readme_settings(&layout)).await;
    let answer = get(&format!("{}{README_CURL}", pe.base), &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let doc = answer.json();
    let versions: Vec<&str> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions.len(), 109);
    assert!(!versions.contains(&"4.16.4"), "{versions:?}");

    let ready = get(&format!("{}/readyz", pe.status), &[]).await;
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.text(),
        "degraded: 1 listed tag(s) cannot be read (4.16.4-x86_64), 0 release(s) kept from \
         the last good scrape (see /status)"
    );
    let status = get(&format!("{}/status", pe.status), &[]).await.json();
    assert_eq!(status["degraded"], ready.text());
    let failing = status["releases"]["failing_tags"].as_array().unwrap();
    assert_eq!(failing.len(), 1);
    assert_eq!(failing[0]["tag"], "4.16.4-x86_64");
    assert!(failing[0].get("kept").is_none(), "{}", failing[0]);
    let reason = failing[0]["reason"].as_str().unwrap();
    assert!(reason.contains(&digest), "{reason}");
    pe.stop().await;
}
