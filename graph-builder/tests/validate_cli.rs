//! The `graph-data validate` command (the binary lives in this crate, its rules in the
//! graph-data library): output format and exit status.

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
