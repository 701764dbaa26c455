"""The Kubernetes manifests: every overlay renders, passes the strict schema, and agrees with the
gateway on what a schema cannot see (routes, ports, drain timing, privileges, secrets)."""

from __future__ import annotations

import asyncio
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.app import create_app
from gateway.config import ConfigError, Settings
from gateway.routeros import connect_librouteros
from tests.deploy.manifests import (
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

PLACEHOLDER = "CHANGE-ME"
"""The only value the example Secret may hold."""

UID = 10001
"""The image's fixed non-root user and group."""

NAME = "routeros-traffic-gateway"
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


def test_there_is_a_single_overlay() -> None:
    """The supported layout, k8s/overlays/single, exists (and so is checked by every test here)."""
    assert "single" in OVERLAYS


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
    service = deployment.one("Service")
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


def test_shipped_placeholders_do_not_start_a_gateway(tmp_path: Path) -> None:
    """Applied as shipped, the gateway refuses the CHANGE-ME JWT secret (9 bytes, under the
    32 HS256 needs) and says how to make one: nobody runs it with a public secret by mistake."""
    deployment = Deployment(render("single"))
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
    assert selects(deployment.one("Service")["spec"]["selector"])
    assert selects(deployment.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"])
    assert selects(deployment.one("NetworkPolicy", NAME)["spec"]["podSelector"]["matchLabels"])


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
    """With the overlay's replica count, a drain may always evict a pod (never waits forever)."""
    replicas = deployment.deployment["spec"]["replicas"]
    budget = deployment.one("PodDisruptionBudget")
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


def _readme_block(heading: str, language: str) -> str:
    """The first ``language`` code block under ``heading`` in README.md."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(f"\n{heading}\n") :]
    start = section.index(f"```{language}\n") + len(language) + 4
    return section[start : section.index("```", start)]


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
