//! Logging for both binaries: the `-v` / `--log-format` flags ([`LogArgs`]) and the one
//! place that turns them into a tracing subscriber ([`init`]).
//!
//! Levels: lifecycle (listening, a refresh done, progress of a long scrape) is INFO, so
//! it shows by default; WARN is kept for what the admin should act on (a refresh failed,
//! a CA file skipped). `-v` counts raise the level of our own crates only, so `-vv` (what
//! the operator passes) does not turn on hyper's, h2's or rustls's debug output; other
//! crates stay at WARN. `RUST_LOG`, when set, replaces the whole filter.
//!
//! Every record is one line: the text format writes fields as `key=value` on the line,
//! the JSON format one object per line. Errors logged with their cause chain (`{e:#}`)
//! never hold a newline, so a log collector keeps each one whole.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Our crates, whose level `-v` sets.
const OUR_CRATES: [&str; 3] = ["graph_builder", "graph_data", "policy_engine"];

/// How log records are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per record: time, level, target, message, `key=value`s.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and every
    /// field at the top level, for log collectors.
    Json,
}

/// The logging flags, the same in both binaries.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogArgs {
    /// Log verbosity of this service's own crates: info by default (and with -v, the
    /// reference's meaning), -vv debug, -vvv trace. Other crates log at warn. RUST_LOG,
    /// when set, replaces the whole filter.
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    pub verbosity: u8,

    /// Log record format on stderr: `text` (one line per record) or `json` (one object
    /// per line).
    #[arg(
        long = "log-format",
        env = "LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
}

/// The filter directives for a `-v` count: our crates at the chosen level, others at warn,
/// except the HTTP/1 parser's per-connection errors (malformed or oversized requests):
/// any client can make one per connection, so at ERROR they would let anyone flood the
/// log. The refusal itself is the client's answer; `RUST_LOG` brings them back.
pub fn filter_directives(verbosity: u8) -> String {
    let level = match verbosity {
        0 | 1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let mut directives =
        String::from("warn,actix_http::h1::decoder=off,actix_http::h1::dispatcher=off");
    for krate in OUR_CRATES {
        directives.push_str(&format!(",{krate}={level}"));
    }
    directives
}

/// Installs the global subscriber on stderr. `RUST_LOG` wins over `verbosity`; a
/// `RUST_LOG` that does not parse is reported (once logging works) and ignored.
pub fn init(verbosity: u8, format: LogFormat) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| EnvFilter::try_new(&v).map_err(|e| (v, e)));
    let (filter, bad_env) = match from_env {
        Some(Ok(filter)) => (filter, None),
        Some(Err(bad)) => (EnvFilter::new(filter_directives(verbosity)), Some(bad)),
        None => (EnvFilter::new(filter_directives(verbosity)), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests that call it twice) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder
            // Colour codes only for a person at a terminal, not in container logs.
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
    if let Some((value, error)) = bad_env {
        tracing::warn!(rust_log = %value, %error, "RUST_LOG does not parse; using -v instead");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        log: LogArgs,
    }

    #[test]
    fn verbosity_scopes_to_our_crates() {
        assert_eq!(
            filter_directives(0),
            "warn,actix_http::h1::decoder=off,actix_http::h1::dispatcher=off,graph_builder=info,graph_data=info,policy_engine=info"
        );
        assert_eq!(filter_directives(1), filter_directives(0));
        assert_eq!(
            filter_directives(2),
            "warn,actix_http::h1::decoder=off,actix_http::h1::dispatcher=off,graph_builder=debug,graph_data=debug,policy_engine=debug"
        );
        assert_eq!(
            filter_directives(7),
            "warn,actix_http::h1::decoder=off,actix_http::h1::dispatcher=off,graph_builder=trace,graph_data=trace,policy_engine=trace"
        );
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from(["x", "-vv", "--log-format", "json"]).unwrap();
        assert_eq!(
            (cli.log.verbosity, cli.log.log_format),
            (2, LogFormat::Json)
        );
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(
            (cli.log.verbosity, cli.log.log_format),
            (0, LogFormat::Text)
        );
        let err = Cli::try_parse_from(["x", "--log-format", "xml"]).unwrap_err();
        assert!(
            err.to_string().contains("[possible values: text, json]"),
            "{err}"
        );
    }
}
