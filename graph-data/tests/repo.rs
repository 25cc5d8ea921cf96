//! Loading graph-data trees: the bundled snapshot, directory rules, the version file,
//! and tarballs (layouts and the safety rules).

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use graph_data::repo::{
    load, load_dir, load_tarball, load_tarball_bytes, GraphData, LoadFailure, TarLimits,
};
use graph_data::MatchingRule;
use tar::{EntryType, Header};

fn bundled() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/graph-data")
}

fn problems(result: Result<GraphData, LoadFailure>) -> Vec<String> {
    match result {
        Err(LoadFailure::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("not a content problem: {e}"),
        Ok(_) => panic!("loaded, but problems were expected"),
    }
}

/// A minimal valid tree in a temporary directory, for tests to break.
fn minimal() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in ["channels", "blocked-edges", "raw"] {
        std::fs::create_dir(root.join(d)).unwrap();
    }
    std::fs::write(root.join("version"), "1.1.0\n").unwrap();
    std::fs::write(root.join("raw/metadata.json"), "{}\n").unwrap();
    std::fs::write(
        root.join("channels/stable-4.2.yaml"),
        "name: stable-4.2\nversions:\n- 4.2.0\n",
    )
    .unwrap();
    dir
}

#[test]
fn bundled_graph_data_loads_with_the_counts_of_the_data() {
    let data = load_dir(&bundled()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(data.schema_version, semver::Version::new(1, 1, 0));
    assert_eq!(data.channels.len(), 76);
    // The snapshot: 1717 files, 116 plain, 1601 conditional.
    assert_eq!(data.blocks.len(), 116);
    assert_eq!(data.risks.len(), 1601);
    assert_eq!(data.raw_metadata.len(), 4);
    assert!(data.warnings.is_empty(), "{:?}", data.warnings);
    let rules: Vec<&MatchingRule> = data
        .risks
        .iter()
        .flat_map(|r| &r.risk.matching_rules)
        .collect();
    let always = rules
        .iter()
        .filter(|r| matches!(r, MatchingRule::Always))
        .count();
    assert_eq!((always, rules.len() - always), (573 + 5, 937 + 74 + 12));
    // Files come in name order, which fixes the order-dependent results.
    assert!(data.blocks.windows(2).all(|w| w[0].file < w[1].file));
    assert!(data
        .channels
        .iter()
        .any(|c| c.name == "stable-4.14" && c.file == "channels/stable-4.14.yaml"));
}

#[test]
fn directory_rules_skip_bookkeeping_and_name_every_other_file() {
    let dir = minimal();
    let root = dir.path();
    for skipped in [
        "OWNERS",
        "_OWNERS",
        "OWNERS_ALIASES",
        "README.md",
        ".gitkeep",
    ] {
        std::fs::write(root.join("blocked-edges").join(skipped), "x").unwrap();
    }
    load_dir(root).unwrap();
    std::fs::write(
        root.join("channels/fast-4.2.yml"),
        "name: fast-4.2\nversions: []\n",
    )
    .unwrap();
    std::fs::write(root.join("blocked-edges/4.2.1"), "to: 4.2.1\nfrom: .*\n").unwrap();
    std::fs::write(root.join("blocked-edges/4.2.2.txt"), "").unwrap();
    std::fs::write(
        root.join("blocked-edges/4.2.3.yaml"),
        "to: 4.2.3\nfrom: .*\nurl: u\n",
    )
    .unwrap();
    std::fs::write(root.join("channels/stable"), "").unwrap();
    let got = problems(load_dir(root));
    assert_eq!(got.len(), 7, "{got:#?}");
    assert!(got[0].starts_with("channels/fast-4.2.yml: extension `.yml` is not read"));
    assert!(got[1].starts_with("channels/stable: no extension"));
    assert!(got[2].starts_with("blocked-edges/4.2.1: not a `.yaml` file (extension `.1`)"));
    assert!(got[3].starts_with("blocked-edges/4.2.2.txt: not a `.yaml` file (extension `.txt`)"));
    for (line, field) in got[4..].iter().zip(["name", "message", "matchingRules"]) {
        assert!(
            line.starts_with(&format!(
                "blocked-edges/4.2.3.yaml: field `{field}`: missing"
            )),
            "{line}"
        );
    }
}

#[test]
fn subdirectories_are_a_warning() {
    let dir = minimal();
    std::fs::create_dir(dir.path().join("channels/old")).unwrap();
    let data = load_dir(dir.path()).unwrap();
    assert_eq!(data.warnings.len(), 1);
    assert!(data.warnings[0]
        .to_string()
        .starts_with("channels/old: subdirectory ignored"));
}

#[test]
fn duplicate_and_unrequestable_channel_names_are_warnings() {
    let dir = minimal();
    let root = dir.path();
    std::fs::write(
        root.join("channels/stable-4.2-copy.yaml"),
        "name: stable-4.2\nversions: []\n",
    )
    .unwrap();
    std::fs::write(
        root.join("channels/Fast.yaml"),
        "name: Fast_4.2\nversions: []\n",
    )
    .unwrap();
    let warnings: Vec<String> = load_dir(root)
        .unwrap()
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        warnings,
        [
            "channels/Fast.yaml: channel name \"Fast_4.2\" can never be requested (clients may only use 0-9, a-z, `-` and `.`)",
            "channels/stable-4.2.yaml: channel \"stable-4.2\" is also defined in channels/stable-4.2-copy.yaml",
        ]
    );
}

