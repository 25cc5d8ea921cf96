//! Reading tar archives that come from outside (release image layers, graph-data image
//! layers, graph-data tarballs) with every header bounded in memory.
//!
//! The `tar` crate, in its default mode, reads a GNU long-name (`L`), long-link (`K`) or
//! PAX (`x`) record whole into a `Vec` before handing over the entry it describes, and
//! turns every GNU sparse extension block into in-memory block descriptors: a few MB of
//! gzip can expand to a multi-GB long name and be allocated before any cap of ours runs.
//! We therefore read the archive in raw mode, where those records arrive as ordinary
//! entries whose size we check *before* reading them, and apply long names, long links
//! and the PAX `path`/`linkpath` ourselves. Raw mode was chosen over a reader wrapper
//! because a wrapper cannot tell a header record from file content, so it could only cap
//! the whole stream, not one record; raw mode gives each record its own cap and the error
//! can say which kind of record was too large.
//!
//! Raw mode does not apply a PAX `size` override, so an entry whose PAX `size` differs
//! from its header is refused rather than misread (writers use it only for files above
//! 8 GiB). GNU sparse entries with extension blocks are refused too (raw mode cannot skip
//! those blocks); sparse entries without them are passed through like any other entry.
//! [`Limited`] caps the decompressed bytes of a whole stream.

use std::io::{self, Read};

use tar::EntryType;

/// Caps on the records that describe an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLimits {
    /// Largest GNU long-name or long-link record, in bytes (Linux paths stop at 4 KiB).
    pub max_name_bytes: u64,
    /// Largest PAX extended-header record (local or global), in bytes.
    pub max_pax_bytes: u64,
    /// Most extension records (long names, PAX) in a row before a real entry.
    pub max_extensions_per_entry: u32,
}

impl Default for HeaderLimits {
    fn default() -> Self {
        Self {
            max_name_bytes: 64 << 10,
            max_pax_bytes: 1 << 20,
            max_extensions_per_entry: 16,
        }
    }
}

/// Why an archive could not be read safely.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    /// A long-name, long-link or PAX record is larger than its cap; nothing was read.
    #[error("{record} record of {size} bytes is above the {cap} byte limit")]
    HeaderTooLarge {
        /// `GNU long name`, `GNU long link`, `PAX header` or `PAX global header`.
        record: &'static str,
        /// The size the record claims.
        size: u64,
        /// The cap it exceeds.
        cap: u64,
    },
    /// More extension records in a row than [`HeaderLimits::max_extensions_per_entry`].
    #[error("more than {0} long-name/PAX records describe one entry")]
    TooManyExtensions(u32),
    /// A PAX record is not `LEN KEY=VALUE\n`.
    #[error("malformed PAX record: {0}")]
    Pax(String),
    /// A PAX `size` that differs from the header size (raw reading cannot honour it).
    #[error("entry {path}: PAX size {pax} differs from the header size {header}, which is not supported")]
    PaxSize {
        /// The entry path, lossily decoded.
        path: String,
        /// The PAX size.
        pax: u64,
        /// The header size.
        header: u64,
    },
    /// A GNU sparse entry with extension blocks.
    #[error("entry {path}: GNU sparse file with extended sparse headers is not supported")]
    Sparse {
        /// The entry path, lossily decoded.
        path: String,
    },
    /// Extension records at the end of the archive with no entry after them.
    #[error("long-name/PAX records at the end of the archive describe no entry")]
    Dangling,
    /// The stream is not a readable tar archive, or reading it failed.
    #[error("{0}")]
    Io(#[source] io::Error),
}

/// One archive entry with its path and link target resolved from the records before it.
pub struct Entry<'a, R: Read> {
    /// The path: PAX `path`, else the GNU long name, else the header's name.
    pub path: Vec<u8>,
    /// The link target for symlinks and hard links, resolved the same way.
    pub link: Option<Vec<u8>>,
    /// The entry type from the header.
    pub kind: EntryType,
    /// The size of the data that follows the header.
    pub size: u64,
    /// The raw entry, to read its data (at most `size` bytes).
    pub data: tar::Entry<'a, R>,
}

impl<R: Read> std::fmt::Debug for Entry<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("path", &self.shown())
            .field("kind", &self.kind)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Entry<'_, R> {
    /// The path, lossily decoded, for messages.
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// The entries of an archive, with every record bounded (see the module docs).
pub struct Entries<'a, R: Read> {
    inner: tar::Entries<'a, R>,
    limits: HeaderLimits,
    done: bool,
}

impl<R: Read> std::fmt::Debug for Entries<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entries")
            .field("limits", &self.limits)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Starts reading `archive` in raw mode under `limits`.
pub fn entries<R: Read>(
    archive: &mut tar::Archive<R>,
    limits: HeaderLimits,
) -> Result<Entries<'_, R>, TarError> {
    let inner = archive.entries().map_err(TarError::Io)?.raw(true);
    Ok(Entries {
        inner,
        limits,
        done: false,
    })
}

