//! The vocabulary both services share: the release metadata keys, and the small rules of
//! their HTTP APIs (path prefix, mandatory query parameters) and of their error text.
//!
//! One home, so that the graph-builder that writes a key and the policy-engine that reads
//! it cannot drift apart.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt::Write as _;

use percent_encoding::percent_decode;

/// Prefix of every metadata key graph-data and edge-add-remove use.
pub const KEY_PREFIX: &str = "io.openshift.upgrades.graph";
/// Channels a release belongs to, as a sorted CSV (set from graph-data).
pub const CHANNELS_KEY: &str = "io.openshift.upgrades.graph.release.channels";
/// The scraped architecture of a release (removed from every node the policy-engine
/// serves).
pub const ARCH_KEY: &str = "io.openshift.upgrades.graph.release.arch";
/// The default key carrying the manifest digest a release was scraped from.
pub const MANIFESTREF_KEY: &str = "io.openshift.upgrades.graph.release.manifestref";
/// The key a multi-arch payload sets on itself in its release-metadata (`multi`).
pub const PAYLOAD_ARCH_KEY: &str = "release.openshift.io/architecture";
/// Regex of source versions whose edges to this release are removed.
pub const PREVIOUS_REMOVE_REGEX_KEY: &str = "io.openshift.upgrades.graph.previous.remove_regex";
/// CSV of source versions whose edges to this release are removed (`*`: all).
pub const PREVIOUS_REMOVE_KEY: &str = "io.openshift.upgrades.graph.previous.remove";
/// CSV of source versions to add edges from.
pub const PREVIOUS_ADD_KEY: &str = "io.openshift.upgrades.graph.previous.add";
/// CSV of target versions to add edges to.
pub const NEXT_ADD_KEY: &str = "io.openshift.upgrades.graph.next.add";
/// CSV of target versions whose edges from this release are removed.
pub const NEXT_REMOVE_KEY: &str = "io.openshift.upgrades.graph.next.remove";

/// The architectures a release image may be scraped as: Go's `GOARCH` names (what image
/// configs and manifest-list platforms use) and `multi` for a manifest list of several.
/// Anything else is refused at scrape time, so a registry cannot mint arbitrary arch
/// strings (commas, kilobytes) that would end up in the graph and in the policy-engine's
/// per-(channel, arch) cache.
pub const KNOWN_ARCHES: &[&str] = &[
    "386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64",
    "ppc64le", "riscv64", "s390x", "wasm", "multi",
];

/// Whether `arch` is one of [`KNOWN_ARCHES`], exactly.
pub fn is_known_arch(arch: &str) -> bool {
    KNOWN_ARCHES.contains(&arch)
}

/// A path prefix with its slashes trimmed and one leading slash; an empty prefix stays
/// empty (the reference turns an explicitly empty prefix into `/`, serving `//graph`; we
/// serve `/graph`).
pub fn normalize_prefix(prefix: &str) -> String {
    match prefix.trim_matches('/') {
        "" => String::new(),
        trimmed => format!("/{trimmed}"),
    }
}

/// The mandatory parameters absent from `query`, sorted. Only presence counts
/// (`channel=` is present). Keys are decoded leniently (`+` is a space, percent escapes;
/// a key that does not decode to UTF-8 is taken as written), because presence is
/// checked before the query is decoded strictly.
pub fn missing_parameters(mandatory: &BTreeSet<String>, query: &str) -> Vec<String> {
    if mandatory.is_empty() {
        return Vec::new();
    }
    // Keys borrowed as sent unless they hold an escape: no allocation on the common path.
    let present: Vec<Cow<'_, str>> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let key = pair.split_once('=').map_or(pair, |(key, _)| key);
            if !key.contains(['+', '%']) {
                return Cow::Borrowed(key);
            }
            let spaced = key.replace('+', " ");
            percent_decode(spaced.as_bytes())
                .decode_utf8()
                .map_or(Cow::Borrowed(key), |k| Cow::Owned(k.into_owned()))
        })
        .collect();
    mandatory
        .iter()
        .filter(|m| !present.iter().any(|k| k == m.as_str()))
        .cloned()
        .collect()
}

/// An error and its causes on one line, `error: cause: cause`, for logs, readiness and
/// the invalid-release list. Line breaks inside a message (a registry's error body may
/// hold some) are written as `\n`, so a log collector keeps the record whole.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    if text.contains(['\n', '\r']) {
        text = text.replace('\r', "\\r").replace('\n', "\\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| (*k).to_owned()).collect()
    }

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix("//a/b/c//"), "/a/b/c");
        assert_eq!(normalize_prefix("a/b/c"), "/a/b/c");
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("/"), "");
    }

    #[test]
    fn presence_only_and_missing_keys_sorted() {
        assert!(missing_parameters(&set(&[]), "").is_empty());
        assert!(missing_parameters(&set(&["channel"]), "channel=").is_empty());
        assert!(missing_parameters(&set(&["channel"]), "c%68annel=x").is_empty());
        assert!(missing_parameters(&set(&["a b"]), "a+b").is_empty());
        assert!(missing_parameters(&set(&["%FF"]), "%FF=1").is_empty());
        assert_eq!(
            missing_parameters(&set(&["id", "channel", "arch"]), "id=1&x=y"),
            ["arch", "channel"]
        );
        assert_eq!(
            missing_parameters(&set(&["channel", "arch", "id"]), "arch=&channel=a&id"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn only_known_arches_pass() {
        for ok in ["amd64", "arm64", "ppc64le", "s390x", "multi"] {
            assert!(is_known_arch(ok), "{ok}");
        }
        let huge = "a".repeat(10_000);
        for bad in [
            "",
            "amd64,arm64",
            "AMD64",
            "x86_64",
            "aarch64",
            " amd64",
            huge.as_str(),
        ] {
            assert!(!is_known_arch(bad), "{bad}");
        }
    }

    #[test]
    fn chains_join_every_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let error = Outer(std::io::Error::other("inner"));
        assert_eq!(chain(&error), "outer: inner");
    }
}
