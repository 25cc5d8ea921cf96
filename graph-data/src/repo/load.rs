//! Turning a [`Tree`] into validated [`GraphData`], collecting every problem.
//!
//! Files are processed in file-name order, which makes the results that depend on order
//! (last plain block wins, risk order on a conditional edge) deterministic where the
//! reference follows directory-listing order.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::blocked_edges::{self, BlockedEdge};
use super::error::{LoadError, LoadFailure, LoadWarning, Problem};
use super::tarball::{self, TarLimits};
use super::tree::{classify, Content, Entry, Kind, Tree, BLOCKED_EDGES, CHANNELS};
use super::{channels, raw, version, GraphData};

/// Loads a graph-data tree from a directory or a `.tar.gz` file.
pub fn load(path: &Path) -> Result<GraphData, LoadFailure> {
    into_result(check(read_source(path)?))
}

/// Loads a graph-data tree from a directory.
pub fn load_dir(root: &Path) -> Result<GraphData, LoadFailure> {
    into_result(check(read_dir(root)?))
}

/// Loads a graph-data tree from a gzip-compressed tarball file.
pub fn load_tarball(path: &Path, limits: TarLimits) -> Result<GraphData, LoadFailure> {
    into_result(check(read_tarball(path, limits)?))
}

/// Loads a graph-data tree from gzip-compressed tarball bytes (for example an HTTP body).
pub fn load_tarball_bytes(bytes: &[u8], limits: TarLimits) -> Result<GraphData, LoadFailure> {
    into_result(check(tarball::read("graph-data.tar.gz", bytes, limits)))
}

/// Loads a graph-data tree from a gzip-compressed tarball stream, read once; `label` names
/// the archive in errors that belong to no entry.
pub fn load_tarball_reader(
    label: &str,
    reader: impl std::io::Read,
    limits: TarLimits,
) -> Result<GraphData, LoadFailure> {
    into_result(check(tarball::read(label, reader, limits)))
}

/// Checks a graph-data tree (directory or `.tar.gz`) and summarizes it, problems
/// included; only a source that cannot be opened is an error.
pub fn validate(path: &Path) -> Result<Validation, LoadFailure> {
    let (parts, errors) = check(read_source(path)?);
    Ok(Validation {
        schema_version: parts.schema,
        channels: parts.channels.len(),
        blocks: parts.blocks.len(),
        risks: parts.risks.len(),
        raw_metadata: parts.raw_metadata.len(),
        warnings: parts.warnings,
        errors,
    })
}

/// What [`validate`] found.
#[derive(Debug)]
pub struct Validation {
    /// The schema version, when the `version` file is valid.
    pub schema_version: Option<semver::Version>,
    /// Valid channel files.
    pub channels: usize,
    /// Valid plain blocked-edge files.
    pub blocks: usize,
    /// Valid conditional blocked-edge files (risks).
    pub risks: usize,
    /// Valid `raw/metadata.json` entries.
    pub raw_metadata: usize,
    /// Things worth knowing that are not problems.
    pub warnings: Vec<LoadWarning>,
    /// Every problem found.
    pub errors: Vec<LoadError>,
}

fn read_source(path: &Path) -> Result<Tree, LoadFailure> {
    let meta = std::fs::metadata(path).map_err(|source| LoadFailure::Open {
        path: path.to_owned(),
        source,
    })?;
    if meta.is_dir() {
        read_dir(path)
    } else {
        read_tarball(path, TarLimits::default())
    }
}

fn read_dir(root: &Path) -> Result<Tree, LoadFailure> {
    if let Err(source) = std::fs::read_dir(root) {
        return Err(LoadFailure::Open {
            path: root.to_owned(),
            source,
        });
    }
    Ok(Tree::from_dir(root))
}

fn read_tarball(path: &Path, limits: TarLimits) -> Result<Tree, LoadFailure> {
    let file = File::open(path).map_err(|source| LoadFailure::Open {
        path: path.to_owned(),
        source,
    })?;
    let label = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(tarball::read(&label, BufReader::new(file), limits))
}

/// The valid parts of a tree.
struct Parts {
    schema: Option<semver::Version>,
    channels: Vec<channels::Channel>,
    blocks: Vec<super::PlainBlock>,
    risks: Vec<super::ConditionalBlock>,
    raw_metadata: Vec<raw::RawEntry>,
    warnings: Vec<LoadWarning>,
}

fn into_result((parts, errors): (Parts, Vec<LoadError>)) -> Result<GraphData, LoadFailure> {
    match parts.schema {
        Some(schema_version) if errors.is_empty() => Ok(GraphData {
            schema_version,
            channels: parts.channels,
            blocks: parts.blocks,
            risks: parts.risks,
            raw_metadata: parts.raw_metadata,
            warnings: parts.warnings,
        }),
        _ => Err(LoadFailure::Invalid(errors)),
    }
}

