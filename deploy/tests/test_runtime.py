"""The runtime stage, as far as this machine allows without a container engine: the
binaries start with the operator's exact command, args and environment (taken from the
rendered Deployment, ConfigMap references resolved and `$(VAR)` expanded as the kubelet
does), as UID 1001 in group 0, chrooted into a root file system holding only what the
image provides (the binaries, the shared libraries they link, the Containerfile's
directories, a CA bundle as ubi-minimal ships it, the /etc/hosts the kubelet writes) plus
what the pod mounts (gb.toml, the pull secret, the graph-data the init container copies).
Both run in one fresh network namespace, as containers of a pod share one. Four pods,
at the same time: the base as rendered (its registry is unreachable: alive, not ready);
the base with gb.toml naming a local registry of three release images (ready, the
channel's graph served with the bundled graph-data applied); the scale-out layout's two
Deployments; the openshift layout behind components/cluster-proxy.

Not checked here: the real base images, the build stage, image pulls and the init
container's copy (see the README's Deploy section)."""

import copy
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, container, find, render_overlay, render_with_component
from test_containerfile import BINARIES, OPERATOR_PATHS, binaries_dir

HERE = pathlib.Path(__file__).resolve().parent
NO_REGISTRY = "no registry is reachable from the pod's network namespace"


def kubelet_env(c: dict, configmaps: dict) -> dict:
    env = {}
    for e in c.get("env", []):
        ref = e["valueFrom"]["configMapKeyRef"]
        env[e["name"]] = configmaps[ref["name"]][ref["key"]]
    return env


def kubelet_expand(arg: str, env: dict) -> str:
    """`$(VAR)` becomes the variable's value when it is defined, as in the kubelet."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), arg)


def copy_file(src: pathlib.Path, root: pathlib.Path, path: str) -> None:
    """A hard link where the file system allows one (cheap for large binaries), a copy
    otherwise."""
    dest = root / path.lstrip("/")
    if dest.exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(os.path.realpath(src), dest)
    except OSError:
        shutil.copyfile(src, dest)
        shutil.copymode(src, dest)


def shared_libraries(binary: pathlib.Path) -> list:
    out = subprocess.run(["ldd", str(binary)], check=True, capture_output=True, text=True).stdout
    return re.findall(r"(/\S+\.so[.\d]*)", out)


def build_image(root: pathlib.Path) -> None:
    """What the runtime image holds: the binaries and the libraries they link, the
    Containerfile's directories and ownership, and what ubi-minimal ships (a CA bundle,
    nsswitch.conf)."""
    for b in BINARIES:
        src = binaries_dir() / b
        if not src.is_file():
            pytest.fail(f"{src} not built; run `cargo build --bins` (or set UPDATE_SERVICE_BIN_DIR)")
        copy_file(src, root, f"/usr/bin/{b}")
        for lib in shared_libraries(src):
            copy_file(pathlib.Path(lib), root, lib)
    for path in OPERATOR_PATHS + ["/tmp"]:
        (root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    for bundle in ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"]:
        if os.path.exists(bundle):
            copy_file(pathlib.Path(bundle), root, "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem")
            break
    (root / "etc/nsswitch.conf").write_text("hosts: files dns\n")
    # The Containerfile's `chown -R 1001:0` (the tree holds only directories here).
    for path in ["etc/configs", "var/lib/cincinnati"]:
        for dirpath, _, _ in os.walk(root / path):
            os.chown(dirpath, 1001, 0)


def mount_volumes(root: pathlib.Path, objects, hosts) -> None:
    """What the pod adds: the volumes with the content the rendered objects give them
    (the graph-data as the init container copies it, owned by whoever ran it), and the
    /etc/hosts the kubelet writes."""
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost\n" + "".join(f"127.0.0.1 {h}\n" for h in hosts))
    gb_toml = find(objects, "ConfigMap", "update-service-config")["data"]["gb.toml"]
    (root / "etc/configs/gb.toml").write_text(gb_toml)
    secret = find(objects, "Secret", "update-service-pull-secret")["stringData"]
    (root / "var/lib/cincinnati/registry-credentials/.dockerconfigjson").write_text(secret[".dockerconfigjson"])
    shutil.rmtree(root / "var/lib/cincinnati/graph-data")
    shutil.copytree(REPO / "data" / "graph-data", root / "var/lib/cincinnati/graph-data")


SINGLE_POD = [("update-service", "graph-builder"), ("update-service", "policy-engine")]
# Releases in the bundled graph-data's stable-4.16 channel. 4.15.20 -> 4.16.2 is blocked
# by two conditional-update risks (blocked-edges/4.16.2-*.yaml); 4.16.1 -> 4.16.2 is not.
RELEASES = [("4.15.20", []), ("4.16.1", []), ("4.16.2", ["4.16.1", "4.15.20"])]
REGISTRY = "127.0.0.1:5000"
GRAPH_URL = "http://127.0.0.1:8081/api/upgrades_info/graph?channel=stable-4.16&arch=amd64"
# Release signatures: the policy-engine loads them from the graph-builder's graph-data
# tarball (public port 8090 next to its upstream), with no flag beyond the operator's.
SIGNATURE_STATUS = "http://127.0.0.1:9081/signatures"
UNKNOWN_SIGNATURE = "http://127.0.0.1:8081/api/upgrades_info/signatures/sha256=" + "0" * 64 + "/signature-1"
SIGNATURE_PROBES = [["policy-engine", SIGNATURE_STATUS], ["policy-engine", UNKNOWN_SIGNATURE]]
# A first load may meet a graph-builder that has no graph-data yet; it is retried in 10 s.
SIGNATURES_SETTLE = [[SIGNATURE_STATUS, '"state":"ok"']]


def start_pod(tmp, objects, probes, registry=None, ready=(), settle=(), containers_of=SINGLE_POD, hosts=()) -> dict:
    """Lays out the image and the pod's volumes under `tmp`/root and starts the named
    containers (deployment, container) in fresh network and PID namespaces (podsim.py);
    `hosts` are extra names for 127.0.0.1 (Service names, in the scale-out layout)."""
    configmaps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    root = tmp / "root"
    build_image(root)
    mount_volumes(root, objects, hosts)
    containers = []
    for deployment, name in containers_of:
        c = container(find(objects, "Deployment", deployment), name)
        env = kubelet_env(c, configmaps)
        containers.append({"name": name, "argv": c["command"] + [kubelet_expand(a, env) for a in c["args"]], "env": env})
    spec = {"containers": containers, "probes": probes, "ready": list(ready), "settle": list(settle), "sigterm_wait": 10}
    if registry is not None:
        spec["registry"] = registry
    (tmp / "spec.json").write_text(json.dumps(spec))
    process = subprocess.Popen(
        # If this process is killed, podsim (the PID namespace's init) dies with it, and
        # the kernel then kills every process it started.
        ["unshare", "--net", "--pid", "--fork", "--kill-child", sys.executable, str(HERE / "podsim.py"), str(root), str(tmp / "spec.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return {"process": process, "root": root, "containers": containers}


def finish_pod(started: dict) -> dict:
    """Waits (bounded) for a started pod's report; removes its file system."""
    process = started["process"]
    try:
        stdout, stderr = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    finally:
        shutil.rmtree(started["root"], ignore_errors=True)
    assert process.returncode == 0, stderr
    result = json.loads(stdout)
    result["argv"] = {c["name"]: c["argv"] for c in started["containers"]}
    result["env"] = {c["name"]: c["env"] for c in started["containers"]}
    return result


