//! Request header negotiation: which media type to answer with (`Accept`), whether the
//! client takes gzip (`Accept-Encoding`), and whether its cached copy is current
//! (`If-None-Match`).
//!
//! The reference compares the whole `Accept` value with four strings. This
//! is a real RFC 9110 parser (lists, q-values, parameters, case-insensitive), chosen so
//! that every string the reference accepts gives the same `Content-Type`: an absent
//! header gives the v1 media type, and a wildcard that matches both gives
//! `application/json`, as the reference's wildcard rule does.

use crate::error::ApiError;

/// The versioned Cincinnati media type.
pub const CINCINNATI_V1: &str = "application/vnd.redhat.cincinnati.v1+json";
/// Plain JSON.
pub const JSON: &str = "application/json";

/// What the service can produce, in order of preference when a client rates several
/// equally: `application/json` first, since the reference maps every wildcard to it.
const SUPPORTED: [(&str, &str); 2] = [
    ("application", "json"),
    ("application", "vnd.redhat.cincinnati.v1+json"),
];

/// The media type to answer with, or `invalid_content_type`.
pub fn content_type(accept: Option<&str>) -> Result<&'static str, ApiError> {
    // No header, or an empty one, means the client takes anything: the reference then
    // answers with the "minimum version" media type.
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(CINCINNATI_V1);
    };
    // What clients send nearly always: one exact type, decided without parsing.
    for exact in [JSON, CINCINNATI_V1] {
        if accept == exact {
            return Ok(exact);
        }
    }
    let ranges: Vec<MediaRange> = accept.split(',').filter_map(MediaRange::parse).collect();
    // For each type we serve: the q of the most specific range that matches it
    // (RFC 9110 §12.5.1), with that range's position as a tie-breaker.
    let mut best: Option<(u16, u8, usize, &'static str)> = None;
    for (i, (ty, sub)) in SUPPORTED.iter().enumerate() {
        let matched = ranges
            .iter()
            .enumerate()
            .filter_map(|(pos, r)| r.specificity(ty, sub).map(|s| (s, pos, r.q)))
            .max_by_key(|&(s, pos, _)| (s, std::cmp::Reverse(pos)));
        let Some((spec, pos, q)) = matched else {
            continue;
        };
        if q == 0 {
            continue;
        }
        let candidate = (q, spec, usize::MAX - pos, [JSON, CINCINNATI_V1][i]);
        // Strictly better only: on a full tie the earlier entry of SUPPORTED wins.
        if best.is_none_or(|b| (candidate.0, candidate.1, candidate.2) > (b.0, b.1, b.2)) {
            best = Some(candidate);
        }
    }
    best.map(|b| b.3).ok_or(ApiError::InvalidContentType)
}

/// One element of an `Accept` list; `q` in thousandths.
#[derive(Debug, PartialEq, Eq)]
struct MediaRange {
    ty: String,
    sub: String,
    q: u16,
}

impl MediaRange {
    /// Parses `type/subtype;param=value;q=0.5`; `None` for what is not a media range
    /// (such elements are ignored, like unknown types). A bare `*` is taken as `*/*`,
    /// because the reference accepts it.
    fn parse(element: &str) -> Option<Self> {
        let mut parts = element.split(';');
        let range = parts.next()?.trim().to_ascii_lowercase();
        let (ty, sub) = match range.as_str() {
            "*" => ("*".to_owned(), "*".to_owned()),
            _ => {
                let (ty, sub) = range.split_once('/')?;
                if ty.is_empty() || sub.is_empty() || (ty == "*" && sub != "*") {
                    return None;
                }
                (ty.to_owned(), sub.to_owned())
            }
        };
        let mut q = 1000;
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("q") {
                q = parse_qvalue(value.trim())?;
            }
        }
        Some(Self { ty, sub, q })
    }

    /// How specifically this range names `ty/sub`: 2 exact, 1 `ty/*`, 0 `*/*`.
    fn specificity(&self, ty: &str, sub: &str) -> Option<u8> {
        match (self.ty.as_str(), self.sub.as_str()) {
            ("*", "*") => Some(0),
            (t, "*") if t == ty => Some(1),
            (t, s) if t == ty && s == sub => Some(2),
            _ => None,
        }
    }
}

