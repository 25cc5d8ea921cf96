//! The planner commands of the `graph-data` tool (`plan`, `explain`, `gaps`): against a
//! running policy-engine (`--server`), or offline, building the graph and its provenance
//! here from a release source and graph-data with the graph-builder's own pipeline.
//! Answers are the same JSON documents either way; text output is for people.

use std::time::Duration;

use clap::Args;
use graph_data::planner::{
    self, ChannelView, EdgeKind, Explanation, MirrorGaps, PathAnswer, Reason,
};
use graph_data::provenance::Provenance;
use graph_data::Graph;
use semver::Version;

use crate::config::common::ReleaseArgs;
use crate::config::{EdgeAddRemoveSettings, ReleaseSourceSettings};
use crate::graph_data_source::GraphDataSource;
use crate::refresh::{Pipeline, ReleaseSource};
use crate::scrape::ScrapeSettings;
use graph_data::keys::chain;

/// Largest answer accepted from a server, in bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// Where the graph comes from, and the output form.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// A running policy-engine: its base URL with the path prefix
    /// (`http://127.0.0.1:8081/api/upgrades_info`).
    #[arg(long, env = "GRAPH_DATA_SERVER", conflicts_with_all = ["releases_oci_layout", "releases_registry"])]
    pub server: Option<String>,
    /// Offline: the release source and graph-data, with the services' flags
    /// (`--releases-registry`, `--releases-oci-layout`, `--graph-data`, ...).
    #[command(flatten)]
    pub releases: ReleaseArgs,
    /// `host[:port]/repository` the payloads of an OCI layout are pulled from.
    #[arg(long, default_value = "quay.io/openshift-release-dev/ocp-release")]
    pub payload_repository: String,
    /// The channel.
    #[arg(long)]
    pub channel: String,
    /// The architecture.
    #[arg(long, default_value = "amd64")]
    pub arch: String,
    /// Print the JSON answer instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One planner question.
#[derive(Debug, Clone)]
pub enum Question {
    /// The fewest-hop path.
    Plan {
        /// From.
        from: Version,
        /// To, or the newest reachable.
        to: Option<Version>,
    },
    /// One edge.
    Explain {
        /// From.
        from: Version,
        /// To.
        to: Version,
    },
    /// The channel's mirror gaps.
    Gaps,
}

/// Answers `question` and prints it; the exit status: 0 answered, 1 the answer is
/// negative (no edge, no path), 2 the question could not be answered.
pub fn run(source: &SourceArgs, question: &Question) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("graph-data: cannot start the async runtime: {e}");
            return 2;
        }
    };
    match runtime.block_on(answer(source, question)) {
        Ok((doc, text, negative)) => {
            if source.json {
                println!("{doc}");
            } else {
                print!("{text}");
            }
            u8::from(negative)
        }
        Err(message) => {
            eprintln!("graph-data: {message}");
            2
        }
    }
}

/// Answers `question` from `source`: the JSON document, its text form, and whether the
/// answer is negative (no edge, no path). Server and offline answers are the same
/// documents, which the tests compare.
pub async fn answer(
    source: &SourceArgs,
    question: &Question,
) -> Result<(String, String, bool), String> {
    if let Some(server) = &source.server {
        let (path, mut query) = match question {
            Question::Plan { from, to } => {
                let mut q = vec![("from", from.to_string())];
                if let Some(to) = to {
                    q.push(("to", to.to_string()));
                }
                ("v1/path", q)
            }
            Question::Explain { from, to } => (
                "v1/explain",
                vec![("from", from.to_string()), ("to", to.to_string())],
            ),
            Question::Gaps => ("v1/mirror-gaps", vec![]),
        };
        query.push(("channel", source.channel.clone()));
        query.push(("arch", source.arch.clone()));
        let url = format!("{}/{path}", server.trim_end_matches('/'));
        let body = fetch(&url, &query).await?;
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))?;
        let as_text = |e: serde_json::Error| format!("{url}: unexpected answer: {e}");
        return Ok(match question {
            Question::Plan { .. } => {
                let p: PathAnswer = serde_json::from_value(doc.clone()).map_err(as_text)?;
                (doc.to_string(), path_text(&p), p.paths.is_empty())
            }
            Question::Explain { .. } => {
                let x: Explanation = serde_json::from_value(doc.clone()).map_err(as_text)?;
                (doc.to_string(), explain_text(&x), x.edge == EdgeKind::None)
            }
            Question::Gaps => {
                let g: MirrorGaps = serde_json::from_value(doc.clone()).map_err(as_text)?;
                (doc.to_string(), gaps_text(&g), false)
            }
        });
    }
    let (graph, provenance) = build(source).await?;
    let view = ChannelView::new(&graph, &source.channel, &source.arch);
    let json = |v: &dyn erased::Json| v.to_json();
    Ok(match question {
        Question::Plan { from, to } => {
            let p = planner::path(&graph, &provenance, &view, from, to.as_ref());
            (json(&p), path_text(&p), p.paths.is_empty())
        }
        Question::Explain { from, to } => {
            let x = planner::explain(&graph, &provenance, &view, from, to);
            (json(&x), explain_text(&x), x.edge == EdgeKind::None)
        }
        Question::Gaps => {
            let g = planner::mirror_gaps(&graph, &provenance, &view);
            (json(&g), gaps_text(&g), false)
        }
    })
}

