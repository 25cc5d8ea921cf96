//! Tag listing pages and their `Link` pagination header (RFC 8288).

use serde::Deserialize;

/// One page of `GET /v2/<repo>/tags/list`.
#[derive(Debug, Deserialize)]
pub(crate) struct TagPage {
    /// Registries send `null` for an empty repository.
    #[serde(default)]
    pub(crate) tags: Option<Vec<String>>,
}

/// The target of the `rel="next"` link in a `Link` header value, relative or absolute.
pub(crate) fn next_link(value: &str) -> Option<String> {
    // Links are `<uri>; param; param, <uri>; ...`; a URI never contains `>`.
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>')?;
        let target = &after[..end];
        let params_end = after[end..].find('<').map_or(after.len(), |i| end + i);
        // Up to the next link: without the comma that separates them, or an unquoted
        // `rel=next,` would read as `next,`.
        let params = after[end + 1..params_end].trim_end().trim_end_matches(',');
        let is_next = params.split(';').any(|param| {
            param.split_once('=').is_some_and(|(key, value)| {
                key.trim().eq_ignore_ascii_case("rel")
                    && value
                        .trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(target.to_string());
        }
        rest = &after[params_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links() {
        assert_eq!(
            next_link(r#"</v2/ocp/release/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/ocp/release/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://r.example/v2/x/tags/list?last=a>; rel=next"#).as_deref(),
            Some("https://r.example/v2/x/tags/list?last=a")
        );
        assert_eq!(
            next_link(r#"</first>; rel="prev", </second?a=1;b>; type="x"; rel="next""#).as_deref(),
            Some("/second?a=1;b")
        );
        assert_eq!(next_link(r#"</only>; rel="prev""#), None);
        // Followed by another link, quoted or not.
        assert_eq!(
            next_link("</a>; rel=next, </b>; rel=prev").as_deref(),
            Some("/a")
        );
        assert_eq!(
            next_link(r#"</a>; rel="next", </b>"#).as_deref(),
            Some("/a")
        );
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn null_tags_are_an_empty_page() {
        let page: TagPage = serde_json::from_str(r#"{"name":"x","tags":null}"#).unwrap();
        assert!(page.tags.is_none());
    }
}
