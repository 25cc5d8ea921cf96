//! The planner page, `{prefix}/planner/`: plain HTML, CSS and JavaScript embedded in the
//! binary, so it works on a site with no internet (no CDN, no external URL). It talks to
//! the API with relative URLs, so it works under any prefix.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/planner.js");
const STYLE: &str = include_str!("assets/planner.css");

/// Registers the page and its assets under `prefix`.
pub(super) fn configure(cfg: &mut web::ServiceConfig, prefix: &str) {
    let slash = format!("{prefix}/planner/");
    cfg.service(
        web::resource(format!("{prefix}/planner")).route(web::get().to(move || {
            let location = slash.clone();
            async move {
                HttpResponse::MovedPermanently()
                    .insert_header((header::LOCATION, location))
                    .finish()
            }
        })),
    );
    cfg.service(
        web::resource(format!("{prefix}/planner/"))
            .route(web::get().to(|| asset(INDEX, "text/html; charset=utf-8"))),
    );
    cfg.service(
        web::resource(format!("{prefix}/planner/planner.js"))
            .route(web::get().to(|| asset(SCRIPT, "text/javascript; charset=utf-8"))),
    );
    cfg.service(
        web::resource(format!("{prefix}/planner/planner.css"))
            .route(web::get().to(|| asset(STYLE, "text/css; charset=utf-8"))),
    );
}

async fn asset(body: &'static str, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        // Everything the page loads comes from this service.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_name_no_external_url() {
        for asset in [INDEX, SCRIPT, STYLE] {
            // The SVG namespace is a name, never fetched.
            let asset = asset.replace("\"http://www.w3.org/2000/svg\"", "");
            assert!(
                !asset.contains("http://")
                    && !asset.contains("https://")
                    && !asset.contains("//cdn")
            );
        }
    }
}
