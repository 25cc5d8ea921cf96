//! Response bodies of one graph revision, computed once per (channel, arch) and served
//! from memory.
//!
//! The cache is bounded by construction: a slot exists only for channels and arches that
//! some release of this revision lists, so at most channels x arches bodies are ever
//! held. Any other valid (channel, arch) pair selects no release and shares one
//! precomputed empty-graph body. A new revision gets a new [`Snapshot`]; the old one is
//! freed when the last request using it is done.
//!
//! Each body is held gzip-coded only (about a tenth of its size: the CVO and every Go
//! client ask for gzip). The identity coding of the bodies asked for most recently is
//! kept beside it in a small LRU bounded in bytes ([`IDENTITY_BUDGET`]); a miss decodes
//! the gzip copy on the blocking pool. At full scale this is the difference between
//! holding ~110 MB of identity bodies and holding ~10 MB of gzip ones.
use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use actix_web::http::header::HeaderValue;
use bytes::Bytes;
use flate2::write::GzEncoder;
use graph_data::Graph;
use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, Semaphore};

use crate::error::ApiError;
use crate::filter::{self, ARCH_KEY, CHANNELS_KEY};

/// Bytes of identity-coded bodies a snapshot keeps beside their gzip copies. 8 MiB holds
/// the 16 largest bodies of the full public graph (484 KB at most) and far more of the
/// usual ones, so the keys clients actually ask for are served without decoding; the
/// rest cost one gunzip (about 1 ms for the largest) when asked for without gzip.
pub const IDENTITY_BUDGET: usize = 8 << 20;

/// Identity codings decoded at once, process-wide.
static DECODING: Semaphore = Semaphore::const_new(2);

/// Bodies up to this size keep their identity coding for good: decoding them would cost
/// more than holding them.
const SMALL_BODY: usize = 4096;

/// One response body: the gzip coding, always held, and the entity tags of both.
#[derive(Debug)]
pub struct Body {
    /// The document, gzip-coded.
    pub gzip: Bytes,
    /// Length of the identity coding.
    pub identity_len: usize,
    /// The identity coding when it is small enough to hold for good.
    small: Option<Bytes>,
    /// Where the identity coding lives in the snapshot's LRU.
    slot: usize,
    /// Strong entity tag of the identity coding (quoted), derived from its content, so an
    /// unchanged body keeps its tag across graph revisions.
    pub etag: HeaderValue,
    /// Strong entity tag of the gzip coding (quoted).
    pub etag_gzip: HeaderValue,
}

impl Body {
    /// Serializes a (filtered) graph and gzips it; returns the body and its identity
    /// coding (which the caller may keep in an LRU).
    pub fn new(graph: &Graph) -> Result<(Self, Bytes), ApiError> {
        Self::from_identity(graph_data::wire::to_versioned_json(graph), usize::MAX)
    }

    fn from_identity(identity: Vec<u8>, slot: usize) -> Result<(Self, Bytes), ApiError> {
        let gz_error = |e: std::io::Error| ApiError::JsonOut(format!("gzip coding the body: {e}"));
        // The serializer grows its buffer by doubling: give the slack back before the
        // bytes are held for the revision's lifetime.
        let identity = Bytes::from(identity.into_boxed_slice());
        let mut encoder = GzEncoder::new(
            Vec::with_capacity(identity.len() / 8 + 64),
            flate2::Compression::default(),
        );
        encoder.write_all(&identity).map_err(gz_error)?;
        let gzip = encoder.finish().map_err(gz_error)?.into_boxed_slice();
        let digest = hex::encode(&Sha256::digest(&identity)[..16]);
        let tag = |suffix: &str| {
            HeaderValue::from_str(&format!("\"{digest}{suffix}\""))
                .map_err(|e| ApiError::JsonOut(format!("entity tag: {e}")))
        };
        let body = Self {
            gzip: Bytes::from(gzip),
            identity_len: identity.len(),
            small: (identity.len() <= SMALL_BODY).then(|| identity.clone()),
            slot,
            etag: tag("")?,
            etag_gzip: tag("-gzip")?,
        };
        Ok((body, identity))
    }

    /// Decodes the gzip coding back to the identity coding.
    pub fn decode(&self) -> Result<Bytes, ApiError> {
        let mut identity = Vec::with_capacity(self.identity_len);
        flate2::read::GzDecoder::new(&self.gzip[..])
            .read_to_end(&mut identity)
            .map_err(|e| ApiError::JsonOut(format!("gzip decoding a held body: {e}")))?;
        Ok(Bytes::from(identity))
    }
}

/// The body of one (channel, arch), or why it cannot be produced, once computed.
type Slot = OnceCell<Result<Arc<Body>, ApiError>>;

/// Identity codings by slot, the least recently used dropped first once their bytes
/// exceed the budget.
#[derive(Debug)]
struct IdentityLru {
    budget: usize,
    held: usize,
    clock: u64,
    /// Per slot: the bytes and when they were last used.
    entries: Vec<Option<(Bytes, u64)>>,
}

