//! The graph-builder's configuration layers: command line over environment (`GB_*`) over
//! the `-c` file over the defaults, key by key; unknown file keys refused by name; the
//! reference's flag names accepted; `-v` replacing the file's verbosity; registry
//! passwords never echoed; every error on one line.
//!
//! Environment variables are process-wide, so every test takes [`LOCK`] while it sets
//! them and loads.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use graph_builder::config::{
    Args, ConfigError, GraphDataSettings, ReleaseSourceSettings, Settings,
};

use integration_tests::child::EnvVars;

static LOCK: Mutex<()> = Mutex::new(());

/// Loads `argv` with `env` set and, when `toml` is given, a `-c` file holding it.
fn load(argv: &[&str], env: &[(&str, &str)], toml: Option<&str>) -> Result<Settings, ConfigError> {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut full: Vec<String> = vec!["graph-builder".into()];
    if let Some(toml) = toml {
        let path = dir.path().join("gb.toml");
        std::fs::write(&path, toml).unwrap();
        full.extend(["-c".into(), path.to_str().unwrap().into()]);
    }
    full.extend(argv.iter().map(|a| a.to_string()));
    let _env = EnvVars::set(env);
    Settings::load(&Args::try_parse_from(&full).unwrap())
}

fn error(argv: &[&str], toml: Option<&str>) -> String {
    let err = load(argv, &[], toml).unwrap_err();
    let text = graph_data::keys::chain(&err);
    assert!(!text.contains('\n'), "one line: {text}");
    text
}

fn scrape(s: &Settings) -> &graph_builder::scrape::ScrapeSettings {
    match &s.releases {
        ReleaseSourceSettings::Registry(r) => r,
        other => panic!("expected a registry source, got {other:?}"),
    }
}

/// One key through the four layers: default, file, environment over file, command line
/// over both.
fn layers<T: PartialEq + std::fmt::Debug>(
    flag: &str,
    env: &str,
    file: &str,
    values: [&str; 3],
    get: impl Fn(&Settings) -> T,
    expected: [T; 4],
) {
    let [default, from_file, from_env, from_cli] = expected;
    assert_eq!(
        get(&load(&[], &[], None).unwrap()),
        default,
        "{flag}: default"
    );
    let toml = file.replace("{}", values[0]);
    assert_eq!(
        get(&load(&[], &[], Some(&toml)).unwrap()),
        from_file,
        "{flag}: file"
    );
    let with_env = load(&[], &[(env, values[1])], Some(&toml)).unwrap();
    assert_eq!(get(&with_env), from_env, "{flag}: environment over file");
    let all = load(&[flag, values[2]], &[(env, values[1])], Some(&toml)).unwrap();
    assert_eq!(get(&all), from_cli, "{flag}: command line over environment");
}

#[test]
fn each_layer_wins_over_the_ones_below_it() {
    layers(
        "--service.port",
        "GB_SERVICE_PORT",
        "[service]\nport = {}\n",
        ["18080", "28080", "38080"],
        |s| s.service.main.port(),
        [8080, 18080, 28080, 38080],
    );
    layers(
        "--status.address",
        "GB_STATUS_ADDRESS",
        "[status]\naddress = \"{}\"\n",
        ["::", "127.0.0.2", "::1"],
        |s| s.status.ip().to_string(),
        ["127.0.0.1", "::", "127.0.0.2", "::1"].map(String::from),
    );
    layers(
        "--service.pause_secs",
        "GB_SERVICE_PAUSE_SECS",
        "[service]\npause_secs = {}\n",
        ["10", "20", "30"],
        |s| s.refresh.pause.as_secs(),
        [300, 10, 20, 30],
    );
    layers(
        "--service.mandatory_client_parameters",
        "GB_MANDATORY_CLIENT_PARAMETERS",
        "[service]\nmandatory_client_parameters = [\"{}\"]\n",
        ["channel", "arch", "id"],
        |s| {
            s.service
                .mandatory_client_parameters
                .iter()
                .cloned()
                .collect::<Vec<_>>()
        },
        [
            vec![],
            vec!["channel".into()],
            vec!["arch".into()],
            vec!["id".into()],
        ],
    );
    // A plugin key is a file value like any other.
    layers(
        "--releases-registry",
        "GB_RELEASES_REGISTRY",
        "[[plugin_settings]]\nname = \"release-scrape-dockerv2\"\nregistry = \"{}\"\n",
        ["file.example", "env.example", "cli.example"],
        |s| scrape(s).registry.clone(),
        ["quay.io", "file.example", "env.example", "cli.example"].map(String::from),
    );
    layers(
        "--upstream.registry.fetch_concurrency",
        "GB_UPSTREAM_REGISTRY_FETCH_CONCURRENCY",
        "[upstream.registry]\nfetch_concurrency = {}\n",
        ["4", "8", "2"],
        |s| scrape(s).fetch_concurrency,
        [16, 4, 8, 2],
    );
    layers(
        "--graph-data",
        "GB_GRAPH_DATA",
        "[[plugin_settings]]\nname = \"release-scrape-dockerv2\"\n[[plugin_settings]]\nname = \"openshift-secondary-metadata-parse\"\ndata_directory = \"{}\"\n",
        ["/file", "/env", "/cli"],
        |s| s.graph_data.clone(),
        [None, Some("/file"), Some("/env"), Some("/cli")]
            .map(|p| p.map(|p| GraphDataSettings::Path(p.into()))),
    );
}

