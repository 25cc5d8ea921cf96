#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine: installs what the tests need
# (idempotently), then runs every test of the workspace. The integration tests start and
# stop their own services (a CNCF distribution registry on 127.0.0.1); nothing else is
# expected to be running.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: the registry server, skopeo (OCI layouts, release
# signatures), htpasswd, gpg (the throw-away signing key; gpgconf stops its agent),
# openssl (self-signed registry certificates made the way admins make them), chromium
# (the planner page test).
need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
{ command -v gpg && command -v gpgconf && command -v gpg-agent; } >/dev/null 2>&1 || need+=(gnupg)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "hack/test.sh: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# deploy/ tests (Containerfile and manifests): kubectl renders the kustomizations
# offline, kubernetes-validate holds the Kubernetes schemas, the runtime test runs the
# built binaries chrooted in a fresh network namespace (unshare, ip), promtool (Debian's
# prometheus package) checks and unit-tests the monitoring kit's alert rules.
need=()
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
python3 -c 'import pytest, yaml, kubernetes_validate' >/dev/null 2>&1 ||
  python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "hack/test.sh: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
python3 -c 'import pytest, yaml, kubernetes_validate' >/dev/null 2>&1 ||
  PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore \
    python3 -m pip install --quiet pytest pyyaml kubernetes-validate
cargo build --locked --bins -p graph-builder -p policy-engine
UPDATE_SERVICE_BIN_DIR="${CARGO_TARGET_DIR:-target}/debug" python3 -m pytest -q -p no:cacheprovider deploy/tests

cargo test --workspace --locked "$@"
