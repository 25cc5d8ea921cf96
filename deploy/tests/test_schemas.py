"""Every rendered object is valid: Kubernetes kinds against the published OpenAPI
schemas in strict mode (unknown fields are errors), offline, with the
`kubernetes-validate` package; the OpenShift-only kinds (Route, UpdateService), which it
has no schema for, by hand against the fields their APIs require."""

import re

import kubernetes_validate
import pytest

from conftest import DEPLOY, NAMESPACE, OVERLAYS, load_yaml, render_overlay, render_with_component

# The oldest and newest Kubernetes the manifests target: OpenShift 4.16 runs 1.29.
KUBERNETES_VERSIONS = ["1.29.0", "1.33.0"]
OPENSHIFT_KINDS = {"Route", "UpdateService"}
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def validate_kubernetes(obj: dict) -> None:
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']} (Kubernetes {version}): {e.message} at {list(e.path)}")
        except kubernetes_validate.SchemaNotFoundError:
            pytest.fail(f"{obj['kind']} {obj['apiVersion']}: no schema in Kubernetes {version}")


def validate_route(route: dict) -> None:
    """route.openshift.io/v1 requires spec.to (kind Service, name); our Route must also
    carry the operator's port and edge TLS settings."""
    name = route["metadata"]["name"]
    assert route["apiVersion"] == "route.openshift.io/v1", name
    spec = route["spec"]
    assert set(spec) <= {"host", "path", "to", "alternateBackends", "port", "tls", "wildcardPolicy", "subdomain"}, spec
    assert spec["to"]["kind"] == "Service" and spec["to"]["name"], spec
    assert isinstance(spec["port"]["targetPort"], (str, int)), spec
    assert spec["tls"]["termination"] in {"edge", "passthrough", "reencrypt"}, spec
    assert spec["tls"].get("insecureEdgeTerminationPolicy", "None") in {"None", "Allow", "Redirect"}, spec
    assert spec.get("wildcardPolicy", "None") in {"None", "Subdomain"}, spec


def validate_update_service(cr: dict) -> None:
    """UpdateService v1: replicas >= 1, releases with a registry part before
    the first "/" and no tag or digest, graphDataImage; the operator also refuses names
    whose route host label <name>-route-<namespace> exceeds 63 characters."""
    assert cr["apiVersion"] == "updateservice.operator.openshift.io/v1"
    meta, spec = cr["metadata"], cr["spec"]
    assert set(spec) == {"replicas", "releases", "graphDataImage"}, spec
    assert isinstance(spec["replicas"], int) and spec["replicas"] >= 1, spec
    registry, slash, repository = spec["releases"].partition("/")
    assert slash and registry and repository, spec["releases"]
    assert "@" not in repository and ":" not in repository, "releases names a repository, not an image"
    assert spec["graphDataImage"], spec
    label = f"{meta['name']}-route-{meta['namespace']}"
    assert len(label) <= 63 and DNS_1123_LABEL.match(label), label


def validate_any(obj: dict) -> None:
    if obj["kind"] == "Route":
        validate_route(obj)
    elif obj["kind"] == "UpdateService":
        validate_update_service(obj)
    else:
        validate_kubernetes(obj)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_of_every_overlay_is_valid(overlay):
    objects = render_overlay(overlay)
    assert objects, overlay
    for obj in objects:
        validate_any(obj)


@pytest.mark.parametrize("component", ["registry-ca", "cluster-proxy"])
@pytest.mark.parametrize("layout", ["openshift", "scale-out"])
def test_each_component_renders_valid_objects_in_the_namespace(tmp_path, layout, component):
    objects = render_with_component(tmp_path, layout, component)
    for obj in objects:
        validate_any(obj)
    check_one_namespace(objects)


@pytest.mark.parametrize("overlay", OVERLAYS + ["site-example"])
def test_everything_lands_in_one_namespace(overlay):
    check_one_namespace(render_overlay(overlay))


def check_one_namespace(objects) -> None:
    for obj in objects:
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == NAMESPACE
        else:
            assert obj["metadata"].get("namespace") == NAMESPACE, (obj["kind"], obj["metadata"]["name"])


def test_only_the_openshift_layouts_have_openshift_kinds():
    assert not [o for o in render_overlay("base") if o["kind"] in OPENSHIFT_KINDS]
    for overlay in ["openshift", "scale-out"]:
        assert [o["kind"] for o in render_overlay(overlay) if o["kind"] in OPENSHIFT_KINDS] == ["Route"]


def test_the_sample_update_service_is_valid_and_oc_mirror_shaped():
    [cr] = load_yaml(DEPLOY / "operator" / "updateservice.yaml")
    validate_update_service(cr)
    # oc-mirror's updateService.yaml.
    assert cr["kind"] == "UpdateService"
    assert cr["metadata"] == {"name": "update-service-oc-mirror", "namespace": "openshift-update-service"}
    assert cr["spec"]["replicas"] == 2
    assert cr["spec"]["releases"].endswith("/openshift/release-images")
    assert "/openshift/graph-image" in cr["spec"]["graphDataImage"]


def test_the_hand_checks_catch_what_they_claim_to():
    """The by-hand validators are not vacuous: broken objects fail them."""
    [cr] = load_yaml(DEPLOY / "operator" / "updateservice.yaml")
    for broken in [
        {**cr["spec"], "replicas": 0},
        {**cr["spec"], "releases": "no-slash"},
        {**cr["spec"], "releases": "r.example.com/ocp/release:4.16.0"},
    ]:
        with pytest.raises(AssertionError):
            validate_update_service({**cr, "spec": broken})
    with pytest.raises(AssertionError):
        validate_update_service({**cr, "metadata": {"name": "x" * 40, "namespace": NAMESPACE}})
    route = next(o for o in render_overlay("openshift") if o["kind"] == "Route")
    with pytest.raises(AssertionError):
        validate_route({**route, "spec": {**route["spec"], "tls": {"termination": "edgy"}}})
    configmap = next(o for o in render_overlay("base") if o["kind"] == "ConfigMap")
    with pytest.raises(BaseException):
        validate_kubernetes({**configmap, "data": {"gb.toml": 1}})
