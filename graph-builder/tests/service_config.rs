//! Configuration: the operator's `gb.toml` parses verbatim, flags win over the file,
//! unknown plugins and keys are refused by name, and bad values are rejected.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use graph_builder::config::{
    Args, ConfigError, GraphDataSettings, ReleaseSourceSettings, Settings,
};

const OPERATOR_GB_TOML: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/operator-gb.toml"
);

fn args(extra: &[&str]) -> Args {
    Args::try_parse_from(std::iter::once("graph-builder").chain(extra.iter().copied())).unwrap()
}

/// The settings of `extra` flags over a `-c` file holding `toml`.
fn settings(extra: &[&str], toml: &str) -> Result<Settings, ConfigError> {
    let path = write_temp(toml);
    let mut argv = vec!["-c", path.to_str().unwrap()];
    argv.extend_from_slice(extra);
    Settings::load(&args(&argv))
}

fn registry(s: &Settings) -> &graph_builder::scrape::ScrapeSettings {
    match &s.releases {
        ReleaseSourceSettings::Registry(r) => r,
        other => panic!("expected a registry source, got {other:?}"),
    }
}

#[test]
fn operator_gb_toml_parses_verbatim() {
    let s = Settings::load(&args(&["-c", OPERATOR_GB_TOML])).unwrap();
    assert_eq!(s.verbosity, 3);
    assert_eq!(s.service.main.to_string(), "[::]:8080");
    assert_eq!(s.service.public.to_string(), "[::]:8090");
    assert_eq!(s.status.to_string(), "[::]:9080");
    assert_eq!(s.refresh.pause, Duration::from_secs(300));
    assert_eq!(
        s.refresh.timeout,
        Duration::from_secs(900),
        "finite by default"
    );
    assert_eq!(s.service.path_prefix, "");
    assert!(s.service.mandatory_client_parameters.is_empty());
    let r = registry(&s);
    assert_eq!(r.registry, "mirror.example.com:5000");
    assert_eq!(r.repository, "ocp/release");
    assert_eq!(r.fetch_concurrency, 16);
    assert_eq!(
        r.client.credentials_path.as_deref(),
        Some(Path::new(
            "/var/lib/cincinnati/registry-credentials/.dockerconfigjson"
        ))
    );
    assert_eq!(
        s.graph_data,
        Some(GraphDataSettings::Path(
            "/var/lib/cincinnati/graph-data".into()
        ))
    );
    assert_eq!(
        s.edge_add_remove.map(|e| e.include_conditional_edges),
        Some(true)
    );
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

/// Flags win over the file, the file wins over the defaults (the reference does the
/// opposite of the first half; we let the command line win).
#[test]
fn command_line_wins_over_file_and_file_over_defaults() {
    let toml = std::fs::read_to_string(OPERATOR_GB_TOML).unwrap();
    let s = settings(
        &[
            "--service.address",
            "127.0.0.1",
            "--port",
            "18080",
            "--service.pause_secs",
            "7",
            "--registry",
            "http://127.0.0.1:5000",
            "--upstream.graph_data",
            "/tmp/gd",
            "-v",
        ],
        &toml,
    )
    .unwrap();
    assert_eq!(s.verbosity, 1, "-v wins over verbosity = \"vvv\"");
    assert_eq!(s.service.main.to_string(), "127.0.0.1:18080");
    // Not given on the command line: the file's value.
    assert_eq!(s.status.to_string(), "[::]:9080");
    assert_eq!(s.refresh.pause, Duration::from_secs(7));
    let r = registry(&s);
    assert_eq!(
        r.registry, "http://127.0.0.1:5000",
        "--registry wins over the plugin entry"
    );
    assert_eq!(
        r.repository, "ocp/release",
        "the plugin entry wins over the default"
    );
    assert_eq!(
        s.graph_data,
        Some(GraphDataSettings::Path("/tmp/gd".into()))
    );

    // Neither flag nor file: the defaults.
    let d = settings(&[], "").unwrap();
    assert_eq!(d.service.main.to_string(), "127.0.0.1:8080");
    assert_eq!(d.service.public.to_string(), "127.0.0.1:8090");
    assert_eq!(d.status.to_string(), "127.0.0.1:9080");
    assert_eq!(d.refresh.pause, Duration::from_secs(300));
    assert_eq!(registry(&d).registry, "quay.io");
    assert_eq!(registry(&d).repository, "openshift-release-dev/ocp-release");
    assert_eq!(d.verbosity, 0);
}

#[test]
fn upstream_registry_table_feeds_the_default_chain() {
    let s = settings(
        &[],
        "[upstream.registry]\nurl = \"127.0.0.1:5000\"\nrepository = \"a/b\"\nfetch_concurrency = 3\n",
    )
    .unwrap();
    assert_eq!(registry(&s).registry, "127.0.0.1:5000");
    assert_eq!(registry(&s).fetch_concurrency, 3);
    assert!(
        s.edge_add_remove.is_some(),
        "the default chain runs edge-add-remove"
    );
}

#[test]
fn unknown_plugin_names_and_keys_are_errors_naming_them() {
    let path = write_temp("[[plugin_settings]]\nname = \"release-scrape-dockerv3\"\n");
    // As the binary prints it: the message naming the file, then the cause.
    let err = graph_data::keys::chain(
        &Settings::load(&args(&["-c", path.to_str().unwrap()])).unwrap_err(),
    );
    assert!(err.contains("release-scrape-dockerv3"), "{err}");
    assert!(
        err.contains(path.to_str().unwrap()),
        "the error names the file: {err}"
    );

    let err = settings(
        &[],
        "[[plugin_settings]]\nname = \"openshift-secondary-metadata-parse\"\ndata_dir = \"x\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("data_dir"), "{err}");
}

#[test]
fn bad_values_are_refused_naming_the_field() {
    let err = settings(&[], "[service]\npause_secs = 0\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("service.pause_secs"), "{err}");
    let err = settings(&["--service.pause_secs", "0"], "")
        .unwrap_err()
        .to_string();
    assert!(err.contains("service.pause_secs"), "{err}");
    let err = settings(&["--service.scrape_timeout", "0"], "")
        .unwrap_err()
        .to_string();
    assert!(err.contains("scrape_timeout"), "{err}");
    let err = settings(&[], "verbosity = \"loud\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("verbosity"), "{err}");
    let err = settings(&["--port", "9080"], "").unwrap_err().to_string();
    assert!(err.contains("status.port"), "{err}");
    let err = settings(
        &[],
        "[[plugin_settings]]\nname = \"release-scrape-dockerv2\"\npassword = \"x\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("password"), "{err}");
    let err = settings(
        &[],
        "[[plugin_settings]]\nname = \"edge-add-remove\"\nremove_consumed_metadata = true\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("remove_consumed_metadata"), "{err}");
    let err = settings(&[], "[[plugin_settings]]\nname = \"edge-add-remove\"\n[[plugin_settings]]\nname = \"edge-add-remove\"\n")
        .unwrap_err();
    assert!(
        matches!(err, ConfigError::DuplicatePlugin("edge-add-remove")),
        "{err}"
    );
    let err = settings(&[], "[[plugin_settings]]\nname = \"edge-add-remove\"\n").unwrap_err();
    assert!(matches!(err, ConfigError::NoReleaseSource), "{err}");
}

#[test]
fn prefix_parameters_and_oci_layout() {
    let s = settings(
        &[
            "--service.path_prefix",
            "//api/upgrades_info/",
            "--service.mandatory_client_parameters",
            "channel, arch,,channel",
            "--upstream.oci_layout",
            "/layouts/ocp",
            "--registry",
            "http://127.0.0.1:5000",
            "--repository",
            "ocp/release",
        ],
        "",
    )
    .unwrap();
    assert_eq!(s.service.path_prefix, "/api/upgrades_info");
    assert_eq!(
        s.service
            .mandatory_client_parameters
            .iter()
            .collect::<Vec<_>>(),
        ["arch", "channel"]
    );
    assert_eq!(
        s.releases,
        ReleaseSourceSettings::OciLayout {
            dir: PathBuf::from("/layouts/ocp"),
            payload_repository: "127.0.0.1:5000/ocp/release".to_owned(),
        }
    );
    // A plugin list with only a graph-data parse is fine when releases come from a layout.
    let s = settings(
        &["--upstream.oci_layout", "/l"],
        "[[plugin_settings]]\nname = \"openshift-secondary-metadata-parse\"\ndata_directory = \"/gd\"\n",
    )
    .unwrap();
    assert!(s.edge_add_remove.is_none(), "not listed, so not run");
}

fn write_temp(content: &str) -> PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("gb.toml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(content.as_bytes())
        .unwrap();
    path
}

#[test]
fn graph_data_image_plugin() {
    let toml = r#"
[[plugin_settings]]
name = "release-scrape-dockerv2"
registry = "127.0.0.1:5000"
repository = "ocp/release"

[[plugin_settings]]
name = "dkrv2-secondary-metadata-scrape"
registry = "http://127.0.0.1:5000"
repository = "openshift/graph-data"
output_directory = "/var/lib/cincinnati/graph-data"
graph_data_path = "/var/lib/cincinnati-graph-data"

[[plugin_settings]]
name = "openshift-secondary-metadata-parse"
data_directory = "/var/lib/cincinnati/graph-data"

[[plugin_settings]]
name = "edge-add-remove"
"#;
    let s = settings(&[], toml).unwrap();
    let Some(GraphDataSettings::Image(image)) = &s.graph_data else {
        panic!("{:?}", s.graph_data);
    };
    assert_eq!(image.registry, "http://127.0.0.1:5000");
    assert_eq!(image.repository, "openshift/graph-data");
    assert_eq!(image.tag, "latest");
    assert_eq!(image.graph_data_path, "/var/lib/cincinnati-graph-data");
    assert_eq!(
        image.output_directory.as_deref(),
        Some(Path::new("/var/lib/cincinnati/graph-data"))
    );
    // A flag still wins over the file.
    let s = settings(&["--upstream.graph_data", "/gd"], toml).unwrap();
    assert_eq!(s.graph_data, Some(GraphDataSettings::Path("/gd".into())));

    let err = settings(
        &[],
        &toml.replace(
            "graph_data_path",
            "verify_signature = true\ngraph_data_path",
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("verify_signature"), "{err}");
    let err = settings(
        &[],
        &toml.replace("repository = \"openshift/graph-data\"\n", ""),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("dkrv2-secondary-metadata-scrape repository"),
        "{err}"
    );
}

#[test]
fn the_ca_directory_flag_wins_over_the_plugin_entry_under_either_name() {
    let toml = r#"
[[plugin_settings]]
name = "release-scrape-dockerv2"
registry = "mirror.example:5000"
repository = "ocp/release"
root_certificate_dir = "/from/the/file"
"#;
    let from_file = settings(&[], toml).unwrap();
    assert_eq!(
        registry(&from_file).client.ca_dir.as_deref(),
        Some(Path::new("/from/the/file"))
    );
    for flag in [
        "--upstream.registry.ca_dir",
        "--releases-ca-dir",
        "--ca-dir",
    ] {
        let s = settings(&[flag, "/from/the/flag"], toml).unwrap();
        assert_eq!(
            registry(&s).client.ca_dir.as_deref(),
            Some(Path::new("/from/the/flag")),
            "{flag}"
        );
    }
    // The policy-engine's name for the credentials file works here too.
    let s = settings(&["--releases-credentials", "/run/config.json"], toml).unwrap();
    assert_eq!(
        registry(&s).client.credentials_path.as_deref(),
        Some(Path::new("/run/config.json"))
    );
    // Without any of them, the default trust directory.
    let s = settings(&[], "").unwrap();
    assert_eq!(
        registry(&s).client.ca_dir.as_deref(),
        Some(Path::new("/etc/pki/ca-trust/extracted"))
    );
}
