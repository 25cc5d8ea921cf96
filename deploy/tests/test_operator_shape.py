"""The objects have the operator's shape, item by item.
The expected values below are written from the operator's behaviour, not read from the manifests."""

import pytest

from conftest import container, find, render_overlay, render_with_component, render_with_registry_ca

NAME = "update-service"

# The operator's policy-engine args, exactly and in order.
PE_ARGS = [
    "-$(PE_LOG_VERBOSITY)",
    "--service.address", "$(ADDRESS)",
    "--service.mandatory_client_parameters", "$(PE_MANDATORY_CLIENT_PARAMETERS)",
    "--service.path_prefix", "/api/upgrades_info",
    "--service.port", "8081",
    "--status.address", "$(PE_STATUS_ADDRESS)",
    "--status.port", "9081",
    "--upstream.cincinnati.url", "$(UPSTREAM)",
]
# The operator's policy-engine env, each from <name>-env.
PE_ENV = {
    "ADDRESS": "pe.address",
    "PE_STATUS_ADDRESS": "pe.status.address",
    "UPSTREAM": "pe.upstream",
    "PE_LOG_VERBOSITY": "pe.log.verbosity",
    "PE_MANDATORY_CLIENT_PARAMETERS": "pe.mandatory_client_parameters",
    "RUST_BACKTRACE": "pe.rust_backtrace",
}
RESOURCES = {"limits": {"cpu": "750m", "memory": "512Mi"}, "requests": {"cpu": "150m", "memory": "64Mi"}}
# The operator's env ConfigMap, verbatim.
ENV_CONFIGMAP = {
    "gb.rust_backtrace": "0",
    "pe.address": "::",
    "pe.log.verbosity": "vv",
    "pe.mandatory_client_parameters": "channel",
    "pe.rust_backtrace": "0",
    "pe.status.address": "::",
    "pe.upstream": "http://localhost:8080/v1/graph",
    "m.rust_backtrace": "0",
}


def env_refs(c: dict) -> dict:
    """name -> ConfigMap key, for env entries from <name>-env; fails on any other kind."""
    refs = {}
    for e in c.get("env", []):
        ref = e["valueFrom"]["configMapKeyRef"]
        assert ref["name"] == f"{NAME}-env", e
        refs[e["name"]] = ref["key"]
    return refs


def ports(c: dict) -> dict:
    return {p["name"]: (p["containerPort"], p.get("protocol", "TCP")) for p in c["ports"]}


def probe(p: dict) -> tuple:
    return (p["httpGet"]["path"], p["httpGet"]["port"], p["initialDelaySeconds"], p["periodSeconds"], p["timeoutSeconds"], p["failureThreshold"])


def mounts(c: dict) -> dict:
    return {m["name"]: (m["mountPath"], m.get("readOnly", False)) for m in c.get("volumeMounts", [])}


def check_init_container(deployment: dict) -> None:
    init = container(deployment, "graph-data", init=True)
    assert init["imagePullPolicy"] == "Always"
    assert "command" not in init and "args" not in init, "the image's own command copies the data"
    assert mounts(init) == {"cincinnati-graph-data": ("/var/lib/cincinnati/graph-data", False)}
    assert len(deployment["spec"]["template"]["spec"]["initContainers"]) == 1


def check_graph_builder(c: dict) -> None:
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["command"] == ["/usr/bin/graph-builder"]
    assert c["args"] == ["-c", "/etc/configs/gb.toml"]
    assert env_refs(c) == {"RUST_BACKTRACE": "gb.rust_backtrace"}
    assert ports(c) == {"graph-builder": (8080, "TCP"), "status-gb": (9080, "TCP")}
    assert probe(c["livenessProbe"]) == ("/liveness", 9080, 3, 10, 3, 3)
    assert probe(c["readinessProbe"]) == ("/readiness", 9080, 3, 10, 3, 3)
    assert c["resources"] == RESOURCES
    assert mounts(c) == {
        "configs": ("/etc/configs", True),
        "cincinnati-graph-data": ("/var/lib/cincinnati/graph-data", False),
        "pull-secret": ("/var/lib/cincinnati/registry-credentials", True),
    }


