//! The `graph-data` binary (it lives in this crate; the validate rules are in the
//! graph-data library): `validate` and `image push` output and exit status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

fn validate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graph-data"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn bundled_data_is_clean_and_summarized() {
    let path = manifest().join("../data/graph-data");
    let out = validate(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    for line in [
        "schema version:            1.1.0",
        "channels:                  76",
        "plain blocked edges:       116",
        "risks (conditional edges): 1601",
        "raw metadata entries:      4",
        "problems:                  0",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
}

#[test]
fn problems_are_listed_one_per_line_with_exit_1() {
    let path = manifest()
        .join("../graph-data/tests/conformance/graph-data-apply/invalid0/cincinnati-graph-data");
    let out = validate(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let problems: Vec<&str> = text
        .lines()
        .take_while(|l| !l.ends_with("cincinnati-graph-data:"))
        .collect();
    assert_eq!(problems.len(), 4, "{text}");
    assert!(problems.contains(
        &"blocked-edges/invalid_format.yaml: field `to`: missing, found unknown field `_to` instead (a plain block has exactly to and from; a conditional block needs to, from, url, name, message, matchingRules)"
    ));
    assert!(text.contains("problems:                  4"));
}

#[test]
fn unopenable_path_and_usage_errors_exit_2() {
    let out = validate(&["validate", "/nonexistent/graph-data"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot open graph-data source /nonexistent/graph-data"));
    assert_eq!(validate(&["validate"]).status.code(), Some(2));
    assert_eq!(validate(&["frobnicate"]).status.code(), Some(2));
}

/// `graph-data image push`: stdout is `<image>@<digest>`, an invalid tree exits 1 without
/// pushing, and the oc-mirror layout without `--base` is a usage error.
#[test]
fn image_push_prints_the_digest_and_refuses_invalid_trees() {
    let registry =
        integration_tests::TestRegistry::start(integration_tests::RegistryOptions::anonymous())
            .unwrap();
    let to = format!("{}/gd/flat:latest", registry.base_url());
    let data = manifest().join("../data/graph-data");
    let out = validate(&[
        "image",
        "push",
        "--graph-data",
        data.to_str().unwrap(),
        "--to",
        &to,
        "--layout",
        "flat",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = stdout(&out);
    let digest = integration_tests::skopeo::inspect_digest(&registry, "gd/flat", "latest").unwrap();
    assert_eq!(
        printed.trim(),
        format!("{}/gd/flat:latest@{digest}", registry.host_port())
    );

    let invalid = manifest()
        .join("../graph-data/tests/conformance/graph-data-apply/invalid0/cincinnati-graph-data");
    let to = format!("{}/gd/invalid:latest", registry.base_url());
    let args = [
        "image",
        "push",
        "--graph-data",
        invalid.to_str().unwrap(),
        "--to",
        &to,
    ];
    let out = validate(&[&args[..], &["--layout", "flat"]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("blocked-edges/invalid_format.yaml"));
    assert!(integration_tests::skopeo::inspect_digest(&registry, "gd/invalid", "latest").is_err());

    let out = validate(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--base"));
}