/// Reads a whole record of `size` bytes, already checked against its cap.
fn read_record<R: Read>(entry: &mut tar::Entry<'_, R>, size: u64) -> Result<Vec<u8>, TarError> {
    let mut buf = Vec::with_capacity(size as usize);
    entry
        .take(size)
        .read_to_end(&mut buf)
        .map_err(TarError::Io)?;
    Ok(buf)
}

/// A GNU long name or link ends in NUL; what follows the first NUL is padding.
fn trim_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    if let Some(end) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(end);
    }
    bytes
}

/// What the PAX records before an entry say about it.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
}

fn parse_pax(bytes: &[u8], into: &mut Pax) -> Result<(), TarError> {
    for ext in tar::PaxExtensions::new(bytes) {
        let ext = ext.map_err(|e| TarError::Pax(e.to_string()))?;
        match ext.key_bytes() {
            b"path" => into.path = Some(ext.value_bytes().to_vec()),
            b"linkpath" => into.link = Some(ext.value_bytes().to_vec()),
            b"size" => {
                let size = std::str::from_utf8(ext.value_bytes())
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| TarError::Pax("`size` is not a number".to_owned()))?;
                into.size = Some(size);
            }
            _ => {}
        }
    }
    Ok(())
}

impl<'a, R: Read> Entries<'a, R> {
    fn next_entry(&mut self) -> Result<Option<Entry<'a, R>>, TarError> {
        let mut long_name = None;
        let mut long_link = None;
        let mut pax = Pax::default();
        let mut extensions = 0u32;
        loop {
            let Some(entry) = self.inner.next() else {
                // A trailing global header describes nothing in particular; a long name
                // or local PAX record promises an entry.
                let pending = long_name.is_some()
                    || long_link.is_some()
                    || pax.path.is_some()
                    || pax.link.is_some()
                    || pax.size.is_some();
                return if pending {
                    Err(TarError::Dangling)
                } else {
                    Ok(None)
                };
            };
            let mut entry = entry.map_err(TarError::Io)?;
            let kind = entry.header().entry_type();
            let size = entry.size();
            let record = match kind {
                EntryType::GNULongName => Some(("GNU long name", self.limits.max_name_bytes)),
                EntryType::GNULongLink => Some(("GNU long link", self.limits.max_name_bytes)),
                EntryType::XHeader => Some(("PAX header", self.limits.max_pax_bytes)),
                EntryType::XGlobalHeader => Some(("PAX global header", self.limits.max_pax_bytes)),
                _ => None,
            };
            if let Some((record, cap)) = record {
                if size > cap {
                    return Err(TarError::HeaderTooLarge { record, size, cap });
                }
                extensions += 1;
                if extensions > self.limits.max_extensions_per_entry {
                    return Err(TarError::TooManyExtensions(
                        self.limits.max_extensions_per_entry,
                    ));
                }
                let bytes = read_record(&mut entry, size)?;
                match kind {
                    EntryType::GNULongName => long_name = Some(trim_nul(bytes)),
                    EntryType::GNULongLink => long_link = Some(trim_nul(bytes)),
                    EntryType::XHeader => parse_pax(&bytes, &mut pax)?,
                    // Global headers set defaults for the rest of the archive; nothing we
                    // read (path, link, size) may come from them, so they are dropped.
                    _ => {}
                }
                continue;
            }
            let path = pax
                .path
                .or(long_name)
                .unwrap_or_else(|| entry.path_bytes().into_owned());
            let link = pax
                .link
                .or(long_link)
                .or_else(|| entry.link_name_bytes().map(|l| l.into_owned()));
            if let Some(pax_size) = pax.size.filter(|&s| s != size) {
                return Err(TarError::PaxSize {
                    path: String::from_utf8_lossy(&path).into_owned(),
                    pax: pax_size,
                    header: size,
                });
            }
            if kind == EntryType::GNUSparse
                && entry.header().as_gnu().is_some_and(|g| g.is_extended())
            {
                return Err(TarError::Sparse {
                    path: String::from_utf8_lossy(&path).into_owned(),
                });
            }
            return Ok(Some(Entry {
                path,
                link,
                kind,
                size,
                data: entry,
            }));
        }
    }
}

impl<'a, R: Read> Iterator for Entries<'a, R> {
    type Item = Result<Entry<'a, R>, TarError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_entry();
        if !matches!(next, Ok(Some(_))) {
            self.done = true;
        }
        next.transpose()
    }
}

/// The error a [`Limited`] reader returns once its cap is passed; find it with
/// [`Limited::exceeded`] through the `io::Error` chain.
#[derive(Debug, thiserror::Error)]
#[error("more than {cap} bytes after decompression")]
pub struct TooLong {
    /// The cap.
    pub cap: u64,
}

/// Caps the bytes read through it (a decompressed layer, say): reading past `cap` is an
/// error, so an endless or bomb-sized stream ends instead of running for hours.
pub struct Limited<R> {
    inner: R,
    left: u64,
    cap: u64,
}

