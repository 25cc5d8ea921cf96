//! A refresh whose releases and graph-data are those of the last build reuses its graph
//! JSON; any change to either builds the graph again, and what the scrape saw besides the
//! releases (images it could not use) is always the new scrape's.

mod service;

use std::time::Duration;

use bytes::Bytes;
use graph_builder::config::EdgeAddRemoveSettings;
use graph_builder::graph_data_source::GraphDataSource;
use graph_builder::refresh::{Built, Pipeline, ReleaseSource};
use graph_builder::scrape::LayoutScraper;
use service::layout::add_release;
use service::{graph_data, write};

fn nodes(built: &Built) -> Vec<String> {
    let graph = graph_data::wire::from_json(&built.graph_json.to_vec()).unwrap();
    graph
        .releases()
        .map(|(_, r)| r.version.to_string())
        .collect()
}

/// Whether `b` is `a`'s very buffer (the gzip-coded JSON), not an equal copy.
fn same_buffer(a: &Bytes, b: &Bytes) -> bool {
    a.as_ptr() == b.as_ptr() && a.len() == b.len()
}

#[tokio::test]
async fn unchanged_inputs_reuse_the_graph_and_any_change_rebuilds_it() {
    let layout = tempfile::tempdir().unwrap();
    add_release(layout.path(), "4.16.0", &[], "amd64");
    add_release(layout.path(), "4.16.1", &["4.16.0"], "amd64");
    let gd = tempfile::tempdir().unwrap();
    graph_data(gd.path(), "stable-4.16", &["4.16.0", "4.16.1"]);
    let pipeline = Pipeline::new(
        ReleaseSource::OciLayout(LayoutScraper::new(layout.path(), "example.com/ocp/release")),
        Some(GraphDataSource::Path(gd.path().to_path_buf())),
        Some(EdgeAddRemoveSettings {
            include_conditional_edges: true,
        }),
    );

    let first = pipeline.build().await.unwrap();
    assert_eq!(nodes(&first), ["4.16.0+amd64", "4.16.1+amd64"]);
    assert!(first.findings.invalid.is_empty());

    // Nothing changed: the same JSON, not built again.
    let second = pipeline.build().await.unwrap();
    assert!(same_buffer(
        first.graph_json.gzip(),
        second.graph_json.gzip()
    ));
    assert!(same_buffer(&first.provenance, &second.provenance));
    assert_eq!(second.timings.assemble, Duration::ZERO);
    assert_eq!((second.nodes, second.edges), (first.nodes, first.edges));

    // An image the scrape cannot use changes no release: the graph is reused, and the
    // image is reported all the same.
    add_release(layout.path(), "4.16.x", &[], "amd64");
    let third = pipeline.build().await.unwrap();
    assert!(same_buffer(
        first.graph_json.gzip(),
        third.graph_json.gzip()
    ));
    let invalid: Vec<&str> = third
        .findings
        .invalid
        .iter()
        .map(|i| i.tag.as_str())
        .collect();
    assert_eq!(invalid, ["4.16.x-amd64"]);

    // A new release: built again.
    add_release(layout.path(), "4.16.2", &["4.16.1"], "amd64");
    let fourth = pipeline.build().await.unwrap();
    assert!(!same_buffer(
        first.graph_json.gzip(),
        fourth.graph_json.gzip()
    ));
    assert_eq!(
        nodes(&fourth),
        ["4.16.0+amd64", "4.16.1+amd64", "4.16.2+amd64"]
    );

    // Graph-data changed (a risk-free channel edit): built again, with the new channel.
    write(
        gd.path(),
        "channels/fast-4.16.yaml",
        "name: fast-4.16\nversions: [4.16.2]\n",
    );
    let fifth = pipeline.build().await.unwrap();
    assert!(!same_buffer(
        fourth.graph_json.gzip(),
        fifth.graph_json.gzip()
    ));
    let json = String::from_utf8(fifth.graph_json.to_vec()).unwrap();
    assert!(json.contains("fast-4.16"), "{json}");
    assert!(!String::from_utf8(fourth.graph_json.to_vec())
        .unwrap()
        .contains("fast-4.16"));

    // And reused again once nothing changes.
    let sixth = pipeline.build().await.unwrap();
    assert!(same_buffer(
        fifth.graph_json.gzip(),
        sixth.graph_json.gzip()
    ));
    assert_eq!(sixth.findings.invalid.len(), 1);
}
