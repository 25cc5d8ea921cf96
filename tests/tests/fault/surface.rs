//! The graph-builder's main port under abuse: a thousand distinct raw paths leave a
//! bounded number of `uri_path` series on `/metrics`; a request target over 8 KiB is
//! refused with 414, a header block over 16 KiB with 431 and more than 64 query parameters
//! with 400 (on the public port too), each counted by status on `/metrics`; the process
//! stays small throughout.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::time::Duration;

use crate::harness::*;

/// Sends `head` (request line and headers, without the blank line) over HTTP/1.0:
/// (status, body).
fn raw(addr: &str, head: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(format!("{head}\r\n\r\n").as_bytes())
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}

/// `path` with the letters whose bit is set in `mask` percent-escaped.
fn escaped(path: &str, mask: u32) -> String {
    let mut letter = 0;
    path.chars()
        .map(|c| {
            if !c.is_ascii_alphanumeric() {
                return c.to_string();
            }
            letter += 1;
            if mask & (1 << (letter - 1)) != 0 {
                format!("%{:02X}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The `uri_path` label values on `/metrics`.
fn uri_paths(gb: &GraphBuilder) -> BTreeSet<String> {
    gb.metrics()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once("uri_path=\"")?.1.split_once('"'))
        .map(|(label, _)| label.to_owned())
        .collect()
}

#[test]
fn a_thousand_raw_paths_leave_bounded_series() {
    let fake = healthy_registry();
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start_serving(&fake, dir.path(), 20);
    let series_before = gb.metrics().lines().filter(|l| !l.starts_with('#')).count();
    let mut paths = BTreeSet::new();
    for i in 0..1000u32 {
        let path = match i {
            // Every spelling of the graph routes with escaped letters.
            0..=31 => escaped("/graph", i),
            32..=159 => escaped("/v1/graph", i - 32),
            _ => match i % 4 {
                0 => format!("/graph/{i}"),
                1 => format!("/nothing-{i}"),
                2 => format!("/graph%2F{i}"),
                _ => format!("/{}{i}", escaped("graph", i % 32)),
            },
        };
        let (code, _) = gb.get(true, &path);
        assert!(code == 200 || code == 404, "{path}: {code}");
        paths.insert(path);
    }
    assert_eq!(paths.len(), 1000);
    let labels = uri_paths(&gb);
    let allowed = set(&["/graph", "/v1/graph", "other"]);
    assert!(
        !labels.is_empty() && labels.is_subset(&allowed),
        "{labels:?}"
    );
    let series_after = gb.metrics().lines().filter(|l| !l.starts_with('#')).count();
    assert!(
        series_after <= series_before + 8,
        "{series_before} series before, {series_after} after"
    );
    gb.assert_alive();
    gb.assert_serves_healthy();
    gb.assert_peak_rss_below(96);
    gb.assert_wall_below(Duration::from_secs(30));
    gb.figure("surface", "a_thousand_raw_paths_leave_bounded_series");
}

/// Sends `head` and reads whatever comes back: the status, or `None` when the
/// connection was closed or reset without one (the request still being sent).
fn raw_status(addr: &str, head: &str) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let _ = stream.write_all(format!("{head}\r\n\r\n").as_bytes());
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    response.split(' ').nth(1)?.parse().ok()
}

#[test]
fn oversized_targets_headers_and_queries_are_refused() {
    let fake = healthy_registry();
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start_serving(&fake, dir.path(), 20);
    let host = format!("Host: {}", gb.main);
    // The limits are inclusive: a target of exactly 8 KiB, and a header block (each
    // header counted as `name: value` and its line end) of exactly 16 KiB, pass.
    let target = |len: usize| format!("/graph?pad={}", "a".repeat(len - "/graph?pad=".len()));
    let host_bytes = "host".len() + gb.main.len() + 4;
    let padding = |block: usize| {
        let value = block - host_bytes - "x-padding".len() - 4;
        format!("X-Padding: {}", "b".repeat(value))
    };
    let medium: String = (0..40)
        .map(|i| format!("\r\nX-Medium-{i:02}: {}", "m".repeat(420)))
        .collect();
    let params: Vec<String> = (0..65).map(|i| format!("p{i}=1")).collect();
    let query = |n: usize| format!("/graph?{}", params[..n].join("&"));
    let get = |target: &str| format!("GET {target} HTTP/1.0\r\n{host}");
    let cases = [
        (get(&target(8 * 1024)), 200, ""),
        (get(&target(8 * 1024 + 1)), 414, "at most 8192 are accepted"),
        (
            get(&format!("/graph/{}", "a".repeat(32 * 1024))),
            414,
            "at most 8192 are accepted",
        ),
        (
            format!("{}\r\n{}", get("/graph"), padding(16 * 1024)),
            200,
            "",
        ),
        (
            format!("{}\r\n{}", get("/graph"), padding(16 * 1024 + 1)),
            431,
            "at most 16384 are accepted",
        ),
        (
            format!("{}{medium}", get("/graph")),
            431,
            "at most 16384 are accepted",
        ),
        (get(&query(64)), 200, ""),
        (get(&query(65)), 400, "more than 64 parameters"),
    ];
    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        for (request, expected, names) in &cases {
            let (code, body) = raw(&gb.main, request);
            assert_eq!(code, *expected, "{}: {body}", &request[..40]);
            if round == 0 {
                assert!(body.contains(names), "{expected} names the limit: {body}");
            }
            // The public port (the graph-data tarball) checks the same limits, before
            // routing too.
            if *expected != 200 {
                let (code, body) = raw(&gb.public, request);
                assert_eq!(code, *expected, "public {}: {body}", &request[..40]);
            }
        }
    }
    // Both ports count into the same series.
    for (series, count) in [
        ("{code=\"414\",kind=\"uri_too_long\"}", 4 * ROUNDS),
        (
            "{code=\"431\",kind=\"request_headers_too_large\"}",
            4 * ROUNDS,
        ),
        ("{code=\"400\",kind=\"too_many_params\"}", 2 * ROUNDS),
    ] {
        let series = format!("cincinnati_gb_graph_response_errors_total{series}");
        assert_eq!(gb.metric(&series), count as f64, "{series}");
    }
    // Past what the HTTP parser itself holds (more than 96 headers, a head of 256 KiB),
    // the request is refused or its connection closed before it is read: nothing is
    // answered with the graph, nothing grows, and the log does not get a line per try.
    let mark = gb.log_mark();
    let many: String = (0..100).map(|i| format!("\r\nX-Tiny-{i}: t")).collect();
    assert_eq!(
        raw_status(&gb.main, &format!("{}{many}", get("/graph"))),
        Some(431)
    );
    for _ in 0..ROUNDS {
        let huge = get(&format!("/graph/{}", "a".repeat(256 * 1024)));
        let code = raw_status(&gb.main, &huge);
        assert!(code.is_none_or(|c| (400..500).contains(&c)), "{code:?}");
    }
    let flood: Vec<String> = gb.logs()[mark..]
        .iter()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .cloned()
        .collect();
    assert!(flood.is_empty(), "{flood:#?}");
    gb.assert_alive();
    gb.assert_serves_healthy();
    gb.assert_peak_rss_below(96);
    gb.assert_wall_below(Duration::from_secs(30));
    gb.figure(
        "surface",
        "oversized_targets_headers_and_queries_are_refused",
    );
}
