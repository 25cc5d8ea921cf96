//! Property tests of the policy-engine's readers of client input: the `Accept` header
//! and query strings. Each never panics, and answers the same for the same request
//! however it is spelled (case, white space, order of keys, escapes). CI runs a fixed
//! number of cases; `PROPTEST_CASES` runs more.

use std::collections::{BTreeSet, HashMap};

use policy_engine::error::ApiError;
use policy_engine::negotiate::{content_type, CINCINNATI_V1, JSON};
use policy_engine::query::{decode, decode_only, ensure_present};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig::with_cases(cases)
}

/// One `Accept` element: a range, an optional q and an optional other parameter.
#[derive(Debug, Clone)]
struct Range {
    range: &'static str,
    q: Option<&'static str>,
    charset: bool,
}

impl Range {
    fn render(&self, spaced: bool) -> String {
        let sep = if spaced { " ; " } else { ";" };
        let mut out = self.range.to_owned();
        if self.charset {
            out.push_str(&format!("{sep}charset=utf-8"));
        }
        if let Some(q) = self.q {
            out.push_str(&format!("{sep}q={q}"));
        }
        out
    }

    fn weight_is_zero(&self) -> bool {
        self.q.is_some_and(|q| q.parse::<f64>() == Ok(0.0))
    }

    fn covers(&self, media_type: &str) -> bool {
        match self.range {
            "*" | "*/*" => true,
            "application/*" => media_type.starts_with("application/"),
            exact => exact == media_type,
        }
    }
}

fn range() -> impl Strategy<Value = Range> {
    (
        prop::sample::select(vec![
            "application/json",
            "application/vnd.redhat.cincinnati.v1+json",
            "application/*",
            "*/*",
            "*",
            "text/html",
            "image/png",
            "application/xml",
        ]),
        prop::option::of(prop::sample::select(vec![
            "0", "0.0", "0.000", "0.001", "0.5", "0.999", "1", "1.0", "1.000",
        ])),
        any::<bool>(),
    )
        .prop_map(|(range, q, charset)| Range { range, q, charset })
}

fn render(ranges: &[Range], spaced: bool) -> String {
    let sep = if spaced { " ,  " } else { "," };
    ranges
        .iter()
        .map(|r| r.render(spaced))
        .collect::<Vec<_>>()
        .join(sep)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn accept_never_panics(value in "\\PC{0,120}") {
        match content_type(Some(&value)) {
            Ok(t) => prop_assert!(t == JSON || t == CINCINNATI_V1),
            Err(e) => prop_assert_eq!(e, ApiError::InvalidContentType),
        }
    }

    #[test]
    fn accept_answers_alike_however_spelled(ranges in prop::collection::vec(range(), 1..6)) {
        let plain = render(&ranges, false);
        let expected = content_type(Some(&plain));
        prop_assert_eq!(&content_type(Some(&render(&ranges, true))), &expected);
        prop_assert_eq!(&content_type(Some(&plain.to_ascii_uppercase())), &expected);
        // A range naming nothing we serve changes nothing.
        prop_assert_eq!(&content_type(Some(&format!("{plain}, text/plain;q=1"))), &expected);
        match expected {
            // What is chosen is allowed by some range with a weight above zero.
            Ok(chosen) => prop_assert!(
                ranges.iter().any(|r| r.covers(chosen) && !r.weight_is_zero()),
                "{} -> {}", plain, chosen
            ),
            // Refused: whatever allows a type we serve is vetoed by a range at weight zero
            // that also covers it (the most specific one decides).
            Err(_) => prop_assert!(
                [JSON, CINCINNATI_V1].iter().all(|t| {
                    !ranges.iter().any(|r| r.covers(t) && !r.weight_is_zero())
                        || ranges.iter().any(|r| r.covers(t) && r.weight_is_zero())
                }),
                "{} refused", plain
            ),
        }
        // Every range at weight zero: nothing is acceptable.
        let refused: Vec<Range> = ranges.iter().map(|r| Range { q: Some("0"), ..r.clone() }).collect();
        prop_assert_eq!(content_type(Some(&render(&refused, false))), Err(ApiError::InvalidContentType));
    }

    #[test]
    fn queries_never_panic(query in "\\PC{0,120}", raw in prop::collection::vec(any::<u8>(), 0..120)) {
        let _ = decode(&query);
        let _ = decode_only(&query, &["channel", "arch"]);
        let lossy = String::from_utf8_lossy(&raw);
        let _ = decode(&lossy);
        let _ = ensure_present(&BTreeSet::from(["channel".to_owned()]), &lossy);
    }

    #[test]
    fn queries_decode_to_what_was_encoded(
        params in prop::collection::hash_map("\\PC{1,8}", "\\PC{0,8}", 0..8),
        keep_channel in any::<bool>(),
        empties in 0usize..3,
    ) {
        let mut encoded = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in &params {
            encoded.append_pair(key, value);
        }
        let query = format!("{}{}", encoded.finish(), "&".repeat(empties));
        let decoded = decode(&query).unwrap();
        prop_assert_eq!(&decoded, &params);
        // Keeping only some keys reads the same values.
        let keep: Vec<&str> = params.keys().map(String::as_str).filter(|k| keep_channel || !k.starts_with('c')).collect();
        let only = decode_only(&query, &keep).unwrap();
        let expected: HashMap<String, String> = params.iter().filter(|(k, _)| keep.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
        prop_assert_eq!(only, expected);
        // Presence: exactly the keys not sent are missing, sorted.
        let mut mandatory: BTreeSet<String> = params.keys().take(2).cloned().collect();
        mandatory.insert("channel".to_owned());
        mandatory.insert("arch".to_owned());
        let missing: Vec<String> = mandatory.iter().filter(|m| !params.contains_key(*m)).cloned().collect();
        match ensure_present(&mandatory, &query) {
            Ok(()) => prop_assert!(missing.is_empty()),
            Err(e) => prop_assert_eq!(e, ApiError::MissingParams(missing)),
        }
    }

    #[test]
    fn undecodable_components_are_invalid_params_whatever_their_key(
        key in "[a-z]{1,6}",
        bad in prop::sample::select(vec!["%ff", "%c3%28", "%e2%82", "%80"]),
    ) {
        let query = format!("channel=a&{key}={bad}");
        let Err(ApiError::InvalidParams(message)) = decode(&query) else {
            return Err(TestCaseError::fail(format!("{query} decoded")));
        };
        prop_assert!(message.contains(bad), "{}", message);
        prop_assert_eq!(decode_only(&query, &["channel"]), Err(ApiError::InvalidParams(message)));
    }
}
