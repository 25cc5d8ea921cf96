//! Real release signatures for tests: a throw-away OpenPGP key made by Debian's `gpg`
//! in its own `GNUPGHOME` (batch, no passphrase), atomic signatures of manifests made by
//! `skopeo standalone-sign`, and `skopeo standalone-verify` to check what a server
//! returns. The `gpg-agent` that signing starts is stopped when the key is dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::HarnessError;

/// A throw-away signing key and its keyring.
#[derive(Debug)]
pub struct TestKey {
    home: tempfile::TempDir,
    /// The primary key's fingerprint (upper-case hex).
    pub fingerprint: String,
    /// The armored public key.
    pub public_key: PathBuf,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HarnessError {
    let path = path.to_owned();
    move |source| HarnessError::Io {
        action,
        path,
        source,
    }
}

fn run(program: &str, args: &[&str], home: &Path) -> Result<Output, HarnessError> {
    let output = Command::new(program)
        .args(args)
        .env("GNUPGHOME", home)
        .output()
        .map_err(|source| HarnessError::Spawn {
            program: format!("{program} (run hack/test.sh to install it)"),
            source,
        })?;
    if !output.status.success() {
        return Err(HarnessError::Command {
            command: format!("{program} {}", args.join(" ")),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(output)
}

impl TestKey {
    /// Generates an RSA 2048 signing key (`uid` like `Name <mail@example.com>`).
    pub fn generate(uid: &str) -> Result<TestKey, HarnessError> {
        let tmp = std::env::temp_dir();
        let home = tempfile::Builder::new()
            .prefix("gnupg-")
            .tempdir()
            .map_err(io("creating", &tmp))?;
        std::fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(io("restricting", home.path()))?;
        run(
            "gpg",
            &[
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
                "--quick-generate-key",
                uid,
                "rsa2048",
                "sign",
                "never",
            ],
            home.path(),
        )?;
        let listing = run(
            "gpg",
            &["--batch", "--with-colons", "--list-keys", uid],
            home.path(),
        )?;
        let listing = String::from_utf8_lossy(&listing.stdout);
        let fingerprint = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|l| l.split(':').find(|f| !f.is_empty()))
            .unwrap_or_default()
            .to_owned();
        let public_key = home.path().join("public.asc");
        let exported = run("gpg", &["--batch", "--armor", "--export", uid], home.path())?;
        std::fs::write(&public_key, exported.stdout).map_err(io("writing", &public_key))?;
        Ok(TestKey {
            home,
            fingerprint,
            public_key,
        })
    }

    /// The atomic signature of `manifest` for `docker_reference`, made by
    /// `skopeo standalone-sign`.
    pub fn sign(&self, manifest: &[u8], docker_reference: &str) -> Result<Vec<u8>, HarnessError> {
        let dir =
            tempfile::tempdir_in(self.home.path()).map_err(io("creating", self.home.path()))?;
        let manifest_path = dir.path().join("manifest.json");
        std::fs::write(&manifest_path, manifest).map_err(io("writing", &manifest_path))?;
        let output = dir.path().join("signature");
        run(
            "skopeo",
            &[
                "standalone-sign",
                "--output",
                output.to_str().unwrap_or_default(),
                manifest_path.to_str().unwrap_or_default(),
                docker_reference,
                &self.fingerprint,
            ],
            self.home.path(),
        )?;
        std::fs::read(&output).map_err(io("reading", &output))
    }

    /// `skopeo standalone-verify`: whether `signature` is this key's signature of
    /// `manifest` for `docker_reference`; the command's output on success, its error
    /// otherwise.
    pub fn verify(
        &self,
        manifest: &[u8],
        docker_reference: &str,
        signature: &[u8],
    ) -> Result<String, HarnessError> {
        let dir =
            tempfile::tempdir_in(self.home.path()).map_err(io("creating", self.home.path()))?;
        let manifest_path = dir.path().join("manifest.json");
        let signature_path = dir.path().join("signature");
        std::fs::write(&manifest_path, manifest).map_err(io("writing", &manifest_path))?;
        std::fs::write(&signature_path, signature).map_err(io("writing", &signature_path))?;
        let output = run(
            "skopeo",
            &[
                "standalone-verify",
                manifest_path.to_str().unwrap_or_default(),
                docker_reference,
                &self.fingerprint,
                signature_path.to_str().unwrap_or_default(),
            ],
            self.home.path(),
        )?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

impl Drop for TestKey {
    fn drop(&mut self) {
        // The agent gpg started for this home; bounded, and harmless if none runs.
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", self.home.path())
            .output();
        std::thread::sleep(Duration::from_millis(10));
    }
}
