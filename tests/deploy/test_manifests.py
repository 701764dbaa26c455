"""The Kubernetes manifests: every overlay renders, passes the strict schema, and agrees with the
gateway on what a schema cannot see (routes, ports, drain timing, privileges, secrets)."""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import socket
import subprocess
import tomllib
from pathlib import Path
from secrets import token_urlsafe
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.app import create_app
from gateway.config import ConfigError, Settings
from gateway.routeros import connect_librouteros
from tests.deploy.manifests import (
    GATEWAY,
    K8S,
    OVERLAYS,
    REPO,
    Deployment,
    Manifest,
    dump,
    parse,
    pod_settings,
    project_version,
    quantity,
    relative,
    render,
    render_yaml,
    rendered_text,
    secret_files,
    secret_values,
    site_secrets,
    validate,
)
from tests.support.needs import missing
from tests.support.timing import eventually, seconds, within

PLACEHOLDER = "CHANGE-ME"
"""The only value the example Secret may hold."""

UID = 10001
"""The image's fixed non-root user and group."""

NAME = GATEWAY
"""The name of the base's resources (overlays may add others beside them)."""

PRUNE_LABEL = "app.kubernetes.io/part-of"
"""The label `kubectl apply --prune -l` selects on (README "Deploy", step 3), valued NAME."""


def site_settings(deployment: Deployment, tmp_path: Path) -> Settings:
    """The pod's settings with the Secret's keys set as a site sets them (see site_secrets)."""
    return pod_settings(deployment, tmp_path, secrets=site_secrets(deployment))


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def deployment(overlay: str) -> Deployment:
    return Deployment(render(overlay))


def test_the_documented_overlays_exist() -> None:
    """k8s/overlays/single and k8s/overlays/cluster exist (and so every test here checks them)."""
    assert {"single", "cluster"} <= set(OVERLAYS)


