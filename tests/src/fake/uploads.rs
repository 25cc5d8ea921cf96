//! Uploads: `POST .../blobs/uploads/` (optionally a cross-repository mount), the monolithic
//! `PUT <location>?digest=`, and `PUT .../manifests/<tag>`. The upload `Location` is
//! relative or absolute (`Behaviour::absolute_upload_location`), and the digest of every
//! upload is checked, as a real registry does.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use bytes::Bytes;

use super::{digest_of, registry_error, Blob, State};

/// Answers an upload request, or `None` when `method path` is not one.
pub(super) fn handle(
    s: &mut State,
    method: &str,
    rest: &str,
    query: &str,
    host: &str,
    body: &Bytes,
    content_type: Option<&str>,
) -> Option<HttpResponse> {
    let params = web::Query::<HashMap<String, String>>::from_query(query)
        .map(|q| q.into_inner())
        .unwrap_or_default();
    if method == "POST" {
        let name = rest.strip_suffix("/blobs/uploads/")?;
        if let (Some(digest), Some(from)) = (params.get("mount"), params.get("from")) {
            let blob = s
                .repos
                .get(from.as_str())
                .and_then(|r| r.blobs.get(digest))
                .cloned();
            if let Some(blob) = blob.filter(|_| s.behaviour.allow_mount) {
                s.repos
                    .entry(name.to_owned())
                    .or_default()
                    .blobs
                    .insert(digest.clone(), blob);
                return Some(HttpResponse::Created().finish());
            }
        }
        s.uploads += 1;
        let path = format!("/v2/{name}/blobs/uploads/upload-{}?state=opaque", s.uploads);
        let location = if s.behaviour.absolute_upload_location {
            format!("http://{host}{path}")
        } else {
            path
        };
        return Some(
            HttpResponse::Accepted()
                .insert_header(("Location", location))
                .finish(),
        );
    }
    if method != "PUT" {
        return None;
    }
    if let Some((name, _upload)) = rest.split_once("/blobs/uploads/") {
        let Some(digest) = params.get("digest") else {
            return Some(registry_error(400, "DIGEST_INVALID", "no digest"));
        };
        if params.get("state").map(String::as_str) != Some("opaque") {
            return Some(registry_error(
                400,
                "BLOB_UPLOAD_INVALID",
                "lost the upload state",
            ));
        }
        if *digest != digest_of(body) {
            return Some(registry_error(
                400,
                "DIGEST_INVALID",
                "digest does not match",
            ));
        }
        s.repos
            .entry(name.to_owned())
            .or_default()
            .blobs
            .insert(digest.clone(), Blob::Stored(body.clone()));
        return Some(HttpResponse::Created().finish());
    }
    let (name, tag) = rest.rsplit_once("/manifests/")?;
    let Some(media_type) = content_type else {
        return Some(registry_error(400, "MANIFEST_INVALID", "no Content-Type"));
    };
    let repo = s.repos.entry(name.to_owned()).or_default();
    let manifest: serde_json::Value = match serde_json::from_slice(body) {
        Ok(m) => m,
        Err(_) => return Some(registry_error(400, "MANIFEST_INVALID", "not JSON")),
    };
    let referenced = std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().into_iter().flatten())
        .filter_map(|d| d["digest"].as_str());
    for digest in referenced {
        if !repo.blobs.contains_key(digest) {
            return Some(registry_error(400, "MANIFEST_BLOB_UNKNOWN", digest));
        }
    }
    let digest = digest_of(body);
    repo.manifests
        .insert(digest.clone(), (media_type.to_owned(), body.clone()));
    repo.tags.retain(|(t, _)| t != tag);
    repo.tags.push((tag.to_owned(), digest.clone()));
    Some(
        HttpResponse::Created()
            .insert_header(("Docker-Content-Digest", digest))
            .finish(),
    )
}
