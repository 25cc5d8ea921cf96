//! Field access on parsed YAML documents, with messages that name the field and say
//! what was found instead of what was expected.
//!
//! The graph-data files are parsed to a generic YAML value first (not straight into
//! structs) so that every problem of a file can be reported, each with its field.

use semver::Version;
use serde_yaml_ng::{Mapping, Value};

/// A top-level YAML mapping with string keys, in document order.
pub(crate) struct Doc {
    pub(crate) fields: Vec<(String, Value)>,
}

impl Doc {
    /// Parses `bytes` as a YAML document whose top level is a mapping with string keys.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        let value = parse_bounded(bytes)?;
        match value {
            Value::Mapping(m) => Self::from_mapping(m),
            Value::Null => Err("the file is empty (expected a mapping of fields)".to_owned()),
            other => Err(format!(
                "expected a mapping of fields, found {}",
                describe(&other)
            )),
        }
    }

    fn from_mapping(m: Mapping) -> Result<Self, String> {
        let mut fields = Vec::with_capacity(m.len());
        for (k, v) in m {
            match k {
                Value::String(k) => fields.push((k, v)),
                other => {
                    return Err(format!(
                        "field names must be strings, found {}",
                        describe(&other)
                    ))
                }
            }
        }
        Ok(Self { fields })
    }

    /// The value of field `name`, if present.
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Whether field `name` is present.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// How much a document may expand to, in units of one per node plus one per string
/// byte: four times its own size, plus room for small files. Without aliases every node
/// takes at least one byte of the document (a string its length), so a plain document
/// stays near one unit per byte; a few aliases to a small anchor are fine.
fn expansion_budget(len: usize) -> u64 {
    4 * len as u64 + 4096
}

/// Most `[` and `{` characters in one document, quoted or not. The YAML scanner checks
/// every open flow level at every token, so a document nested a hundred thousand levels
/// deep (200 KB) takes it minutes; the depth cannot exceed the openers, and counting them
/// cannot be fooled by quoting. The largest count in the public graph-data is 22.
const MAX_FLOW_OPENERS: usize = 1000;

/// Parses a YAML document into a [`Value`], refusing one whose aliases expand it past
/// [`expansion_budget`]: serde_yaml_ng only caps the number of alias jumps, so ten
/// thousand aliases to a list of a hundred thousand items would otherwise build a
/// billion-node value from a few hundred KB.
pub(crate) fn parse_bounded(bytes: &[u8]) -> Result<Value, String> {
    let openers = bytes.iter().filter(|b| matches!(b, b'[' | b'{')).count();
    if openers > MAX_FLOW_OPENERS {
        return Err(format!(
            "{openers} '[' or '{{' characters, more than the {MAX_FLOW_OPENERS} allowed: flow nesting that deep takes the parser minutes"
        ));
    }
    let budget = expansion_budget(bytes.len());
    let left = std::cell::Cell::new(budget);
    let de = serde_yaml_ng::Deserializer::from_slice(bytes);
    serde::de::DeserializeSeed::deserialize(
        Bounded {
            left: &left,
            budget,
        },
        de,
    )
    .map_err(|e| e.to_string())
}

/// Builds a [`Value`] like its own `Deserialize`, charging every node to a budget.
#[derive(Clone, Copy)]
struct Bounded<'a> {
    left: &'a std::cell::Cell<u64>,
    budget: u64,
}

impl Bounded<'_> {
    fn charge<E: serde::de::Error>(&self, cost: usize) -> Result<(), E> {
        match self.left.get().checked_sub(1 + cost as u64) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(E::custom(format!(
                "the document expands past {} units (aliases repeating large parts?)",
                self.budget
            ))),
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::Number(i.into()))
    }

    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::Number(u.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::Number(f.into()))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Value, E> {
        self.charge(s.len())?;
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Value, E> {
        self.charge(s.len())?;
        Ok(Value::String(s))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, d)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.charge(0)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Sequence(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.charge(0)?;
        let mut mapping = Mapping::new();
        while let Some(key) = map.next_key_seed(self)? {
            let value = map.next_value_seed(self)?;
            let shown = match &key {
                Value::Null => "with null key".to_owned(),
                Value::Bool(b) => format!("with key `{b}`"),
                Value::Number(n) => format!("with key {n}"),
                Value::String(s) => format!("with key {s:?}"),
                _ => "in YAML map".to_owned(),
            };
            if mapping.insert(key, value).is_some() {
                return Err(serde::de::Error::custom(format!("duplicate entry {shown}")));
            }
        }
        Ok(Value::Mapping(mapping))
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        use serde::de::VariantAccess as _;
        self.charge(0)?;
        let (tag, contents) = data.variant::<String>()?;
        let value = contents.newtype_variant_seed(self)?;
        Ok(Value::Tagged(Box::new(serde_yaml_ng::value::TaggedValue {
            tag: serde_yaml_ng::value::Tag::new(tag),
            value,
        })))
    }
}

