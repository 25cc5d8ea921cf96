"""The image's default command (`podman run -p 8081:8081 <image>`), as far as this
machine allows without a container engine: the Containerfile's CMD, run as UID 1001 in
group 0, chrooted into a root file system holding what the runtime stage provides (the
binaries and the libraries they link, the bundled sample under /usr/share/update-service,
a shell as UBI minimal has one), in a fresh network namespace. It serves the bundled
sample in one-process mode on all interfaces (reached here through 127.0.0.2, which a
listener bound to 127.0.0.1 would not answer), and the documented environment variables
point it at a registry instead."""

import json
import pathlib
import shlex
import shutil
import subprocess
import sys

from conftest import REPO
from test_containerfile import stages
from test_runtime import HERE, build_image, copy_file, shared_libraries

SAMPLE = "/usr/share/update-service"
GRAPH = "http://127.0.0.2:8081/api/upgrades_info/v1/graph?channel=stable-4.16"


def default_command() -> list:
    _, runtime = stages()
    cmds = [rest for word, rest in runtime if word == "CMD"]
    assert len(cmds) == 1, cmds
    return json.loads(cmds[0])


def image_root(tmp: pathlib.Path) -> pathlib.Path:
    """The runtime stage's file system: build_image's, plus the sample the Containerfile
    copies and /bin/sh."""
    root = tmp / "root"
    build_image(root)
    _, runtime = stages()
    copies = [shlex.split(rest) for word, rest in runtime if word == "COPY"]
    data = {c[-1]: c[-2] for c in copies if c[-1].startswith(SAMPLE)}
    assert data == {
        f"{SAMPLE}/sample-releases": "/src/data/sample-releases",
        f"{SAMPLE}/graph-data": "/src/data/graph-data",
    }
    for target, source in data.items():
        shutil.copytree(REPO / source.removeprefix("/src/"), root / target.lstrip("/"))
    sh = pathlib.Path(shutil.which("sh"))
    copy_file(sh, root, "/bin/sh")
    for lib in shared_libraries(sh):
        copy_file(pathlib.Path(lib), root, lib)
    return root


def run(tmp: pathlib.Path, env: dict, ready: list, probes: list) -> dict:
    root = image_root(tmp)
    spec = {
        "containers": [{"name": "default", "argv": default_command(), "env": env}],
        "probes": [["default", url] for url in probes],
        "ready": ready,
        "settle": [],
        "sigterm_wait": 10,
    }
    (tmp / "spec.json").write_text(json.dumps(spec))
    # 127.0.0.2 is on lo already (127/8); the namespace's lo is brought up by podsim.
    out = subprocess.run(
        ["unshare", "--net", "--pid", "--fork", "--kill-child", sys.executable, str(HERE / "podsim.py"), str(root), str(tmp / "spec.json")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    shutil.rmtree(root, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_default_command_serves_the_bundled_sample_on_all_interfaces(tmp_path):
    ready = "http://127.0.0.2:9081/readyz"
    result = run(tmp_path, {}, [ready], [ready, GRAPH, "http://127.0.0.2:9081/status"])
    container = result["containers"]["default"]
    readyz, graph, status = result["probes"]
    assert readyz["status"] == 200, container["log"]
    assert graph["status"] == 200, graph
    # podsim reads the first 64 KiB of a body: enough to show its shape.
    assert graph["body"].startswith('{"version":1,"nodes":[{"version":"4.15.'), graph["body"][:200]
    doc = json.loads(status["body"])
    assert doc["ready"] is True
    assert doc["origin"] == f"one-process: releases from OCI layout {SAMPLE}/sample-releases, graph-data {SAMPLE}/graph-data"
    assert doc["served"]["nodes"] > 200, doc["served"]
    assert (container["running_until_sigterm"], container["exit"]) == (True, 0), container["log"]


def test_registry_variables_point_the_default_command_at_a_registry(tmp_path):
    env = {"PE_RELEASES_REGISTRY": "registry.site.example:5000", "PE_RELEASES_REPOSITORY": "ocp/release"}
    result = run(tmp_path, env, [], ["http://127.0.0.2:9081/status"])
    (status,) = result["probes"]
    doc = json.loads(status["body"])
    assert doc["origin"] == f"one-process: releases from registry registry.site.example:5000 repository ocp/release, graph-data {SAMPLE}/graph-data"
    assert doc["ready"] is False