def check_policy_engine(c: dict) -> None:
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["command"] == ["/usr/bin/policy-engine"]
    assert c["args"] == PE_ARGS
    assert env_refs(c) == PE_ENV
    assert ports(c) == {"policy-engine": (8081, "TCP"), "status-pe": (9081, "TCP")}
    assert probe(c["livenessProbe"]) == ("/livez", 9081, 120, 30, 3, 3)
    assert probe(c["readinessProbe"]) == ("/readyz", 9081, 120, 30, 3, 3)
    assert c["resources"] == RESOURCES
    assert mounts(c) == {}


def volumes(deployment: dict) -> dict:
    return {v["name"]: v for v in deployment["spec"]["template"]["spec"].get("volumes", [])}


def check_graph_builder_volumes(deployment: dict) -> None:
    v = volumes(deployment)
    assert v["configs"]["configMap"] == {"name": f"{NAME}-config", "defaultMode": 0o644}
    assert v["cincinnati-graph-data"] == {"name": "cincinnati-graph-data", "emptyDir": {}}
    assert v["pull-secret"]["secret"] == {"secretName": f"{NAME}-pull-secret", "defaultMode": 0o644}


def check_operand_images(deployment: dict) -> None:
    """Both operand containers run the one image built from the Containerfile; the init
    container runs another (the graph-data image)."""
    spec = deployment["spec"]["template"]["spec"]
    images = {c["image"] for c in spec["containers"]}
    assert len(images) == 1, images
    for init in spec.get("initContainers", []):
        assert init["image"] not in images


@pytest.mark.parametrize("overlay", ["base", "openshift"])
def test_single_pod_deployment_is_the_operators(overlay):
    objects = render_overlay(overlay)
    d = find(objects, "Deployment", NAME)
    assert d["spec"]["selector"] == {"matchLabels": {"app": NAME}}
    assert d["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%", "maxSurge": "100%"}}
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert labels["app"] == NAME and labels["deployment"] == NAME
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["graph-builder", "policy-engine"]
    check_init_container(d)
    check_graph_builder(container(d, "graph-builder"))
    check_policy_engine(container(d, "policy-engine"))
    check_graph_builder_volumes(d)
    assert set(volumes(d)) == {"configs", "cincinnati-graph-data", "pull-secret"}
    check_operand_images(d)


@pytest.mark.parametrize("overlay", ["base", "openshift"])
def test_services_pdb_and_env_are_the_operators(overlay):
    objects = render_overlay(overlay)
    check_services(objects, gb_selector=NAME, pe_selector=NAME)
    assert find(objects, "ConfigMap", f"{NAME}-env")["data"] == ENV_CONFIGMAP
    replicas = find(objects, "Deployment", NAME)["spec"]["replicas"]
    pdb = find(objects, "PodDisruptionBudget", NAME)
    # The operator's rule: minAvailable 0 below 2 replicas, else 1.
    assert pdb["spec"] == {"minAvailable": 0 if replicas < 2 else 1, "selector": {"matchLabels": {"app": NAME}}}
    secret = find(objects, "Secret", f"{NAME}-pull-secret")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert set(secret.get("stringData", secret.get("data", {}))) == {".dockerconfigjson"}


def check_services(objects, gb_selector: str, pe_selector: str, gb_extra=None) -> None:
    def service_ports(s):
        return {p["name"]: (p["port"], p["targetPort"], p.get("protocol", "TCP")) for p in s["spec"]["ports"]}

    gb = find(objects, "Service", f"{NAME}-graph-builder")
    assert gb["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert gb["spec"]["selector"] == {"deployment": gb_selector}
    assert service_ports(gb) == {"graph-builder": (8080, 8080, "TCP"), "status-gb": (9080, 9080, "TCP"), **(gb_extra or {})}
    pe = find(objects, "Service", f"{NAME}-policy-engine")
    assert pe["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert pe["spec"]["selector"] == {"deployment": pe_selector}
    assert service_ports(pe) == {"policy-engine": (80, 8081, "TCP"), "status-pe": (9081, 9081, "TCP")}


@pytest.mark.parametrize("overlay", ["openshift", "scale-out"])
def test_route_is_the_operators(overlay):
    route = find(render_overlay(overlay), "Route", f"{NAME}-route")
    spec = route["spec"]
    assert spec["to"]["kind"] == "Service" and spec["to"]["name"] == f"{NAME}-policy-engine"
    assert spec["port"] == {"targetPort": "policy-engine"}
    assert spec["tls"]["termination"] == "edge"
    assert spec["tls"]["insecureEdgeTerminationPolicy"] == "None"
    assert "host" not in spec, "the router names it <name>-route-<namespace>.apps.<domain>"


@pytest.mark.parametrize("overlay", ["openshift", "scale-out"])
def test_openshift_network_policy_is_the_operators(overlay):
    np = find(render_overlay(overlay), "NetworkPolicy", NAME)["spec"]
    assert np["podSelector"] == {"matchLabels": {"app": NAME}}
    assert sorted(np["policyTypes"]) == ["Egress", "Ingress"]
    [ingress] = np["ingress"]
    assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {"policy-group.network.openshift.io/ingress": ""}}}]
    assert ingress["ports"] == [{"protocol": "TCP", "port": "policy-engine"}]
    egress = {(p["protocol"], p["port"]): rule.get("to") for rule in np["egress"] for p in rule["ports"]}
    assert egress[("TCP", 443)] is None, "the registry port, any destination"
    dns = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openshift-dns"}}}]
    assert egress[("TCP", 5353)] == dns and egress[("UDP", 5353)] == dns
    assert len(egress) == 3


