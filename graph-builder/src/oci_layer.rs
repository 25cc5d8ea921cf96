//! What both readers of image layers share, the release scan (`scrape::layer_scan`) and
//! the graph-data unpacking (`graph_data_source::unpack`): telling the compression by the
//! first bytes ([`decompress`]), the normal components of a tar path ([`normal_parts`]),
//! and the whiteout rule of the OCI image layer format ([`whiteout`], [`Whiteout`]).

use std::io::{self, BufRead as _, BufReader, Read};
use std::path::{Component, Path};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A layer's bytes as a tar stream, or the name of a compression we do not read.
pub(crate) enum Decoded<'a> {
    /// The tar bytes: gunzipped, or the layer itself when it is a plain tar.
    Tar(Box<dyn Read + 'a>),
    /// The layer is compressed with this (zstd), which is not supported.
    Unsupported(&'static str),
}

/// The tar stream of a layer, its compression told by its first bytes: gzip (every
/// member, as `gzip -d` does), zstd (unsupported), or else a plain tar.
pub(crate) fn decompress<'a>(reader: impl Read + 'a) -> io::Result<Decoded<'a>> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&GZIP_MAGIC) {
        Decoded::Tar(Box::new(flate2::read::MultiGzDecoder::new(reader)))
    } else if head.starts_with(&ZSTD_MAGIC) {
        Decoded::Unsupported("zstd")
    } else {
        Decoded::Tar(Box::new(reader))
    })
}

/// The normal components of a tar path (`./` and `/` dropped); `None` when it is not
/// UTF-8 or climbs with `..` (never extracted).
pub(crate) fn normal_parts(path: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(path).ok()?;
    let mut parts = Vec::new();
    for c in Path::new(text).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => return None,
            _ => {}
        }
    }
    Some(parts)
}

/// What a whiteout entry of a layer hides of the lower layers, below a root directory.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Whiteout {
    /// The root or a directory above it is deleted or made opaque: everything under the
    /// root.
    All,
    /// `.wh.name`: this path (relative to the root) and everything under it.
    Path(String),
    /// `.wh..wh..opq`: everything under this directory ("" is the root).
    Opaque(String),
}

impl Whiteout {
    /// Whether this hides `rel`, a file's path relative to the root.
    pub(crate) fn hides(&self, rel: &str) -> bool {
        let under = |dir: &str| {
            rel.strip_prefix(dir)
                .is_some_and(|rest| rest.starts_with('/'))
        };
        match self {
            Whiteout::All => true,
            Whiteout::Path(p) => rel == p || under(p),
            Whiteout::Opaque(p) => p.is_empty() || under(p),
        }
    }
}

/// What the entry `parent/.wh.<hidden>` hides below `root` (path components), if
/// anything: `hidden` is `.wh..opq` for an opaque whiteout of `parent`.
pub(crate) fn whiteout(root: &[String], parent: &[String], hidden: &str) -> Option<Whiteout> {
    let opaque = hidden == ".wh..opq";
    let mut target = parent.to_vec();
    if !opaque {
        target.push(hidden.to_owned());
    }
    if root.starts_with(&target) && (!opaque || target.len() < root.len()) {
        // The root itself or a directory above it is deleted or made opaque.
        return Some(Whiteout::All);
    }
    let rel = target.strip_prefix(root)?.join("/");
    Some(if opaque {
        Whiteout::Opaque(rel)
    } else {
        Whiteout::Path(rel)
    })
}

/// The whiteout an entry at `path` (a tar path) is, below `root`; `None` for any other
/// entry.
pub(crate) fn entry_whiteout(root: &[String], path: &[u8]) -> Option<Whiteout> {
    let parts = normal_parts(path)?;
    let (name, parent) = parts.split_last()?;
    whiteout(root, parent, name.strip_prefix(".wh.")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_below_a_root_and_what_they_hide() {
        let root = vec!["release-manifests".to_owned()];
        let w = |path: &str| entry_whiteout(&root, path.as_bytes());
        assert_eq!(w(".wh..wh..opq"), Some(Whiteout::All));
        assert_eq!(w("./.wh.release-manifests"), Some(Whiteout::All));
        assert_eq!(
            w("release-manifests/.wh..wh..opq"),
            Some(Whiteout::Opaque(String::new()))
        );
        assert_eq!(
            w("release-manifests/.wh.release-metadata"),
            Some(Whiteout::Path("release-metadata".to_owned()))
        );
        assert_eq!(w("other/.wh..wh..opq"), None);
        assert_eq!(w("release-manifests/release-metadata"), None);
        let path = Whiteout::Path("a".to_owned());
        assert!(path.hides("a") && path.hides("a/b") && !path.hides("ab"));
        let opaque = Whiteout::Opaque("d".to_owned());
        assert!(opaque.hides("d/x") && !opaque.hides("d") && !opaque.hides("dx"));
        assert!(Whiteout::Opaque(String::new()).hides("x"));
    }
}
