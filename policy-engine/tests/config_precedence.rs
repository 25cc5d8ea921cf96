//! The policy-engine's configuration layers: command line over environment (`PE_*`) over
//! the `-c` file over the defaults, key by key; unknown file keys refused by name; the
//! graph-builder's and the reference's flag names accepted; `-v` replacing the file's
//! verbosity; an upstream URL's password never echoed; every error on one line.
//!
//! Environment variables are process-wide, so every test takes [`LOCK`] while it sets
//! them and loads.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use graph_builder::config::ReleaseSourceSettings;
use policy_engine::config::{parse_params, Cli, Settings};

use integration_tests::child::EnvVars;

static LOCK: Mutex<()> = Mutex::new(());

/// The merged command line of `argv` with `env` set and, when `toml` is given, a `-c`
/// file holding it; errors as the binary prints them.
fn load_cli(argv: &[&str], env: &[(&str, &str)], toml: Option<&str>) -> Result<Cli, String> {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut full: Vec<String> = vec!["policy-engine".into()];
    if let Some(toml) = toml {
        let path = dir.path().join("pe.toml");
        std::fs::write(&path, toml).unwrap();
        full.extend(["-c".into(), path.to_str().unwrap().into()]);
    }
    full.extend(argv.iter().map(|a| a.to_string()));
    let _env = EnvVars::set(env);
    Cli::load(full).map_err(|e| e.to_string())
}

fn load(argv: &[&str], env: &[(&str, &str)], toml: Option<&str>) -> Settings {
    load_cli(argv, env, toml).unwrap().settings().unwrap()
}

fn one_line(err: String) -> String {
    assert!(!err.contains('\n'), "one line: {err}");
    err
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
    assert_eq!(get(&load(&[], &[], None)), default, "{flag}: default");
    let toml = file.replace("{}", values[0]);
    assert_eq!(get(&load(&[], &[], Some(&toml))), from_file, "{flag}: file");
    let with_env = load(&[], &[(env, values[1])], Some(&toml));
    assert_eq!(get(&with_env), from_env, "{flag}: environment over file");
    let all = load(&[flag, values[2]], &[(env, values[1])], Some(&toml));
    assert_eq!(get(&all), from_cli, "{flag}: command line over environment");
}

#[test]
fn each_layer_wins_over_the_ones_below_it() {
    layers(
        "--service.port",
        "PE_SERVICE_PORT",
        "[service]\nport = {}\n",
        ["18081", "28081", "38081"],
        |s| s.service.port(),
        [8081, 18081, 28081, 38081],
    );
    layers(
        "--status.port",
        "PE_STATUS_PORT",
        "[status]\nport = {}\n",
        ["19081", "29081", "39081"],
        |s| s.status.port(),
        [9081, 19081, 29081, 39081],
    );
    layers(
        "--status.address",
        "PE_STATUS_ADDRESS",
        "[status]\naddress = \"{}\"\n",
        ["::", "127.0.0.2", "::1"],
        |s| s.status.ip().to_string(),
        ["127.0.0.1", "::", "127.0.0.2", "::1"].map(String::from),
    );
    layers(
        "--service.mandatory_client_parameters",
        "PE_MANDATORY_CLIENT_PARAMETERS",
        "[service]\nmandatory_client_parameters = [\"{}\"]\n",
        ["channel", "arch", "id"],
        |s| s.mandatory_client_parameters.clone(),
        ["", "channel", "arch", "id"].map(parse_params),
    );
    layers(
        "--upstream.cincinnati.url",
        "PE_UPSTREAM_URL",
        "[upstream.cincinnati]\nurl = \"{}\"\n",
        [
            "http://file:8080/graph",
            "http://env:8080/graph",
            "http://cli:8080/graph",
        ],
        |s| s.upstream.url.clone(),
        [
            "http://localhost:8080/graph",
            "http://file:8080/graph",
            "http://env:8080/graph",
            "http://cli:8080/graph",
        ]
        .map(String::from),
    );
    layers(
        "--service.keep_alive",
        "PE_SERVICE_KEEP_ALIVE",
        "[service]\nkeep_alive = {}\n",
        ["10", "20", "30"],
        |s| s.keep_alive,
        [None, Some(10), Some(20), Some(30)].map(|s| s.map(Duration::from_secs)),
    );
}

#[test]
fn the_config_file_path_comes_from_pe_config_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pe.toml");
    std::fs::write(&path, "[service]\nport = 18082\n").unwrap();
    let s = load(&[], &[("PE_CONFIG", path.to_str().unwrap())], None);
    assert_eq!(s.service.port(), 18082);
}

