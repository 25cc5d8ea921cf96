"""Shared helpers for the deploy/ tests: where things are, and the kustomize output of
each overlay rendered once per session with `kubectl kustomize` (offline)."""

import functools
import os
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

DEPLOY = pathlib.Path(__file__).resolve().parent.parent
REPO = DEPLOY.parent

# Every kustomization a user may apply, plus one that adds the registry-ca component to
# each layout (a component renders only inside an overlay).
OVERLAYS = ["base", "openshift", "scale-out"]
NAMESPACE = "openshift-update-service"


@functools.lru_cache(maxsize=None)
def kubectl_with_modern_kustomize() -> str:
    """kubectl, if its embedded kustomize knows components and inline patches (v4+,
    kubectl 1.21+; Debian bookworm's kubernetes-client 1.20 does not)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not installed (hack/test.sh installs kubernetes-client)")
    out = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True, timeout=30).stdout
    match = re.search(r"Kustomize Version: v(\d+)", out)
    if not match or int(match.group(1)) < 4:
        pytest.fail(f"{kubectl} embeds no kustomize v4 or later ({out.strip()!r}); install kubectl 1.21+ (oc 4.8+ works too, as `oc kustomize`)")
    return kubectl


@functools.lru_cache(maxsize=None)
def render(path: str) -> tuple:
    """The objects `kubectl kustomize <path>` prints, as dicts (a tuple, for the cache)."""
    kubectl = kubectl_with_modern_kustomize()
    out = subprocess.run(
        [kubectl, "kustomize", path],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0:
        pytest.fail(f"kubectl kustomize {path} failed:\n{out.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def render_overlay(name: str) -> tuple:
    return render(str(DEPLOY / name))


def render_with_registry_ca(tmp_path: pathlib.Path, layout: str) -> tuple:
    return render_with_component(tmp_path, layout, "registry-ca")


def render_with_component(tmp_path: pathlib.Path, layout: str, name: str) -> tuple:
    """Renders `layout` with components/<name>, through an overlay written the way the
    component's comment tells users to write theirs."""
    overlay = tmp_path / f"with-{name}-{layout}"
    overlay.mkdir()
    # kustomize refuses absolute paths in resources and components.
    resource = os.path.relpath(DEPLOY / layout, overlay)
    component = os.path.relpath(DEPLOY / "components" / name, overlay)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources:\n  - {resource}\n"
        f"components:\n  - {component}\n"
    )
    return render(str(overlay))


def find(objects, kind: str, name: str) -> dict:
    """The one object of that kind and name; fails the test, naming both, otherwise."""
    hits = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind} {name}, found {len(hits)}"
    return hits[0]


def container(deployment: dict, name: str, init: bool = False) -> dict:
    spec = deployment["spec"]["template"]["spec"]
    key = "initContainers" if init else "containers"
    hits = [c for c in spec.get(key, []) if c["name"] == name]
    assert len(hits) == 1, f"{deployment['metadata']['name']}: {key} {name}: {len(hits)}"
    return hits[0]


def load_yaml(path: pathlib.Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]
