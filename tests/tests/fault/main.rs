//! Fault injection: the real `graph-builder` binary against the scripted fake registry
//! (`integration_tests::fake`) and hostile graph-data files. Every test starts from a
//! healthy registry, lets a first refresh serve a graph, then injects one fault and checks
//! that the process stays alive and small, keeps serving the healthy releases, gives up in
//! bounded time, and says why in its logs and on `/metrics`. Modules by class of fault:
//! memory, time, verification, super-linear work, files, fetch failures that must not
//! shrink the graph, poisoned releases on a cold start, credentials, and abuse of the
//! main port. Each test prints one `figure:` line (peak RSS, wall time, nodes) to stderr,
//! collected with `--nocapture`.
//!
//! The binary is taken from `UPDATE_SERVICE_BIN_DIR`, else from the target directory this
//! test runs from: build it first (`cargo build -p graph-builder --bin graph-builder`).

mod credentials;
mod files;
mod harness;
mod memory;
mod poison;
mod shrink;
mod super_linear;
mod surface;
mod time;
mod verification;