#[test]
fn unknown_keys_are_refused_naming_the_file_and_the_key() {
    let err = one_line(load_cli(&[], &[], Some("[service]\nprot = 1\n")).unwrap_err());
    assert!(err.starts_with("config file /"), "{err}");
    assert!(
        err.contains("pe.toml: field `service.prot`: unknown key"),
        "{err}"
    );
    let err = one_line(load_cli(&[], &[], Some("[[policy]]\nname = \"x\"\n")).unwrap_err());
    assert!(err.contains("field `policy`"), "{err}");
    // The graph-builder's keys are not the policy-engine's.
    let err = one_line(load_cli(&[], &[], Some("[service]\npause_secs = 1\n")).unwrap_err());
    assert!(err.contains("field `service.pause_secs`"), "{err}");
}

#[test]
fn the_graph_builders_and_the_references_flag_names_are_accepted() {
    let s = load(&["--address", "::1", "--port", "1234"], &[], None);
    assert_eq!(s.service, "[::1]:1234".parse().unwrap());
    for [registry, repository, credentials, ca] in [
        [
            "--releases-registry",
            "--releases-repository",
            "--releases-credentials",
            "--releases-ca-dir",
        ],
        [
            "--upstream.registry.url",
            "--upstream.registry.repository",
            "--upstream.registry.credentials_path",
            "--upstream.registry.ca_dir",
        ],
        [
            "--registry",
            "--repository",
            "--credentials-file",
            "--ca-dir",
        ],
    ] {
        let argv = [
            registry,
            "r.example",
            repository,
            "a/b",
            credentials,
            "/c.json",
            ca,
            "/ca",
            "--service.pause_secs",
            "7",
        ];
        let p = load(&argv, &[], None).in_process.expect("one-process mode");
        let ReleaseSourceSettings::Registry(scrape) = &p.releases else {
            panic!("{:?}", p.releases)
        };
        assert_eq!(
            (scrape.registry.as_str(), scrape.repository.as_str()),
            ("r.example", "a/b"),
            "{argv:?}"
        );
        assert_eq!(
            scrape.client.credentials_path.as_deref(),
            Some(Path::new("/c.json"))
        );
        assert_eq!(scrape.client.ca_dir.as_deref(), Some(Path::new("/ca")));
        assert_eq!(p.refresh, Duration::from_secs(7));
    }
    let p = load(
        &[
            "--upstream.oci_layout",
            "/l",
            "--upstream.graph_data",
            "/gd",
        ],
        &[],
        None,
    )
    .in_process
    .expect("one-process mode");
    assert!(
        matches!(&p.releases, ReleaseSourceSettings::OciLayout { dir, .. } if dir == Path::new("/l"))
    );
    assert_eq!(p.graph_data.as_deref(), Some(Path::new("/gd")));
}

#[test]
fn minus_v_replaces_the_files_verbosity() {
    let verbosity = |argv: &[&str], toml| load_cli(argv, &[], toml).unwrap().log.verbosity;
    let toml = Some("verbosity = \"vvv\"\n");
    assert_eq!(verbosity(&[], toml), 3);
    assert_eq!(verbosity(&["-v"], toml), 1, "replaced, not 4");
    assert_eq!(verbosity(&["-vv"], toml), 2);
    assert_eq!(verbosity(&[], None), 0);
}

#[test]
fn an_upstream_password_is_never_echoed() {
    let cli = load_cli(
        &["--upstream.cincinnati.url", "http://me:hunter2@[bad/graph"],
        &[],
        None,
    )
    .unwrap();
    let err = one_line(cli.settings().unwrap_err().to_string());
    assert!(!err.contains("hunter2"), "{err}");
    assert!(
        err.contains("--upstream.cincinnati.url \"http://***@[bad/graph\""),
        "{err}"
    );
}

#[test]
fn errors_are_one_line_and_name_the_flag_or_key() {
    let err = one_line(load_cli(&[], &[], Some("[service]\nport = \n")).unwrap_err());
    assert!(err.contains("pe.toml: line 2:"), "{err}");
    let err =
        one_line(load_cli(&[], &[], Some("[service]\naddress = \"everywhere\"\n")).unwrap_err());
    assert!(
        err.contains("pe.toml: invalid value 'everywhere' for '--service.address"),
        "{err}"
    );
    let err = one_line(load_cli(&["--service.port", "x"], &[], None).unwrap_err());
    assert!(
        err.starts_with("invalid value 'x' for '--service.port"),
        "{err}"
    );
    let err = one_line(load_cli(&["--releases-registry", "r"], &[], None).unwrap_err());
    assert!(err.contains("--releases-repository"), "{err}");
}
