//! Hostile graph-data tarballs, timed, with peak RSS (run with
//! `cargo bench -p graph-data --bench hostile`).
//!
//! Writes each archive to a temporary file (a few MB of gzip at most), then loads it in a
//! child process of its own so that its peak RSS (VmHWM) is that load's alone:
//! - `long-name`: a 2 GiB GNU long-name record;
//! - `pax`: a 2 GiB PAX header record;
//! - `yaml-aliases`: a channel file of 20k anchored items and 500 aliases to them;
//! - `many-entries`: 100k entries (dotfiles in `channels/`, which the rules skip);
//! - `valid`: the bundled graph-data as a tarball, for comparison;
//! - `downward-edge`: two lines of 20k releases each, built with and without one edge
//!   from the top of the upper line to the bottom of the lower one: against the version
//!   order, closing no cycle. The edge costs one reordering of the releases between its
//!   ends, which should not double the build time.
//!
//! Only the public `load_tarball` is used, so the same file runs against older versions.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use graph_data::repo::{load_tarball, TarLimits};
use graph_data::{Graph, Release};

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn header(kind: tar::EntryType, path: &str, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    let name = &mut h.as_gnu_mut().unwrap().name;
    name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// A valid tree as tar blocks (no end marker), plus `extra` files.
fn tree(extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let files: [(&str, &[u8]); 3] = [
        ("version", b"1.1.0\n"),
        ("raw/metadata.json", b"{}"),
        (
            "channels/stable-4.1.yaml",
            b"name: stable-4.1\nversions: [4.1.0]\n",
        ),
    ];
    for (path, data) in files.iter().chain(extra) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, *data).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    b.append_data(&mut h, "blocked-edges", std::io::empty())
        .unwrap();
    let mut bytes = b.into_inner().unwrap();
    bytes.truncate(bytes.len() - 1024);
    bytes
}

/// Gzips `plain` into `path` as it is read; returns the gzip size.
fn write_gzip(path: &Path, mut plain: impl Read) -> u64 {
    let file = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    std::io::copy(&mut plain, &mut gz).unwrap();
    gz.finish().unwrap().flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn end() -> Cursor<Vec<u8>> {
    Cursor::new(vec![0; 1024])
}

fn prepare(dir: &Path) -> Vec<(&'static str, PathBuf, u64)> {
    let mut out = Vec::new();
    for (name, kind) in [
        ("long-name", tar::EntryType::GNULongName),
        ("pax", tar::EntryType::XHeader),
    ] {
        let path = dir.join(format!("{name}.tar.gz"));
        let size: u64 = 2 << 30;
        let mut head = tree(&[]);
        head.extend(header(kind, "././@LongLink", size));
        let plain = Cursor::new(head)
            .chain(std::io::repeat(b'a').take(size))
            .chain(Cursor::new(header(tar::EntryType::Regular, "x", 0)))
            .chain(end());
        let gz = write_gzip(&path, plain);
        out.push((name, path, gz));
    }

    let mut bomb = String::from("name: bomb\nversions: [4.1.0]\nx: &x [");
    bomb.push_str(&"1,".repeat(20_000));
    bomb.push_str("]\ny: [");
    bomb.push_str(&"*x,".repeat(500));
    bomb.push_str("]\n");
    let path = dir.join("yaml-aliases.tar.gz");
    let gz = write_gzip(
        &path,
        Cursor::new(tree(&[("channels/bomb.yaml", bomb.as_bytes())])).chain(end()),
    );
    out.push(("yaml-aliases", path, gz));

    let mut many = tree(&[]);
    for i in 0..99_990 {
        many.extend(header(
            tar::EntryType::Regular,
            &format!("channels/.f{i}"),
            0,
        ));
    }
    let path = dir.join("many-entries.tar.gz");
    let gz = write_gzip(&path, Cursor::new(many).chain(end()));
    out.push(("many-entries", path, gz));

    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/graph-data");
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", &data).unwrap();
    let path = dir.join("valid.tar.gz");
    let gz = write_gzip(&path, Cursor::new(b.into_inner().unwrap()));
    out.push(("valid", path, gz));
    out
}

/// The child: loads one file and prints the outcome, time and peak RSS.
fn child(name: &str, path: &Path) {
    let start = Instant::now();
    let result = load_tarball(path, TarLimits::default());
    let elapsed = start.elapsed();
    let outcome = match result {
        Ok(data) => format!("loaded ({} channels)", data.channels.len()),
        Err(e) => {
            let text = e.to_string().replace('\n', " ");
            let short: String = text.chars().take(150).collect();
            format!("refused: {short}")
        }
    };
    println!(
        "{name:<13} {elapsed:>12.3?}  peak RSS {:>8} KiB  {outcome}",
        vm_hwm_kib()
    );
}

/// Builds two lines of `n` releases (chains with skips), plus the downward edge if asked;
/// the time taken.
fn build_lines(n: u64, downward: bool) -> std::time::Duration {
    let started = Instant::now();
    let mut graph = Graph::new();
    let mut lines = Vec::new();
    for minor in [17, 18] {
        let ids: Vec<_> = (0..n)
            .map(|patch| {
                let version = semver::Version::new(4, minor, patch);
                let release = Release::concrete(version, "r", Default::default());
                graph.add_release(release).unwrap()
            })
            .collect();
        for i in 0..ids.len() {
            for step in [1, 2] {
                if let Some(&to) = ids.get(i + step) {
                    graph.add_edge(ids[i], to).unwrap();
                }
            }
        }
        lines.push(ids);
    }
    if downward {
        let (lower, upper) = (&lines[0], &lines[1]);
        assert!(graph.add_edge(*upper.last().unwrap(), lower[0]).unwrap());
    }
    std::hint::black_box(&graph);
    started.elapsed()
}

fn downward_edge() {
    const N: u64 = 20_000;
    // Best of three, so a stray pause does not decide the ratio.
    let best = |downward| (0..3).map(|_| build_lines(N, downward)).min().unwrap();
    let without = best(false);
    let with = best(true);
    println!(
        "downward-edge: {} releases built in {without:?}, with one downward edge {with:?} ({:.2}x)",
        2 * N,
        with.as_secs_f64() / without.as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--case") {
        child(&args[i + 1], Path::new(&args[i + 2]));
        return;
    }
    downward_edge();
    let dir = tempfile::tempdir().unwrap();
    let cases = prepare(dir.path());
    let exe = std::env::current_exe().unwrap();
    for (name, path, gz) in cases {
        println!("{name}: {gz} bytes of gzip");
        let status = Command::new(&exe)
            .args(["--case", name, path.to_str().unwrap()])
            .status()
            .unwrap();
        if !status.success() {
            println!("{name:<13} child failed: {status}");
        }
    }
}
