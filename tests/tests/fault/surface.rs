//! The graph-builder's main port under abuse: a thousand distinct raw paths leave a
//! bounded number of `uri_path` series on `/metrics`; a request target over 8 KiB is
//! refused with 414, a header block over 16 KiB with 431 and more than 64 query parameters
//! with 400, each counted by status on `/metrics`; the process stays small throughout.

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

#[test]
fn oversized_targets_headers_and_queries_are_refused() {
    let fake = healthy_registry();
    let dir = tempfile::tempdir().unwrap();
    graph_data(dir.path(), &CHANNEL);
    let mut gb = GraphBuilder::start_serving(&fake, dir.path(), 20);
    let host = format!("Host: {}", gb.main);
    let long_target = format!("/graph?pad={}", "a".repeat(8 * 1024));
    let padding = format!("X-Padding: {}", "b".repeat(16 * 1024));
    let params: Vec<String> = (0..65).map(|i| format!("p{i}=1")).collect();
    let many_params = format!("/graph?{}", params.join("&"));
    let at_limit = format!("/graph?{}", params[..64].join("&"));
    let cases = [
        (format!("GET {long_target} HTTP/1.0\r\n{host}"), 414),
        (format!("GET /graph HTTP/1.0\r\n{host}\r\n{padding}"), 431),
        (format!("GET {many_params} HTTP/1.0\r\n{host}"), 400),
        (format!("GET {at_limit} HTTP/1.0\r\n{host}"), 200),
    ];
    for round in 0..20 {
        for (request, expected) in &cases {
            let (code, body) = raw(&gb.main, request);
            assert_eq!(code, *expected, "{}: {body}", &request[..40]);
            if round == 0 && *expected != 200 {
                assert!(
                    body.contains("at most") || body.contains("more than 64"),
                    "{expected} names the limit: {body}"
                );
            }
        }
    }
    for code in ["414", "431", "400"] {
        let count = gb.wait_metric(&format!(
            "cincinnati_gb_graph_response_errors_total{{code=\"{code}\""
        ));
        assert_eq!(count, 20.0, "{code}");
    }
    gb.assert_alive();
    gb.assert_serves_healthy();
    gb.assert_peak_rss_below(96);
    gb.assert_wall_below(Duration::from_secs(30));
    gb.figure(
        "surface",
        "oversized_targets_headers_and_queries_are_refused",
    );
}
