//! Query strings: the mandatory-parameter check and strict decoding into a map.
//!
//! `application/x-www-form-urlencoded` rules: pairs split on `&`, `+` is a space,
//! percent escapes decode to bytes that must form UTF-8. Duplicate keys: the last value
//! wins, as with the reference's map.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use percent_encoding::percent_decode;

use crate::error::ApiError;

/// Checks that every mandatory parameter is present (only presence: `channel=` passes),
/// reporting the missing ones sorted, as the reference does. Keys are decoded leniently
/// here because the reference checks presence before it decodes.
pub fn ensure_present(mandatory: &BTreeSet<String>, query: &str) -> Result<(), ApiError> {
    let missing = graph_data::keys::missing_parameters(mandatory, query);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::MissingParams(missing))
    }
}

/// Decodes the query string; a component that is not UTF-8 once decoded is
/// `invalid_params`, naming the component.
pub fn decode(query: &str) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for (key, value) in pairs(query) {
        let bad = |what: &str, raw: &str| {
            ApiError::InvalidParams(format!(
                "query {what} {raw:?} does not decode to UTF-8 text"
            ))
        };
        let k = decode_component(key).ok_or_else(|| bad("key", key))?;
        let v = decode_component(value).ok_or_else(|| bad("value", value))?;
        out.insert(k.into_owned(), v.into_owned());
    }
    Ok(out)
}

/// As [`decode`], keeping only the parameters named in `keep`: every component is still
/// checked (an undecodable one is `invalid_params` whatever its key), but only the
/// values asked for are copied out, so a request costs no allocation per parameter.
pub fn decode_only(query: &str, keep: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::with_capacity(keep.len());
    for (key, value) in pairs(query) {
        let bad = |what: &str, raw: &str| {
            ApiError::InvalidParams(format!(
                "query {what} {raw:?} does not decode to UTF-8 text"
            ))
        };
        let k = decode_component(key).ok_or_else(|| bad("key", key))?;
        let v = decode_component(value).ok_or_else(|| bad("value", value))?;
        if keep.contains(&k.as_ref()) {
            out.insert(k.into_owned(), v.into_owned());
        }
    }
    Ok(out)
}

fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// `+` is a space, `%XX` a byte; borrowed when there is neither.
fn decode_component(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.contains(['+', '%']) {
        return Some(Cow::Borrowed(raw));
    }
    let spaced = raw.replace('+', " ");
    percent_decode(spaced.as_bytes())
        .decode_utf8()
        .ok()
        .map(|text| Cow::Owned(text.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| (*k).to_owned()).collect()
    }

    #[test]
    fn presence_only_and_missing_keys_sorted() {
        ensure_present(&set(&[]), "").unwrap();
        ensure_present(&set(&["channel"]), "channel=").unwrap();
        ensure_present(&set(&["channel"]), "c%68annel=x").unwrap();
        assert_eq!(
            ensure_present(&set(&["id", "channel", "arch"]), "id=1&x=y"),
            Err(ApiError::MissingParams(vec![
                "arch".into(),
                "channel".into()
            ]))
        );
    }

    #[test]
    fn decoding_follows_form_rules_and_last_value_wins() {
        let q = decode("channel=fast-4+9&arch=a&arch=b&x%3Dy=%E2%9C%93&flag").unwrap();
        assert_eq!(q["channel"], "fast-4 9");
        assert_eq!(q["arch"], "b");
        assert_eq!(q["x=y"], "✓");
        assert_eq!(q["flag"], "");
        assert!(decode("").unwrap().is_empty());
    }

    #[test]
    fn decode_only_keeps_the_named_keys_and_checks_every_component() {
        let q = "x=1&channel=fast-4+9&arch=a&arch=b&c%68annel2=y";
        let kept = decode_only(q, &["channel", "arch"]).unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept["channel"], "fast-4 9");
        assert_eq!(kept["arch"], "b");
        let full = decode(q).unwrap();
        assert_eq!(full.len(), 4);
        assert_eq!(
            decode_only("other=%FF&channel=a", &["channel"]).unwrap_err(),
            decode("other=%FF&channel=a").unwrap_err()
        );
    }

    #[test]
    fn undecodable_components_are_invalid_params() {
        let err = decode("channel=%FF").unwrap_err();
        assert_eq!(err.kind(), "invalid_params");
        assert_eq!(
            err.to_string(),
            "invalid client parameters: query value \"%FF\" does not decode to UTF-8 text"
        );
    }
}