/// Serializing the planner's answers through one function.
mod erased {
    pub trait Json {
        fn to_json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).expect("planner answers serialize")
        }
    }
}

async fn fetch(url: &str, query: &[(&str, String)]) -> Result<Vec<u8>, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))?;
    let mut response = client
        .get(url)
        .query(query)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!(
                "{url}: the answer exceeds {MAX_ANSWER_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(format!(
            "{url}: {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(body)
}

async fn build(source: &SourceArgs) -> Result<(Graph, Provenance), String> {
    let r = &source.releases;
    let releases = match (&r.releases_oci_layout, &r.releases_registry) {
        (Some(dir), _) => ReleaseSourceSettings::OciLayout {
            dir: dir.clone(),
            payload_repository: source.payload_repository.clone(),
        },
        (None, Some(registry)) => {
            let Some(repository) = r.releases_repository.clone() else {
                return Err("--releases-registry needs --releases-repository REPO".to_owned());
            };
            ReleaseSourceSettings::Registry(Box::new(ScrapeSettings {
                registry: registry.clone(),
                repository,
                client: r.access.client_config(),
                ..ScrapeSettings::default()
            }))
        }
        (None, None) => {
            return Err(
                "give --server URL, or --releases-oci-layout DIR or --releases-registry HOST \
                        (with --graph-data) to work offline"
                    .to_owned(),
            )
        }
    };
    let pipeline = Pipeline::new(
        ReleaseSource::new(&releases).map_err(|e| chain(&e))?,
        r.graph_data.clone().map(GraphDataSource::Path),
        Some(EdgeAddRemoveSettings {
            include_conditional_edges: true,
        }),
    );
    let built = pipeline.build_graph().await.map_err(|e| chain(&e))?;
    Ok((built.graph, built.provenance))
}

fn reasons_text(out: &mut String, reasons: &[Reason]) {
    for r in reasons {
        let kind = serde_json::to_value(r.kind).ok();
        let kind = kind.as_ref().and_then(|k| k.as_str()).unwrap_or("?");
        out.push_str(&format!("  {kind}: {}", r.detail));
        if let Some(file) = &r.file {
            out.push_str(&format!(" [{file}]"));
        }
        out.push('\n');
    }
}

fn edge_name(edge: EdgeKind) -> &'static str {
    match edge {
        EdgeKind::Recommended => "recommended",
        EdgeKind::Conditional => "conditional",
        EdgeKind::None => "none",
    }
}

/// `explain` as text.
pub fn explain_text(x: &Explanation) -> String {
    let mut out = format!(
        "{} -> {} in {} ({}): {}\n",
        x.from,
        x.to,
        x.channel,
        x.arch,
        edge_name(x.edge)
    );
    for risk in &x.risks {
        out.push_str(&format!(
            "  risk {}: {} ({})\n",
            risk.name, risk.message, risk.url
        ));
    }
    reasons_text(&mut out, &x.reasons);
    out
}

/// `plan` as text.
pub fn path_text(p: &PathAnswer) -> String {
    let to = p.to.as_deref().unwrap_or("?");
    let mut out = String::new();
    match p.paths.first() {
        Some(path) => {
            out.push_str(&format!(
                "{} -> {} in {} ({}): {} hop(s){}\n",
                p.from,
                to,
                p.channel,
                p.arch,
                path.hops.len(),
                if path.conditional {
                    ", through conditional edges"
                } else {
                    ""
                }
            ));
            for hop in &path.hops {
                out.push_str(&format!(
                    "  {} -> {} ({})\n",
                    hop.from,
                    hop.to,
                    edge_name(hop.edge)
                ));
                for risk in &hop.risks {
                    out.push_str(&format!("    risk {}: {}\n", risk.name, risk.url));
                }
            }
        }
        None => {
            out.push_str(&format!(
                "no path from {} to {to} in {} ({})\n",
                p.from, p.channel, p.arch
            ));
            reasons_text(&mut out, &p.reasons);
        }
    }
    out
}

/// `gaps` as text.
pub fn gaps_text(g: &MirrorGaps) -> String {
    let mut out = format!(
        "{} ({}): head {}, {} version(s) listed but not mirrored\n",
        g.channel,
        g.arch,
        g.head.as_deref().unwrap_or("-"),
        g.missing.len()
    );
    for gap in &g.missing {
        out.push_str(&format!("  {} {}", gap.version, gap.effect));
        if !gap.helps.is_empty() {
            out.push_str(&format!(" (for {})", gap.helps.join(", ")));
        }
        out.push('\n');
    }
    out
}
