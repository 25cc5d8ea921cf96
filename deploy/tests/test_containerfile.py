"""What can be checked of the Containerfile without a container engine: its stages, that
the runtime stage puts the workspace's binaries where the operator runs them, runs as a
non-root user and has the directories the Deployment mounts; that the build context keeps
what the build needs; and that binaries built on Debian bookworm (the builder image's
distribution) run on UBI 9's glibc."""

import json
import os
import pathlib
import re
import shlex
import subprocess
import tomllib

import pytest

from conftest import REPO, container, find, render_overlay

BINARIES = ["graph-builder", "policy-engine", "graph-data", "metadata-helper"]
# The package that builds each binary: `graph-data` (validate, image push) lives in the
# graph-builder package, since the graph-data library does no network I/O.
PACKAGE = {"graph-builder": "graph-builder", "policy-engine": "policy-engine", "graph-data": "graph-builder", "metadata-helper": "policy-engine"}
# The paths the operator mounts or runs.
OPERATOR_PATHS = ["/etc/configs", "/var/lib/cincinnati/graph-data", "/var/lib/cincinnati/registry-credentials", "/etc/pki/ca-trust/extracted/pem"]
UBI9_GLIBC = (2, 34)


def instructions() -> list:
    """(INSTRUCTION, argument text) pairs, continuation lines joined, comments dropped."""
    text = (REPO / "Containerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list:
    """The instructions of each FROM stage, in order."""
    result = []
    for word, rest in instructions():
        if word == "FROM":
            result.append([(word, rest)])
        elif result:
            result[-1].append((word, rest))
    return result


def build_args() -> dict:
    return dict(a.split("=", 1) for w, a in instructions() if w == "ARG" and "=" in a)


def test_two_stages_rust_builder_and_ubi_minimal_runtime():
    build, runtime = stages()
    args = build_args()
    assert build[0][1] == "${RUST_IMAGE} AS build" and args["RUST_IMAGE"].startswith("docker.io/library/rust:")
    assert runtime[0][1] == "${RUNTIME_IMAGE}"
    assert args["RUNTIME_IMAGE"].startswith("registry.access.redhat.com/ubi9/ubi-minimal")
    runs = " ".join(rest for word, rest in build if word == "RUN")
    assert "cargo build --release --locked" in runs
    for package in set(PACKAGE.values()):
        assert f"-p {package}" in runs


def test_runtime_copies_each_workspace_binary_to_usr_bin():
    _, runtime = stages()
    copies = [shlex.split(rest) for word, rest in runtime if word == "COPY"]
    targets = {c[-1]: c[-2] for c in copies if c[-1].startswith("/usr/bin/")}
    assert set(targets) == {f"/usr/bin/{b}" for b in BINARIES}
    for b in BINARIES:
        assert targets[f"/usr/bin/{b}"] == f"/src/target/release/{b}"
    assert all(c[0] == "--from=build" for c in copies)
    # Each of them is a binary target of the workspace, under the package that builds it.
    meta = json.loads(subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline"], cwd=REPO, check=True, capture_output=True, text=True, timeout=120).stdout)
    bins = {(p["name"], t["name"]) for p in meta["packages"] for t in p["targets"] if "bin" in t["kind"]}
    for b in BINARIES:
        assert (PACKAGE[b], b) in bins, f"no binary {b} in package {PACKAGE[b]}"


def test_the_deployment_runs_the_binaries_the_image_has():
    d = find(render_overlay("base"), "Deployment", "update-service")
    for name in ["graph-builder", "policy-engine"]:
        assert container(d, name)["command"] == [f"/usr/bin/{name}"]


def test_runtime_runs_as_non_root_and_creates_the_operator_paths():
    _, runtime = stages()
    users = [rest for word, rest in runtime if word == "USER"]
    assert users and users[-1] == "1001"
    runs = " ".join(rest for word, rest in runtime if word == "RUN")
    mkdir = re.search(r"mkdir -p ([^&]+)&&", runs)
    assert mkdir, runs
    created = mkdir.group(1).split()
    for path in OPERATOR_PATHS:
        assert path in created, path
    # Writable by UID 1001 and by OpenShift's arbitrary UID in group 0.
    assert "chown -R 1001:0 /etc/configs /var/lib/cincinnati" in runs
    assert "chmod -R g=u /etc/configs /var/lib/cincinnati" in runs
    # Every path the Deployment mounts into the operand is one the image prepares.
    d = find(render_overlay("base"), "Deployment", "update-service")
    for c in d["spec"]["template"]["spec"]["containers"]:
        for m in c.get("volumeMounts", []):
            assert m["mountPath"] in OPERATOR_PATHS, m


def test_runtime_sets_glibc_allocator_settings():
    """Both processes run with two malloc arenas and a fixed trim threshold (the
    policy-engine's RSS once every body was served depends on it; its serve and
    versus_nginx benchmarks read these same lines)."""
    _, runtime = stages()
    env = dict(pair.split("=", 1) for word, rest in runtime if word == "ENV" for pair in rest.split())
    assert env == {"MALLOC_ARENA_MAX": "2", "MALLOC_TRIM_THRESHOLD_": "131072"}


def test_exposes_the_four_ports_and_labels():
    runtime = stages()[1]
    exposed = [rest.split() for word, rest in runtime if word == "EXPOSE"]
    assert exposed == [["8080", "8081", "9080", "9081"]]
    labels = " ".join(rest for word, rest in runtime if word == "LABEL")
    for key in ["title", "description", "version", "revision", "licenses", "source"]:
        assert f"org.opencontainers.image.{key}=" in labels, key


def ignored_patterns(name: str) -> list:
    return [l.strip() for l in (REPO / name).read_text().splitlines() if l.strip() and not l.startswith("#")]


def test_the_build_context_keeps_what_the_build_needs():
    patterns = ignored_patterns(".containerignore")
    assert patterns == ignored_patterns(".dockerignore"), "podman reads one, docker the other"
    needed = ["Cargo.toml", "Cargo.lock", "data"]
    needed += tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["members"]
    for path in needed:
        assert path not in patterns and path.split("/")[0] not in patterns, path
    assert "target" in patterns and ".git" in patterns


def binaries_dir() -> pathlib.Path:
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return pathlib.Path(os.environ.get("UPDATE_SERVICE_BIN_DIR", target / "debug"))


def test_binaries_need_no_glibc_newer_than_ubi9():
    """The versioned glibc symbols a binary needs are named in its dynamic string table;
    none may be newer than UBI 9's glibc 2.34. Meaningful when this machine is Debian
    bookworm, the builder image's distribution (hack/test.sh builds the binaries)."""
    release = pathlib.Path("/etc/os-release").read_text() if pathlib.Path("/etc/os-release").exists() else ""
    if "VERSION_CODENAME=bookworm" not in release:
        pytest.skip("binaries built here say nothing about the bookworm builder's")
    directory = binaries_dir()
    missing = [b for b in BINARIES if not (directory / b).is_file()]
    if missing:
        pytest.fail(f"{directory}: {missing} not built; run `cargo build --bins` (or set UPDATE_SERVICE_BIN_DIR)")
    for b in BINARIES:
        needed = {tuple(map(int, v.split(b"."))) for v in re.findall(rb"GLIBC_(\d+\.\d+)(?![\d.])", (directory / b).read_bytes())}
        assert needed, f"{b}: no glibc symbol versions found (static binary?)"
        assert max(needed) <= UBI9_GLIBC, f"{b} needs GLIBC_{'.'.join(map(str, max(needed)))}"


# Shared libraries UBI 9 minimal has without installing anything (glibc, libgcc).
UBI9_MINIMAL_LIBRARIES = {"linux-vdso.so.1", "libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2", "libpthread.so.0", "libdl.so.2", "librt.so.1"}


def test_binaries_link_only_libraries_ubi9_minimal_has():
    """The runtime stage installs no package: a dependency that links, say, OpenSSL or
    zlib dynamically must change the Containerfile too."""
    directory = binaries_dir()
    for b in BINARIES:
        if not (directory / b).is_file():
            pytest.fail(f"{directory / b} not built; run `cargo build --bins` (or set UPDATE_SERVICE_BIN_DIR)")
        out = subprocess.run(["ldd", str(directory / b)], check=True, capture_output=True, text=True, timeout=30).stdout
        linked = {os.path.basename(line.split()[0]) for line in out.splitlines() if line.strip()}
        assert linked <= UBI9_MINIMAL_LIBRARIES, f"{b} links {sorted(linked - UBI9_MINIMAL_LIBRARIES)}"


def test_release_binaries_are_stripped_and_name_their_commit():
    """The image's binaries come from the release profile, which strips debug information
    and symbols; the build stage hands the image's revision to the build script, so
    `build_info` and `/status` name the commit even though the build context has no
    `.git`."""
    profile = tomllib.loads((REPO / "Cargo.toml").read_text())["profile"]["release"]
    assert profile.get("strip") in (True, "symbols"), profile
    assert "debug" not in profile or profile["debug"] in (False, 0, "none"), profile
    build, runtime = stages()
    assert ("ARG", "REVISION=unknown") in build
    runs = " ".join(rest for word, rest in build if word == "RUN")
    assert 'GIT_COMMIT="${REVISION}" cargo build --release' in runs
    labels = " ".join(rest for word, rest in runtime if word == "LABEL")
    assert 'org.opencontainers.image.revision="${REVISION}"' in labels
    build_script = (REPO / "graph-builder" / "build.rs").read_text()
    assert 'std::env::var("GIT_COMMIT")' in build_script
