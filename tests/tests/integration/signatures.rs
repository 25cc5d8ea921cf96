//! Release signatures served to the cluster version operator, end to end with real
//! signatures: a throw-away key made by `gpg`, atomic signatures of the real manifests
//! of release images pushed to the local registry made by `skopeo standalone-sign`, and
//! every byte the policy-engine (or the metadata-helper mode) serves checked by
//! `skopeo standalone-verify`. Every source is covered: graph-data's `signatures/` tree
//! on disk, a directory of signature ConfigMaps, and a graph-data image in the registry
//! (read by the graph-builder, whose graph-data tarball the policy-engine fetches).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use graph_builder::graph_data_push::{
    push_graph_data_image_with, ImageLayout, PushRequest, SignatureInputs,
};
use graph_builder::registry::ClientConfig;
use integration_tests::signing::TestKey;
use integration_tests::{skopeo, Format, Pusher, RegistryOptions, TestRegistry};
use policy_engine::signatures::{SignatureSettings, SignatureSource};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::graph_data_image::push_base;
use crate::support::simple_release;

const PREFIX: &str = "/api/upgrades_info";

/// A release pushed to the registry: its manifest, digest hex and reference.
struct Pushed {
    version: &'static str,
    manifest: Vec<u8>,
    hex: String,
    reference: String,
}

async fn push_releases(
    registry: &TestRegistry,
    versions: &[&'static str],
) -> anyhow::Result<Vec<Pushed>> {
    let pusher = Pusher::new(registry);
    let mut out = Vec::new();
    for (n, version) in versions.iter().enumerate() {
        let image = simple_release(Format::Docker, "amd64", version, &versions[..n]);
        pusher.push_image("ocp/release", version, &image).await?;
        let manifest = skopeo::inspect_raw(registry, "ocp/release", version)?;
        let hex = hex::encode(Sha256::digest(&manifest));
        assert_eq!(
            skopeo::inspect_digest(registry, "ocp/release", version)?,
            format!("sha256:{hex}")
        );
        out.push(Pushed {
            version,
            manifest,
            hex,
            reference: format!("{}/ocp/release:{version}", registry.host_port()),
        });
    }
    Ok(out)
}

fn write(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    std::fs::create_dir_all(path.parent().expect("a parent"))?;
    std::fs::write(path, content)?;
    Ok(())
}

/// A valid graph-data tree whose one channel holds `versions`.
fn write_graph_data(dir: &Path, versions: &[&str]) -> anyhow::Result<()> {
    let list: String = versions.iter().map(|v| format!("- {v}\n")).collect();
    write(&dir.join("version"), b"1.0.0\n")?;
    write(&dir.join("raw/metadata.json"), b"{}\n")?;
    write(
        &dir.join("channels/stable-4.16.yaml"),
        format!("name: stable-4.16\nversions:\n{list}").as_bytes(),
    )?;
    std::fs::create_dir_all(dir.join("blocked-edges"))?;
    Ok(())
}

/// A signature ConfigMap as `oc adm release mirror --release-image-signature-to-dir`
/// writes it (JSON).
fn configmap(hex: &str, signatures: &[&[u8]]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let data: serde_json::Map<String, Value> = signatures
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("sha256-{hex}-{}", i + 1), json!(b64.encode(s))))
        .collect();
    serde_json::to_vec_pretty(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": format!("sha256-{hex}"),
            "namespace": "openshift-config-managed",
            "labels": {"release.openshift.io/verification-signatures": ""},
        },
        "binaryData": data,
    }))
    .expect("JSON serialises")
}

fn signature_url(public: SocketAddr, hex: &str, n: u32) -> String {
    format!("http://{public}{PREFIX}/signatures/sha256={hex}/signature-{n}")
}

