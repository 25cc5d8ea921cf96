//! Records the git commit for the `cincinnati_pe_build_info{git_commit}` metric: the
//! `GIT_COMMIT` environment variable if set (container builds), else `git rev-parse`,
//! else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GIT_COMMIT");
    let commit = std::env::var("GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let git = |args: &[&str]| {
                Command::new("git")
                    .args(args)
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .and_then(|o| String::from_utf8(o.stdout).ok())
                    .map(|s| s.trim().to_owned())
            };
            // Rebuild when HEAD moves, so the label follows the checkout.
            if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
                println!("cargo:rerun-if-changed={dir}/HEAD");
                if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
                    println!("cargo:rerun-if-changed={dir}/{head}");
                }
            }
            git(&["rev-parse", "HEAD"])
        });
    if let Some(commit) = commit {
        println!("cargo:rustc-env=GIT_COMMIT={commit}");
    }
}
