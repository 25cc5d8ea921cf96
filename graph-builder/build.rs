//! Records the git commit the binaries are built from, for `build_info` and `/status`.
//!
//! `GIT_COMMIT` in the build environment wins (the Containerfile passes it, since the
//! build context holds no `.git`); otherwise `git rev-parse HEAD` when the source is a
//! git checkout; otherwise `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GIT_COMMIT");
    let commit = std::env::var("GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_head)
        .unwrap_or_else(|| "unknown".to_owned());
    println!(
        "cargo:rustc-env=UPDATE_SERVICE_GIT_COMMIT={}",
        commit.trim()
    );
}

/// The checkout's HEAD commit, and the files to watch so a new commit rebuilds.
fn git_head() -> Option<String> {
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    // HEAD itself, and the branch it points to (a commit moves the branch, not HEAD).
    for path in [
        Some("HEAD".to_owned()),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ]
    .into_iter()
    .flatten()
    {
        if let Some(file) = git(&["rev-parse", "--git-path", &path]) {
            println!("cargo:rerun-if-changed={file}");
        }
    }
    Some(commit)
}