def test_overlay_passes_strict_schema_validation(overlay: str) -> None:
    """Every overlay renders with kustomize and `kubernetes-validate --strict` accepts it."""
    text = rendered_text(overlay)
    kinds = {doc["kind"] for doc in parse(text)}
    assert kinds >= {
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Secret",
        "Service",
    }
    result = validate(text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_strict_validation_rejects_an_unknown_field() -> None:
    """The validation is real: a misspelt probe field in the rendering is refused."""
    docs = render("single")
    Deployment(docs).container["readinessProbe"]["periodSecond"] = 5
    result = validate(dump(docs))
    assert result.returncode != 0
    assert "periodSecond" in result.stdout + result.stderr


def test_probe_paths_are_routes_of_the_app(deployment: Deployment, tmp_path: Path) -> None:
    """Each probe asks a path the gateway really serves: liveness /healthz, readiness /readyz."""
    app = create_app(
        site_settings(deployment, tmp_path),
        connect=connect_librouteros,
    )
    served = {
        route.resource.canonical
        for route in app.router.routes()
        if route.method in ("GET", "*") and route.resource is not None
    }
    paths = {
        kind: deployment.probe(kind)["httpGet"]["path"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert paths["livenessProbe"] == "/healthz"
    assert paths["readinessProbe"] == "/readyz"
    for kind, path in paths.items():
        assert path in served, f"{kind} asks {path}, which the app does not serve"


def test_ports_agree_with_the_container_port(deployment: Deployment, tmp_path: Path) -> None:
    """Probes, the Service and the NetworkPolicy name the container's port, where it listens."""
    ports = deployment.container["ports"]
    assert len(ports) == 1
    name, number = ports[0]["name"], ports[0]["containerPort"]
    assert name == "http"
    # The gateway listens on that port whatever gateway.toml says (the env overrides it).
    settings = site_settings(deployment, tmp_path)
    assert settings.server.port == number
    assert settings.server.host == "0.0.0.0"
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert deployment.probe(kind)["httpGet"]["port"] == name, kind
    service = deployment.one("Service", NAME)
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [name]
    policy = deployment.one("NetworkPolicy", NAME)
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [name]


def test_grace_period_covers_prestop_and_drain(deployment: Deployment, tmp_path: Path) -> None:
    """Kubernetes waits longer than the preStop pause plus the gateway's own drain."""
    command = deployment.container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    assert len(command) == 2
    pause = float(command[1])
    assert pause > 0
    grace = site_settings(deployment, tmp_path).server.shutdown_grace
    period = deployment.pod["terminationGracePeriodSeconds"]
    assert period > pause + grace, f"{period} s <= preStop {pause} s + shutdown_grace {grace} s"


def test_probe_timing_is_sane(deployment: Deployment) -> None:
    """Each probe times out within its period, and start-up gets 20 s before liveness counts."""
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = deployment.probe(kind)
        assert 0 < probe["timeoutSeconds"] <= probe["periodSeconds"], kind
    startup = deployment.probe("startupProbe")
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 20


def test_pod_runs_unprivileged(deployment: Deployment) -> None:
    """Non-root fixed UID/GID, read-only root, no capabilities, no escalation, RuntimeDefault."""
    pod = deployment.pod
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True
    assert (security["runAsUser"], security["runAsGroup"]) == (UID, UID)
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    # Service links would inject variables like GATEWAY_SERVER_PORT=tcp://... for a Service
    # with an unlucky name, and the gateway reads GATEWAY_* as its settings.
    assert pod["enableServiceLinks"] is False
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(host), host
    container = deployment.container
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context.get("privileged", False) is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    for key in ("runAsUser", "runAsGroup"):
        assert context.get(key, UID) == UID, key
    assert context.get("runAsNonRoot", True) is True


def test_only_tmp_is_writable(deployment: Deployment) -> None:
    """Every mount is read-only except /tmp, a size-limited emptyDir."""
    tmp = deployment.volume("/tmp")
    assert "emptyDir" in tmp
    assert quantity(tmp["emptyDir"]["sizeLimit"]) <= quantity("64Mi")
    for mount in deployment.container["volumeMounts"]:
        if mount["mountPath"] == "/tmp":
            assert not mount.get("readOnly", False)
        else:
            assert mount.get("readOnly") is True, f"{mount['mountPath']} is writable"
            assert "subPath" not in mount, "subPath mounts never see an update"


def test_image_is_pinned_to_the_package_version(deployment: Deployment) -> None:
    """The image has an explicit tag, never `latest`: the version in pyproject.toml."""
    image = deployment.container["image"]
    name, _, tag = image.rpartition(":")
    assert name, f"untagged image {image!r}"
    assert "/" not in tag, f"untagged image {image!r}"
    assert tag != "latest"
    assert (name, tag) == ("routeros-traffic-gateway", project_version())
    assert deployment.container["imagePullPolicy"] != "Always"


def test_resources_have_requests_and_limits(deployment: Deployment) -> None:
    """CPU and memory requests and limits are set, and no request exceeds its limit."""
    resources = deployment.container["resources"]
    for resource in ("cpu", "memory"):
        request = quantity(resources["requests"][resource])
        limit = quantity(resources["limits"][resource])
        assert 0 < request <= limit, resource


def test_example_secret_holds_placeholders_only(deployment: Deployment) -> None:
    """The shipped Secret carries no real-looking secret: every value is CHANGE-ME."""
    secrets = [d for d in deployment.docs if d["kind"] == "Secret"]
    assert secrets
    for secret in secrets:
        values = secret_values(secret)
        assert values
        assert {k: v for k, v in values.items() if v != PLACEHOLDER} == {}, secret["metadata"]


def test_shipped_placeholders_do_not_start_a_gateway(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Applied as shipped, the gateway refuses the CHANGE-ME JWT secret (9 bytes, under the
    32 HS256 needs) and says how to make one: nobody runs it with a public secret by mistake."""
    with pytest.raises(ConfigError) as caught:
        pod_settings(deployment, tmp_path)
    message = str(caught.value)
    assert message.endswith(
        "auth.jwt_secret_file: expected a JWT secret of at least 32 bytes (HS256, RFC 7518 "
        "section 3.2), got 9 bytes; make one with: head -c 48 /dev/urandom | base64"
    )
    assert PLACEHOLDER not in message


def test_config_secrets_are_files_of_the_mounted_secret(deployment: Deployment) -> None:
    """Every password_file and jwt_secret_file is a key of the Secret mounted at its folder."""
    config = tomllib.loads(deployment.config_text)
    mounts = deployment.secret_mounts()
    assert list(mounts) == [Path("/run/secrets/gateway")]
    files = secret_files(config)
    # Each router's password and (in jwt mode) the JWT secret come from the Secret, never
    # from the ConfigMap.
    assert len(files) == len(config["routers"]) + (config["auth"]["mode"] == "jwt")
    for router in config["routers"]:
        assert "password" not in router, f"router {router['id']}: password in the ConfigMap"
    for where, name in files:
        path = Path(name)
        assert path.parent in mounts, f"{where}: {name} is not under a mounted Secret"
        keys = secret_values(mounts[path.parent])
        assert path.name in keys, f"{where}: the Secret has no key {path.name!r}"


def test_config_path_is_the_configmap_mount(deployment: Deployment) -> None:
    """GATEWAY_CONFIG points into the ConfigMap's mount, at its gateway.toml key."""
    assert deployment.config_path == Path("/etc/gateway/gateway.toml")
    assert deployment.configmap["data"].keys() == {"gateway.toml"}
    assert deployment.container["args"] == ["serve"]


def test_selectors_match_the_pods(deployment: Deployment) -> None:
    """The Deployment, Service, budget and network policy all select the gateway's pods."""
    labels = deployment.pod_labels

    def selects(selector: dict[str, str]) -> bool:
        return bool(selector) and selector.items() <= labels.items()

    assert selects(deployment.deployment["spec"]["selector"]["matchLabels"])
    assert selects(deployment.one("Service", NAME)["spec"]["selector"])
    assert selects(deployment.one("PodDisruptionBudget", NAME)["spec"]["selector"]["matchLabels"])
    assert selects(deployment.one("NetworkPolicy", NAME)["spec"]["podSelector"]["matchLabels"])


def _autoscalers(deployment: Deployment) -> list[Manifest]:
    """The HorizontalPodAutoscalers whose target is the Deployment, by its rendered name."""
    target = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment.deployment["metadata"]["name"],
    }
    return [
        d
        for d in deployment.docs
        if d["kind"] == "HorizontalPodAutoscaler" and d["spec"]["scaleTargetRef"] == target
    ]


def _replicas(deployment: Deployment) -> int:
    """The Deployment's replica count, or the least its autoscaler keeps (never both: a count
    in the Deployment would be restored by every `kubectl apply`, undoing the autoscaler's)."""
    spec = deployment.deployment["spec"]
    scalers = _autoscalers(deployment)
    assert len(scalers) <= 1, f"{len(scalers)} autoscalers for one Deployment"
    assert ("replicas" in spec) != bool(scalers), "replicas come from the Deployment xor an HPA"
    count: int = scalers[0]["spec"]["minReplicas"] if scalers else spec["replicas"]
    return count


def _disruptions_allowed(budget: Manifest, replicas: int) -> int:
    """How many of ``replicas`` healthy pods the budget lets a drain evict at once."""
    spec = budget["spec"]

    def count(value: Any, round_up: bool) -> int:
        if isinstance(value, str) and value.endswith("%"):
            share = replicas * int(value[:-1]) / 100
            return math.ceil(share) if round_up else math.floor(share)
        return int(value)

    if "maxUnavailable" in spec:
        return count(spec["maxUnavailable"], round_up=True)
    return replicas - count(spec["minAvailable"], round_up=True)


def test_disruption_budget_never_blocks_a_node_drain(deployment: Deployment) -> None:
    """With the overlay's (least) replica count, a drain may always evict a pod (never waits
    forever)."""
    replicas = _replicas(deployment)
    budget = deployment.one("PodDisruptionBudget", NAME)
    assert _disruptions_allowed(budget, replicas) >= 1
    assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_network_policy_allows_the_gateway_port_routers_and_dns(deployment: Deployment) -> None:
    """Ingress to the gateway port only; egress to the RouterOS API ports and DNS, nothing else."""
    spec = deployment.one("NetworkPolicy", NAME)["spec"]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    assert len(spec["ingress"]) == 1
    egress: set[tuple[str, int]] = set()
    for rule in spec["egress"]:
        assert rule.get("ports"), f"an egress rule allows every port: {rule}"
        egress |= {(p.get("protocol", "TCP"), p["port"]) for p in rule["ports"]}
    assert egress == {("TCP", 8728), ("TCP", 8729), ("UDP", 53), ("TCP", 53)}


def test_single_overlay_is_one_replica_without_redis(tmp_path: Path) -> None:
    """`single` runs one gateway, not clustered: more replicas would multiply router polls."""
    deployment = Deployment(render("single"))
    assert deployment.deployment["spec"]["replicas"] == 1
    settings = site_settings(deployment, tmp_path)
    assert settings.cluster.redis_url == ""
    assert not [d for d in deployment.docs if d["kind"] == "HorizontalPodAutoscaler"]


def _site(tmp_path: Path) -> Path:
    """A site overlay as README "Deploy" step 2 describes it, in ``tmp_path/site``."""
    site = tmp_path / "site"
    (site / "secrets").mkdir(parents=True)
    (site / "gateway.toml").write_text(
        '[auth]\nmode = "none"\n\n[[routers]]\nid = "edge-1"\nhost = "192.0.2.7"\n'
        'username = "monitoring"\npassword_file = "/run/secrets/gateway/edge-1.password"\n'
    )
    (site / "secrets" / "edge-1.password").write_text("s3cret-from-the-site")
    (site / "kustomization.yaml").write_text(
        f"""apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - {relative(K8S / "overlays" / "single", site)}
images:
  - name: routeros-traffic-gateway
    newName: registry.example.com/net/routeros-traffic-gateway
    newTag: "{project_version()}"
configMapGenerator:
  - name: gateway-config
    behavior: replace
    files:
      - gateway.toml
secretGenerator:
  - name: gateway-secrets
    behavior: replace
    files:
      - secrets/edge-1.password
"""
    )
    return site


def test_site_overlay_replaces_config_secrets_and_image(tmp_path: Path) -> None:
    """The documented site overlay's config, secrets and registry reach the pod (and roll it)."""
    site = _site(tmp_path)
    shipped = Deployment(render("single"))
    custom = Deployment(parse(asyncio.run(render_yaml(site))))
    assert custom.config_text == (site / "gateway.toml").read_text()
    assert secret_values(custom.one("Secret")) == {"edge-1.password": "s3cret-from-the-site"}
    assert custom.configmap["metadata"]["name"] != shipped.configmap["metadata"]["name"]
    assert custom.one("Secret")["metadata"]["name"] != shipped.one("Secret")["metadata"]["name"]
    image = custom.container["image"]
    assert image == f"registry.example.com/net/routeros-traffic-gateway:{project_version()}"
    settings = pod_settings(custom, tmp_path)
    assert settings.routers[0].password.reveal() == "s3cret-from-the-site"


def test_every_object_carries_the_prune_label(overlay: str, tmp_path: Path) -> None:
    """Every object of an overlay and of a site overlay, the generated ConfigMap and Secret
    included, carries the label README "Deploy" prunes old generations by: an old Secret (with
    an old password) does not outlive the next apply."""
    site = Deployment(parse(asyncio.run(render_yaml(_site(tmp_path)))))
    for docs in (render(overlay), site.docs):
        kinds = set()
        for doc in docs:
            labels = doc["metadata"].get("labels", {})
            assert labels.get(PRUNE_LABEL) == NAME, f"{doc['kind']} {doc['metadata']['name']}"
            kinds.add(doc["kind"])
        assert {"ConfigMap", "Secret"} <= kinds


def test_a_crash_leaves_its_last_log_lines_as_the_termination_message(
    deployment: Deployment,
) -> None:
    """A gateway that stops at start-up (a refused configuration) shows why in `kubectl describe
    pod`, not only in `kubectl logs --previous`."""
    assert deployment.container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def _readme_blocks(heading: str, language: str) -> list[str]:
    """The ``language`` code blocks of README.md's section ``heading`` (up to the next heading
    of its level or above)."""
    lines = (REPO / "README.md").read_text().splitlines()
    level = len(heading.split(" ", 1)[0])
    blocks: list[str] = []
    block: list[str] | None = None
    fenced = False
    for line in lines[lines.index(heading) + 1 :]:
        if line.startswith("```"):
            if fenced and block is not None:
                blocks.append("\n".join(block) + "\n")
            block = [] if not fenced and line == f"```{language}" else None
            fenced = not fenced
        elif block is not None:
            block.append(line)
        elif not fenced and 0 < len(line) - len(line.lstrip("#")) <= level and " " in line:
            break
    assert blocks, f"README.md has no {language} block under {heading!r}"
    return blocks


def _readme_block(heading: str, language: str) -> str:
    """The first ``language`` code block under ``heading`` in README.md."""
    return _readme_blocks(heading, language)[0]


def test_readme_openshift_patch_leaves_a_valid_pod_to_any_uid(tmp_path: Path) -> None:
    """The README's OpenShift patch, in a site overlay, removes the fixed UID, GID and fsGroup
    (restricted-v2 assigns them) and keeps the rest of the pod's hardening; it validates."""
    patch = yaml.safe_load(_readme_block("#### OpenShift", "yaml"))
    site = tmp_path / "site"
    site.mkdir()
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [relative(K8S / "overlays" / "single", site)],
        **patch,
    }
    (site / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    text = asyncio.run(render_yaml(site))
    deployment = Deployment(parse(text))
    security = deployment.pod["securityContext"]
    assert security == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    context = deployment.container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    result = validate(text)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the cluster overlay ------------------------------------------------------------------------

REDIS = "routeros-traffic-gateway-redis"
"""The name of the cluster overlay's Redis Deployment, Service and budget."""

REDIS_UID = 999
"""The official Redis image's user."""

REDIS_PORT = 6379


@pytest.fixture(scope="module")
def cluster() -> Deployment:
    """The cluster overlay, rendered, around the gateway's Deployment."""
    return Deployment(render("cluster"))


@pytest.fixture(scope="module")
def redis(cluster: Deployment) -> Deployment:
    """The cluster overlay, rendered, around the Redis Deployment."""
    return Deployment(cluster.docs, REDIS)


def _selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """Whether a ``matchLabels``-only label selector selects pods labelled ``labels``."""
    assert set(selector) <= {"matchLabels"}, f"a selector these tests do not read: {selector}"
    match: dict[str, str] = selector.get("matchLabels", {})
    return bool(match) and match.items() <= labels.items()


def _policies(docs: list[Manifest], labels: dict[str, str], kind: str) -> list[Manifest]:
    """The NetworkPolicies of ``kind`` (Ingress, Egress) for pods labelled ``labels``."""
    return [
        d["spec"]
        for d in docs
        if d["kind"] == "NetworkPolicy"
        and kind in d["spec"]["policyTypes"]
        and _selects(d["spec"]["podSelector"], labels)
    ]


def _ports(rule: Manifest) -> set[tuple[str, int | str]]:
    return {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])}


def test_cluster_runs_three_gateways_or_more_under_an_autoscaler(cluster: Deployment) -> None:
    """The cluster overlay keeps three gateways at least and adds some under CPU load, and
    removes them slowly (each removal makes its viewers reconnect)."""
    scalers = _autoscalers(cluster)
    assert len(scalers) == 1, "no HorizontalPodAutoscaler targets the gateway's Deployment"
    scaler = scalers[0]
    assert scaler["apiVersion"] == "autoscaling/v2"
    spec = scaler["spec"]
    assert _replicas(cluster) == spec["minReplicas"] == 3
    assert "replicas" not in cluster.deployment["spec"]
    assert spec["maxReplicas"] > spec["minReplicas"]
    assert [m["resource"]["name"] for m in spec["metrics"] if m["type"] == "Resource"] == ["cpu"]
    assert spec["metrics"][0]["resource"]["target"]["type"] == "Utilization"
    # The target is a share of the request: the gateway's CPU request must exist for it.
    assert quantity(cluster.container["resources"]["requests"]["cpu"]) > 0
    down = spec["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= 300
    assert down["policies"], "scale-down is not rate-limited"
    for policy in down["policies"]:
        assert policy["type"] == "Pods"
        assert policy["value"] == 1
        assert policy["periodSeconds"] >= 60


def test_cluster_budget_keeps_two_gateways(cluster: Deployment, redis: Deployment) -> None:
    """A node drain leaves two of the three gateways serving, and still evicts the third."""
    budget = cluster.one("PodDisruptionBudget", NAME)
    assert budget["spec"]["minAvailable"] == 2
    assert "maxUnavailable" not in budget["spec"]
    assert _selects(budget["spec"]["selector"], cluster.pod_labels)
    assert not _selects(budget["spec"]["selector"], redis.pod_labels)
    assert _disruptions_allowed(budget, _replicas(cluster)) == 1


def test_cluster_gateways_prefer_different_nodes(cluster: Deployment) -> None:
    """The replicas are spread over nodes where the cluster can (soft: a small one runs them)."""
    pod = cluster.pod
    spreads = [
        c
        for c in pod.get("topologySpreadConstraints", [])
        if c["topologyKey"] == "kubernetes.io/hostname"
    ]
    assert len(spreads) == 1, "no spread of the replicas over nodes"
    assert spreads[0]["whenUnsatisfiable"] == "ScheduleAnyway"
    assert _selects(spreads[0]["labelSelector"], cluster.pod_labels)
    for constraint in pod.get("topologySpreadConstraints", []):
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway", constraint
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in str(pod.get("affinity", {}))


def test_cluster_gateways_find_redis_at_its_service(
    cluster: Deployment, redis: Deployment, tmp_path: Path
) -> None:
    """The gateways' Redis URL names the Redis Service and port, with the password Redis
    requires, both from one Secret; the pod spec and the ConfigMap hold no password."""
    secrets = site_secrets(cluster)
    url = urlsplit(pod_settings(cluster, tmp_path, secrets=secrets).cluster.redis_url)
    service = cluster.one("Service", REDIS)
    assert _selects({"matchLabels": service["spec"]["selector"]}, redis.pod_labels)
    assert not _selects({"matchLabels": service["spec"]["selector"]}, cluster.pod_labels)
    [port] = service["spec"]["ports"]
    [container_port] = redis.container["ports"]
    assert port["targetPort"] == container_port["name"]
    assert container_port["containerPort"] == REDIS_PORT
    assert (url.scheme, url.hostname, url.port, url.path) == (
        "redis",
        service["metadata"]["name"],
        port["port"],
        "/0",
    )
    # One Secret key for both ends, and the password as the site set it.
    gateway_refs = {(s["metadata"]["name"], k) for s, k in cluster.secret_refs().values()}
    redis_refs = {(s["metadata"]["name"], k) for s, k in redis.secret_refs().values()}
    assert len(gateway_refs) == 1
    assert gateway_refs == redis_refs
    [(_, key)] = gateway_refs
    args = redis.args(secrets)
    assert url.password == args[args.index("--requirepass") + 1] == secrets[key]
    # What `kubectl get deployment -o yaml` and the ConfigMap show: references, no password.
    literal = urlsplit(cluster.env()["GATEWAY_CLUSTER_REDIS_URL"])
    assert (literal.username, literal.password) == ("default", "$(REDIS_PASSWORD)")
    assert "redis_url" not in tomllib.loads(cluster.config_text).get("cluster", {})
    shipped = secret_values(cluster.one("Secret", next(iter(gateway_refs))[0]))[key]
    assert shipped not in dump([d for d in cluster.docs if d["kind"] != "Secret"])


def test_cluster_gateways_may_reach_redis(cluster: Deployment, redis: Deployment) -> None:
    """A NetworkPolicy of its own lets the gateway pods out to the Redis pods on 6379; the
    base's policy is left as it was (policies add up)."""
    rules = [
        rule
        for policy in _policies(cluster.docs, cluster.pod_labels, "Egress")
        for rule in policy.get("egress", [])
        if any(
            set(peer) == {"podSelector"} and _selects(peer["podSelector"], redis.pod_labels)
            for peer in rule.get("to", [])
        )
    ]
    assert rules, "no egress from the gateway pods to the Redis pods"
    assert set().union(*(_ports(rule) for rule in rules)) == {("TCP", REDIS_PORT)}
    base = Deployment(render("single")).one("NetworkPolicy", NAME)
    assert cluster.one("NetworkPolicy", NAME)["spec"] == base["spec"]


def test_cluster_redis_admits_only_the_gateways(cluster: Deployment, redis: Deployment) -> None:
    """Redis accepts connections from the gateway pods only, on its port, and opens none."""
    ingress = _policies(cluster.docs, redis.pod_labels, "Ingress")
    assert ingress, "no NetworkPolicy restricts who reaches Redis"
    rules = [rule for policy in ingress for rule in policy.get("ingress", [])]
    assert rules
    for rule in rules:
        assert rule.get("from"), f"an ingress rule admits everyone: {rule}"
        for peer in rule["from"]:
            assert set(peer) == {"podSelector"}, f"admits more than pods of this namespace: {peer}"
            assert _selects(peer["podSelector"], cluster.pod_labels), peer
            assert not _selects(peer["podSelector"], redis.pod_labels), peer
        assert _ports(rule) <= {("TCP", "redis"), ("TCP", REDIS_PORT)}
        assert _ports(rule), f"an ingress rule admits every port: {rule}"
    egress = _policies(cluster.docs, redis.pod_labels, "Egress")
    assert egress, "Redis may connect anywhere"
    assert [rule for policy in egress for rule in policy.get("egress", [])] == []


def test_cluster_redis_runs_unprivileged_and_writes_only_data(redis: Deployment) -> None:
    """Redis runs as the image's non-root user, read-only but for an emptyDir at /data, with no
    capabilities, RuntimeDefault seccomp, no service account token and no service links."""
    pod = redis.pod
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == REDIS_UID
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(host), host
    context = redis.container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context.get("privileged", False) is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context.get("runAsUser", REDIS_UID) == REDIS_UID
    mounts = redis.container["volumeMounts"]
    assert [m["mountPath"] for m in mounts] == ["/data"]
    assert not mounts[0].get("readOnly", False)
    data = redis.volume("/data")
    assert set(data) == {"name", "emptyDir"}
    assert quantity(data["emptyDir"]["sizeLimit"]) <= quantity("256Mi")


def test_cluster_redis_is_pinned_sized_and_probed(redis: Deployment) -> None:
    """The Redis image has an exact version, never `latest`; requests and limits are set;
    liveness and readiness ask Redis itself; no persistence; never two Redis at once."""
    image = redis.container["image"]
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+(-alpine)?", image), f"not pinned: {image!r}"
    assert redis.container["imagePullPolicy"] != "Always"
    resources = redis.container["resources"]
    for resource in ("cpu", "memory"):
        request = quantity(resources["requests"][resource])
        limit = quantity(resources["limits"][resource])
        assert 0 < request <= limit, resource
    for kind in ("livenessProbe", "readinessProbe"):
        probe = redis.probe(kind)
        assert probe["exec"]["command"] == ["redis-cli", "-e", "ping"], kind
        assert 0 < probe["timeoutSeconds"] <= probe["periodSeconds"], kind
    args = redis.container["args"]
    assert args[0] == "redis-server"
    assert args[args.index("--save") + 1] == ""
    assert args[args.index("--appendonly") + 1] == "no"
    spec = redis.deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_cluster_redis_budget_never_blocks_a_drain(cluster: Deployment, redis: Deployment) -> None:
    """The one Redis pod may always be evicted by a node drain (it holds nothing to keep)."""
    budget = cluster.one("PodDisruptionBudget", REDIS)
    assert _selects(budget["spec"]["selector"], redis.pod_labels)
    assert not _selects(budget["spec"]["selector"], cluster.pod_labels)
    assert _disruptions_allowed(budget, redis.deployment["spec"]["replicas"]) >= 1
    assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_gateway_and_redis_selectors_do_not_overlap(cluster: Deployment, redis: Deployment) -> None:
    """Neither Deployment's selector takes the other's pods (nor does the gateway's Service)."""
    gateway_selector = cluster.deployment["spec"]["selector"]
    redis_selector = redis.deployment["spec"]["selector"]
    assert _selects(gateway_selector, cluster.pod_labels)
    assert _selects(redis_selector, redis.pod_labels)
    assert not _selects(gateway_selector, redis.pod_labels)
    assert not _selects(redis_selector, cluster.pod_labels)
    gateway_service = cluster.one("Service", NAME)["spec"]["selector"]
    assert not _selects({"matchLabels": gateway_service}, redis.pod_labels)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _run(*command: str, env: dict[str, str]) -> tuple[int, str]:
    """``command``'s exit status and output (stdout, then stderr), with a deadline."""
    process = await asyncio.create_subprocess_exec(
        *command,
        env={"PATH": os.environ["PATH"], **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await within(process.communicate(), seconds(10))
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_cluster_redis_runs_as_rendered_and_takes_the_gateways_url(
    cluster: Deployment, redis: Deployment, tmp_path: Path
) -> None:
    """Debian's redis-server, started with the rendered arguments and a site's password,
    passes the probes, refuses clients without the password, answers the gateways' URL, and
    leaves /data empty when stopped."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        missing("redis-server is not installed (apt-get install redis-server)")
    secrets = site_secrets(cluster)
    args = redis.args(secrets)
    assert args[0] == "redis-server"
    port = _free_port()
    data = tmp_path / "data"
    data.mkdir()
    # In the pod Redis listens on every address of its own network namespace; here, loopback.
    process = await asyncio.create_subprocess_exec(
        server,
        *args[1:],
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        cwd=data,
        env={"PATH": os.environ["PATH"]},
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        environment = redis.environment(secrets)
        target = ("-h", "127.0.0.1", "-p", str(port))
        probes = {
            kind: redis.probe(kind)["exec"]["command"]
            for kind in ("readinessProbe", "livenessProbe")
        }

        async def ready() -> bool:
            status, _ = await _run(cli, *target, *probes["readinessProbe"][1:], env=environment)
            return status == 0

        await eventually(ready, timeout=seconds(10), interval=0.05, message="readiness probe")
        for kind, probe in probes.items():
            status, out = await _run(cli, *target, *probe[1:], env=environment)
            assert (status, out.strip()) == (0, "PONG"), kind
            # The probe fails, not passes, when Redis refuses it (a wrong password here).
            status, out = await _run(
                cli, *target, *probe[1:], env={**environment, "REDISCLI_AUTH": "wrong"}
            )
            assert status != 0, f"{kind} passed with a wrong password: {out}"
        status, out = await _run(cli, *target, "ping", env={})
        assert "NOAUTH" in out, out

        url = urlsplit(pod_settings(cluster, tmp_path, secrets=secrets).cluster.redis_url)
        # The gateways' URL as it is, user and password included, pointed at this Redis.
        userinfo = url.netloc.rpartition("@")[0]
        local = url._replace(netloc=f"{userinfo}@127.0.0.1:{port}").geturl()
        for command, expected in (
            (("set", "lease", "x"), "OK"),
            (("config", "get", "save"), "save\n"),
            (("config", "get", "appendonly"), "appendonly\nno"),
        ):
            status, out = await _run(cli, "--no-auth-warning", "-u", local, *command, env={})
            assert (status, out.strip()) == (0, expected.strip()), command
        # Kubernetes stops a container with SIGTERM: Redis exits without writing a snapshot.
        process.terminate()
        assert await within(process.wait(), seconds(10)) == 0
        assert list(data.iterdir()) == []
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _site_files(site: Path, kustomization: Manifest) -> dict[str, str]:
    """Every file the site's generators name, written with random URL-safe values (the
    configuration: the base's gateway.toml); returns the Secret files' values by key."""
    values: dict[str, str] = {}
    for generator in kustomization.get("configMapGenerator", []):
        for name in generator.get("files", []):
            (site / name).write_text((K8S / "base" / "gateway.toml").read_text())
    for generator in kustomization.get("secretGenerator", []):
        for name in generator.get("files", []):
            path = site / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_text(token_urlsafe(32))
            values[path.name] = path.read_text()
    return values


def _cluster_site(tmp_path: Path, *patches: str) -> tuple[Path, dict[str, str]]:
    """README "Cluster overlay"'s site overlay in ``tmp_path/site`` (its secret made with the
    README's command), with ``patches`` (README YAML with a ``patches:`` list) added."""
    heading = "#### Cluster overlay"
    site = tmp_path / "site"
    (site / "secrets").mkdir(parents=True)
    [command] = _readme_blocks(heading, "sh")
    subprocess.run(["sh", "-ec", command], cwd=site, check=True, timeout=seconds(10))
    kustomization = yaml.safe_load(_readme_blocks(heading, "yaml")[0])
    assert kustomization["resources"] == ["../routeros-traffic-gateway/k8s/overlays/cluster"]
    kustomization["resources"] = [relative(K8S / "overlays" / "cluster", site)]
    for patch in patches:
        kustomization.setdefault("patches", []).extend(yaml.safe_load(patch)["patches"])
    (site / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return site, _site_files(site, kustomization)


def test_readme_cluster_site_sets_the_redis_password_at_both_ends(tmp_path: Path) -> None:
    """The README's cluster site overlay gives Redis and the gateways the password the README's
    command made (URL-safe as it is), replacing the placeholder; it validates."""
    site, secrets = _cluster_site(tmp_path)
    password = secrets["redis-password"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", password), password
    text = asyncio.run(render_yaml(site))
    custom = Deployment(parse(text))
    redis = Deployment(custom.docs, REDIS)
    url = urlsplit(pod_settings(custom, tmp_path, secrets={}).cluster.redis_url)
    assert (url.hostname, url.port, url.password) == (REDIS, REDIS_PORT, password)
    args = redis.args()
    assert args[args.index("--requirepass") + 1] == password
    assert redis.environment()["REDISCLI_AUTH"] == password
    assert _replicas(custom) == 3
    result = validate(text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_external_redis_patch_replaces_the_bundled_one(tmp_path: Path) -> None:
    """With the README's patch, the site has no Redis of its own; the gateways get the external
    URL with the site's password and may reach its address and port; it validates."""
    heading = "#### Cluster overlay"
    site, secrets = _cluster_site(tmp_path, _readme_blocks(heading, "yaml")[1])
    text = asyncio.run(render_yaml(site))
    custom = Deployment(parse(text))
    left = [
        f"{d['kind']} {d['metadata']['name']}"
        for d in custom.docs
        if d["metadata"]["name"] == REDIS
        or d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "redis"
    ]
    assert left == []
    assert [d["metadata"]["name"] for d in custom.docs if d["kind"] == "Deployment"] == [NAME]
    url = urlsplit(pod_settings(custom, tmp_path, secrets={}).cluster.redis_url)
    assert url.scheme == "rediss"
    assert url.hostname != REDIS
    assert url.password == secrets["redis-password"]
    rules = [
        rule
        for policy in _policies(custom.docs, custom.pod_labels, "Egress")
        for rule in policy.get("egress", [])
        if ("TCP", url.port) in _ports(rule)
    ]
    assert rules, f"no egress from the gateways to port {url.port}"
    assert all("ipBlock" in peer for rule in rules for peer in rule["to"])
    assert _replicas(custom) == 3
    result = validate(text)
    assert result.returncode == 0, result.stdout + result.stderr