impl IdentityLru {
    fn get(&mut self, slot: usize) -> Option<Bytes> {
        self.clock += 1;
        let (bytes, used) = self.entries.get_mut(slot)?.as_mut()?;
        *used = self.clock;
        Some(bytes.clone())
    }

    fn insert(&mut self, slot: usize, bytes: Bytes) {
        if bytes.len() > self.budget || slot >= self.entries.len() {
            return;
        }
        if let Some((old, _)) = self.entries[slot].take() {
            self.held -= old.len();
        }
        while self.held + bytes.len() > self.budget {
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| e.as_ref().map(|(_, used)| (*used, i)))
                .min();
            let Some((_, i)) = oldest else { break };
            if let Some((evicted, _)) = self.entries[i].take() {
                self.held -= evicted.len();
            }
        }
        self.clock += 1;
        self.held += bytes.len();
        self.entries[slot] = Some((bytes, self.clock));
    }
}

/// A graph revision and the bodies computed from it so far.
#[derive(Debug)]
pub struct Snapshot {
    revision: u64,
    graph: Arc<Graph>,
    /// channel -> arch -> index into `slots`, for every pair some release could match.
    index: HashMap<String, HashMap<String, usize>>,
    slots: Vec<Slot>,
    identities: Mutex<IdentityLru>,
    empty: Arc<Body>,
}

impl Snapshot {
    /// Indexes the channels and arches of `graph`; no body is computed yet.
    pub fn new(graph: Graph, revision: u64) -> Result<Self, ApiError> {
        Self::with_identity_budget(graph, revision, IDENTITY_BUDGET)
    }

    /// As [`Snapshot::new`], holding at most `budget` bytes of identity codings.
    pub fn with_identity_budget(
        graph: Graph,
        revision: u64,
        budget: usize,
    ) -> Result<Self, ApiError> {
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
        let mut count = 0;
        let index: HashMap<String, HashMap<String, usize>> = channels
            .into_iter()
            .map(|c| {
                let per_arch = arches
                    .iter()
                    .map(|a| {
                        count += 1;
                        (a.clone(), count - 1)
                    })
                    .collect();
                (c, per_arch)
            })
            .collect();
        let (empty, _) =
            Body::from_identity(graph_data::wire::to_versioned_json(&Graph::new()), count)?;
        Ok(Self {
            revision,
            graph: Arc::new(graph),
            index,
            slots: (0..count).map(|_| OnceCell::new()).collect(),
            identities: Mutex::new(IdentityLru {
                budget,
                held: 0,
                clock: 0,
                entries: vec![None; count],
            }),
            empty: Arc::new(empty),
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
        self.slots.len()
    }

    /// The (channel, arch) pairs whose body has been computed, i.e. the keys clients
    /// actually ask for.
    pub fn computed_keys(&self) -> Vec<(String, String)> {
        self.index
            .iter()
            .flat_map(|(channel, arches)| {
                arches
                    .iter()
                    .filter(|(_, &slot)| self.slots[slot].initialized())
                    .map(move |(arch, _)| (channel.clone(), arch.clone()))
            })
            .collect()
    }

    /// Bytes of identity codings held in the LRU now.
    pub fn identity_bytes(&self) -> usize {
        self.lru().held
    }

    fn lru(&self) -> std::sync::MutexGuard<'_, IdentityLru> {
        // The LRU is consistent after every statement that can panic (none can while
        // it is held), so a poisoned lock still guards a valid cache.
        self.identities
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The body for validated `channel` and `arch`, filtering and serializing on first
    /// use. The work runs on the blocking pool so a large graph does not stall the
    /// worker; concurrent first requests for one key wait for a single computation. A
    /// failure depends only on the graph, so it is kept like a body: a bad release costs
    /// one computation and one log line per revision, not one per request.
    pub async fn body(&self, channel: &str, arch: &str) -> Result<Arc<Body>, ApiError> {
        let Some(&slot) = self.index.get(channel).and_then(|a| a.get(arch)) else {
            return Ok(Arc::clone(&self.empty));
        };
        let cell = &self.slots[slot];
        if let Some(done) = cell.get() {
            return done.clone();
        }
        cell.get_or_init(|| {
            let graph = Arc::clone(&self.graph);
            let (channel, arch) = (channel.to_owned(), arch.to_owned());
            let revision = self.revision;
            async move {
                let computed = tokio::task::spawn_blocking({
                    let (channel, arch) = (channel.clone(), arch.clone());
                    move || {
                        let filtered = filter::filter(&graph, &channel, &arch)?;
                        Body::from_identity(graph_data::wire::to_versioned_json(&filtered), slot)
                    }
                })
                .await
                .unwrap_or_else(|e| Err(ApiError::PluginExecution(format!("filter task: {e}"))));
                match computed {
                    Ok((body, identity)) => {
                        // Whoever asked first likely asks again soon, in either coding.
                        self.lru().insert(slot, identity);
                        Ok(Arc::new(body))
                    }
                    Err(error) => {
                        tracing::warn!(revision, channel, arch, kind = error.kind(), "{error}");
                        Err(error)
                    }
                }
            }
        })
        .await
        .clone()
    }

    /// The identity coding of `body` (one of this snapshot's): from the LRU, or decoded
    /// from the gzip coding on the blocking pool and then kept in the LRU.
    pub async fn identity(&self, body: &Arc<Body>) -> Result<Bytes, ApiError> {
        if let Some(small) = &body.small {
            return Ok(small.clone());
        }
        if let Some(held) = self.lru().get(body.slot) {
            return Ok(held);
        }
        // Two decodes at a time: a burst of misses would otherwise start one blocking
        // thread per request, each with its own malloc arena holding its buffers after.
        let _permit = DECODING
            .acquire()
            .await
            .map_err(|e| ApiError::JsonOut(format!("decoding: {e}")))?;
        // Another request may have decoded it while this one waited.
        if let Some(held) = self.lru().get(body.slot) {
            return Ok(held);
        }
        let decoded = {
            let body = Arc::clone(body);
            tokio::task::spawn_blocking(move || body.decode())
                .await
                .unwrap_or_else(|e| Err(ApiError::JsonOut(format!("decoding task: {e}"))))?
        };
        self.lru().insert(body.slot, decoded.clone());
        Ok(decoded)
    }
}

#[cfg(test)]
mod tests {
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
            // Long enough that the body is not one of the small ones held for good.
            m.insert(
                "url".into(),
                format!("https://example.com/{v}/{}", "x".repeat(4500)),
            );
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
        let doc: serde_json::Value =
            serde_json::from_slice(&s.identity(&b).await.unwrap()).unwrap();
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["nodes"].as_array().unwrap().len(), 2);
        // Same key: the same computed body, not a recomputation.
        assert!(Arc::ptr_eq(&b, &s.body("b", "amd64").await.unwrap()));
        let unknown = s.body("nope", "amd64").await.unwrap();
        assert!(Arc::ptr_eq(&unknown, &s.body("a", "s390x").await.unwrap()));
        assert_eq!(
            &s.identity(&unknown).await.unwrap()[..],
            br#"{"version":1,"nodes":[],"edges":[],"conditionalEdges":[]}"#
        );
        assert_eq!(s.computed_keys(), [("b".to_owned(), "amd64".to_owned())]);
    }