#[test]
fn version_file_rules() {
    let dir = minimal();
    let root = dir.path();
    std::fs::write(root.join("version"), "1.3.0\n").unwrap();
    let data = load_dir(root).unwrap();
    assert_eq!(data.warnings.len(), 1);
    assert!(data.warnings[0]
        .to_string()
        .starts_with("version: schema version 1.3.0 is newer than 1.2"));
    std::fs::write(root.join("version"), "2.0.0\n").unwrap();
    assert_eq!(
        problems(load_dir(root)),
        vec!["version: schema version 2.0.0 is not supported (only major version 1 is known)"]
    );
    std::fs::remove_file(root.join("version")).unwrap();
    std::fs::remove_file(root.join("raw/metadata.json")).unwrap();
    let got = problems(load_dir(root));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], "version: missing (it holds the schema version)");
    assert!(got[1].starts_with("raw/metadata.json: missing"));
}

#[test]
fn every_problem_is_collected() {
    let dir = minimal();
    let root = dir.path();
    std::fs::write(root.join("raw/metadata.json"), r#"{"4.1": {"k": "v"}}"#).unwrap();
    std::fs::write(
        root.join("channels/a.yaml"),
        "name: a\nversions: [4.2.0, x]\n",
    )
    .unwrap();
    std::fs::write(root.join("channels/b.yaml"), "versions: [4.2.0]\n").unwrap();
    std::fs::write(root.join("blocked-edges/a.yaml"), "to: 4.2.0\nfrom: '['\n").unwrap();
    std::fs::write(root.join("blocked-edges/b.yaml"), ": : :\n").unwrap();
    let got = problems(load_dir(root));
    let files: Vec<&str> = got.iter().map(|l| l.split(": ").next().unwrap()).collect();
    assert_eq!(
        files,
        [
            "raw/metadata.json",
            "channels/a.yaml",
            "channels/b.yaml",
            "blocked-edges/a.yaml",
            "blocked-edges/b.yaml"
        ],
        "{got:#?}"
    );
}

#[test]
fn a_missing_source_is_an_open_error() {
    assert!(matches!(
        load(Path::new("/nonexistent/graph-data")),
        Err(LoadFailure::Open { .. })
    ));
}

// ---- tarballs ----

/// Builds a tar.gz from (path, entry) pairs, writing header names raw so that unsafe
/// paths can be produced.
fn tarball(entries: &[(&str, Entry<'_>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (path, entry) in entries {
        let mut h = Header::new_gnu();
        let name = &mut h.as_gnu_mut().unwrap().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_mode(0o644);
        let data: &[u8] = match entry {
            Entry::File(data) => {
                h.set_entry_type(EntryType::Regular);
                h.set_size(data.len() as u64);
                data
            }
            Entry::Special(kind) => {
                h.set_entry_type(*kind);
                h.set_size(0);
                if matches!(kind, EntryType::Symlink | EntryType::Link) {
                    h.set_link_name("/etc/passwd").unwrap();
                }
                &[]
            }
        };
        h.set_cksum();
        builder.append(&h, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

enum Entry<'a> {
    File(&'a [u8]),
    Special(EntryType),
}

fn valid_entries(prefix: &str) -> Vec<(String, Vec<u8>)> {
    [
        ("version", &b"1.1.0\n"[..]),
        ("raw/metadata.json", b"{}"),
        (
            "channels/stable-4.2.yaml",
            b"name: stable-4.2\nversions: [4.2.0]\n",
        ),
        ("channels/OWNERS", b"x"),
        ("blocked-edges/4.2.0.yaml", b"to: 4.2.0\nfrom: .*\n"),
        ("LICENSE", b"Apache-2.0"),
    ]
    .into_iter()
    .map(|(p, d)| (format!("{prefix}{p}"), d.to_vec()))
    .collect()
}

fn build(files: &[(String, Vec<u8>)], extra: &[(&str, Entry<'_>)]) -> Vec<u8> {
    let mut entries: Vec<(&str, Entry<'_>)> = files
        .iter()
        .map(|(p, d)| (p.as_str(), Entry::File(d)))
        .collect();
    entries.extend(extra.iter().map(|(p, e)| {
        (
            *p,
            match e {
                Entry::File(d) => Entry::File(d),
                Entry::Special(k) => Entry::Special(*k),
            },
        )
    }));
    tarball(&entries)
}

#[test]
fn tarball_layouts_plain_dot_slash_and_wrapped() {
    for prefix in ["", "./", "openshift-cincinnati-graph-data-731d042/"] {
        let bytes = build(
            &valid_entries(prefix),
            &[(
                "pax_global_header",
                Entry::Special(EntryType::XGlobalHeader),
            )],
        );
        let data = load_tarball_bytes(&bytes, TarLimits::default())
            .unwrap_or_else(|e| panic!("{prefix:?}: {e}"));
        assert_eq!(
            (data.channels.len(), data.blocks.len()),
            (1, 1),
            "{prefix:?}"
        );
        assert_eq!(data.blocks[0].file, "blocked-edges/4.2.0.yaml");
    }
}

#[test]
fn tarball_of_the_bundled_data_matches_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("graph-data.tar.gz");
    let mut builder = tar::Builder::new(GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        Compression::none(),
    ));
    builder.append_dir_all(".", bundled()).unwrap();
    builder
        .into_inner()
        .unwrap()
        .finish()
        .unwrap()
        .flush()
        .unwrap();
    let from_tar = load_tarball(&path, TarLimits::default()).unwrap();
    let from_dir = load_dir(&bundled()).unwrap();
    assert_eq!(from_tar.channels, from_dir.channels);
    assert_eq!((from_tar.blocks.len(), from_tar.risks.len()), (116, 1601));
    // `load` picks the reader by what the path is.
    assert_eq!(load(&path).unwrap().risks.len(), 1601);
}

#[test]
fn tarball_unsafe_entries_are_refused_by_name() {
    let files = valid_entries("");
    let cases: [(&str, Entry<'_>, &str); 6] = [
        (
            "../evil.yaml",
            Entry::File(b"x"),
            "../evil.yaml: refused tarball entry: the path contains `..`",
        ),
        (
            "channels/../../x",
            Entry::File(b"x"),
            "channels/../../x: refused tarball entry: the path contains `..`",
        ),
        (
            "/etc/cron.d/x",
            Entry::File(b"x"),
            "/etc/cron.d/x: refused tarball entry: the path is absolute",
        ),
        (
            "channels/link.yaml",
            Entry::Special(EntryType::Symlink),
            "channels/link.yaml: refused tarball entry: links are not allowed",
        ),
        (
            "channels/hard.yaml",
            Entry::Special(EntryType::Link),
            "channels/hard.yaml: refused tarball entry: links are not allowed",
        ),
        (
            "dev/null",
            Entry::Special(EntryType::Char),
            "dev/null: refused tarball entry: entry type Char is not a file or directory",
        ),
    ];
    for (path, entry, want) in cases {
        let bytes = build(&files, &[(path, entry)]);
        assert_eq!(
            problems(load_tarball_bytes(&bytes, TarLimits::default())),
            vec![want.to_owned()]
        );
    }
}

#[test]
fn tarball_size_caps() {
    let files = valid_entries("");
    let big = vec![b'#'; 2048];
    let small = TarLimits {
        max_entry_bytes: 1024,
        max_total_bytes: 1 << 20,
        max_entries: 100,
        ..TarLimits::default()
    };
    let bytes = build(&files, &[("blocked-edges/big.yaml", Entry::File(&big))]);
    assert_eq!(
        problems(load_tarball_bytes(&bytes, small)),
        vec!["blocked-edges/big.yaml: refused tarball entry: 2048 bytes is above the 1024 byte limit per file"]
    );
    let tiny_total = TarLimits {
        max_total_bytes: 64,
        ..small
    };
    let got = problems(load_tarball_bytes(&build(&files, &[]), tiny_total));
    assert!(
        got[0].starts_with("graph-data.tar.gz: content above the 64 byte limit"),
        "{got:?}"
    );
    let few = TarLimits {
        max_entries: 3,
        ..small
    };
    let got = problems(load_tarball_bytes(&build(&files, &[]), few));
    assert!(
        got[0].starts_with("graph-data.tar.gz: more than 3 entries"),
        "{got:?}"
    );
}

#[test]
fn garbage_is_not_a_tarball() {
    let got = problems(load_tarball_bytes(
        b"definitely not gzip",
        TarLimits::default(),
    ));
    assert!(
        got[0].starts_with("graph-data.tar.gz: not a readable tar.gz"),
        "{got:?}"
    );
}

// ---- directories stay inside their tree ----

#[test]
fn directory_links_out_of_the_tree_and_special_files_are_refused_by_name() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("config.json"), "{\"auths\":{}}").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A Kubernetes-style mount: every file a link into `..data`, which is fine.
    std::fs::create_dir_all(root.join("..data/channels")).unwrap();
    std::fs::create_dir_all(root.join("..data/raw")).unwrap();
    std::fs::create_dir(root.join("blocked-edges")).unwrap();
    std::fs::write(root.join("..data/version"), "1.1.0\n").unwrap();
    std::fs::write(root.join("..data/raw/metadata.json"), "{}").unwrap();
    std::fs::write(
        root.join("..data/channels/stable-4.2.yaml"),
        "name: stable-4.2\nversions: [4.2.0]\n",
    )
    .unwrap();
    for name in ["version", "raw", "channels"] {
        std::os::unix::fs::symlink(format!("..data/{name}"), root.join(name)).unwrap();
    }
    let data = load_dir(root).unwrap();
    assert_eq!(data.channels.len(), 1);

    std::os::unix::fs::symlink(
        outside.path().join("config.json"),
        root.join("blocked-edges/creds.yaml"),
    )
    .unwrap();
    let fifo = root.join("blocked-edges/pipe.yaml");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let got = problems(load_dir(root));
    let outside_path = outside.path().canonicalize().unwrap().join("config.json");
    assert_eq!(
        got,
        vec![
            format!(
                "blocked-edges/creds.yaml: refused: it resolves to {}, outside the graph-data directory",
                outside_path.display()
            ),
            "blocked-edges/pipe.yaml: refused: it is a FIFO, not a regular file".to_owned(),
        ]
    );
}
