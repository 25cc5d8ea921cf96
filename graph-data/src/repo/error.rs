//! Errors and warnings of the graph-data loader.
//!
//! Every problem names the file it was found in, relative to the graph-data root
//! (`blocked-edges/4.1.10.yaml`), and, where there is one, the field. The loader collects
//! all of them instead of stopping at the first, so `graph-data validate` can print a
//! complete list.

use std::fmt;
use std::path::PathBuf;

/// One problem in a graph-data tree.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct LoadError {
    /// The file (or directory, or tarball entry) relative to the graph-data root.
    pub file: String,
    /// What is wrong with it.
    pub problem: Problem,
}

impl LoadError {
    /// A problem with `file` as a whole.
    pub fn new(file: impl Into<String>, problem: Problem) -> Self {
        Self {
            file: file.into(),
            problem,
        }
    }

    /// A problem with one field of `file`.
    pub fn field(
        file: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(
            file,
            Problem::Field {
                field: field.into(),
                message: message.into(),
            },
        )
    }
}

/// What is wrong with a file of the graph-data tree.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// A file or directory the format requires is absent.
    #[error("missing ({why})")]
    Missing {
        /// Why the format needs it.
        why: &'static str,
    },
    /// The file exists but could not be read.
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    /// The file is not UTF-8 text.
    #[error("not UTF-8 text")]
    NotUtf8,
    /// A file in `channels/` or `blocked-edges/` that the reader would not read.
    #[error("{reason}")]
    UnexpectedFile {
        /// Why it is not read, and what to do about it.
        reason: String,
    },
    /// The file is not YAML, or not a mapping at the top.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// The file is not JSON of the expected shape.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// One field has a wrong, missing or unexpected value.
    #[error("field `{field}`: {message}")]
    Field {
        /// The field path (`to`, `matchingRules[0].promql.promql`, `"4.1.0".key`).
        field: String,
        /// What is wrong with its value.
        message: String,
    },
    /// The `version` file names a schema this implementation does not understand.
    #[error("{0}")]
    Schema(String),
    /// A file of a graph-data directory that is refused for safety: a link that leaves
    /// the directory, a device or FIFO, a file above the size cap.
    #[error("refused: {0}")]
    Refused(String),
    /// A tarball entry that is refused for safety (absolute path, `..`, link, device,
    /// oversized) or a tarball that cannot be decoded.
    #[error("{0}")]
    Archive(String),
}

impl From<super::RootDirError> for Problem {
    fn from(e: super::RootDirError) -> Self {
        match e {
            super::RootDirError::Io(e) => Problem::Read(e),
            other => Problem::Refused(other.to_string()),
        }
    }
}

/// Something worth telling the operator that does not make the tree invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadWarning {
    /// The file relative to the graph-data root.
    pub file: String,
    /// What is notable about it.
    pub message: String,
}

impl fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// Why a graph-data tree could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadFailure {
    /// The source itself (directory or tarball path) cannot be opened.
    #[error("cannot open graph-data source {}: {source}", path.display())]
    Open {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The source was read, and its content has problems (all of them listed).
    #[error("{}", Invalid(.0))]
    Invalid(Vec<LoadError>),
}

/// Renders a problem list on one line, `N problem(s) in graph-data: a; b; c`, so a log
/// record holding it stays one record.
struct Invalid<'a>(&'a [LoadError]);

impl fmt::Display for Invalid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s) in graph-data", self.0.len())?;
        for (i, e) in self.0.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_file_field_message() {
        let e = LoadError::field("blocked-edges/4.1.10.yaml", "name", "missing");
        assert_eq!(
            e.to_string(),
            "blocked-edges/4.1.10.yaml: field `name`: missing"
        );
        let all = LoadFailure::Invalid(vec![
            e,
            LoadError::new("channels", Problem::Missing { why: "a directory" }),
        ]);
        assert_eq!(
            all.to_string(),
            "2 problem(s) in graph-data: blocked-edges/4.1.10.yaml: field `name`: missing; channels: missing (a directory)"
        );
    }
}