    #[test]
    fn gzip_decodes_to_identity_and_etags_follow_content() {
        let (a, identity) = Body::new(&graph()).unwrap();
        let (b, _) = Body::new(&graph()).unwrap();
        assert_eq!(a.decode().unwrap(), identity);
        assert_eq!(a.identity_len, identity.len());
        assert_eq!(a.etag, b.etag);
        assert_ne!(a.etag, Body::new(&Graph::new()).unwrap().0.etag);
        let (etag, etag_gzip) = (a.etag.to_str().unwrap(), a.etag_gzip.to_str().unwrap());
        assert_eq!(etag.len(), 34);
        assert!(etag.starts_with('"') && etag.ends_with('"'));
        assert_eq!(etag_gzip, format!("{}-gzip\"", &etag[..33]));
    }

    #[tokio::test]
    async fn identity_codings_are_held_within_the_budget_least_recently_used_out() {
        let s = Snapshot::with_identity_budget(graph(), 1, 12_000).unwrap();
        let a = s.body("a", "amd64").await.unwrap();
        let a_bytes = s.identity(&a).await.unwrap();
        assert!(
            a_bytes.len() > SMALL_BODY && a_bytes.len() < 6_000,
            "{}",
            a_bytes.len()
        );
        assert_eq!(s.identity_bytes(), a_bytes.len());
        let b = s.body("b", "amd64").await.unwrap();
        let b_bytes = s.identity(&b).await.unwrap();
        assert!(
            b_bytes.len() > 6_000 && a_bytes.len() + b_bytes.len() > 12_000,
            "{}",
            b_bytes.len()
        );
        // Both do not fit: computing `b` dropped `a`, the least recently used.
        assert_eq!(s.identity_bytes(), b_bytes.len());
        // `a` comes back decoded from its gzip coding, byte for byte, and now `b` goes.
        assert_eq!(s.identity(&a).await.unwrap(), a_bytes);
        assert_eq!(s.identity_bytes(), a_bytes.len());
        assert_eq!(s.identity(&b).await.unwrap(), b_bytes);
        // A budget too small for any body holds none and still serves them all.
        let none = Snapshot::with_identity_budget(graph(), 1, 100).unwrap();
        let b2 = none.body("b", "amd64").await.unwrap();
        assert_eq!(none.identity(&b2).await.unwrap(), b_bytes);
        assert_eq!(none.identity_bytes(), 0);
        assert_eq!(b2.etag, b.etag);
    }
}
