"""The gb.toml of the config ConfigMap is valid TOML with the operator's content, key by key, and its registry/repository split is the operator's split of
an UpdateService's spec.releases (at the first "/")."""

import tomllib

import pytest

from conftest import DEPLOY, OVERLAYS, find, load_yaml, render_overlay


def gb_toml(overlay: str) -> dict:
    data = find(render_overlay(overlay), "ConfigMap", "update-service-config")["data"]
    assert set(data) == {"gb.toml"}
    return tomllib.loads(data["gb.toml"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gb_toml_is_the_operators(overlay):
    toml = gb_toml(overlay)
    assert set(toml) == {"verbosity", "service", "status", "plugin_settings"}, "no path prefix, no scrape timeout, no public-port settings"
    assert toml["verbosity"] == "vvv"
    assert toml["service"] == {"pause_secs": 300, "address": "::", "port": 8080}
    assert toml["status"] == {"address": "::", "port": 9080}
    scrape, parse, edges = toml["plugin_settings"]
    assert scrape["name"] == "release-scrape-dockerv2"
    assert set(scrape) == {"name", "registry", "repository", "fetch_concurrency", "credentials_path"}
    assert scrape["fetch_concurrency"] == 16
    assert scrape["credentials_path"] == "/var/lib/cincinnati/registry-credentials/.dockerconfigjson"
    assert "/" not in scrape["registry"] and scrape["repository"]
    assert parse == {"name": "openshift-secondary-metadata-parse", "data_directory": "/var/lib/cincinnati/graph-data"}
    assert edges == {"name": "edge-add-remove"}


def test_gb_toml_scrapes_what_the_sample_update_service_names():
    """The same site values in both ways of deploying."""
    [cr] = load_yaml(DEPLOY / "operator" / "updateservice.yaml")
    registry, _, repository = cr["spec"]["releases"].partition("/")
    scrape = gb_toml("base")["plugin_settings"][0]
    assert (scrape["registry"], scrape["repository"]) == (registry, repository)


def test_gb_toml_paths_are_where_the_deployment_mounts_them():
    """The credentials file is inside the pull-secret mount under the Secret's key, and the
    graph-data directory is the emptyDir the init container fills."""
    objects = render_overlay("base")
    toml = gb_toml("base")
    spec = find(objects, "Deployment", "update-service")["spec"]["template"]["spec"]
    gb = next(c for c in spec["containers"] if c["name"] == "graph-builder")
    mounts = {m["name"]: m["mountPath"] for m in gb["volumeMounts"]}
    secret = find(objects, "Secret", "update-service-pull-secret")
    [key] = secret["stringData"]
    assert toml["plugin_settings"][0]["credentials_path"] == f"{mounts['pull-secret']}/{key}"
    assert toml["plugin_settings"][1]["data_directory"] == mounts["cincinnati-graph-data"]
    assert "/etc/configs/gb.toml" == f"{mounts['configs']}/gb.toml"