#[test]
fn the_config_file_path_comes_from_gb_config_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gb.toml");
    std::fs::write(&path, "[service]\nport = 18081\n").unwrap();
    let s = load(&[], &[("GB_CONFIG", path.to_str().unwrap())], None).unwrap();
    assert_eq!(s.service.main.port(), 18081);
}

#[test]
fn unknown_keys_are_refused_naming_the_file_and_the_key() {
    let err = error(&[], Some("[service]\nprot = 1\n"));
    assert!(err.starts_with("config file /"), "{err}");
    assert!(
        err.contains("gb.toml: field `service.prot`: unknown key"),
        "{err}"
    );
    let err = error(
        &[],
        Some("[[plugin_settings]]\nname = \"edge-add-remove\"\nkey_prefx = \"x\"\n"),
    );
    assert!(
        err.contains("field `[[plugin_settings]] edge-add-remove key_prefx`"),
        "{err}"
    );
    let err = error(&[], Some("[[plugin_settings]]\nname = \"node-remove\"\n"));
    assert!(err.contains("\"node-remove\" is not one of"), "{err}");
    let err = error(&[], Some("[servce]\nport = 1\n"));
    assert!(err.contains("field `servce.port`"), "{err}");
}

/// Flags, what to read back from the settings, and what it should be.
type Case = (
    &'static [&'static str],
    fn(&Settings) -> String,
    &'static str,
);

#[test]
fn the_references_flag_names_are_accepted() {
    let cases: [Case; 9] = [
        (
            &["--address", "::1"],
            |s| s.service.main.ip().to_string(),
            "::1",
        ),
        (
            &["--port", "1234"],
            |s| s.service.main.port().to_string(),
            "1234",
        ),
        (
            &["--public_port", "1235"],
            |s| s.service.public.port().to_string(),
            "1235",
        ),
        (
            &["--upstream.registry.url", "r.example"],
            |s| scrape(s).registry.clone(),
            "r.example",
        ),
        (
            &["--registry", "r.example"],
            |s| scrape(s).registry.clone(),
            "r.example",
        ),
        (
            &["--upstream.registry.repository", "a/b"],
            |s| scrape(s).repository.clone(),
            "a/b",
        ),
        (
            &["--repository", "a/b"],
            |s| scrape(s).repository.clone(),
            "a/b",
        ),
        (
            &["--upstream.registry.credentials_path", "/c.json"],
            |s| format!("{:?}", scrape(s).client.credentials_path),
            "Some(\"/c.json\")",
        ),
        (
            &["--credentials-file", "/c.json"],
            |s| format!("{:?}", scrape(s).client.credentials_path),
            "Some(\"/c.json\")",
        ),
    ];
    for (argv, get, expected) in cases {
        assert_eq!(get(&load(argv, &[], None).unwrap()), expected, "{argv:?}");
    }
    for flag in [
        "--upstream.registry.ca_dir",
        "--ca-dir",
        "--releases-ca-dir",
    ] {
        let s = load(&[flag, "/ca"], &[], None).unwrap();
        assert_eq!(
            scrape(&s).client.ca_dir.as_deref(),
            Some(Path::new("/ca")),
            "{flag}"
        );
    }
    let s = load(
        &[
            "--upstream.oci_layout",
            "/l",
            "--upstream.graph_data",
            "/gd",
            "--refresh-secs",
            "9",
        ],
        &[],
        None,
    )
    .unwrap();
    assert!(
        matches!(&s.releases, ReleaseSourceSettings::OciLayout { dir, .. } if dir == &PathBuf::from("/l"))
    );
    assert_eq!(s.graph_data, Some(GraphDataSettings::Path("/gd".into())));
    assert_eq!(s.refresh.pause, Duration::from_secs(9));
}

