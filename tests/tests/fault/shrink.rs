//! Fetch failures never shrink the graph: a listed tag that cannot be read keeps its
//! release from the last good scrape (and `/status` and `/metrics` say so), and a tag list
//! that empties is held back once, published only when the next refresh lists it again.

use std::time::Duration;

use integration_tests::fake::Fault;

use crate::harness::*;

#[test]
fn a_failing_listed_tag_keeps_its_release() {
    let fake = healthy_registry();
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start_serving(&fake, dir.path(), 20);
    let graph_before = gb.get(true, "/graph").1;
    assert_eq!(gb.metric("cincinnati_gb_scrape_tags_failing"), 0.0);
    for (status, reason) in [
        (500, "tag 4.18.1: answered 500"),
        (
            404,
            "tag 4.18.1 manifest is not found, although the repository lists the tag",
        ),
    ] {
        let mark = gb.log_mark();
        script(
            &fake,
            vec![("/manifests/4.18.1".into(), Fault::Status(status))],
        );
        // A refresh already running may still log the previous fault: wait for this one.
        let line = gb.wait_log(reason, mark);
        assert!(
            line.contains(
                "cannot read a listed tag: keeping its release from the last good scrape"
            ),
            "{line}"
        );
        assert!(line.contains("tag=4.18.1"), "{line}");
        assert!(line.contains("kept=4.18.1+amd64"), "{line}");
        // The status board is written when the refresh ends, just after the warning.
        wait_until("/status names the failing tag", || {
            let failing = &gb.status_doc()["releases"]["failing_tags"];
            failing[0]["tag"] == "4.18.1"
                && failing[0]["reason"].as_str().unwrap_or("").contains(reason)
        });
        let releases = gb.status_doc()["releases"].clone();
        assert_eq!(releases["failing_tags"].as_array().unwrap().len(), 1);
        assert_eq!(releases["failing_tags"][0]["kept"], "4.18.1+amd64");
        assert_eq!(releases["kept_from_last_good"], 1);
        assert_eq!(gb.metric("cincinnati_gb_scrape_tags_failing"), 1.0);
        assert_eq!(
            gb.metric("cincinnati_gb_scrape_releases_kept_from_last_good"),
            1.0
        );
        // Nodes served unchanged, to the byte.
        assert_eq!(gb.get(true, "/graph").1, graph_before, "{status}");
        gb.assert_alive();
    }
    gb.wait_metric("cincinnati_gb_registry_errors_total{cause=\"status\"}");
    // Readable again: nothing failing, nothing kept.
    script(&fake, vec![]);
    wait_until("no failing tags", || {
        gb.status_doc()["releases"]["failing_tags"] == serde_json::json!([])
    });
    assert_eq!(gb.metric("cincinnati_gb_scrape_tags_failing"), 0.0);
    assert_eq!(gb.versions(), set(&HEALTHY));
    gb.assert_peak_rss_below(96);
    gb.assert_wall_below(Duration::from_secs(30));
    gb.figure("shrink", "a_failing_listed_tag_keeps_its_release");
}

#[test]
fn an_emptied_tag_list_is_published_only_when_confirmed() {
    let fake = healthy_registry();
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start_serving(&fake, dir.path(), 20);
    let graph_before = gb.get(true, "/graph").1;
    assert_eq!(
        gb.metric("cincinnati_gb_scrape_tag_list_shrink_held_back"),
        0.0
    );
    let mark = gb.log_mark();
    fake.with(|s| s.repos.get_mut(REPO).unwrap().tags.clear());
    let held = gb.wait_log("the tag list shrank to less than half", mark);
    assert!(held.contains("previous_tags=2"), "{held}");
    assert!(held.contains("listed_tags=0"), "{held}");
    // The held-back refresh publishes the last good releases again, and says so; the next
    // refresh confirms the empty list, so this is caught between the two.
    wait_until("/status and /metrics report the held-back shrink", || {
        gb.status_doc()["releases"]["held_back_shrink"]
            == serde_json::json!({"previous_tags": 2, "listed_tags": 0})
            && gb.metric("cincinnati_gb_scrape_tag_list_shrink_held_back") == 1.0
            && gb.get(true, "/graph").1 == graph_before
    });
    let confirmed = gb.wait_log("the tag list shrank again: publishing it", mark);
    assert!(confirmed.contains("listed_tags=0"), "{confirmed}");
    wait_until("the empty list is published", || gb.nodes() == 0);
    // Held back exactly once before it was believed.
    let logs = gb.logs();
    let held_lines = logs[mark..]
        .iter()
        .take_while(|l| !l.contains("shrank again"))
        .filter(|l| l.contains("shrank to less than half"))
        .count();
    assert_eq!(held_lines, 1, "{}", logs[mark..].join("\n"));
    wait_until("/status drops the hold", || {
        gb.status_doc()["releases"]
            .get("held_back_shrink")
            .is_none()
    });
    assert_eq!(
        gb.metric("cincinnati_gb_scrape_tag_list_shrink_held_back"),
        0.0
    );
    gb.assert_alive();
    gb.assert_peak_rss_below(96);
    gb.assert_wall_below(Duration::from_secs(30));
    gb.figure(
        "shrink",
        "an_emptied_tag_list_is_published_only_when_confirmed",
    );
}

#[test]
fn a_tag_failing_from_a_cold_start_is_reported_and_the_rest_publish() {
    let fake = healthy_registry();
    let (manifest, _) = untagged_release(&fake, "4.18.2", &["4.18.1"]);
    script(
        &fake,
        vec![("/manifests/4.18.2".into(), Fault::Status(503))],
    );
    tag(&fake, "4.18.2", &manifest);
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start(&fake, dir.path(), 20, &[]);
    let line = gb.wait_log(
        "cannot read a listed tag, and no earlier scrape read it: it is left out",
        0,
    );
    assert!(line.contains("tag=4.18.2"), "{line}");
    gb.wait_log("graph refreshed", 0);
    assert_eq!(gb.versions(), set(&HEALTHY));
    let releases = gb.status_doc()["releases"].clone();
    assert_eq!(releases["failing_tags"][0]["tag"], "4.18.2", "{releases}");
    // Nothing to keep it from.
    assert!(
        releases["failing_tags"][0].get("kept").is_none(),
        "{releases}"
    );
    assert_eq!(releases["kept_from_last_good"], 0);
    assert_eq!(gb.metric("cincinnati_gb_scrape_tags_failing"), 1.0);
    assert_eq!(
        gb.metric("cincinnati_gb_scrape_releases_kept_from_last_good"),
        0.0
    );
    // Once readable, it joins the graph.
    script(&fake, vec![]);
    wait_until("4.18.2 is served", || gb.versions().contains("4.18.2"));
    wait_until("nothing failing", || {
        gb.metric("cincinnati_gb_scrape_tags_failing") == 0.0
    });
    gb.assert_alive();
    gb.assert_peak_rss_below(96);
    gb.assert_wall_below(Duration::from_secs(30));
    gb.figure(
        "shrink",
        "a_tag_failing_from_a_cold_start_is_reported_and_the_rest_publish",
    );
}
