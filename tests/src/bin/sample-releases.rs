//! `sample-releases`: writes the bundled OCI image layout `data/sample-releases/`, the
//! release images the README's first command serves without any registry.
//!
//! From a graph-data channel file (default `data/graph-data/channels/stable-4.16.yaml`)
//! it takes every version of the channel's minor and of the minor before (4.16.z and
//! 4.15.z), and writes one release image per version for amd64 and arm64 plus a
//! manifest list (`multi`, amd64 + arm64 children) for the last three versions of each
//! minor. Each release's `previous` lists every earlier patch of its minor and every
//! version of the minor before it that the channel file lists (as real payloads do),
//! multi payloads only multi ones; `metadata.url` is a per-version errata URL. The output
//! is deterministic (fixed timestamps, content-named blobs, sorted `index.json`).
//!
//! `cargo run -p integration-tests --bin sample-releases [-- CHANNEL_FILE OUT_DIR]`

use std::error::Error;
use std::path::{Path, PathBuf};

use integration_tests::images::{release_image, Format, Index, ReleaseMetadata};
use integration_tests::oci_layout_writer::OciLayoutWriter;

/// Manifest lists written per minor (its newest versions).
const MULTI_PER_MINOR: usize = 3;

type Version = (u64, u64, u64);

fn main() -> Result<(), Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let channel = args
        .next()
        .unwrap_or_else(|| root.join("data/graph-data/channels/stable-4.16.yaml"));
    let out = args
        .next()
        .unwrap_or_else(|| root.join("data/sample-releases"));
    clear_layout(&out)?;
    let text = std::fs::read_to_string(&channel)
        .map_err(|e| format!("reading {}: {e}", channel.display()))?;
    let versions = channel_versions(&text).map_err(|e| format!("{}: {e}", channel.display()))?;
    let tags = write(&out, &versions)?;
    println!("{}: {tags} tags", out.display());
    Ok(())
}

/// Removes a previous layout (only if `dir` is one), so no stale blob survives.
fn clear_layout(dir: &Path) -> Result<(), Box<dyn Error>> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.join("oci-layout").is_file() {
        return Err(format!(
            "{} exists and is not an OCI layout: not touching it",
            dir.display()
        )
        .into());
    }
    for name in ["blobs", "index.json", "oci-layout"] {
        let path = dir.join(name);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|e| format!("removing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The `versions:` list of a channel file (one `- X.Y.Z` per line, as graph-data writes
/// it), and the channel's minor from `name: <prefix>-X.Y`.
fn channel_versions(text: &str) -> Result<(u64, Vec<Version>), String> {
    let name = text
        .lines()
        .find_map(|l| l.strip_prefix("name:"))
        .ok_or("no `name:` line")?
        .trim();
    let minor = name
        .rsplit_once('.')
        .and_then(|(_, m)| m.parse().ok())
        .ok_or_else(|| format!("channel name {name:?} does not end in a minor version"))?;
    let versions = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .map(|v| parse(v.trim()).ok_or_else(|| format!("version {v:?} is not X.Y.Z")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((minor, versions))
}

fn parse(version: &str) -> Option<Version> {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
    let v = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(v)
}

fn text((a, b, c): Version) -> String {
    format!("{a}.{b}.{c}")
}

/// Writes the layout; returns how many tags it has.
fn write(out: &Path, (minor, all): &(u64, Vec<Version>)) -> Result<usize, Box<dyn Error>> {
    let mut writer = OciLayoutWriter::new(out)?;
    let mut in_layout: Vec<Version> = all
        .iter()
        .copied()
        .filter(|v| v.1 == *minor || v.1 + 1 == *minor)
        .collect();
    in_layout.sort_unstable();
    let mut multi: Vec<Version> = Vec::new();
    for m in [*minor - 1, *minor] {
        let of_minor: Vec<Version> = in_layout.iter().copied().filter(|v| v.1 == m).collect();
        multi.extend(of_minor.iter().rev().take(MULTI_PER_MINOR));
    }
    multi.sort_unstable();
    let mut tags = 0;
    for (n, &version) in in_layout.iter().enumerate() {
        let previous = |candidates: &[Version]| -> Vec<String> {
            let mut p: Vec<Version> = candidates
                .iter()
                .copied()
                .filter(|v| (v.1 == version.1 && v.2 < version.2) || v.1 + 1 == version.1)
                .collect();
            p.sort_unstable();
            p.into_iter().map(text).collect()
        };
        let url = format!("https://access.redhat.com/errata/RHBA-2024:{}", 1000 + n);
        let single = ReleaseMetadata {
            previous: previous(all),
            ..ReleaseMetadata::new(&text(version))
        }
        .with("url", &url);
        for (arch, suffix) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
            let image = release_image(Format::Oci, arch, &single);
            writer.add(&format!("{}-{suffix}", text(version)), &image.into())?;
            tags += 1;
        }
        if multi.contains(&version) {
            let metadata = ReleaseMetadata {
                previous: previous(&multi),
                ..ReleaseMetadata::new(&text(version))
            }
            .with("url", &url)
            .with("release.openshift.io/architecture", "multi");
            let children = ["amd64", "arm64"]
                .map(|arch| release_image(Format::Oci, arch, &metadata))
                .to_vec();
            let index = Index::new(Format::Oci, children);
            writer.add(&format!("{}-multi", text(version)), &index.into())?;
            tags += 1;
        }
    }
    writer.finish()?;
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(dir).unwrap().to_owned();
                    files.push((rel, std::fs::read(&path).unwrap()));
                }
            }
        }
        files.sort();
        files
    }

    #[test]
    fn the_committed_layout_is_what_the_generator_writes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let channel = root.join("data/graph-data/channels/stable-4.16.yaml");
        let text = std::fs::read_to_string(channel).unwrap();
        let out = tempfile::tempdir().unwrap();
        let tags = write(out.path(), &channel_versions(&text).unwrap()).unwrap();
        assert!(tags > 200, "{tags}");
        let generated = tree(out.path());
        let committed = tree(&root.join("data/sample-releases"));
        let names = |t: &[(PathBuf, Vec<u8>)]| t.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&committed),
            names(&generated),
            "regenerate with the sample-releases bin"
        );
        assert!(
            committed == generated,
            "a file differs: regenerate with the sample-releases bin"
        );
        let bytes: usize = committed.iter().map(|f| f.1.len()).sum();
        assert!(bytes < 2 << 20, "{bytes} bytes");
    }

    #[test]
    fn channel_files_parse_and_previous_lists_are_realistic() {
        let (minor, versions) =
            channel_versions("name: stable-4.2\nversions:\n- 4.1.0\n- 4.2.1\n- 4.2.0\n").unwrap();
        assert_eq!((minor, versions.len()), (2, 3));
        assert!(channel_versions("name: stable-4.2\nversions:\n- 4.2\n").is_err());
        let out = tempfile::tempdir().unwrap();
        assert_eq!(write(out.path(), &(minor, versions)).unwrap(), 2 * 3 + 3);
        let index = std::fs::read_to_string(out.path().join("index.json")).unwrap();
        assert!(index.contains("\"4.2.1-multi\""), "{index}");
    }
}