def test_base_network_policy_lets_clients_reach_only_the_api():
    np = find(render_overlay("base"), "NetworkPolicy", NAME)["spec"]
    assert [r["ports"] for r in np["ingress"]] == [[{"protocol": "TCP", "port": "policy-engine"}]]
    egress = {(p["protocol"], p["port"]) for rule in np["egress"] for p in rule["ports"]}
    assert egress == {("TCP", 443), ("TCP", 53), ("UDP", 53), ("TCP", 5353), ("UDP", 5353)}


def test_scale_out_splits_the_pod_and_keeps_each_container():
    objects = render_overlay("scale-out")
    assert not [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == NAME]
    gb = find(objects, "Deployment", f"{NAME}-graph-builder")
    pe = find(objects, "Deployment", f"{NAME}-policy-engine")
    assert gb["spec"]["replicas"] == 1
    assert "replicas" not in pe["spec"], "the HorizontalPodAutoscaler owns them"
    check_init_container(gb)
    assert [c["name"] for c in gb["spec"]["template"]["spec"]["containers"]] == ["graph-builder"]
    check_graph_builder(container(gb, "graph-builder"))
    check_graph_builder_volumes(gb)
    assert [c["name"] for c in pe["spec"]["template"]["spec"]["containers"]] == ["policy-engine"]
    assert "initContainers" not in pe["spec"]["template"]["spec"]
    check_policy_engine(container(pe, "policy-engine"))
    assert container(gb, "graph-builder")["image"] == container(pe, "policy-engine")["image"]
    for d in (gb, pe):
        name = d["metadata"]["name"]
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert labels == {"app": NAME, "deployment": name}
        assert d["spec"]["selector"]["matchLabels"] == labels
    # Split in two, the policy-engines reach the graph-builder's graph-data tarball (release
    # signatures) through its Service as well.
    check_services(
        objects,
        gb_selector=f"{NAME}-graph-builder",
        pe_selector=f"{NAME}-policy-engine",
        gb_extra={"graph-data": (8090, 8090, "TCP")},
    )
    # The policy-engines fetch from the graph-builder Service; everything else is the operator's env ConfigMap.
    env = find(objects, "ConfigMap", f"{NAME}-env")["data"]
    assert env == {**ENV_CONFIGMAP, "pe.upstream": f"http://{NAME}-graph-builder:8080/v1/graph"}


def test_scale_out_autoscales_and_protects_the_policy_engine():
    objects = render_overlay("scale-out")
    hpa = find(objects, "HorizontalPodAutoscaler", f"{NAME}-policy-engine")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{NAME}-policy-engine"}
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert not [o for o in objects if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == NAME]
    pdb = find(objects, "PodDisruptionBudget", f"{NAME}-policy-engine")["spec"]
    assert pdb == {"minAvailable": 1, "selector": {"matchLabels": {"deployment": f"{NAME}-policy-engine"}}}


