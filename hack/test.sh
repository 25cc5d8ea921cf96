#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine: installs what the tests need
# (idempotently), then runs every test of the workspace. The integration tests start and
# stop their own services (a CNCF distribution registry on 127.0.0.1); nothing else is
# expected to be running.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: the registry server, skopeo (OCI layouts), htpasswd.
need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "hack/test.sh: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

cargo test --workspace --locked "$@"
