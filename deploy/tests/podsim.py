"""Runs the containers of one rendered pod the way the kubelet would, as far as this
machine allows, and prints what it observed as JSON. Run inside a fresh network
namespace (`unshare --net`), so the operator's `::` listeners are reachable only from
here and clash with nothing on the host:

    unshare --net --pid --fork --kill-child python3 podsim.py <rootfs> <spec.json>

spec.json: {"containers": [{"name", "argv", "env"}], "probes": [[container, url]],
"sigterm_wait": seconds, optionally "registry": {"command": argv, "url": base,
"releases": [{"repository", "tag", "version", "previous"}]}, "ready": [url] and
"settle": [[url, text]] (polled, bounded, until the body contains the text).
The registry, when given, starts first (outside the chroot) and gets the releases. Each
container runs chrooted into <rootfs> as UID 1001, group 0, with only its own
environment; every URL in "ready" is polled until it answers 200 (bounded), then every
URL in "probes" is fetched once it answers at all. Processes are stopped with SIGTERM by
PID, then SIGKILL."""

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import releases


def fetch(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return {"status": r.status, "body": r.read(65536).decode("utf-8", "replace")}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read(65536).decode("utf-8", "replace")}
    except OSError as e:
        return {"status": None, "error": str(e)}


def main() -> None:
    rootfs, spec_path = sys.argv[1], sys.argv[2]
    spec = json.load(open(spec_path))
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # Found here, because the containers' environments have no PATH.
    chroot = shutil.which("chroot")
    procs = {}
    result = {"containers": {}, "probes": [], "ready": {}}
    registry = None
    try:
        if "registry" in spec:
            r = spec["registry"]
            registry = subprocess.Popen(r["command"], stdout=subprocess.DEVNULL, stderr=open(f"{spec_path}.registry.log", "w"))
            for _ in range(100):
                if fetch(f"{r['url']}/v2/")["status"] == 200:
                    break
                time.sleep(0.1)
            for rel in r["releases"]:
                releases.push_release(r["url"], rel["repository"], rel["tag"], rel["version"], rel["previous"])
        for c in spec["containers"]:
            log = open(f"{spec_path}.{c['name']}.log", "w")
            procs[c["name"]] = (
                subprocess.Popen(
                    [chroot, "--userspec=1001:0", rootfs, *c["argv"]],
                    env=c["env"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        # Bounded waits: for each "ready" URL to answer 200 (while every container runs),
        # then for each probe URL to answer at all.
        for url in spec.get("ready", []):
            started = time.monotonic()
            for _ in range(600):
                if fetch(url)["status"] == 200 or any(p.poll() is not None for p, _ in procs.values()):
                    break
                time.sleep(0.1)
            result["ready"][url] = round(time.monotonic() - started, 1)
        # Bounded waits for URLs whose answer settles only after the containers have
        # talked to each other (e.g. the policy-engine's next upstream fetch).
        for url, needle in spec.get("settle", []):
            for _ in range(200):
                if needle in fetch(url).get("body", ""):
                    break
                time.sleep(0.1)
        for name, url in spec["probes"]:
            for _ in range(100):
                answer = fetch(url)
                if answer["status"] is not None or procs[name][0].poll() is not None:
                    break
                time.sleep(0.1)
        for name, url in spec["probes"]:
            result["probes"].append({"container": name, "url": url, **fetch(url)})
    finally:
        for name, (proc, log) in procs.items():
            running = proc.poll() is None
            if running:
                proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=spec.get("sigterm_wait", 10))
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
                running = "killed"
            log.close()
            result["containers"][name] = {"running_until_sigterm": running, "exit": code, "log": open(log.name).read()[-4000:]}
        if registry is not None:
            registry.terminate()
            try:
                registry.wait(timeout=10)
            except subprocess.TimeoutExpired:
                registry.kill()
                registry.wait()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