impl<R> std::fmt::Debug for Limited<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limited")
            .field("cap", &self.cap)
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<R> Limited<R> {
    /// Wraps `inner`, allowing at most `cap` bytes.
    pub fn new(inner: R, cap: u64) -> Self {
        Self {
            inner,
            left: cap,
            cap,
        }
    }

    /// The [`TooLong`] inside `error`, if the cap is why it failed.
    pub fn exceeded(error: &io::Error) -> Option<&TooLong> {
        let mut current: Option<&(dyn std::error::Error + 'static)> =
            error.get_ref().map(|e| e as _);
        for _ in 0..16 {
            let e = current?;
            if let Some(too_long) = e.downcast_ref::<TooLong>() {
                return Some(too_long);
            }
            current = match e.downcast_ref::<io::Error>() {
                Some(io) => io.get_ref().map(|e| e as _),
                None => e.source(),
            };
        }
        None
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Only an error if there is more to read.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(TooLong { cap: self.cap })),
            };
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header record (`L`, `K`, `x`) with `data`, then a regular file `name`.
    fn with_record(kind: EntryType, data: &[u8], name: &str, content: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
        h.set_cksum();
        b.append(&h, data).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_path(name).unwrap();
        h.set_cksum();
        b.append(&h, content).unwrap();
        b.into_inner().unwrap()
    }

    fn paths(tar: &[u8]) -> Result<Vec<(String, Option<String>)>, TarError> {
        let mut archive = tar::Archive::new(tar);
        entries(&mut archive, HeaderLimits::default())?
            .map(|e| e.map(|e| (e.shown(), e.link.map(|l| String::from_utf8(l).unwrap()))))
            .collect()
    }

    #[test]
    fn long_names_and_pax_paths_are_applied() {
        let long = "d/".repeat(200) + "f";
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        b.append_data(&mut h, &long, &b"x"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "link", "/".to_owned() + &"t/".repeat(100))
            .unwrap();
        let tar = b.into_inner().unwrap();
        assert_eq!(
            paths(&tar).unwrap(),
            vec![
                (long.clone(), None),
                ("link".to_owned(), Some("/".to_owned() + &"t/".repeat(100)))
            ]
        );

        let mut pax = Vec::new();
        let record = "path=channels/x.yaml\n";
        pax.extend(format!("{} {record}", record.len() + 3).bytes());
        let tar = with_record(EntryType::XHeader, &pax, "short", b"y");
        assert_eq!(
            paths(&tar).unwrap(),
            vec![("channels/x.yaml".to_owned(), None)]
        );
    }

    #[test]
    fn oversized_records_are_refused_before_reading() {
        let big = vec![b'a'; (64 << 10) + 1];
        let tar = with_record(EntryType::GNULongName, &big, "f", b"");
        assert!(matches!(
            paths(&tar),
            Err(TarError::HeaderTooLarge { record: "GNU long name", size, cap }) if size == (64 << 10) + 1 && cap == 64 << 10
        ));
        let big = vec![b'a'; (1 << 20) + 1];
        let tar = with_record(EntryType::XHeader, &big, "f", b"");
        assert!(matches!(
            paths(&tar),
            Err(TarError::HeaderTooLarge {
                record: "PAX header",
                ..
            })
        ));
    }

    #[test]
    fn pax_size_overrides_and_extended_sparse_are_refused() {
        let record = "size=5\n";
        let pax = format!("{} {record}", record.len() + 2);
        let tar = with_record(EntryType::XHeader, pax.as_bytes(), "f", b"abc");
        assert!(matches!(
            paths(&tar),
            Err(TarError::PaxSize {
                pax: 5,
                header: 3,
                ..
            })
        ));

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::GNUSparse);
        h.set_path("sparse").unwrap();
        h.set_size(0);
        h.as_gnu_mut().unwrap().isextended[0] = 1;
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
        let tar = b.into_inner().unwrap();
        assert!(matches!(paths(&tar), Err(TarError::Sparse { path }) if path == "sparse"));
    }

    #[test]
    fn too_many_records_and_dangling_records_are_errors() {
        let mut b = tar::Builder::new(Vec::new());
        for _ in 0..17 {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::XGlobalHeader);
            h.set_size(0);
            h.set_path("g").unwrap();
            h.set_cksum();
            b.append(&h, &b""[..]).unwrap();
        }
        let tar = b.into_inner().unwrap();
        assert!(matches!(paths(&tar), Err(TarError::TooManyExtensions(16))));

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::GNULongName);
        h.set_size(3);
        h.set_path("L").unwrap();
        h.set_cksum();
        b.append(&h, &b"abc"[..]).unwrap();
        assert!(matches!(
            paths(&b.into_inner().unwrap()),
            Err(TarError::Dangling)
        ));
    }

    #[test]
    fn limited_reader_fails_only_past_the_cap() {
        let mut out = Vec::new();
        Limited::new(&[1u8; 10][..], 10)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 10);
        let err = Limited::new(&[1u8; 11][..], 10)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(Limited::<&[u8]>::exceeded(&err).unwrap().cap, 10);
    }
}
