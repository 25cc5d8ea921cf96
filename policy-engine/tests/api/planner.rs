//! The update planner on the bundled sample releases and graph-data snapshot, in
//! one-process mode: every explain kind with its exact graph-data file, the path cases
//! (direct, multi-hop, conditional only, none because of a mirror gap), mirror gaps with
//! the oc-mirror snippet, parameter errors, and the offline page.

use std::path::{Path, PathBuf};

use clap::Parser;
use policy_engine::Cli;
use serde_json::{json, Value};

use crate::harness::{get, Pe};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn settings(layout: &Path, graph_data: &Path) -> policy_engine::Settings {
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

const API: &str = "/api/upgrades_info/v1";

async fn ask(pe: &Pe, query: &str) -> Value {
    let answer = get(&format!("{}{API}/{query}", pe.base), &[]).await;
    assert_eq!(answer.status, 200, "{query}: {}", answer.text());
    answer.json()
}

/// The (kind, file) pairs of an answer's reasons.
fn reasons(doc: &Value) -> Vec<(String, Option<String>)> {
    doc["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["file"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn pair(kind: &str, file: Option<&str>) -> (String, Option<String>) {
    (kind.to_owned(), file.map(str::to_owned))
}

fn hops(doc: &Value) -> Vec<(String, String, String)> {
    doc["paths"][0]["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["from"].as_str().unwrap().to_owned(),
                h["to"].as_str().unwrap().to_owned(),
                h["edge"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
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
async fn explain_kinds_and_paths_on_the_sample_mirror() {
    let pe = Pe::with_settings(settings(
        &repo_root().join("data/sample-releases"),
        &repo_root().join("data/graph-data"),
    ))
    .await;

    // Recommended: the graph has the edge.
    let x = ask(
        &pe,
        "explain?channel=stable-4.16&arch=multi&from=4.15.57&to=4.15.58",
    )
    .await;
    assert_eq!(
        (x["edge"].as_str(), reasons(&x)),
        (Some("recommended"), vec![])
    );

    // Conditional: the risks exactly as the graph carries them, each with its file.
    let x = ask(&pe, "explain?channel=stable-4.16&from=4.15.10&to=4.16.0").await;
    assert_eq!(x["edge"], "conditional");
    let graph = ask(&pe, "graph?channel=stable-4.16").await;
    let carried: Vec<&Value> = graph["conditionalEdges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| {
            g["edges"]
                .as_array()
                .unwrap()
                .contains(&json!({"from": "4.15.10", "to": "4.16.0"}))
        })
        .collect();
    assert_eq!(carried.len(), 1);
    assert_eq!(x["risks"], carried[0]["risks"]);
    let names: Vec<&str> = x["risks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    let expected: Vec<(String, Option<String>)> = names
        .iter()
        .map(|n| {
            pair(
                "conditional-risk",
                Some(&format!("blocked-edges/4.16.0-{n}.yaml")),
            )
        })
        .collect();
    assert_eq!(reasons(&x), expected);
    assert!(
        names.contains(&"OldBootImagesMissingOSReleaseRHELVersion"),
        "{names:?}"
    );

    // Not in the mirror for this arch, and mirrored for others only.
    let x = ask(
        &pe,
        "explain?channel=stable-4.16&arch=multi&from=4.15.10&to=4.15.58",
    )
    .await;
    assert_eq!(x["edge"], "none");
    assert_eq!(
        reasons(&x),
        vec![
            pair("not-in-mirror", Some("channels/stable-4.16.yaml")),
            pair("arch-mismatch", None)
        ]
    );
    // Named by the channel, mirrored on no architecture.
    let x = ask(&pe, "explain?channel=stable-4.16&from=4.14.10&to=4.15.3").await;
    assert_eq!(
        reasons(&x),
        vec![pair("not-in-mirror", Some("channels/stable-4.16.yaml"))]
    );
    // Mirrored, but not in the channel asked for.
    let x = ask(&pe, "explain?channel=stable-4.15&from=4.15.10&to=4.16.0").await;
    assert_eq!(
        reasons(&x),
        vec![pair("not-in-channel", Some("channels/stable-4.15.yaml"))]
    );
    // Backwards: no release declares it.
    let x = ask(&pe, "explain?channel=stable-4.16&from=4.16.5&to=4.15.3").await;
    assert_eq!(reasons(&x), vec![pair("not-declared", None)]);
    let x = ask(&pe, "explain?channel=stable-4.16&from=4.15.10&to=9.9.9").await;
    assert_eq!(reasons(&x), vec![pair("unknown-version", None)]);

    // Paths: direct to the newest reachable version.
    let p = ask(&pe, "path?channel=stable-4.16&from=4.15.10").await;
    assert_eq!(p["to"], "4.16.55");
    assert_eq!(p["paths"][0]["conditional"], false);
    assert_eq!(
        hops(&p),
        vec![("4.15.10".into(), "4.16.55".into(), "recommended".into())]
    );
    // Multi-hop: no direct edge, two recommended hops through a 4.15 release.
    // The direct update is conditional: a recommended path is preferred to it.
    let x = ask(&pe, "explain?channel=stable-4.16&from=4.15.0&to=4.16.4").await;
    assert_eq!(x["edge"], "conditional");
    let p = ask(&pe, "path?channel=stable-4.16&from=4.15.0&to=4.16.4").await;
    let h = hops(&p);
    assert_eq!(h.len(), 2, "{p}");
    assert_eq!((h[0].0.as_str(), h[1].1.as_str()), ("4.15.0", "4.16.4"));
    assert_eq!(h[0].1, h[1].0);
    assert!(h.iter().all(|(_, _, e)| e == "recommended"), "{p}");
    // Conditional only: the one edge carries a risk, and the path says so.
    let p = ask(
        &pe,
        "path?channel=stable-4.16&arch=multi&from=4.15.57&to=4.16.53",
    )
    .await;
    assert_eq!(p["paths"][0]["conditional"], true);
    assert_eq!(
        hops(&p),
        vec![("4.15.57".into(), "4.16.53".into(), "conditional".into())]
    );
    assert_eq!(
        p["paths"][0]["hops"][0]["risks"][0]["name"],
        "RuncShareProcessNamespace"
    );

    // Mirror gaps: 4.14 releases the channel lists, with the channel file.
    let g = ask(&pe, "mirror-gaps?channel=stable-4.16").await;
    assert_eq!(g["head"], "4.16.55");
    let missing = g["missing"].as_array().unwrap();
    assert!(missing.iter().any(|m| m["version"] == "4.14.10"), "{g}");
    assert!(missing
        .iter()
        .all(|m| m["file"] == "channels/stable-4.16.yaml"));
    let imageset = get(
        &format!(
            "{}{API}/mirror-gaps?channel=stable-4.16&format=imageset",
            pe.base
        ),
        &[],
    )
    .await;
    assert_eq!(imageset.status, 200);
    let text = imageset.text();
    assert!(text.starts_with("kind: ImageSetConfiguration\n"), "{text}");
    assert!(text.contains("    - name: stable-4.16\n      type: ocp\n      minVersion: 4.14.10\n      maxVersion: 4.14.10\n"), "{text}");

    // Parameters fail like the graph endpoint's.
    for (query, status, kind) in [
        ("explain?from=4.15.0&to=4.16.0", 400, "missing_params"),
        (
            "explain?channel=stable-4.16&to=4.16.0",
            400,
            "missing_params",
        ),
        (
            "explain?channel=Stable&from=4.15.0&to=4.16.0",
            400,
            "invalid_params",
        ),
        (
            "explain?channel=stable-4.16&arch=x_y&from=4.15.0&to=4.16.0",
            400,
            "invalid_params",
        ),
        ("path?channel=stable-4.16&from=4.15", 400, "invalid_params"),
        (
            "mirror-gaps?channel=stable-4.16&format=xml",
            400,
            "invalid_params",
        ),
    ] {
        let answer = get(&format!("{}{API}/{query}", pe.base), &[]).await;
        assert_eq!(answer.status, status, "{query}");
        assert_eq!(answer.json()["kind"], kind, "{query}");
    }

    // The page and its assets, all from this service.
    let page = get(&format!("{}/api/upgrades_info/planner/", pe.base), &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<script src=\"planner.js\"></script>"));
    for asset in ["planner.js", "planner.css"] {
        let a = get(
            &format!("{}/api/upgrades_info/planner/{asset}", pe.base),
            &[],
        )
        .await;
        assert_eq!(a.status, 200, "{asset}");
    }
    pe.stop().await;
}

#[tokio::test]
async fn blocks_and_metadata_removals_name_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let graph_data = dir.path().join("graph-data");
    copy_dir(&repo_root().join("data/graph-data"), &graph_data);
    // A plain block and a raw-metadata removal on edges the snapshot recommends.
    std::fs::write(
        graph_data.join("blocked-edges/4.16.5-planner-test.yaml"),
        "to: 4.16.5\nfrom: 4\\.15\\.31\n",
    )
    .unwrap();
    let raw = graph_data.join("raw/metadata.json");
    let mut metadata: Value = serde_json::from_slice(&std::fs::read(&raw).unwrap()).unwrap();
    metadata["4.16.6"] = json!({"io.openshift.upgrades.graph.previous.remove": "4.15.31"});
    std::fs::write(&raw, serde_json::to_vec(&metadata).unwrap()).unwrap();

    let pe = Pe::with_settings(settings(
        &repo_root().join("data/sample-releases"),
        &graph_data,
    ))
    .await;
    let x = ask(&pe, "explain?channel=stable-4.16&from=4.15.31&to=4.16.5").await;
    assert_eq!(x["edge"], "none");
    assert_eq!(
        reasons(&x),
        vec![pair(
            "blocked",
            Some("blocked-edges/4.16.5-planner-test.yaml")
        )]
    );
    let x = ask(&pe, "explain?channel=stable-4.16&from=4.15.31&to=4.16.6").await;
    assert_eq!(
        reasons(&x),
        vec![pair("removed-by-metadata", Some("raw/metadata.json"))]
    );
    // Untouched neighbour stays recommended.
    let x = ask(&pe, "explain?channel=stable-4.16&from=4.15.31&to=4.16.7").await;
    assert_eq!(x["edge"], "recommended");
    pe.stop().await;
}

#[tokio::test]
async fn no_path_because_of_a_gap_names_the_missing_release() {
    // A mirror of two amd64 releases only, 4.15.0 and 4.16.4, with graph-data that
    // removes the direct update (raw metadata) and carries no risk for 4.16.4 (so the
    // edge does not live on as a conditional one).
    let dir = tempfile::tempdir().unwrap();
    let graph_data = dir.path().join("graph-data");
    copy_dir(&repo_root().join("data/graph-data"), &graph_data);
    for entry in std::fs::read_dir(graph_data.join("blocked-edges")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with("4.16.4-") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    let raw = graph_data.join("raw/metadata.json");
    let mut metadata: Value = serde_json::from_slice(&std::fs::read(&raw).unwrap()).unwrap();
    metadata["4.16.4"] = json!({"io.openshift.upgrades.graph.previous.remove": "4.15.0"});
    std::fs::write(&raw, serde_json::to_vec(&metadata).unwrap()).unwrap();
    let layout = dir.path().join("layout");
    copy_dir(&repo_root().join("data/sample-releases"), &layout);
    let index_path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    index["manifests"].as_array_mut().unwrap().retain(|m| {
        let tag = m["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap();
        tag == "4.15.0-x86_64" || tag == "4.16.4-x86_64"
    });
    assert_eq!(
        index["manifests"].as_array().unwrap().len(),
        2,
        "tags of the sample layout changed"
    );
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();

    let pe = Pe::with_settings(settings(&layout, &graph_data)).await;
    let x = ask(&pe, "explain?channel=stable-4.16&from=4.15.0&to=4.16.4").await;
    assert_eq!(
        reasons(&x),
        vec![pair("removed-by-metadata", Some("raw/metadata.json"))]
    );
    let p = ask(&pe, "path?channel=stable-4.16&from=4.15.0&to=4.16.4").await;
    assert_eq!(p["paths"], json!([]));
    let r = reasons(&p);
    assert!(!r.is_empty());
    assert!(
        r.iter()
            .all(|k| *k == pair("not-in-mirror", Some("channels/stable-4.16.yaml"))),
        "{p}"
    );
    let detail = p["reasons"][0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("4.15.") && detail.contains("may connect 4.15.0 to 4.16.4"),
        "{detail}"
    );
    // The gap the path needs is one of the mirror gaps of the channel.
    let g = ask(&pe, "mirror-gaps?channel=stable-4.16").await;
    let gap = detail.split_whitespace().next().unwrap();
    assert!(
        g["missing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["version"] == gap),
        "{gap}"
    );
    pe.stop().await;
}

/// `graph-data plan|explain|gaps`: the same questions asked of this running
/// policy-engine (`--server`) and answered offline from the same releases and graph-data
/// give the same documents, and a negative answer is flagged as one.
#[tokio::test]
async fn the_cli_answers_the_same_against_the_server_and_offline() {
    use graph_builder::config::common::{RegistryAccessArgs, ReleaseArgs, DEFAULT_CA_DIR};
    use graph_builder::plan_cli::{answer, Question, SourceArgs};
    let layout = repo_root().join("data/sample-releases");
    let graph_data = repo_root().join("data/graph-data");
    let pe = Pe::with_settings(settings(&layout, &graph_data)).await;
    let offline = SourceArgs {
        server: None,
        releases: ReleaseArgs {
            releases_registry: None,
            releases_repository: None,
            access: RegistryAccessArgs {
                releases_credentials: None,
                releases_ca_dir: DEFAULT_CA_DIR.into(),
            },
            releases_oci_layout: Some(layout),
            graph_data: Some(graph_data),
        },
        payload_repository: "quay.io/openshift-release-dev/ocp-release".to_owned(),
        channel: "stable-4.16".to_owned(),
        arch: "amd64".to_owned(),
        json: true,
    };
    let online = SourceArgs {
        server: Some(format!("{}/api/upgrades_info", pe.base)),
        releases: ReleaseArgs {
            releases_oci_layout: None,
            graph_data: None,
            ..offline.releases.clone()
        },
        ..offline.clone()
    };
    let v = |s: &str| s.parse::<semver::Version>().unwrap();
    let questions = [
        (
            Question::Plan {
                from: v("4.15.0"),
                to: None,
            },
            false,
        ),
        (
            Question::Plan {
                from: v("4.15.10"),
                to: Some(v("4.16.0")),
            },
            false,
        ),
        (
            Question::Explain {
                from: v("4.15.10"),
                to: v("4.16.0"),
            },
            false,
        ),
        // Downgrades are never edges.
        (
            Question::Explain {
                from: v("4.16.0"),
                to: v("4.15.10"),
            },
            true,
        ),
        (Question::Gaps, false),
    ];
    for (question, negative) in questions {
        let (served, served_text, served_negative) =
            answer(&online, &question).await.expect("server answer");
        let (built, built_text, built_negative) =
            answer(&offline, &question).await.expect("offline answer");
        let served: Value = serde_json::from_str(&served).unwrap();
        let built: Value = serde_json::from_str(&built).unwrap();
        assert_eq!(served, built, "{question:?}");
        assert_eq!(served_text, built_text, "{question:?}");
        assert_eq!(
            (served_negative, built_negative),
            (negative, negative),
            "{question:?}"
        );
    }
    // The conditional hop says so in the text form, with its risk names.
    let (_, text, _) = answer(
        &online,
        &Question::Explain {
            from: v("4.15.10"),
            to: v("4.16.0"),
        },
    )
    .await
    .unwrap();
    assert!(text.contains("conditional"), "{text}");

    // A server that is not there is an error naming it, not an empty answer.
    let nowhere = SourceArgs {
        server: Some("http://127.0.0.1:9/api/upgrades_info".to_owned()),
        ..online.clone()
    };
    let error = answer(&nowhere, &Question::Gaps).await.unwrap_err();
    assert!(error.contains("127.0.0.1:9"), "{error}");
}
