//! The `graph-data plan|explain|gaps` commands offline, on the bundled sample releases
//! and graph-data: exit status (0 answered, 1 negative, 2 cannot answer), JSON and text.

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
