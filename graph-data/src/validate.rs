//! The `graph-data validate` command as a library function: check a graph-data tree
//! (directory or `.tar.gz`) with the loader's rules, print every problem as
//! `<file>: <field>: <message>`, then a summary with counts.

use std::io::{self, Write};
use std::path::Path;

use crate::repo::{self, LoadFailure};

/// Exit status: the tree is valid.
pub const EXIT_OK: u8 = 0;
/// Exit status: the tree has problems (all printed).
pub const EXIT_PROBLEMS: u8 = 1;
/// Exit status: the source could not be opened (or output failed).
pub const EXIT_IO: u8 = 2;

/// Validates the tree at `path`, writing problems and the summary to `out` and a source
/// that cannot be opened to `err`. Returns the exit status.
pub fn run(path: &Path, out: &mut impl Write, err: &mut impl Write) -> io::Result<u8> {
    let v = match repo::validate(path) {
        Ok(v) => v,
        Err(e @ LoadFailure::Open { .. }) => {
            writeln!(err, "graph-data: {e}")?;
            return Ok(EXIT_IO);
        }
        // `validate` reports content problems in its result, never as this variant.
        Err(LoadFailure::Invalid(errors)) => {
            for e in &errors {
                writeln!(out, "{e}")?;
            }
            return Ok(EXIT_PROBLEMS);
        }
    };
    for e in &v.errors {
        writeln!(out, "{e}")?;
    }
    for w in &v.warnings {
        writeln!(out, "warning: {w}")?;
    }
    let schema = v
        .schema_version
        .as_ref()
        .map_or_else(|| "invalid".to_owned(), ToString::to_string);
    writeln!(out, "{}:", path.display())?;
    writeln!(out, "  schema version:            {schema}")?;
    writeln!(out, "  channels:                  {}", v.channels)?;
    writeln!(out, "  plain blocked edges:       {}", v.blocks)?;
    writeln!(out, "  risks (conditional edges): {}", v.risks)?;
    writeln!(out, "  raw metadata entries:      {}", v.raw_metadata)?;
    writeln!(out, "  warnings:                  {}", v.warnings.len())?;
    writeln!(out, "  problems:                  {}", v.errors.len())?;
    Ok(if v.errors.is_empty() {
        EXIT_OK
    } else {
        EXIT_PROBLEMS
    })
}
