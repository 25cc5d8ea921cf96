//! Bodies served from memory: strong ETags, 304 on If-None-Match, gzip on request.

use std::io::Read;

use crate::harness::{fixture, get, Pe};

#[tokio::test]
async fn etag_revalidation_and_gzip() {
    let pe = Pe::with_graph(fixture(), "", "").await;
    let url = format!("{}/graph?channel=candidate-4.1", pe.base);
    let plain = get(&url, &[]).await;
    let etag = plain.header("etag").unwrap().to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    assert_eq!(plain.header("content-encoding"), None);
    assert!(plain.header("vary").unwrap().contains("Accept-Encoding"));

    let again = get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(&*etag));
    let list = format!("\"other\", W/{etag}");
    assert_eq!(get(&url, &[("if-none-match", &list)]).await.status, 304);
    let stale = get(&url, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, plain.body);
    // Another channel is another body with another tag.
    let other = get(&format!("{}/graph?channel=stable-4.1", pe.base), &[]).await;
    assert_ne!(other.header("etag"), Some(&*etag));

    let gzip = get(&url, &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(gzip.status, 200);
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    let gzip_etag = gzip.header("etag").unwrap().to_owned();
    assert_ne!(gzip_etag, etag);
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&gzip.body[..])
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, plain.body);
    let revalidated = get(
        &url,
        &[("accept-encoding", "gzip"), ("if-none-match", &gzip_etag)],
    )
    .await;
    assert_eq!(revalidated.status, 304);
    assert_eq!(
        get(&url, &[("accept-encoding", "gzip;q=0")]).await.body,
        plain.body
    );
    pe.stop().await;
}
