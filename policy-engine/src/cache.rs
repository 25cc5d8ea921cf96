//! Response bodies of one graph revision, computed once per (channel, arch) and served
//! from memory (SPEC A5).
//!
//! The cache is bounded by construction: a slot exists only for channels and arches that
//! some release of this revision lists, so at most channels x arches bodies are ever
//! held. Any other valid (channel, arch) pair selects no release and shares one
//! precomputed empty-graph body. A new revision gets a new [`Snapshot`]; the old one is
//! freed when the last request using it is done.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use flate2::write::GzEncoder;
use graph_data::Graph;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::error::ApiError;
use crate::filter::{self, ARCH_KEY, CHANNELS_KEY};

/// One response body in both codings, with its entity tags.
#[derive(Debug)]
pub struct Body {
    /// The JSON document, `{"version":1,…}`.
    pub identity: Bytes,
    /// The same document, gzip-coded.
    pub gzip: Bytes,
    /// Strong entity tag of `identity` (quoted), derived from its content, so an
    /// unchanged body keeps its tag across graph revisions.
    pub etag: String,
    /// Strong entity tag of `gzip` (quoted).
    pub etag_gzip: String,
}

impl Body {
    /// Serializes a (filtered) graph and gzips it.
    pub fn new(graph: &Graph) -> Result<Self, ApiError> {
        let identity = graph_data::wire::to_versioned_json(graph);
        let gz_error = |e: std::io::Error| ApiError::JsonOut(format!("gzip coding the body: {e}"));
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&identity).map_err(gz_error)?;
        let gzip = encoder.finish().map_err(gz_error)?;
        let digest = hex::encode(&Sha256::digest(&identity)[..16]);
        Ok(Self {
            identity: Bytes::from(identity),
            gzip: Bytes::from(gzip),
            etag: format!("\"{digest}\""),
            etag_gzip: format!("\"{digest}-gzip\""),
        })
    }
}

/// The body of one (channel, arch), or why it cannot be produced, once computed.
type Slot = OnceCell<Result<Arc<Body>, ApiError>>;

/// A graph revision and the bodies computed from it so far.
#[derive(Debug)]
pub struct Snapshot {
    revision: u64,
    graph: Arc<Graph>,
    /// channel -> arch -> body, with a slot for every pair some release could match.
    bodies: HashMap<String, HashMap<String, Slot>>,
    empty: Arc<Body>,
}

impl Snapshot {
    /// Indexes the channels and arches of `graph`; no body is computed yet.
    pub fn new(graph: Graph, revision: u64) -> Result<Self, ApiError> {
        let mut channels = BTreeSet::new();
        let mut arches = BTreeSet::new();
        for (_, release) in graph.releases().filter(|(_, r)| !r.is_abstract()) {
            let csv = |key| {
                release
                    .metadata
                    .get(key)
                    .into_iter()
                    .flat_map(|v: &String| v.split(','))
            };
            channels.extend(csv(CHANNELS_KEY).map(|c| c.trim().to_owned()));
            arches.extend(csv(ARCH_KEY).map(|a| a.trim().to_owned()));
        }
        let bodies = channels
            .into_iter()
            .map(|c| {
                let per_arch = arches
                    .iter()
                    .map(|a| (a.clone(), OnceCell::new()))
                    .collect();
                (c, per_arch)
            })
            .collect();
        Ok(Self {
            revision,
            graph: Arc::new(graph),
            bodies,
            empty: Arc::new(Body::new(&Graph::new())?),
        })
    }

    /// The revision number, increasing with every graph published.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The full, unfiltered graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Number of (channel, arch) slots, the bound on bodies held.
    pub fn slots(&self) -> usize {
        self.bodies.values().map(HashMap::len).sum()
    }

    /// The (channel, arch) pairs whose body has been computed, i.e. the keys clients
    /// actually ask for.
    pub fn computed_keys(&self) -> Vec<(String, String)> {
        self.bodies
            .iter()
            .flat_map(|(channel, arches)| {
                arches
                    .iter()
                    .filter(|(_, slot)| slot.initialized())
                    .map(move |(arch, _)| (channel.clone(), arch.clone()))
            })
            .collect()
    }

    /// The body for validated `channel` and `arch`, filtering and serializing on first
    /// use. The work runs on the blocking pool so a large graph does not stall the
    /// worker; concurrent first requests for one key wait for a single computation. A
    /// failure depends only on the graph, so it is kept like a body: a bad release costs
    /// one computation and one log line per revision, not one per request.
    pub async fn body(&self, channel: &str, arch: &str) -> Result<Arc<Body>, ApiError> {
        let Some(slot) = self.bodies.get(channel).and_then(|a| a.get(arch)) else {
            return Ok(Arc::clone(&self.empty));
        };
        slot.get_or_init(|| {
            let graph = Arc::clone(&self.graph);
            let (channel, arch) = (channel.to_owned(), arch.to_owned());
            let revision = self.revision;
            async move {
                let computed = tokio::task::spawn_blocking({
                    let (channel, arch) = (channel.clone(), arch.clone());
                    move || {
                        let filtered = filter::filter(&graph, &channel, &arch)?;
                        Body::new(&filtered).map(Arc::new)
                    }
                })
                .await
                .unwrap_or_else(|e| Err(ApiError::PluginExecution(format!("filter task: {e}"))));
                if let Err(error) = &computed {
                    tracing::warn!(revision, channel, arch, kind = error.kind(), "{error}");
                }
                computed
            }
        })
        .await
        .clone()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use graph_data::{Metadata, Release};
    use semver::Version;

    use super::*;

    fn graph() -> Graph {
        let mut g = Graph::new();
        for (v, channels, arch) in [
            ("4.1.0+amd64", "a,b", "amd64"),
            ("4.1.1+amd64", "b", "amd64"),
            ("4.1.0+arm64", "a", "arm64"),
        ] {
            let mut m = Metadata::new();
            m.insert(CHANNELS_KEY.into(), channels.into());
            m.insert(ARCH_KEY.into(), arch.into());
            g.add_release(Release::concrete(Version::parse(v).unwrap(), "p", m))
                .unwrap();
        }
        g.add_release(Release::abstract_release(
            Version::parse("4.0.0+amd64").unwrap(),
        ))
        .unwrap();
        g
    }

    #[tokio::test]
    async fn slots_cover_listed_channels_and_arches_only() {
        let s = Snapshot::new(graph(), 7).unwrap();
        assert_eq!(s.revision(), 7);
        assert_eq!(s.slots(), 4);
        let b = s.body("b", "amd64").await.unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&b.identity).unwrap();
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["nodes"].as_array().unwrap().len(), 2);
        // Same key: the same computed body, not a recomputation.
        assert!(Arc::ptr_eq(&b, &s.body("b", "amd64").await.unwrap()));
        let unknown = s.body("nope", "amd64").await.unwrap();
        assert!(Arc::ptr_eq(&unknown, &s.body("a", "s390x").await.unwrap()));
        assert_eq!(
            &unknown.identity[..],
            br#"{"version":1,"nodes":[],"edges":[],"conditionalEdges":[]}"#
        );
    }

    #[test]
    fn gzip_decodes_to_identity_and_etags_follow_content() {
        let a = Body::new(&graph()).unwrap();
        let b = Body::new(&graph()).unwrap();
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&a.gzip[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, a.identity);
        assert_eq!(a.etag, b.etag);
        assert_ne!(a.etag, Body::new(&Graph::new()).unwrap().etag);
        assert!(a.etag.starts_with('"') && a.etag_gzip.ends_with("-gzip\""));
    }
}
