//! `graph-data`: offline tooling for graph-data trees.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Offline tooling for graph-data trees (channels, blocked edges, raw metadata).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a graph-data directory or graph-data.tar.gz with the rules the service
    /// applies. Exit status: 0 valid, 1 problems (all printed), 2 usage or I/O error.
    Validate {
        /// The graph-data directory or `.tar.gz` file.
        path: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { path } => {
            match graph_data::validate::run(
                &path,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            ) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("graph-data: cannot write the report: {e:#}");
                    ExitCode::from(graph_data::validate::EXIT_IO)
                }
            }
        }
    }
}
