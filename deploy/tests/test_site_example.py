"""The site overlay the README tells users to copy (deploy/site-example) renders, is
valid, changes exactly the site values and keeps the operator's shape."""

import base64
import json
import tomllib

from conftest import container, find, render_overlay
from test_operator_shape import check_graph_builder, check_init_container, check_policy_engine
from test_schemas import validate_any


def test_site_overlay_is_valid_and_keeps_the_operators_shape():
    objects = render_overlay("site-example")
    for obj in objects:
        validate_any(obj)
    d = find(objects, "Deployment", "update-service")
    check_init_container(d)
    check_policy_engine(container(d, "policy-engine"))
    gb = container(d, "graph-builder")
    # The operator's graph-builder plus the registry CA mount.
    ca = [m for m in gb["volumeMounts"] if m["name"] == "trusted-ca"]
    assert ca == [{"name": "trusted-ca", "mountPath": "/etc/pki/ca-trust/extracted/pem", "readOnly": True}]
    check_graph_builder({**gb, "volumeMounts": [m for m in gb["volumeMounts"] if m["name"] != "trusted-ca"]})


def test_site_overlay_sets_every_site_value():
    objects = render_overlay("site-example")
    d = find(objects, "Deployment", "update-service")
    spec = d["spec"]["template"]["spec"]
    assert {c["image"] for c in spec["containers"]} == {"registry.site.example:5000/update-service/update-service:0.1.0"}
    assert spec["initContainers"][0]["image"] == "registry.site.example:5000/openshift/graph-image:latest"
    scrape = tomllib.loads(find(objects, "ConfigMap", "update-service-config")["data"]["gb.toml"])["plugin_settings"][0]
    assert (scrape["registry"], scrape["repository"]) == ("registry.site.example:5000", "openshift/release-images")
    secret = find(objects, "Secret", "update-service-pull-secret")
    assert "stringData" not in secret, "the placeholder is replaced, not merged"
    auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
    assert list(auths) == ["registry.site.example:5000"]
    ca = find(objects, "ConfigMap", "update-service-trusted-ca")["data"]
    assert list(ca) == ["updateservice-registry"]
    np = find(objects, "NetworkPolicy", "update-service")["spec"]
    assert np["egress"][0] == {"ports": [{"protocol": "TCP", "port": 5000}]}
    # Nothing of the placeholder mirror is left.
    assert "mirror.example.com" not in json.dumps(objects)