@pytest.fixture(scope="module")
def pods(tmp_path_factory):
    """Every pod of this module, run at the same time (each in its own namespaces, so the
    same ports do not clash): most of their time is spent waiting for readiness."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, unshare and ip (CI and hack/test.sh run as root)")
    probe_ns = subprocess.run(["unshare", "--net", "--pid", "--fork", "true"], capture_output=True, text=True, timeout=30)
    if probe_ns.returncode != 0:
        pytest.skip(f"this machine refuses new network namespaces: {probe_ns.stderr.strip()}")
    plans = {}

    # The base overlay as rendered: its registry (mirror.example.com) is unreachable.
    plans["unreachable"] = (tmp_path_factory.mktemp("unreachable"), list(render_overlay("base")), {
        "probes": [
            ["graph-builder", "http://127.0.0.1:9080/liveness"],
            ["policy-engine", "http://127.0.0.1:9081/livez"],
            ["graph-builder", "http://[::1]:9080/readiness"],
            ["policy-engine", "http://[::1]:9081/readyz"],
            ["graph-builder", "http://127.0.0.1:9080/metrics"],
            ["policy-engine", "http://127.0.0.1:8081/api/upgrades_info/graph"],
            ["policy-engine", "http://[::1]:8081/api/upgrades_info/v1/graph?channel=stable-4.16"],
            ["policy-engine", "http://127.0.0.1:8081/graph?channel=stable-4.16"],
            ["policy-engine", "http://127.0.0.1:9081/metrics"],
        ],
        # The policy-engine may have fetched before the graph-builder was listening; its
        # next fetch (within seconds) reaches it.
        "settle": [["http://[::1]:8081/api/upgrades_info/v1/graph?channel=stable-4.16", "failed_json_in"]],
    })
    # The base overlay with one site value changed, the way a site overlay does: gb.toml
    # names a registry in the pod's network namespace holding three release images.
    plans["served"] = (tmp_path_factory.mktemp("served"), with_local_registry(render_overlay("base")), {
        "probes": [["policy-engine", GRAPH_URL], ["graph-builder", "http://127.0.0.1:9080/metrics"]] + SIGNATURE_PROBES,
        "ready": ["http://127.0.0.1:9080/readiness", "http://127.0.0.1:9081/readyz"],
        "settle": SIGNATURES_SETTLE,
    })
    # The scale-out layout's two Deployments, the policy-engine reaching the graph-builder
    # through its Service name (pe.upstream), resolved as cluster DNS would.
    plans["scaled"] = (tmp_path_factory.mktemp("scaled"), with_local_registry(render_overlay("scale-out")), {
        "probes": [["policy-engine", GRAPH_URL]] + SIGNATURE_PROBES,
        "ready": ["http://127.0.0.1:9081/readyz"],
        "settle": SIGNATURES_SETTLE,
        "containers_of": [("update-service-graph-builder", "graph-builder"), ("update-service-policy-engine", "policy-engine")],
        "hosts": ["update-service-graph-builder"],
    })
    # The openshift layout with components/cluster-proxy: the proxy it names does not
    # exist, so the pod works only if both binaries honour NO_PROXY (the registry is
    # 127.0.0.1, the policy-engine's upstream localhost).
    proxied_tmp = tmp_path_factory.mktemp("proxied")
    plans["proxied"] = (proxied_tmp, with_local_registry(render_with_component(proxied_tmp, "openshift", "cluster-proxy")), {
        "probes": [["policy-engine", GRAPH_URL]],
        "ready": ["http://127.0.0.1:9081/readyz"],
    })
    started = {}
    try:
        for name, (tmp, objects, options) in plans.items():
            registry = registry_spec(tmp) if name != "unreachable" else None
            started[name] = start_pod(tmp, objects, registry=registry, **options)
        return {name: finish_pod(s) for name, s in started.items()}
    finally:
        for s in started.values():
            if s["process"].poll() is None:
                s["process"].kill()
                s["process"].wait()
            shutil.rmtree(s["root"], ignore_errors=True)


@pytest.fixture(scope="module")
def pod(pods):
    return pods["unreachable"]


@pytest.fixture(scope="module")
def served_pod(pods):
    return pods["served"]


@pytest.fixture(scope="module")
def scaled_out(pods):
    return pods["scaled"]


@pytest.fixture(scope="module")
def proxied_pod(pods):
    return pods["proxied"]


def with_local_registry(objects) -> list:
    """The objects with gb.toml naming the local registry, as a site overlay would."""
    objects = copy.deepcopy(list(objects))
    config = find(objects, "ConfigMap", "update-service-config")["data"]
    assert 'registry = "mirror.example.com:8443"' in config["gb.toml"]
    config["gb.toml"] = config["gb.toml"].replace('registry = "mirror.example.com:8443"', f'registry = "http://{REGISTRY}"')
    return objects


def registry_spec(tmp) -> dict:
    """A Debian docker-registry on 127.0.0.1:5000, storage in `tmp`, and the releases to push."""
    registry_binary = shutil.which("docker-registry")
    if registry_binary is None:
        pytest.fail("docker-registry is not installed (hack/test.sh installs it)")
    (tmp / "registry.yml").write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {tmp / 'storage'}\n"
        f"http:\n  addr: {REGISTRY}\n"
    )
    return {
        "command": [registry_binary, "serve", str(tmp / "registry.yml")],
        "url": f"http://{REGISTRY}",
        "releases": [
            {"repository": "openshift/release-images", "tag": f"{v}-x86_64", "version": v, "previous": prev} for v, prev in RELEASES
        ],
    }


def probe(pod, url_end: str) -> dict:
    [hit] = [p for p in pod["probes"] if p["url"].endswith(url_end)]
    return hit


def test_the_kubelet_expansion_gives_the_operators_command_lines(pod):
    assert pod["argv"]["graph-builder"] == ["/usr/bin/graph-builder", "-c", "/etc/configs/gb.toml"]
    assert pod["argv"]["policy-engine"] == [
        "/usr/bin/policy-engine", "-vv", "--service.address", "::",
        "--service.mandatory_client_parameters", "channel",
        "--service.path_prefix", "/api/upgrades_info", "--service.port", "8081",
        "--status.address", "::", "--status.port", "9081",
        "--upstream.cincinnati.url", "http://localhost:8080/v1/graph",
    ]


def test_both_stay_up_until_sigterm_and_exit_cleanly(pod):
    for name, c in pod["containers"].items():
        assert c["running_until_sigterm"] is True, f"{name} exited early:\n{c['log']}"
        assert c["exit"] == 0, f"{name} exit {c['exit']}:\n{c['log']}"


def test_liveness_on_both_status_ports_ipv4_and_ipv6(pod):
    assert probe(pod, ":9080/liveness")["status"] == 200, pod
    assert probe(pod, ":9081/livez")["status"] == 200, pod


def test_not_ready_without_a_graph(pod):
    """The graph-builder cannot reach mirror.example.com, so neither is ready; readiness
    must say so rather than pass vacuously."""
    assert probe(pod, ":9080/readiness")["status"] == 503, NO_REGISTRY
    assert probe(pod, ":9081/readyz")["status"] == 503, NO_REGISTRY


def test_the_public_api_is_under_the_operators_prefix_with_channel_mandatory(pod):
    missing = probe(pod, ":8081/api/upgrades_info/graph")
    assert missing["status"] == 400 and json.loads(missing["body"])["kind"] == "missing_params", missing
    # It reached the graph-builder at $(UPSTREAM), which answers an empty body before its
    # first scrape: the reference's failed_json_in, not failed_upstream_fetch.
    served = probe(pod, ":8081/api/upgrades_info/v1/graph?channel=stable-4.16")
    assert served["status"] == 500 and json.loads(served["body"])["kind"] == "failed_json_in", served
    assert probe(pod, "8081/graph?channel=stable-4.16")["status"] == 404


def test_metrics_carry_the_reference_names(pod):
    assert "cincinnati_gb_" in probe(pod, ":9080/metrics")["body"]
    assert "cincinnati_pe_graph_incoming_requests_total" in probe(pod, ":9081/metrics")["body"]


def test_the_graph_builder_read_the_operators_gb_toml(pod):
    """It got as far as scraping the registry gb.toml names, with the credentials file
    and graph-data the pod mounts."""
    log = pod["containers"]["graph-builder"]["log"]
    assert "mirror.example.com" in log, log


def test_with_a_registry_both_become_ready_and_serve_the_channel(served_pod):
    check_served_graph(served_pod)


def test_scaled_out_the_policy_engine_serves_from_the_graph_builder_service(scaled_out):
    argv = scaled_out["argv"]["policy-engine"]
    assert argv[argv.index("--upstream.cincinnati.url") + 1] == "http://update-service-graph-builder:8080/v1/graph"
    check_served_graph(scaled_out)


def check_signatures(result: dict) -> None:
    """The policy-engine loaded the graph-builder's graph-data tarball (the bundled
    graph-data ships no signatures/) and answers the signature route under the prefix."""
    status = json.loads(probe(result, "/signatures")["body"])
    assert status["state"] == "ok" and status["errors"] == [], status
    assert (status["verified"], status["signatures"]) == (False, 0), status
    # Every release of the graph is reported unsigned.
    assert status["releases_without_signature"] == len(RELEASES), status
    missing = probe(result, "/signature-1")
    assert missing["status"] == 404, missing
    assert json.loads(missing["body"]) == {"kind": "does_not_exist", "value": "does not exist: signature sha256=" + "0" * 64 + "/signature-1"}


def test_with_the_operators_command_lines_signatures_come_from_the_graph_builder(served_pod, scaled_out):
    check_signatures(served_pod)
    check_signatures(scaled_out)


def test_behind_the_cluster_proxy_no_proxy_is_honoured(proxied_pod):
    for name in ["graph-builder", "policy-engine"]:
        env = proxied_pod["env"][name]
        assert env["HTTPS_PROXY"] == "http://proxy.example.com:3128" and "localhost" in env["NO_PROXY"]
    check_served_graph(proxied_pod)


def check_served_graph(pod) -> None:
    for name, c in pod["containers"].items():
        assert c["running_until_sigterm"] is True and c["exit"] == 0, f"{name}:\n{c['log']}"
    graph = probe(pod, "channel=stable-4.16&arch=amd64")
    assert graph["status"] == 200, (graph, pod["containers"]["graph-builder"]["log"])
    body = json.loads(graph["body"])
    versions = [n["version"] for n in body["nodes"]]
    assert sorted(versions) == ["4.15.20", "4.16.1", "4.16.2"], versions
    for n in body["nodes"]:
        assert n["payload"].startswith(f"{REGISTRY}/openshift/release-images@sha256:"), n
    edges = {(versions[a], versions[b]) for a, b in body["edges"]}
    assert edges == {("4.16.1", "4.16.2")}, "4.15.20 -> 4.16.2 is conditional (graph-data applied)"
    [group] = body["conditionalEdges"]
    assert group["edges"] == [{"from": "4.15.20", "to": "4.16.2"}]
    assert {r["name"] for r in group["risks"]} == {"ServiceAccountContentionSecretCreation", "OldBootImagesMissingOSReleaseRHELVersion"}


def test_with_a_registry_the_scrape_metrics_count_the_releases(served_pod):
    metrics = probe(served_pod, ":9080/metrics")["body"]
    assert "cincinnati_gb_graph_upstream_raw_releases 3" in metrics, metrics
