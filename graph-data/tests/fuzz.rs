//! Property tests: the parsers of graph-data files never panic, whatever the bytes, and
//! a parse failure always names the file it came from; tarballs of hostile shape (every
//! entry type, long-name and PAX records, sizes that lie, flipped bytes) load or fail
//! with named errors, never a panic.
//!
//! CI runs a fixed number of cases; run longer with
//! `PROPTEST_CASES=100000 cargo test -p graph-data --release --test fuzz`.

use std::io::Write as _;

use graph_data::bounded_tar::{self, HeaderLimits};

use graph_data::repo::{
    load_tarball_bytes, parse_blocked_edge, parse_channel, parse_raw_metadata,
    parse_schema_version, TarLimits,
};
use proptest::prelude::*;
use std::io::Read as _;

/// YAML-ish text: mostly the characters and keys graph-data files are made of, so the
/// parsers get past the YAML layer and into the field checks.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("to: ".to_owned()),
        Just("from: ".to_owned()),
        Just("url: ".to_owned()),
        Just("name: ".to_owned()),
        Just("message: ".to_owned()),
        Just("matchingRules:\n".to_owned()),
        Just("- type: Always\n".to_owned()),
        Just("- type: PromQL\n  promql:\n    promql: ".to_owned()),
        Just("versions:\n".to_owned()),
        Just("- ".to_owned()),
        Just("4.1.0".to_owned()),
        Just("\n".to_owned()),
        Just(".*".to_owned()),
        Just("[".to_owned()),
        "[ -~]{0,8}",
    ];
    prop::collection::vec(token, 0..24).prop_map(|t| t.concat())
}

/// `PROPTEST_CASES` when set, else `default`.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

/// One tar entry: its type, a path made of graph-data-ish parts, content, and how its
/// header size lies about the content.
fn entry() -> impl Strategy<Value = (tar::EntryType, String, Vec<u8>, i8)> {
    let kind = prop_oneof![
        Just(tar::EntryType::Regular),
        Just(tar::EntryType::Directory),
        Just(tar::EntryType::Symlink),
        Just(tar::EntryType::Link),
        Just(tar::EntryType::Char),
        Just(tar::EntryType::Fifo),
        Just(tar::EntryType::GNULongName),
        Just(tar::EntryType::GNULongLink),
        Just(tar::EntryType::XHeader),
        Just(tar::EntryType::XGlobalHeader),
        Just(tar::EntryType::GNUSparse),
    ];
    let part = prop_oneof![
        Just("channels"),
        Just("blocked-edges"),
        Just("raw"),
        Just("version"),
        Just("metadata.json"),
        Just("a.yaml"),
        Just(".."),
        Just("."),
        Just(""),
        Just(".wh.a.yaml"),
    ];
    let path = prop::collection::vec(part, 1..4).prop_map(|p| p.join("/"));
    let content = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        Just(b"name: c\nversions: [4.1.0]\n".to_vec()),
        Just(b"30 path=channels/long-name.yaml\n".to_vec()),
        Just(b"11 size=99\n".to_vec()),
    ];
    (kind, path, content, -1i8..=1)
}

/// A tar archive of `entries` (headers written raw, so anything goes), with `flips`
/// applied as (offset, xor) afterwards.
fn archive(entries: &[(tar::EntryType, String, Vec<u8>, i8)], flips: &[(usize, u8)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, path, content, lie) in entries {
        let mut h = tar::Header::new_gnu();
        let name = &mut h.as_gnu_mut().unwrap().name;
        let n = path.len().min(name.len());
        name[..n].copy_from_slice(&path.as_bytes()[..n]);
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        let size = (content.len() as i64 + i64::from(*lie)).max(0) as u64;
        h.set_size(size);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(content);
        let padded = content.len().div_ceil(512) * 512;
        out.resize(out.len() + padded - content.len(), 0);
    }
    out.resize(out.len() + 1024, 0);
    for &(at, xor) in flips {
        if !out.is_empty() {
            let at = at % out.len();
            out[at] ^= xor;
        }
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn hostile_tarballs_load_or_fail_with_named_errors(
        entries in prop::collection::vec(entry(), 0..12),
        flips in prop::collection::vec((any::<usize>(), 1u8..), 0..4),
    ) {
        let tar = archive(&entries, &flips);
        let limits = TarLimits {
            max_entry_bytes: 48,
            max_total_bytes: 256,
            max_entries: 8,
            max_decompressed_bytes: 16 << 10,
            header: HeaderLimits { max_name_bytes: 40, max_pax_bytes: 48, max_extensions_per_entry: 2 },
        };
        if let Err(graph_data::repo::LoadFailure::Invalid(errors)) = load_tarball_bytes(&gzip(&tar), limits) {
            prop_assert!(!errors.is_empty());
            prop_assert!(errors.iter().all(|e| !e.file.is_empty()));
        }
    }

    #[test]
    fn bounded_tar_reads_any_archive_within_its_caps(
        entries in prop::collection::vec(entry(), 0..12),
        flips in prop::collection::vec((any::<usize>(), 1u8..), 0..4),
    ) {
        let tar = archive(&entries, &flips);
        let limits = HeaderLimits { max_name_bytes: 40, max_pax_bytes: 48, max_extensions_per_entry: 2 };
        let mut archive = tar::Archive::new(&tar[..]);
        let Ok(iter) = bounded_tar::entries(&mut archive, limits) else { return Ok(()) };
        let mut seen = 0;
        for e in iter {
            let Ok(mut e) = e else { break };
            seen += 1;
            prop_assert!(e.path.len() <= 100.max(limits.max_pax_bytes as usize));
            let mut data = Vec::new();
            let _ = std::io::Read::read_to_end(&mut (&mut e.data).take(1 << 16), &mut data);
            prop_assert!(data.len() as u64 <= e.size);
        }
        prop_assert!(seen <= tar.len() / 512);
    }

    #[test]
    fn blocked_edge_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(errors) = parse_blocked_edge("blocked-edges/f.yaml", &bytes) {
            prop_assert!(!errors.is_empty());
            prop_assert!(errors.iter().all(|e| e.file == "blocked-edges/f.yaml"));
        }
    }

    #[test]
    fn blocked_edge_parse_of_yamlish_text_never_panics(text in yamlish()) {
        if let Err(errors) = parse_blocked_edge("blocked-edges/f.yaml", text.as_bytes()) {
            prop_assert!(!errors.is_empty());
        }
    }

    #[test]
    fn channel_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), text in yamlish()) {
        let _ = parse_channel("channels/c.yaml", &bytes);
        if let Err(errors) = parse_channel("channels/c.yaml", text.as_bytes()) {
            prop_assert!(errors.iter().all(|e| e.file == "channels/c.yaml"));
        }
    }

    #[test]
    fn raw_metadata_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), text in "[{}\":, 0-9a-z.\\[\\]-]{0,64}") {
        let _ = parse_raw_metadata(&bytes);
        if let Err(errors) = parse_raw_metadata(text.as_bytes()) {
            prop_assert!(errors.iter().all(|e| e.file == "raw/metadata.json"));
        }
    }

    #[test]
    fn version_and_tarball_readers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_schema_version(&bytes);
        prop_assert!(load_tarball_bytes(&bytes, TarLimits::default()).is_err());
    }
}
