//! The raw graph JSON as the graph-builder holds and serves it: gzip-coded once, when the
//! graph is built, with the length and sha256 of the plain JSON.
//!
//! At full scale the plain JSON is 21 MB and its gzip about 2. Holding only the gzip
//! keeps 19 MB out of the resident set for as long as the graph is served, and the JSON
//! is written through the encoder as it is produced, so the plain bytes never exist
//! whole. The policy-engine asks for gzip, which is then sent as it is instead of being
//! compressed again for every poll; a client that does not take gzip gets the plain JSON
//! decoded as it is sent.

use std::io::{Read as _, Write as _};

use bytes::Bytes;
use flate2::write::GzEncoder;
use graph_data::Graph;
use sha2::{Digest as _, Sha256};

/// Plain bytes decoded per chunk of an identity response.
const CHUNK: usize = 64 * 1024;

/// The raw graph JSON, gzip-coded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphJson {
    gzip: Bytes,
    len: u64,
    sha256: [u8; 32],
}

/// Counts and hashes the plain bytes on their way into the encoder.
struct Tee<W> {
    inner: W,
    len: u64,
    sha256: Sha256,
}

impl<W: std::io::Write> std::io::Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.len += written as u64;
        self.sha256.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl GraphJson {
    /// Serializes `graph` (as [`graph_data::wire::to_json`] does) straight into gzip, at
    /// the level the HTTP compression of the other routes uses.
    pub fn encode(graph: &Graph) -> GraphJson {
        let encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tee = std::io::BufWriter::with_capacity(
            CHUNK,
            Tee {
                inner: encoder,
                len: 0,
                sha256: Sha256::new(),
            },
        );
        graph_data::wire::write_json(graph, &mut tee).expect("writing to memory cannot fail");
        tee.flush().expect("writing to memory cannot fail");
        let tee = tee
            .into_inner()
            .unwrap_or_else(|_| unreachable!("flushed above"));
        let gzip = tee.inner.finish().expect("writing to memory cannot fail");
        GraphJson {
            gzip: Bytes::from(gzip),
            len: tee.len,
            sha256: tee.sha256.finalize().into(),
        }
    }

    /// The gzip-coded JSON.
    pub fn gzip(&self) -> &Bytes {
        &self.gzip
    }

    /// The length of the plain JSON.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the plain JSON is empty (it never is for an encoded graph).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sha256 of the plain JSON.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// The plain JSON, whole.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut plain = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        flate2::read::GzDecoder::new(&self.gzip[..])
            .read_to_end(&mut plain)
            .expect("decoding our own gzip cannot fail");
        plain
    }

    /// The plain JSON in chunks, decoded as they are taken.
    pub fn plain_chunks(&self) -> impl futures::Stream<Item = std::io::Result<Bytes>> + 'static {
        let decoder = flate2::read::GzDecoder::new(bytes::Buf::reader(self.gzip.clone()));
        futures::stream::try_unfold(decoder, |mut decoder| async move {
            let mut chunk = vec![0; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                match decoder.read(&mut chunk[filled..])? {
                    0 => break,
                    n => filled += n,
                }
            }
            if filled == 0 {
                return Ok(None);
            }
            chunk.truncate(filled);
            Ok(Some((Bytes::from(chunk), decoder)))
        })
    }
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt as _;
    use graph_data::{Graph, Release};

    use super::*;

    fn graph(n: u64) -> Graph {
        let mut graph = Graph::new();
        let mut last = None;
        for patch in 0..n {
            let version = semver::Version::new(4, 16, patch);
            let id = graph
                .add_release(Release::concrete(
                    version,
                    format!("example.com/ocp/release@sha256:{patch:064x}"),
                    [("url".to_string(), format!("https://example.com/{patch}"))].into(),
                ))
                .unwrap();
            if let Some(previous) = last {
                graph.add_edge(previous, id).unwrap();
            }
            last = Some(id);
        }
        graph
    }

    #[tokio::test]
    async fn decodes_to_the_wire_json_whole_and_in_chunks() {
        // Large enough for several chunks.
        let graph = graph(3000);
        let plain = graph_data::wire::to_json(&graph);
        assert!(plain.len() > 3 * CHUNK, "{}", plain.len());
        let json = GraphJson::encode(&graph);
        assert_eq!(json.len(), plain.len() as u64);
        assert_eq!(json.sha256(), <[u8; 32]>::from(Sha256::digest(&plain)));
        assert!(json.gzip().len() < plain.len() / 4);
        assert_eq!(json.to_vec(), plain);
        let chunks: Vec<Bytes> = json.plain_chunks().try_collect().await.unwrap();
        assert!(chunks.len() > 3 && chunks.iter().all(|c| c.len() <= CHUNK));
        assert_eq!(chunks.concat(), plain);
    }
}