fn check(tree: Tree) -> (Parts, Vec<LoadError>) {
    let Tree {
        version,
        raw_metadata,
        channels,
        blocked_edges,
        mut errors,
    } = tree;
    let mut warnings = Vec::new();

    let schema = match version {
        None => {
            errors.push(LoadError::new(
                "version",
                Problem::Missing {
                    why: "it holds the schema version",
                },
            ));
            None
        }
        Some(bytes) => match version::parse(&bytes) {
            Ok(v) => {
                if let Some(message) = &v.warning {
                    warnings.push(LoadWarning {
                        file: "version".to_owned(),
                        message: message.clone(),
                    });
                }
                Some(v.version)
            }
            Err(problem) => {
                errors.push(LoadError::new("version", problem));
                None
            }
        },
    };

    let raw_entries = match raw_metadata {
        None => {
            errors.push(LoadError::new(
                raw::FILE,
                Problem::Missing {
                    why: "the reference requires it, even if it is `{}`",
                },
            ));
            Vec::new()
        }
        Some(bytes) => raw::parse(&bytes).unwrap_or_else(|e| {
            extend_capped(&mut errors, e);
            Vec::new()
        }),
    };

    let mut data_channels = Vec::new();
    for (file, bytes) in yaml_files(CHANNELS, channels, &mut errors, &mut warnings) {
        match channels::parse(&file, &bytes) {
            Ok(c) => data_channels.push(c),
            Err(e) => extend_capped(&mut errors, e),
        }
    }

    channel_warnings(&data_channels, &mut warnings);

    let mut blocks = Vec::new();
    let mut risks = Vec::new();
    let mut regexes = super::yaml::RegexCache::new();
    for (file, bytes) in yaml_files(BLOCKED_EDGES, blocked_edges, &mut errors, &mut warnings) {
        match blocked_edges::parse_cached(&file, &bytes, &mut regexes) {
            Ok(BlockedEdge::Plain(b)) => blocks.push(b),
            Ok(BlockedEdge::Conditional(c)) => risks.push(c),
            Err(e) => extend_capped(&mut errors, e),
        }
    }

    let parts = Parts {
        schema,
        channels: data_channels,
        blocks,
        risks,
        raw_metadata: raw_entries,
        warnings,
    };
    (parts, errors)
}

/// Most problems listed for one file; the rest are counted. A file of thousands of bad
/// fields then costs a bounded report, not one message per field.
pub(crate) const MAX_PROBLEMS_PER_FILE: usize = 100;

fn extend_capped(errors: &mut Vec<LoadError>, mut file_errors: Vec<LoadError>) {
    // One more line is the parser's own "and N more" summary, when it wrote one.
    if file_errors.len() > MAX_PROBLEMS_PER_FILE + 1 {
        let more = file_errors.len() - MAX_PROBLEMS_PER_FILE;
        file_errors.truncate(MAX_PROBLEMS_PER_FILE);
        let file = file_errors[0].file.clone();
        file_errors.push(LoadError::new(
            file,
            Problem::Field {
                field: "…".to_owned(),
                message: format!("and {more} more problems in this file"),
            },
        ));
    }
    errors.extend(file_errors);
}

/// Channels that are valid but probably not what the author meant: a name defined twice
/// (the releases would list it twice), or one a client can never ask for (the
/// policy-engine accepts only `^[0-9a-z.-]+$`).
fn channel_warnings(channels: &[channels::Channel], warnings: &mut Vec<LoadWarning>) {
    let mut first: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for c in channels {
        if let Some(other) = first.insert(&c.name, &c.file) {
            warnings.push(LoadWarning {
                file: c.file.clone(),
                message: format!("channel {:?} is also defined in {other}", c.name),
            });
        }
        if !c
            .name
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'-' || b == b'.')
        {
            warnings.push(LoadWarning {
                file: c.file.clone(),
                message: format!(
                    "channel name {:?} can never be requested (clients may only use 0-9, a-z, `-` and `.`)",
                    c.name
                ),
            });
        }
    }
}

/// Applies the directory rules to a listing: returns the YAML files to parse (path
/// relative to the root, bytes), reports the missing directory and unexpected files.
fn yaml_files(
    dir: &str,
    listing: Option<Vec<Entry>>,
    errors: &mut Vec<LoadError>,
    warnings: &mut Vec<LoadWarning>,
) -> Vec<(String, Vec<u8>)> {
    let Some(listing) = listing else {
        errors.push(LoadError::new(
            dir,
            Problem::Missing {
                why: "the directory must exist, even if empty",
            },
        ));
        return Vec::new();
    };
    let mut out = Vec::with_capacity(listing.len());
    for Entry { name, content } in listing {
        let file = format!("{dir}/{name}");
        match (content, classify(&name)) {
            (Content::Dir, _) => warnings.push(LoadWarning {
                file,
                message: "subdirectory ignored (graph-data directories are read non-recursively)"
                    .to_owned(),
            }),
            (_, Kind::Bookkeeping) => {}
            (_, Kind::Unexpected(reason)) => {
                errors.push(LoadError::new(file, Problem::UnexpectedFile { reason }))
            }
            (Content::Yaml(bytes), Kind::Yaml) => out.push((file, bytes)),
            // A `.yaml` file whose content was not kept cannot happen: both readers keep
            // exactly the `.yaml` children. Report it rather than skip silently.
            (Content::NotRead, Kind::Yaml) => errors.push(LoadError::new(
                file,
                Problem::UnexpectedFile {
                    reason: "the file could not be read".to_owned(),
                },
            )),
        }
    }
    out
}