/// Polls `url` (a status page) until `done` holds for its JSON; 60 s at most.
async fn wait_for(url: &str, done: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    for _ in 0..600 {
        if let Ok(response) = reqwest::get(url).await {
            if response.status() == 200 {
                let value: Value = response.json().await?;
                if done(&value) {
                    return Ok(value);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{url} did not reach the expected state in 60 s")
}

/// GETs a signature; checks the headers of a 200 and returns the bytes.
async fn fetch_signature(url: &str) -> anyhow::Result<Vec<u8>> {
    let response = reqwest::get(url).await?;
    anyhow::ensure!(response.status() == 200, "{url}: {}", response.status());
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    let etag = response.headers()["etag"].to_str()?.to_owned();
    let bytes = response.bytes().await?.to_vec();
    assert_eq!(etag, format!("\"{}\"", hex::encode(Sha256::digest(&bytes))));
    Ok(bytes)
}

/// Status and JSON body of `GET path` sent verbatim (no client-side normalisation of
/// `..` or percent-escapes).
fn raw_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// One process: the policy-engine builds the graph from the registry and graph-data,
/// serves the graph-data tree's signature and the ConfigMap's, refuses a corrupted one and
/// one filed under another release, and reports the release left without a signature.
#[tokio::test]
async fn one_process_serves_verified_signatures_from_graph_data_and_configmaps(
) -> anyhow::Result<()> {
    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let releases = push_releases(&registry, &["4.16.0", "4.16.1", "4.16.2"]).await?;
    let key = TestKey::generate("Release Signing Test <signing@example.com>")?;
    let signatures: Vec<Vec<u8>> = releases
        .iter()
        .map(|r| key.sign(&r.manifest, &r.reference))
        .collect::<Result<_, _>>()?;

    let scratch = registry.scratch_dir();
    let graph_data = scratch.join("graph-data");
    write_graph_data(&graph_data, &["4.16.0", "4.16.1", "4.16.2"])?;
    let tree = graph_data.join("signatures/sha256");
    // 4.16.0: in graph-data's tree.
    write(
        &tree.join(&releases[0].hex).join("signature-1"),
        &signatures[0],
    )?;
    // 4.16.2: a corrupted signature (one byte of the OpenPGP signature packet changed),
    // and 4.16.0's good signature filed under 4.16.2.
    let mut corrupted = signatures[2].clone();
    let at = corrupted.len() - 20;
    corrupted[at] ^= 0x55;
    write(&tree.join(&releases[2].hex).join("signature-1"), &corrupted)?;
    write(
        &tree.join(&releases[2].hex).join("signature-2"),
        &signatures[0],
    )?;
    // 4.16.1: a ConfigMap as oc writes it.
    let configmaps = scratch.join("signature-configmaps");
    write(
        &configmaps.join(format!("signature-sha256-{}.json", &releases[1].hex[..16])),
        &configmap(&releases[1].hex, &[&signatures[1]]),
    )?;

    let cli = <policy_engine::Cli as clap::Parser>::try_parse_from([
        "policy-engine",
        "--releases-registry",
        &registry.base_url(),
        "--releases-repository",
        "ocp/release",
        "--graph-data",
        graph_data.to_str().expect("UTF-8"),
        "--signatures.configmaps",
        configmaps.to_str().expect("UTF-8"),
        "--signatures.public-keys",
        key.public_key.to_str().expect("UTF-8"),
        "--signatures.refresh-secs",
        "1",
    ])?;
    let mut settings = cli.settings()?;
    settings.workers = Some(1);
    let listeners = policy_engine::Listeners::loopback()?;
    let (public, status) = listeners.addresses()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let pe = tokio::spawn(policy_engine::run(settings, listeners, async move {
        let _ = stopped.await;
    }));

    let report = wait_for(&format!("http://{status}/signatures"), |v| {
        v["refreshes"].as_u64() > Some(0) && v["unsigned"].as_array().is_some_and(|u| !u.is_empty())
    })
    .await?;
    assert_eq!(report["verified"], true);
    assert_eq!(report["signatures"], 2);
    assert_eq!(report["releases_without_signature"], 1);
    // Keys and a ConfigMap directory are configured: coverage counts.
    assert_eq!(
        report["coverage"],
        json!({
            "configured": true,
            "signed": 2,
            "unsigned": 1,
            "per_arch": {"amd64": {"signed": 2, "unsigned": 1}}
        })
    );
    // Versions as the graph holds them, with the architecture.
    assert_eq!(report["unsigned"][0]["version"], "4.16.2+amd64");
    assert_eq!(
        report["unsigned"][0]["payload"],
        format!(
            "{}/ocp/release@sha256:{}",
            registry.host_port(),
            releases[2].hex
        )
    );
    let refused = report["refused"].as_array().expect("refused");
    assert_eq!(refused.len(), 2, "{report:#}");
    let prefix = format!(
        "{}/signatures/sha256/{}",
        graph_data.display(),
        releases[2].hex
    );
    assert_eq!(refused[0]["origin"], format!("{prefix}/signature-1"));
    assert_eq!(refused[1]["origin"], format!("{prefix}/signature-2"));
    assert_eq!(
        refused[1]["reason"],
        format!(
            "it signs sha256:{}, not sha256:{}",
            releases[0].hex, releases[2].hex
        )
    );
    assert_eq!(report["skipped"], json!([]));
    assert_eq!(report["errors"], json!([]));

    // What is served is exactly what was signed, and skopeo accepts it.
    for (release, signature) in releases.iter().zip(&signatures).take(2) {
        let url = signature_url(public, &release.hex, 1);
        let served = fetch_signature(&url).await?;
        assert_eq!(&served, signature, "{}", release.version);
        let verified = key.verify(&release.manifest, &release.reference, &served)?;
        assert!(verified.contains(&release.hex), "{verified}");
        // A second signature-<n> does not exist: the CVO stops there.
        let missing = reqwest::get(signature_url(public, &release.hex, 2)).await?;
        assert_eq!(missing.status(), 404);
    }
    // Conditional requests.
    let url = signature_url(public, &releases[0].hex, 1);
    let etag = format!("\"{}\"", hex::encode(Sha256::digest(&signatures[0])));
    let again = reqwest::Client::new()
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await?;
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    let head = reqwest::Client::new().head(&url).send().await?;
    assert_eq!(head.status(), 200);

    // The corrupted signature and the misfiled one are not served.
    let refused = reqwest::get(signature_url(public, &releases[2].hex, 1)).await?;
    assert_eq!(refused.status(), 404);

    // Errors, as the reference's metadata-helper answers them.
    let unknown = "0".repeat(64);
    let does_not_exist = |what: &str| json!({"kind": "does_not_exist", "value": format!("does not exist: signature {what}")});
    for (path, status, body) in [
        (
            format!("{PREFIX}/signatures/sha256={unknown}/signature-1"),
            404,
            does_not_exist(&format!("sha256={unknown}/signature-1")),
        ),
        (
            format!("{PREFIX}/signatures/md5={unknown}/signature-1"),
            400,
            json!({"kind": "invalid_params", "value": "invalid client parameters: algo not supported: md5"}),
        ),
        (
            format!("{PREFIX}/signatures/sha256={}/signature-0", releases[0].hex),
            404,
            does_not_exist(&format!("sha256={}/signature-0", releases[0].hex)),
        ),
        (
            format!(
                "{PREFIX}/signatures/sha256={}/signature-18446744073709551617",
                releases[0].hex
            ),
            404,
            does_not_exist(&format!(
                "sha256={}/signature-18446744073709551617",
                releases[0].hex
            )),
        ),
        (
            format!(
                "{PREFIX}/signatures/sha256={}/signature-65",
                releases[0].hex
            ),
            404,
            does_not_exist(&format!("sha256={}/signature-65", releases[0].hex)),
        ),
        // Traversal in each segment, escaped or not: nothing maps to a file (an escaped
        // `/` stays escaped in the segment).
        (
            format!("{PREFIX}/signatures/sha256=..%2F..%2Fversion/signature-1"),
            404,
            does_not_exist("sha256=..%2F..%2Fversion/signature-1"),
        ),
        (
            format!("{PREFIX}/signatures/..%2F..%2Fraw/metadata.json"),
            404,
            does_not_exist("..%2F..%2Fraw/metadata.json"),
        ),
        (
            format!(
                "{PREFIX}/signatures/sha256={}/..%2Fsignature-1",
                releases[0].hex
            ),
            404,
            does_not_exist(&format!("sha256={}/..%2Fsignature-1", releases[0].hex)),
        ),
        (
            format!("{PREFIX}/signatures/%2e%2e=%2e%2e/signature-1"),
            400,
            json!({"kind": "invalid_params", "value": "invalid client parameters: algo not supported: .."}),
        ),
    ] {
        let (got, text) = raw_get(public, &path)?;
        assert_eq!(got, status, "{path}: {text}");
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(value, body, "{path}");
    }
    // Unescaped `..` segments do not match the route at all.
    for path in [
        format!("{PREFIX}/signatures/../../version"),
        format!(
            "{PREFIX}/signatures/sha256={}/../../v1/graph",
            releases[0].hex
        ),
    ] {
        let (got, text) = raw_get(public, &path)?;
        assert_eq!((got, text.as_str()), (404, ""), "{path}");
    }

    let metrics = reqwest::get(format!("http://{status}/metrics"))
        .await?
        .text()
        .await?;
    for line in [
        "cincinnati_pe_signatures_served 2",
        "cincinnati_pe_signatures_refused 2",
        "cincinnati_pe_releases_without_signature 1",
        "cincinnati_pe_releases_signed{arch=\"amd64\"} 2",
        "cincinnati_pe_releases_unsigned{arch=\"amd64\"} 1",
        "cincinnati_pe_signatures_configured 1",
        "cincinnati_pe_signatures_requests_total{outcome=\"not_modified\"} 1",
        "cincinnati_pe_signatures_requests_total{outcome=\"invalid_params\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }

    let _ = stop.send(());
    pe.await??;
    Ok(())
}

/// Two processes, everything through the registry: `graph-data image push` packs the
/// graph-data tree's signature and a ConfigMap's into the image, the graph-builder reads
/// the image, and the policy-engine takes the signatures from the graph-builder's
/// graph-data tarball.
#[tokio::test]
async fn two_processes_serve_signatures_carried_in_the_graph_data_image() -> anyhow::Result<()> {
    use graph_builder::config::{Args, Settings};

    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    push_base(&registry).await?;
    let releases = push_releases(&registry, &["4.16.0", "4.16.1"]).await?;
    let key = TestKey::generate("Image Signing Test <image@example.com>")?;
    let signatures: Vec<Vec<u8>> = releases
        .iter()
        .map(|r| key.sign(&r.manifest, &r.reference))
        .collect::<Result<_, _>>()?;

    let scratch = registry.scratch_dir();
    let graph_data = scratch.join("graph-data");
    write_graph_data(&graph_data, &["4.16.0", "4.16.1"])?;
    write(
        &graph_data.join(format!("signatures/sha256/{}/signature-1", releases[0].hex)),
        &signatures[0],
    )?;
    let configmaps = scratch.join("cms");
    write(
        &configmaps.join("signatures.yaml"),
        &configmap(&releases[1].hex, &[&signatures[1]]),
    )?;
    push_graph_data_image_with(
        &PushRequest {
            graph_data,
            to: format!("{}/openshift/graph-image:latest", registry.base_url()),
            layout: ImageLayout::OcMirror {
                base: "ubi9/ubi:latest".to_owned(),
            },
            client: ClientConfig::default(),
        },
        &SignatureInputs {
            trees: vec![],
            configmaps: vec![configmaps],
        },
    )
    .await?;

    let out = scratch.join("gb-graph-data");
    let config = scratch.join("gb.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[plugin_settings]]
name = "release-scrape-dockerv2"
registry = "{base}"
repository = "ocp/release"

[[plugin_settings]]
name = "dkrv2-secondary-metadata-scrape"
registry = "{base}"
repository = "openshift/graph-image"
output_directory = "{out}"
graph_data_path = "/var/lib/cincinnati-graph-data"

[[plugin_settings]]
name = "openshift-secondary-metadata-parse"
data_directory = "{out}"

[[plugin_settings]]
name = "edge-add-remove"
"#,
            base = registry.base_url(),
            out = out.display()
        ),
    )?;
    let args = Args::try_parse_from([
        "graph-builder",
        "-c",
        config.to_str().expect("UTF-8"),
        "--service.pause_secs",
        "1",
    ])?;
    let listeners = graph_builder::Listeners {
        main: std::net::TcpListener::bind("127.0.0.1:0")?,
        public: std::net::TcpListener::bind("127.0.0.1:0")?,
        status: std::net::TcpListener::bind("127.0.0.1:0")?,
    };
    let gb_graph = format!("http://{}/v1/graph", listeners.main.local_addr()?);
    let gb_tarball = format!("http://{}/graph-data", listeners.public.local_addr()?);
    let (gb_stop, gb_stopped) = tokio::sync::oneshot::channel::<()>();
    let gb = tokio::spawn(graph_builder::run(
        Settings::load(&args)?,
        listeners,
        async move {
            let _ = gb_stopped.await;
        },
    ));

    let mut pe_settings = policy_engine::Settings::defaults();
    pe_settings.path_prefix = PREFIX.into();
    pe_settings.upstream.url = gb_graph;
    pe_settings.upstream.refresh = Duration::from_secs(1);
    pe_settings.workers = Some(1);
    // The graph-builder's public port is the kernel's choice here, not 8090.
    pe_settings.signatures = SignatureSettings {
        sources: vec![SignatureSource::GraphDataUrl(gb_tarball.parse()?)],
        public_keys: Some(key.public_key.clone()),
        refresh: Duration::from_secs(1),
    };
    let pe_listeners = policy_engine::Listeners::loopback()?;
    let (public, status) = pe_listeners.addresses()?;
    let (pe_stop, pe_stopped) = tokio::sync::oneshot::channel::<()>();
    let pe = tokio::spawn(policy_engine::run(pe_settings, pe_listeners, async move {
        let _ = pe_stopped.await;
    }));

    let report = wait_for(&format!("http://{status}/signatures"), |v| {
        v["signatures"] == 2
            && v["unsigned"].is_array()
            && v["releases_without_signature"] == 0
            && v["refreshes"].as_u64() > Some(1)
    })
    .await?;
    assert_eq!(report["refused"], json!([]), "{report:#}");
    assert_eq!(report["skipped"], json!([]), "{report:#}");
    assert_eq!(
        report["coverage"],
        json!({
            "configured": true,
            "signed": releases.len(),
            "unsigned": 0,
            "per_arch": {"amd64": {"signed": releases.len(), "unsigned": 0}}
        }),
        "{report:#}"
    );
    for (release, signature) in releases.iter().zip(&signatures) {
        let served = fetch_signature(&signature_url(public, &release.hex, 1)).await?;
        assert_eq!(&served, signature, "{}", release.version);
        key.verify(&release.manifest, &release.reference, &served)?;
    }

    let _ = pe_stop.send(());
    let _ = gb_stop.send(());
    pe.await??;
    gb.await??;
    Ok(())
}

/// The metadata-helper mode: only signatures, the reference helper's flags, a
/// `--signatures.dir` tree; a signature another key made is refused.
#[tokio::test]
async fn the_metadata_helper_mode_serves_a_signatures_dir() -> anyhow::Result<()> {
    use policy_engine::signatures::helper::{run, HelperCli};

    let registry = TestRegistry::start(RegistryOptions::anonymous())?;
    let releases = push_releases(&registry, &["4.16.0", "4.16.1"]).await?;
    let key = TestKey::generate("Helper Signing Test <helper@example.com>")?;
    let other = TestKey::generate("Someone Else <else@example.com>")?;
    let good = key.sign(&releases[0].manifest, &releases[0].reference)?;
    let foreign = other.sign(&releases[1].manifest, &releases[1].reference)?;
    let dir = registry.scratch_dir().join("signatures");
    write(
        &dir.join(format!("sha256/{}/signature-1", releases[0].hex)),
        &good,
    )?;
    write(
        &dir.join(format!("sha256/{}/signature-1", releases[1].hex)),
        &foreign,
    )?;

    let cli = <HelperCli as clap::Parser>::try_parse_from([
        "metadata-helper",
        "--service.port",
        "0",
        "--status.port",
        "0",
        "--signatures.dir",
        dir.to_str().expect("UTF-8"),
        "--signatures.public-keys",
        key.public_key.to_str().expect("UTF-8"),
    ])?;
    assert_eq!((cli.listen.service_port, cli.listen.status_port), (0, 0));
    let defaults = <HelperCli as clap::Parser>::try_parse_from(["metadata-helper"])?;
    assert_eq!(
        (
            defaults.listen.service_port,
            defaults.listen.status_port,
            defaults.listen.path_prefix.as_deref()
        ),
        (8082, 9082, Some(PREFIX))
    );
    let settings = cli.settings()?;
    let service = std::net::TcpListener::bind("127.0.0.1:0")?;
    let status_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let (public, status) = (service.local_addr()?, status_listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let helper = tokio::spawn(run(settings, service, status_listener, async move {
        let _ = stopped.await;
    }));

    wait_for(&format!("http://{status}/signatures"), |v| {
        v["refreshes"].as_u64() > Some(0)
    })
    .await?;
    assert_eq!(
        reqwest::get(format!("http://{status}/readyz"))
            .await?
            .status(),
        200
    );
    let served = fetch_signature(&signature_url(public, &releases[0].hex, 1)).await?;
    assert_eq!(served, good);
    key.verify(&releases[0].manifest, &releases[0].reference, &served)?;
    let foreign_url = signature_url(public, &releases[1].hex, 1);
    assert_eq!(reqwest::get(&foreign_url).await?.status(), 404);
    let report: Value = reqwest::get(format!("http://{status}/signatures"))
        .await?
        .json()
        .await?;
    assert_eq!(
        report["refused"][0]["reason"],
        "not signed by any configured key"
    );
    let (code, _) = raw_get(
        public,
        &format!("{PREFIX}/signatures/sha512=ab/signature-1"),
    )?;
    assert_eq!(code, 400);
    let metrics = reqwest::get(format!("http://{status}/metrics"))
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("cincinnati_mh_signatures_requests_total{outcome=\"served\"} 1"),
        "{metrics}"
    );

    let _ = stop.send(());
    helper.await??;
    Ok(())
}
