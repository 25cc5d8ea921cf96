//! Tag list pages: the repository's tags in pages of `page_size` linked by `Link`
//! headers (relative or absolute), or pages without end.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};

use super::{Behaviour, Repo};

/// Page `last=pN` of a listing without end: `per_page` fresh tags and a link onwards.
pub(super) fn endless_page(name: &str, query: &str, per_page: usize) -> HttpResponse {
    let page: u64 = web::Query::<HashMap<String, String>>::from_query(query)
        .ok()
        .and_then(|q| {
            q.get("last")?
                .strip_prefix('p')?
                .split('-')
                .next()?
                .parse()
                .ok()
        })
        .map_or(0, |last: u64| last + 1);
    let tags: Vec<String> = (0..per_page).map(|i| format!("p{page}-{i}")).collect();
    let last = tags.last().cloned().unwrap_or(format!("p{page}-none"));
    HttpResponse::Ok()
        .insert_header((
            "Link",
            format!(r#"</v2/{name}/tags/list?n={per_page}&last={last}>; rel="next""#),
        ))
        .json(serde_json::json!({ "name": name, "tags": tags }))
}

pub(super) fn tags_page(
    b: &Behaviour,
    repo: &Repo,
    name: &str,
    query: &str,
    host: &str,
) -> HttpResponse {
    let params = web::Query::<HashMap<String, String>>::from_query(query)
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let all: Vec<&String> = repo.tags.iter().map(|(t, _)| t).collect();
    let start = params
        .get("last")
        .and_then(|last| all.iter().position(|t| *t == last))
        .map_or(0, |i| i + 1);
    let size = b.page_size.unwrap_or(usize::MAX);
    let page: Vec<&String> = all.iter().skip(start).take(size).copied().collect();
    let mut response = HttpResponse::Ok();
    if start + page.len() < all.len() {
        let last = page.last().unwrap();
        let link = format!("/v2/{name}/tags/list?n={size}&last={last}");
        let link = if b.absolute_links {
            format!("http://{host}{link}")
        } else {
            link
        };
        response.insert_header(("Link", format!(r#"<{link}>; rel="next""#)));
    }
    response.json(serde_json::json!({ "name": name, "tags": page }))
}