#[test]
fn minus_v_replaces_the_files_verbosity() {
    let toml = Some("verbosity = \"vvv\"\n");
    assert_eq!(load(&[], &[], toml).unwrap().verbosity, 3);
    assert_eq!(
        load(&["-v"], &[], toml).unwrap().verbosity,
        1,
        "replaced, not 4"
    );
    assert_eq!(load(&["-vv"], &[], toml).unwrap().verbosity, 2);
    assert_eq!(load(&["-v"], &[], None).unwrap().verbosity, 1);
    assert_eq!(load(&[], &[], None).unwrap().verbosity, 0);
}

#[test]
fn the_refresh_timeout_is_finite_by_default_and_takes_the_reference_names() {
    let timeout = |argv: &[&str], toml| load(argv, &[], toml).unwrap().refresh.timeout;
    assert_eq!(timeout(&[], None), Duration::from_secs(15 * 60));
    let toml = Some("[service]\nscrape_timeout_secs = 60\n");
    assert_eq!(timeout(&[], toml), Duration::from_secs(60));
    assert_eq!(
        timeout(&["--service.scrape_timeout", "30"], toml),
        Duration::from_secs(30)
    );
    let err = error(&["--service.scrape_timeout", "0"], None);
    assert!(err.contains("service.scrape_timeout"), "{err}");
}

#[test]
fn registry_passwords_are_never_echoed() {
    let err = error(
        &["--releases-registry", "ftp://me:hunter2@mirror.example"],
        None,
    );
    assert!(!err.contains("hunter2") && !err.contains("me:"), "{err}");
    assert!(err.contains("ftp://***@mirror.example"), "{err}");
    let toml = "[[plugin_settings]]\nname = \"release-scrape-dockerv2\"\nregistry = \"ftp://me:hunter2@m.example\"\n";
    let err = error(&[], Some(toml));
    assert!(
        !err.contains("hunter2") && err.contains("***@m.example"),
        "{err}"
    );
    let toml = "[[plugin_settings]]\nname = \"release-scrape-dockerv2\"\n[[plugin_settings]]\nname = \"dkrv2-secondary-metadata-scrape\"\nregistry = \"ftp://me:hunter2@gd.example\"\nrepository = \"gd\"\n";
    let err = error(&[], Some(toml));
    assert!(
        !err.contains("hunter2") && err.contains("graph-data-image.registry"),
        "{err}"
    );
    // Inline credentials are refused without being shown.
    let toml = "[[plugin_settings]]\nname = \"release-scrape-dockerv2\"\npassword = \"hunter2\"\n";
    let err = error(&[], Some(toml));
    assert!(
        !err.contains("hunter2") && err.contains("password`: not supported"),
        "{err}"
    );
}

#[test]
fn errors_are_one_line_and_name_the_flag_or_key() {
    // The TOML parser's own message spans several lines.
    let err = error(&[], Some("[service]\nport = \n"));
    assert!(err.contains("gb.toml: line 2:"), "{err}");
    // A file value the flag does not take: clap names the flag.
    let err = error(&[], Some("[service]\nport = \"eighty\"\n"));
    assert!(
        err.contains("gb.toml: invalid value 'eighty' for '--service.port"),
        "{err}"
    );
    let err = error(&[], Some("verbosity = \"loud\"\n"));
    assert!(err.contains("field `verbosity`"), "{err}");
    let err = error(&["-c", "/nonexistent/gb.toml"], None);
    assert!(
        err.starts_with("cannot read config file /nonexistent/gb.toml"),
        "{err}"
    );
}