/// `0`, `0.5`, `1.000` → thousandths; anything else is malformed.
fn parse_qvalue(value: &str) -> Option<u16> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value: u16 = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

/// Whether `Accept-Encoding` allows a gzip-coded response.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(value) = accept_encoding else {
        return false;
    };
    let mut gzip = None;
    let mut any = None;
    for element in value.split(',') {
        let mut parts = element.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1000), |(_, v)| parse_qvalue(v.trim()));
        let Some(q) = q else { continue };
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if coding == "*" {
            any = Some(q);
        }
    }
    gzip.or(any).is_some_and(|q| q > 0)
}

/// Whether `If-None-Match` names one of `etags` (weak comparison, as RFC 9110 §13.1.2
/// prescribes for this header), or is `*`.
pub fn none_match(if_none_match: Option<&str>, etags: &[&str]) -> bool {
    let Some(value) = if_none_match else {
        return false;
    };
    value.split(',').map(str::trim).any(|tag| {
        tag == "*" || {
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            etags.contains(&tag)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_the_reference_accepts_gives_the_same_content_type() {
        // The reference's Accept matrix, row by row.
        assert_eq!(content_type(None).unwrap(), CINCINNATI_V1);
        assert_eq!(content_type(Some(JSON)).unwrap(), JSON);
        assert_eq!(content_type(Some(CINCINNATI_V1)).unwrap(), CINCINNATI_V1);
        for wildcard in ["*/*", "*", "application/*"] {
            assert_eq!(content_type(Some(wildcard)).unwrap(), JSON, "{wildcard}");
        }
    }

    #[test]
    fn lists_parameters_and_q_values_are_understood() {
        let cases = [
            ("application/json, text/plain", JSON),
            ("application/json; charset=utf-8", JSON),
            (
                "text/plain, application/vnd.redhat.cincinnati.v1+json",
                CINCINNATI_V1,
            ),
            (
                "application/vnd.redhat.cincinnati.v1+json;q=0.9, application/json;q=0.5",
                CINCINNATI_V1,
            ),
            ("application/json;q=0.1, */*;q=0.9", CINCINNATI_V1),
            ("application/json;q=0, */*", CINCINNATI_V1),
            (
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                JSON,
            ),
            ("Application/JSON", JSON),
            ("", CINCINNATI_V1),
        ];
        for (accept, expected) in cases {
            assert_eq!(content_type(Some(accept)).unwrap(), expected, "{accept}");
        }
    }

    #[test]
    fn what_cannot_be_served_is_refused() {
        for accept in [
            "app/anything-really",
            "text/plain",
            "text/*",
            "application/json;q=0",
            "application/json;q=2",
            "*/json",
            "garbage",
        ] {
            assert_eq!(
                content_type(Some(accept)),
                Err(ApiError::InvalidContentType),
                "{accept}"
            );
        }
    }

    #[test]
    fn gzip_is_taken_only_when_offered() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("br, gzip;q=0.5")));
        assert!(accepts_gzip(Some("*")));
        assert!(accepts_gzip(Some("GZip")));
        assert!(accepts_gzip(Some("deflate, X-GZIP;q=0.3")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("*, gzip;q=0")));
        assert!(!accepts_gzip(Some("br")));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let tags = ["\"abc\"", "\"abc-gzip\""];
        assert!(none_match(Some("\"abc\""), &tags));
        assert!(none_match(Some("\"x\", W/\"abc-gzip\""), &tags));
        assert!(none_match(Some("*"), &tags));
        assert!(!none_match(Some("\"abd\""), &tags));
        assert!(!none_match(None, &tags));
    }
}
