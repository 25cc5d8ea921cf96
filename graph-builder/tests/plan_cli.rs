//! The `graph-data plan|explain|gaps` commands offline, on the bundled sample releases
//! and graph-data: exit status (0 answered, 1 negative, 2 cannot answer), JSON and text;
//! and the services' shared release and registry flags on the `graph-data` commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(name)
}

fn ask(args: &[&str]) -> Output {
    let layout = data("sample-releases");
    let graph_data = data("graph-data");
    Command::new(env!("CARGO_BIN_EXE_graph-data"))
        .args(args)
        .args(["--channel", "stable-4.16"])
        .arg("--releases-oci-layout")
        .arg(layout)
        .arg("--graph-data")
        .arg(graph_data)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
    })
}

#[test]
fn plan_explain_and_gaps_offline() {
    // The newest reachable release when no target is given: every hop is an edge that
    // explain confirms, and the path ends at the channel's newest amd64 release.
    let out = ask(&["plan", "--from", "4.15.0", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let plan = json(&out);
    let hops = plan["paths"][0]["hops"].as_array().expect("a path").clone();
    assert!(!hops.is_empty());
    assert_eq!(hops[0]["from"], "4.15.0");
    for hop in &hops {
        let (from, to) = (hop["from"].as_str().unwrap(), hop["to"].as_str().unwrap());
        let out = ask(&["explain", "--from", from, "--to", to, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{from} -> {to}: {out:?}");
        assert_eq!(json(&out)["edge"], hop["edge"], "{from} -> {to}");
    }

    // A downgrade is no edge: exit 1, and the text names why.
    let out = ask(&["explain", "--from", "4.16.0", "--to", "4.15.10"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("4.16.0") && text.contains("4.15.10"),
        "{text}"
    );

    // Mirror gaps answer as JSON with the channel's missing versions.
    let out = ask(&["gaps", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(json(&out).is_object());

    // A source that cannot be read: exit 2 and a message naming it.
    let out = Command::new(env!("CARGO_BIN_EXE_graph-data"))
        .args([
            "gaps",
            "--channel",
            "stable-4.16",
            "--releases-oci-layout",
            "/nonexistent",
        ])
        .arg("--graph-data")
        .arg(data("graph-data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent"),
        "{out:?}"
    );
}

/// The offline source takes the services' release flags: an alias
/// (`--upstream.oci_layout`) answers as the canonical flag does, the environment name
/// (`GRAPH_DATA_RELEASES_OCI_LAYOUT`) is read, and a registry without a repository is
/// refused by name.
#[test]
fn the_release_source_takes_the_shared_flags_and_their_env_vars() {
    let run = |args: &[&str], env: &[(&str, PathBuf)]| {
        Command::new(env!("CARGO_BIN_EXE_graph-data"))
            .args(["gaps", "--json", "--channel", "stable-4.16"])
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env_remove("GRAPH_DATA_SERVER")
            .output()
            .unwrap()
    };
    let canonical = ask(&["gaps", "--json"]);
    assert_eq!(canonical.status.code(), Some(0), "{canonical:?}");

    let layout = data("sample-releases");
    let graph_data = data("graph-data");
    let alias = run(
        &[
            "--upstream.oci_layout",
            layout.to_str().unwrap(),
            "--upstream.graph_data",
            graph_data.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(alias.status.code(), Some(0), "{alias:?}");
    assert_eq!(json(&alias), json(&canonical));

    let from_env = run(
        &[],
        &[
            ("GRAPH_DATA_RELEASES_OCI_LAYOUT", layout),
            ("GRAPH_DATA_GRAPH_DATA", graph_data),
        ],
    );
    assert_eq!(from_env.status.code(), Some(0), "{from_env:?}");
    assert_eq!(json(&from_env), json(&canonical));

    let env_named = run(
        &[],
        &[(
            "GRAPH_DATA_RELEASES_OCI_LAYOUT",
            PathBuf::from("/nonexistent-from-env"),
        )],
    );
    assert_eq!(env_named.status.code(), Some(2), "{env_named:?}");
    assert!(
        String::from_utf8_lossy(&env_named.stderr).contains("/nonexistent-from-env"),
        "{env_named:?}"
    );

    let no_repository = run(&["--registry", "127.0.0.1:1"], &[]);
    assert_eq!(no_repository.status.code(), Some(2), "{no_repository:?}");
    assert_eq!(
        String::from_utf8_lossy(&no_repository.stderr),
        "graph-data: --releases-registry needs --releases-repository REPO\n"
    );
}

/// `image push` takes the services' registry-access flags, its own former name
/// (`--credentials`) kept as an alias, and the environment name: each reaches the
/// registry client, whose refusal of a missing credentials file names it.
#[test]
fn image_push_takes_the_shared_registry_access_flags() {
    let push = |args: &[&str], env: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_graph-data"));
        command
            .args(["image", "push", "--layout", "flat"])
            .arg("--graph-data")
            .arg(data("graph-data"))
            .args(["--to", "127.0.0.1:1/gd:latest"])
            .args(args)
            .env_remove("GRAPH_DATA_RELEASES_CREDENTIALS");
        if let Some(path) = env {
            command.env("GRAPH_DATA_RELEASES_CREDENTIALS", path);
        }
        command.output().unwrap()
    };
    for (out, path) in [
        (
            push(&["--releases-credentials", "/nonexistent/flag.json"], None),
            "/nonexistent/flag.json",
        ),
        (
            push(&["--credentials", "/nonexistent/alias.json"], None),
            "/nonexistent/alias.json",
        ),
        (
            push(&[], Some("/nonexistent/env.json")),
            "/nonexistent/env.json",
        ),
    ] {
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains(&format!("cannot use registry credentials file {path}")),
            "{out:?}"
        );
    }
}
