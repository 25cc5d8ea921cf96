//! Property tests of the registry client's readers of outside input: `WWW-Authenticate`
//! challenges, `Link` headers, manifests and indexes, and the redaction of registry URLs.
//! Each never panics on any input and gives back what a well-formed input says. CI runs
//! a fixed number of cases; `PROPTEST_CASES` runs more.

use proptest::prelude::*;

use super::auth::{parse_challenge, Challenge};
use super::manifest::{parse_manifest, Manifest, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use super::redact_url;
use super::tags::next_link;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig::with_cases(cases)
}

/// A parameter value: printable ASCII (quotes and backslashes included), no white space
/// at either end (the parser trims it).
fn param_value() -> impl Strategy<Value = String> {
    "[!-~]([ -~]{0,30}[!-~])?"
}

/// `value` as a quoted string.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

fn digest() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}".prop_map(|hex| format!("sha256:{hex}"))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn challenges_never_panic(value in "\\PC{0,200}", bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_challenge(&value);
        let _ = parse_challenge(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn bearer_challenges_give_back_their_parameters(
        scheme in prop::sample::select(vec!["Bearer", "bearer", "BEARER"]),
        realm in param_value(),
        service in prop::option::of(param_value()),
        scope in prop::option::of(param_value()),
        extra in prop::option::of(param_value()),
        separator in prop::sample::select(vec![",", ", ", " , "]),
        order in any::<u64>(),
    ) {
        let mut params = vec![format!("realm={}", quoted(&realm))];
        params.extend(service.as_ref().map(|s| format!("service={}", quoted(s))));
        params.extend(scope.as_ref().map(|s| format!("Scope={}", quoted(s))));
        params.extend(extra.as_ref().map(|e| format!("error={}", quoted(e))));
        let turn = (order % params.len() as u64) as usize;
        params.rotate_left(turn);
        let header = format!("{scheme} {}", params.join(separator));
        prop_assert_eq!(
            parse_challenge(&header),
            Some(Challenge::Bearer { realm, service, scope }),
            "{}", header
        );
    }

    #[test]
    fn basic_challenges_are_basic_and_others_unknown(rest in "[ -~]{0,60}", other in "[A-Za-z]{1,12}") {
        prop_assert_eq!(parse_challenge(&format!("Basic {rest}")), Some(Challenge::Basic));
        prop_assume!(!other.eq_ignore_ascii_case("basic") && !other.eq_ignore_ascii_case("bearer"));
        prop_assert_eq!(parse_challenge(&format!("{other} {rest}")), None);
    }

    #[test]
    fn links_never_panic(value in "\\PC{0,200}") {
        let _ = next_link(&value);
    }

    #[test]
    fn the_first_next_link_is_found(
        links in prop::collection::vec(
            (
                "[A-Za-z0-9/?=&;,._-]{0,40}",
                prop::collection::vec(prop::sample::select(vec!["next", "prev", "first", "NEXT", "last"]), 1..3),
                any::<bool>(),
            ),
            0..5,
        ),
    ) {
        let value = links
            .iter()
            .map(|(target, rels, quote)| {
                let rels = rels.join(" ");
                let rels = if *quote || rels.contains(' ') { format!("\"{rels}\"") } else { rels };
                format!("<{target}>; type=\"x\"; rel={rels}")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let expected = links
            .iter()
            .find(|(_, rels, _)| rels.iter().any(|r| r.eq_ignore_ascii_case("next")))
            .map(|(target, _, _)| target.clone());
        prop_assert_eq!(next_link(&value), expected, "{}", value);
    }

    #[test]
    fn manifests_never_panic(
        content_type in prop::option::of("[ -~]{0,60}"),
        bytes in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let _ = parse_manifest(content_type.as_deref(), &bytes);
    }

    #[test]
    fn image_manifests_give_back_their_layers_in_order(
        oci in any::<bool>(),
        in_header in any::<bool>(),
        config in digest(),
        layers in prop::collection::vec((digest(), 0u64..1 << 40), 0..8),
    ) {
        let media_type = if oci { OCI_MANIFEST } else { DOCKER_MANIFEST };
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 7},
            "layers": layers.iter().map(|(d, size)| serde_json::json!({"digest": d, "size": size})).collect::<Vec<_>>(),
        });
        let header = if in_header { Some(media_type) } else { Some("application/json") };
        let Ok(Manifest::Image(image)) = parse_manifest(header, body.to_string().as_bytes()) else {
            return Err(TestCaseError::fail(format!("not an image manifest: {body}")));
        };
        prop_assert_eq!(image.config.digest, config);
        let got: Vec<_> = image.layers.iter().map(|l| (l.digest.clone(), l.size.unwrap())).collect();
        prop_assert_eq!(got, layers);
    }

    #[test]
    fn indexes_give_back_their_entries_in_order(
        entries in prop::collection::vec((digest(), "[a-z0-9]{1,8}"), 0..8),
    ) {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "manifests": entries.iter().map(|(d, arch)| serde_json::json!({
                "mediaType": OCI_MANIFEST, "digest": d, "size": 1,
                "platform": {"architecture": arch, "os": "linux"},
            })).collect::<Vec<_>>(),
        });
        // No media type anywhere: the shape decides.
        let Ok(Manifest::Index(index)) = parse_manifest(None, body.to_string().as_bytes()) else {
            return Err(TestCaseError::fail(format!("not an index: {body}")));
        };
        let got: Vec<_> = index
            .manifests
            .iter()
            .map(|e| (e.digest.clone(), e.platform.as_ref().unwrap().architecture.clone()))
            .collect();
        prop_assert_eq!(got, entries);
        let typed = parse_manifest(Some(OCI_INDEX), body.to_string().as_bytes());
        prop_assert!(matches!(typed, Ok(Manifest::Index(_))));
    }

    #[test]
    fn redacted_urls_never_show_the_password(
        scheme in prop::sample::select(vec!["", "http://", "https://"]),
        user in "[a-z]{0,8}",
        password in "PW[A-Z0-9]{6,12}",
        host in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
        path in "(/[a-z0-9@]{0,10}){0,3}",
    ) {
        let url = format!("{scheme}{user}:{password}@{host}{path}");
        let shown = redact_url(&url);
        prop_assert!(!shown.contains(&password), "{}", shown);
        prop_assert_eq!(shown, format!("{scheme}***@{host}{path}"));
        // Nothing to hide: unchanged.
        let plain = format!("{scheme}{host}{path}");
        prop_assert_eq!(redact_url(&plain), plain);
    }
}