/// A short description of a YAML value for error messages (`a number (4.1)`).
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".to_owned(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n}); quote it to make it a string"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(t) => format!("a tagged value ({})", t.tag),
    }
}

/// `v` as a string, or a message saying what it is instead.
pub(crate) fn as_str(v: &Value) -> Result<&str, String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(format!("expected a string, found {}", describe(other))),
    }
}

/// `v` as a non-empty (after trimming) string.
pub(crate) fn non_empty_str(v: &Value) -> Result<&str, String> {
    let s = as_str(v)?;
    if s.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(s)
    }
}

/// `s` as a strict SemVer version (no `v` prefix, no surrounding space).
pub(crate) fn semver(s: &str) -> Result<Version, String> {
    Version::parse(s).map_err(|e| format!("{s:?} is not a SemVer version: {e}"))
}

/// `v` as a strict SemVer version.
pub(crate) fn semver_value(v: &Value) -> Result<Version, String> {
    semver(as_str(v)?)
}

/// Compiled regexes by pattern: the ~1700 blocked-edges files of the real data use about
/// a hundred distinct `from` patterns, and compiling dominates loading time.
pub(crate) type RegexCache = std::collections::HashMap<String, regex::Regex>;

/// `v` as a Rust `regex`, compiled once per distinct pattern.
pub(crate) fn regex_value(v: &Value, cache: &mut RegexCache) -> Result<regex::Regex, String> {
    let s = as_str(v)?;
    if let Some(re) = cache.get(s) {
        return Ok(re.clone());
    }
    let re = regex::Regex::new(s)
        .map_err(|e| format!("{s:?} is not a valid regular expression: {e}"))?;
    cache.insert(s.to_owned(), re.clone());
    Ok(re)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_parsing_matches_the_library_on_ordinary_documents() {
        for doc in [
            "name: a\nversions: [4.1.0, '4.1.1']\n",
            "to: 4.1.0\nfrom: .*\nn: 1\nf: 1.5\nb: true\nz: ~\n",
            "a: &x [1, 2]\nb: *x\n",
            "t: !custom {k: v}\n",
            "",
        ] {
            let ours = parse_bounded(doc.as_bytes()).unwrap();
            let theirs: Value = serde_yaml_ng::from_str(doc).unwrap();
            assert_eq!(ours, theirs, "{doc}");
        }
        let dup = "a: 1\na: 2\n";
        let theirs = serde_yaml_ng::from_str::<Value>(dup)
            .unwrap_err()
            .to_string();
        assert_eq!(parse_bounded(dup.as_bytes()).unwrap_err(), theirs);
    }

    #[test]
    fn plain_documents_of_many_small_nodes_fit_the_budget() {
        for doc in [
            format!("a: [{}]\n", "1,".repeat(50_000)),
            format!("a:\n{}", "-\n".repeat(50_000)),
            format!("a: [{}]\n", "'',".repeat(50_000)),
            (0..20_000).map(|i| format!("k{i}:\n")).collect::<String>(),
        ] {
            parse_bounded(doc.as_bytes()).unwrap();
        }
    }

    #[test]
    fn deep_flow_nesting_is_refused_before_the_scanner_sees_it() {
        let deep = format!("x: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let started = std::time::Instant::now();
        let err = parse_bounded(deep.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            "100000 '[' or '{' characters, more than the 1000 allowed: flow nesting that deep takes the parser minutes"
        );
        // At the cap, with the rest of a 256 KiB file as tokens inside the deepest level,
        // the scanner's work per token stays bounded.
        let mut at_cap = format!("x: {}", "[".repeat(MAX_FLOW_OPENERS));
        at_cap.push_str(&"1,".repeat(120_000));
        at_cap.push_str(&"]".repeat(MAX_FLOW_OPENERS));
        let err = parse_bounded(at_cap.as_bytes()).unwrap_err();
        assert!(err.contains("recursion limit"), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn alias_expansion_is_bounded() {
        // 20k items anchored once, then 5k aliases to it: 100M nodes if expanded.
        let mut doc = String::from("a: &x [");
        doc.push_str(&"1,".repeat(20_000));
        doc.push_str("]\nb: [");
        doc.push_str(&"*x,".repeat(5_000));
        doc.push_str("]\n");
        let err = parse_bounded(doc.as_bytes()).unwrap_err();
        assert!(err.contains("the document expands past"), "{err}");
        // Billion laughs.
        let mut laughs = String::from("l0: &l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
        for i in 1..10 {
            let prev = format!("*l{}", i - 1);
            laughs.push_str(&format!("l{i}: &l{i} [{}]\n", vec![prev; 9].join(",")));
        }
        let err = parse_bounded(laughs.as_bytes()).unwrap_err();
        assert!(
            err.contains("the document expands past") || err.contains("repetition limit"),
            "{err}"
        );
    }
}
