//! Every error kind the API can answer with, over HTTP, with its status and body.

use graph_data::{Graph, Metadata, Release};
use semver::Version;

use crate::harness::{fixture, get, Pe};

#[tokio::test]
async fn client_errors_have_the_reference_kinds_statuses_and_texts() {
    let pe = Pe::with_graph(fixture(), "", "channel").await;
    let graph = |query: &'static str, accept: Option<&'static str>| {
        let base = pe.base.clone();
        async move {
            let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
            get(&format!("{base}/graph?{query}"), &headers)
                .await
                .summary()
        }
    };
    insta::assert_snapshot!(graph("channel=stable-4.1", Some("app/anything-really")).await, @r#"
    406 application/json
    {"kind":"invalid_content_type","value":"invalid Content-Type requested"}
    "#);
    // Accept is checked before the parameters.
    insta::assert_snapshot!(graph("", Some("text/plain")).await, @r#"
    406 application/json
    {"kind":"invalid_content_type","value":"invalid Content-Type requested"}
    "#);
    insta::assert_snapshot!(graph("arch=amd64", None).await, @r#"
    400 application/json
    {"kind":"missing_params","value":"mandatory client parameters missing: channel"}
    "#);
    insta::assert_snapshot!(graph("channel=invalid:channel", None).await, @r#"
    400 application/json
    {"kind":"invalid_params","value":"invalid client parameters: channel 'invalid:channel' does not match regex '^[0-9a-z\\-\\.]+$'"}
    "#);
    insta::assert_snapshot!(graph("channel=invalid%3Dchannel", None).await, @r#"
    400 application/json
    {"kind":"invalid_params","value":"invalid client parameters: channel 'invalid=channel' does not match regex '^[0-9a-z\\-\\.]+$'"}
    "#);
    // Present but empty passes the presence check, then fails the pattern.
    insta::assert_snapshot!(graph("channel=", None).await, @r#"
    400 application/json
    {"kind":"invalid_params","value":"invalid client parameters: channel '' does not match regex '^[0-9a-z\\-\\.]+$'"}
    "#);
    insta::assert_snapshot!(graph("channel=stable-4.1&arch=x86_64", None).await, @r#"
    400 application/json
    {"kind":"invalid_params","value":"invalid client parameters: arch 'x86_64' does not match regex '^[0-9a-z]+$'"}
    "#);
    insta::assert_snapshot!(graph("channel=%FF", None).await, @r#"
    400 application/json
    {"kind":"invalid_params","value":"invalid client parameters: query value \"%FF\" does not decode to UTF-8 text"}
    "#);
    pe.stop().await;
}

#[tokio::test]
async fn missing_channel_is_missing_params_even_when_not_mandatory() {
    let pe = Pe::with_graph(fixture(), "", "arch,id").await;
    let answer = get(&format!("{}/graph", pe.base), &[]).await;
    insta::assert_snapshot!(answer.summary(), @r#"
    400 application/json
    {"kind":"missing_params","value":"mandatory client parameters missing: arch, id"}
    "#);
    let answer = get(&format!("{}/graph?arch=amd64&id=1", pe.base), &[]).await;
    insta::assert_snapshot!(answer.summary(), @r#"
    400 application/json
    {"kind":"missing_params","value":"mandatory client parameters missing: channel"}
    "#);
    pe.stop().await;
}

#[tokio::test]
async fn versions_that_collide_once_stripped_are_arch_version_error() {
    let mut graph = Graph::new();
    for version in ["4.1.0+amd64", "4.1.0"] {
        let mut metadata = Metadata::new();
        metadata.insert(
            "io.openshift.upgrades.graph.release.channels".into(),
            "c".into(),
        );
        metadata.insert(
            "io.openshift.upgrades.graph.release.arch".into(),
            "amd64".into(),
        );
        let release = Release::concrete(Version::parse(version).unwrap(), "r/p@sha256:0", metadata);
        graph.add_release(release).unwrap();
    }
    let pe = Pe::with_graph(graph, "", "").await;
    let answer = get(&format!("{}/graph?channel=c", pe.base), &[]).await;
    insta::assert_snapshot!(answer.summary(), @r#"
    500 application/json
    {"kind":"arch_version_error","value":"failed to process version: release 4.1.0 for arch amd64: duplicate release version 4.1.0"}
    "#);
    pe.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let pe = Pe::with_graph(fixture(), "", "").await;
    let answer = get(&format!("{}/v2/graph?channel=stable-4.1", pe.base), &[]).await;
    assert_eq!(answer.summary(), "404 -\n");
    let post = crate::harness::client()
        .post(format!("{}/graph?channel=stable-4.1", pe.base))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    let head = crate::harness::client()
        .head(format!("{}/graph?channel=stable-4.1", pe.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.headers().contains_key("etag"));
    pe.stop().await;
}
