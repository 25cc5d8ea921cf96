//! Property tests: the parsers of graph-data files never panic, whatever the bytes, and
//! a parse failure always names the file it came from.

use graph_data::repo::{
    load_tarball_bytes, parse_blocked_edge, parse_channel, parse_raw_metadata,
    parse_schema_version, TarLimits,
};
use proptest::prelude::*;

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

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
