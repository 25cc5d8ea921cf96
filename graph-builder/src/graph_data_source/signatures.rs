//! Carrying graph-data's `signatures/` tree (release signatures in the atomic store
//! layout `signatures/<algo>/<digest>/signature-<n>`, and signature ConfigMap files) along
//! with the graph-data, so the tarball every source is reduced to, and that the public
//! port serves, holds them too. What the files mean is the policy-engine's business
//! (`graph_data::signatures`); here they are only copied, within bounds.

use std::path::Path;

use super::pack::Entries;
use super::GraphDataError;

/// The directory of the tree inside graph-data.
pub(super) const SIGNATURES_DIR: &str = "signatures";
/// Deepest path kept below `signatures/` (`<algo>/<digest>/signature-<n>`).
const MAX_DEPTH: usize = 3;
/// Most files kept from a `signatures/` tree.
const MAX_FILES: usize = 200_000;
/// Largest file kept (ConfigMap files hold many signatures).
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Whether `rel` (relative to the graph-data root) belongs to the signatures tree.
pub(super) fn wanted(rel: &str) -> bool {
    match rel.split_once('/') {
        None => rel == SIGNATURES_DIR,
        Some((top, rest)) => top == SIGNATURES_DIR && rest.split('/').count() <= MAX_DEPTH,
    }
}

/// Adds `root/signatures` (if present) to `entries`, following symbolic links and
/// skipping names starting with `.` (Kubernetes volume bookkeeping).
pub(super) fn pack(root: &Path, entries: &mut Entries) -> Result<(), GraphDataError> {
    let dir = root.join(SIGNATURES_DIR);
    if !dir.is_dir() {
        return Ok(());
    }
    let mut files = 0;
    walk(&dir, SIGNATURES_DIR, 0, entries, &mut files)
}

fn walk(
    dir: &Path,
    rel: &str,
    depth: usize,
    entries: &mut Entries,
    files: &mut usize,
) -> Result<(), GraphDataError> {
    let read_error = |path: &Path| {
        let path = path.to_owned();
        move |source| GraphDataError::Read { path, source }
    };
    entries.insert(rel.to_owned(), None);
    let mut children = Vec::new();
    for child in std::fs::read_dir(dir).map_err(read_error(dir))? {
        let child = child.map_err(read_error(dir))?;
        let name = child.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            children.push(name);
        }
    }
    children.sort();
    for name in children {
        let path = dir.join(&name);
        let child_rel = format!("{rel}/{name}");
        let meta = std::fs::metadata(&path).map_err(read_error(&path))?;
        if meta.is_dir() {
            if depth + 1 < MAX_DEPTH {
                walk(&path, &child_rel, depth + 1, entries, files)?;
            }
            continue;
        }
        *files += 1;
        if *files > MAX_FILES || meta.len() > MAX_FILE_BYTES {
            return Err(read_error(&path)(std::io::Error::other(format!(
                "signatures/ is limited to {MAX_FILES} files of at most {MAX_FILE_BYTES} bytes"
            ))));
        }
        let bytes = std::fs::read(&path).map_err(read_error(&path))?;
        entries.insert(child_rel, Some(bytes));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_is_kept_three_levels_deep() {
        assert!(wanted("signatures"));
        assert!(wanted("signatures/sha256"));
        assert!(wanted("signatures/sha256/abc/signature-1"));
        assert!(wanted("signatures/release.yaml"));
        assert!(!wanted("signatures/a/b/c/d"));
        assert!(!wanted("signaturesx/a"));

        let dir = tempfile::tempdir().unwrap();
        let sig = dir.path().join("signatures/sha256/abc");
        std::fs::create_dir_all(sig.join("deeper")).unwrap();
        std::fs::write(sig.join("signature-1"), b"one").unwrap();
        std::fs::write(sig.join("deeper/x"), b"no").unwrap();
        std::fs::write(dir.path().join("signatures/.hidden"), b"no").unwrap();
        let mut entries = Entries::new();
        pack(dir.path(), &mut entries).unwrap();
        let names: Vec<_> = entries.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "signatures",
                "signatures/sha256",
                "signatures/sha256/abc",
                "signatures/sha256/abc/signature-1"
            ]
        );
    }
}