def test_scale_out_network_policies_open_the_policy_engine_to_graph_builder_path():
    objects = render_overlay("scale-out")
    gb = find(objects, "NetworkPolicy", f"{NAME}-graph-builder")["spec"]
    assert gb["podSelector"] == {"matchLabels": {"deployment": f"{NAME}-graph-builder"}}
    assert gb["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"deployment": f"{NAME}-policy-engine"}}}], "ports": [{"protocol": "TCP", "port": "graph-builder"}, {"protocol": "TCP", "port": 8090}]}]
    pe = find(objects, "NetworkPolicy", f"{NAME}-policy-engine")["spec"]
    assert pe["podSelector"] == {"matchLabels": {"deployment": f"{NAME}-policy-engine"}}
    assert pe["egress"] == [{"to": [{"podSelector": {"matchLabels": {"deployment": f"{NAME}-graph-builder"}}}], "ports": [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 8090}]}]


@pytest.mark.parametrize("layout,deployment", [("openshift", NAME), ("scale-out", f"{NAME}-graph-builder")])
def test_registry_ca_component_mounts_the_bundle_like_the_operator(tmp_path, layout, deployment):
    objects = render_with_registry_ca(tmp_path, layout)
    d = find(objects, "Deployment", deployment)
    # As the operator mounts it: key updateservice-registry as tls-ca-bundle.pem, read-only, in
    # the graph-builder only.
    assert volumes(d)["trusted-ca"]["configMap"] == {
        "name": f"{NAME}-trusted-ca",
        "items": [{"key": "updateservice-registry", "path": "tls-ca-bundle.pem"}],
    }
    assert mounts(container(d, "graph-builder"))["trusted-ca"] == ("/etc/pki/ca-trust/extracted/pem", True)
    for c in d["spec"]["template"]["spec"]["containers"]:
        if c["name"] != "graph-builder":
            assert "trusted-ca" not in mounts(c)
    others = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] != deployment]
    for o in others:
        assert "trusted-ca" not in volumes(o)


def test_the_shape_checks_catch_a_changed_item():
    """One wrong item anywhere fails the check for that container."""
    d = find(render_overlay("base"), "Deployment", NAME)
    pe = container(d, "policy-engine")
    for broken in [
        {**pe, "args": PE_ARGS[:-1] + ["http://localhost:8080/graph"]},
        {**pe, "readinessProbe": {**pe["readinessProbe"], "httpGet": {"path": "/readiness", "port": 9081}}},
        {**pe, "ports": pe["ports"][:1]},
    ]:
        with pytest.raises(AssertionError):
            check_policy_engine(broken)
    gb = container(d, "graph-builder")
    with pytest.raises(AssertionError):
        check_graph_builder({**gb, "volumeMounts": [{**m, "readOnly": False} for m in gb["volumeMounts"]]})


PROXY_ENV = {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}


@pytest.mark.parametrize("layout", ["openshift", "scale-out"])
def test_cluster_proxy_component_is_the_operators_proxy_shape(tmp_path, layout):
    """As the operator does it: proxy variables in both containers, cluster-trusted-ca (labelled
    for CA injection) mounted read-only in the graph-builder at .../cluster-ca/; every
    other item of the containers unchanged."""
    objects = render_with_component(tmp_path, layout, "cluster-proxy")
    cm = find(objects, "ConfigMap", "cluster-trusted-ca")
    assert cm["metadata"]["labels"]["config.openshift.io/inject-trusted-cabundle"] == "true"
    proxy = find(objects, "ConfigMap", "update-service-proxy")["data"]
    assert set(proxy) == PROXY_ENV
    assert "localhost" in proxy["NO_PROXY"].split(","), "the policy-engine's upstream is localhost"
    if layout == "scale-out":
        assert f"{NAME}-graph-builder" in proxy["NO_PROXY"].split(",")
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    assert deployments
    for d in deployments:
        for c in d["spec"]["template"]["spec"]["containers"]:
            proxy_refs = {e["name"]: e["valueFrom"]["configMapKeyRef"] for e in c["env"] if e["name"] in PROXY_ENV}
            assert proxy_refs == {k: {"name": "update-service-proxy", "key": k} for k in PROXY_ENV}, (d["metadata"]["name"], c["name"])
            rest = {**c, "env": [e for e in c["env"] if e["name"] not in PROXY_ENV]}
            if c["name"] == "graph-builder":
                assert mounts(c)["cluster-trusted-ca"] == ("/etc/pki/ca-trust/extracted/cluster-ca/", True)
                assert volumes(d)["cluster-trusted-ca"]["configMap"] == {"name": "cluster-trusted-ca"}
                rest["volumeMounts"] = [m for m in c["volumeMounts"] if m["name"] != "cluster-trusted-ca"]
                check_graph_builder(rest)
            else:
                check_policy_engine(rest)
