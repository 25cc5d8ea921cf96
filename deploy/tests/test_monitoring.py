"""The monitoring kit (deploy/monitoring): the PrometheusRule's rules pass `promtool check
rules` and their unit tests pass `promtool test rules`, every alert has a unit test, the
ServiceMonitor finds both status ports on the Services of every layout, and every metric
the rules and the dashboard use is one the binaries export."""

import json
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import DEPLOY, NAMESPACE, REPO, OVERLAYS, find, render_overlay

MONITORING = DEPLOY / "monitoring"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed (hack/test.sh installs Debian's prometheus)")
    return path


def rules_spec() -> dict:
    return find(render_overlay("monitoring"), "PrometheusRule", "update-service")["spec"]


def write_rules(tmp_path: pathlib.Path) -> pathlib.Path:
    """The PrometheusRule's spec as a plain rule file, with the unit tests next to it."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(rules_spec()))
    for test in (MONITORING / "tests").glob("*.yaml"):
        shutil.copy(test, tmp_path / test.name)
    return rules


def test_the_rules_pass_promtool_check(tmp_path):
    rules = write_rules(tmp_path)
    out = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    alerts = [r["alert"] for g in rules_spec()["groups"] for r in g["rules"]]
    assert f"SUCCESS: {len(alerts)} rules found" in out.stdout, out.stdout


def test_the_rule_unit_tests_pass(tmp_path):
    write_rules(tmp_path)
    tests = sorted(str(p) for p in tmp_path.glob("*_test.yaml"))
    assert len(tests) == 2, tests
    out = subprocess.run([promtool(), "test", "rules", *tests], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("SUCCESS") == len(tests), out.stdout


def test_promtool_would_catch_a_broken_alert(tmp_path):
    """The unit tests can fail: with one threshold changed, promtool says so."""
    rules = write_rules(tmp_path)
    rules.write_text(rules.read_text().replace("> 1800", "> 3600", 1))
    tests = sorted(str(p) for p in tmp_path.glob("*_test.yaml"))
    out = subprocess.run([promtool(), "test", "rules", *tests], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "UpdateServiceRefreshFailing" in out.stdout + out.stderr


def test_every_alert_has_a_unit_test():
    alerts = {r["alert"] for g in rules_spec()["groups"] for r in g["rules"]}
    tested = set()
    for test_file in (MONITORING / "tests").glob("*.yaml"):
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            tested |= {a["alertname"] for a in case.get("alert_rule_test", [])}
    assert alerts == tested
    assert alerts == {
        "UpdateServiceNoGraph",
        "UpdateServiceRefreshFailing",
        "UpdateServicePolicyEngineRefreshFailing",
        "UpdateServiceGraphDataStale",
        "UpdateServiceInvalidReleases",
        "UpdateServiceReleasesWithoutSignature",
        "UpdateServiceTagsFailing",
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_service_monitor_finds_both_status_ports(overlay):
    monitor = find(render_overlay("monitoring"), "ServiceMonitor", "update-service")
    assert monitor["metadata"]["namespace"] == NAMESPACE
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = [
        o for o in render_overlay(overlay)
        if o["kind"] == "Service" and selector.items() <= o["metadata"].get("labels", {}).items()
    ]
    for endpoint in monitor["spec"]["endpoints"]:
        owners = [s["metadata"]["name"] for s in services if any(p.get("name") == endpoint["port"] for p in s["spec"]["ports"])]
        assert len(owners) == 1, f"{overlay}: port {endpoint['port']} on {owners}"
        assert endpoint["path"] == "/metrics"
    ports = {p["targetPort"] for s in services for p in s["spec"]["ports"] if p.get("name") in {"status-gb", "status-pe"}}
    assert ports == {9080, 9081}, overlay


def test_the_dashboard_is_a_labelled_config_map_of_valid_json():
    cm = find(render_overlay("monitoring"), "ConfigMap", "update-service-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["update-service.json"])
    assert dashboard["uid"] == "update-service"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) > 0
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]


def exported_metric_names() -> set:
    """Every metric name the binaries register, read from the modules that register them:
    the registry prefix plus each name given to a metric constructor."""
    names = set()
    for module, prefix in [
        ("graph-builder/src/metrics.rs", "cincinnati_gb_"),
        ("policy-engine/src/metrics.rs", "cincinnati_pe_"),
        # The signature metrics register in the policy-engine's registry.
        ("policy-engine/src/signatures/mod.rs", "cincinnati_pe_"),
    ]:
        source = (REPO / module).read_text()
        found = re.findall(r'(?:Opts|HistogramOpts|IntCounter|IntGauge|Gauge|Counter)::new\(\s*"([a-z_]+)"', source)
        assert found, module
        for name in found:
            names |= {prefix + name, prefix + name + "_bucket", prefix + name + "_sum", prefix + name + "_count"}
    return names


def test_every_metric_used_by_the_rules_and_dashboard_is_exported():
    exported = exported_metric_names()
    assert "cincinnati_gb_graph_invalid_releases" in exported
    assert {"cincinnati_pe_releases_unsigned", "cincinnati_pe_signatures_configured"} <= exported
    used = set(re.findall(r"cincinnati_[a-z_]+", yaml.safe_dump(rules_spec())))
    used |= set(re.findall(r"cincinnati_[a-z_]+", (MONITORING / "dashboards" / "update-service.json").read_text()))
    assert used, "no metric found in the rules and dashboard"
    assert sorted(used - exported) == []
