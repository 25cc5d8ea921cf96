//! `skopeo`, an independent registry client: checks what the pusher wrote, and copies
//! images from the test registry into OCI image layout directories.

use std::path::Path;
use std::process::Command;

use crate::registry::TestRegistry;
use crate::HarnessError;

/// The digest skopeo reports for `repository:tag` (`skopeo inspect`'s `Digest`).
pub fn inspect_digest(
    registry: &TestRegistry,
    repository: &str,
    tag: &str,
) -> Result<String, HarnessError> {
    let image = format!("docker://{}/{repository}:{tag}", registry.host_port());
    let mut args = vec!["inspect".to_owned(), "--tls-verify=false".to_owned()];
    args.extend(creds_args(registry));
    args.push(image);
    let output = run(&args)?;
    let value: serde_json::Value =
        serde_json::from_slice(&output).map_err(|source| HarnessError::Parse {
            command: command_line(&args),
            source,
        })?;
    Ok(value["Digest"].as_str().unwrap_or_default().to_owned())
}

/// The manifest bytes skopeo fetches for `repository:tag` (`skopeo inspect --raw`).
pub fn inspect_raw(
    registry: &TestRegistry,
    repository: &str,
    tag: &str,
) -> Result<Vec<u8>, HarnessError> {
    let image = format!("docker://{}/{repository}:{tag}", registry.host_port());
    let mut args = vec![
        "inspect".to_owned(),
        "--raw".to_owned(),
        "--tls-verify=false".to_owned(),
    ];
    args.extend(creds_args(registry));
    args.push(image);
    run(&args)
}

/// Copies `repository:tag` with every platform and unchanged digests into the OCI image
/// layout at `layout` (created if needed), under the same tag.
pub fn copy_to_oci_layout(
    registry: &TestRegistry,
    repository: &str,
    tag: &str,
    layout: &Path,
) -> Result<(), HarnessError> {
    let mut args = vec![
        "copy".to_owned(),
        "--quiet".to_owned(),
        "--all".to_owned(),
        "--preserve-digests".to_owned(),
        "--src-tls-verify=false".to_owned(),
    ];
    if let Some(c) = registry.credentials() {
        args.push(format!("--src-creds={}:{}", c.username, c.password));
    }
    args.push(format!(
        "docker://{}/{repository}:{tag}",
        registry.host_port()
    ));
    args.push(format!("oci:{}:{tag}", layout.display()));
    run(&args).map(drop)
}

fn creds_args(registry: &TestRegistry) -> Option<String> {
    registry
        .credentials()
        .map(|c| format!("--creds={}:{}", c.username, c.password))
}

fn run(args: &[String]) -> Result<Vec<u8>, HarnessError> {
    // Bounded: skopeo gives up by itself rather than hanging a test.
    let output = Command::new("skopeo")
        .arg("--command-timeout=120s")
        .args(args)
        .output()
        .map_err(|source| HarnessError::Spawn {
            program: "skopeo (run hack/test.sh to install it)".into(),
            source,
        })?;
    if !output.status.success() {
        return Err(HarnessError::Command {
            command: command_line(args),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(output.stdout)
}

fn command_line(args: &[String]) -> String {
    format!("skopeo {}", args.join(" "))
}
