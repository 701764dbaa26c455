"""The Kubernetes manifests as a cluster would get them: rendered by kustomize, then read.

Rendering uses pykustomize (kustomize's own Go library, bundled), so ``kubectl`` is not needed;
validation runs ``kubernetes-validate --strict`` on the rendered text as a subprocess, like an
operator would. The readers below pick the pieces the tests check and fail with a message
naming what is missing, rather than a ``KeyError`` deep in a test.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from secrets import token_urlsafe
from typing import Any, Final

import pykustomize
import yaml

from gateway.config import Settings, settings_from_dict
from tests.support.timing import seconds

REPO: Final = Path(__file__).resolve().parents[2]
K8S: Final = REPO / "k8s"
OVERLAYS: Final = sorted(
    p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file()
)
"""Every overlay under k8s/overlays (each must render, validate and pass our checks)."""

VALIDATE_DEADLINE: Final = 60.0
"""Seconds ``kubernetes-validate`` may take on one rendering (it takes well under one)."""

GATEWAY: Final = "routeros-traffic-gateway"
"""The name of the gateway's Deployment (and of the base's other resources)."""

Manifest = dict[str, Any]


async def render_yaml(path: Path) -> str:
    """``kustomize build path``: the multi-document YAML a cluster would be sent."""
    result = await pykustomize.build(path)
    text: str = result.yaml
    return text


@functools.cache
def rendered_text(overlay: str) -> str:
    """The rendering of ``k8s/overlays/<overlay>`` (cached: it never changes during a run)."""
    return asyncio.run(render_yaml(K8S / "overlays" / overlay))


def parse(text: str) -> list[Manifest]:
    """The documents of a rendering, as plain data."""
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def render(overlay: str) -> list[Manifest]:
    """The resources of ``k8s/overlays/<overlay>``, freshly parsed (callers may change them)."""
    return parse(rendered_text(overlay))


def validate(text: str) -> subprocess.CompletedProcess[str]:
    """``kubernetes-validate --strict --quiet -`` on ``text``; the caller checks the result."""
    tool = Path(sys.executable).with_name("kubernetes-validate")
    return subprocess.run(
        [str(tool), "--strict", "--quiet", "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=seconds(VALIDATE_DEADLINE),
        check=False,
    )


def dump(docs: list[Manifest]) -> str:
    """Documents back to multi-document YAML."""
    return yaml.safe_dump_all(docs, sort_keys=False)


_REFERENCE: Final = re.compile(r"\$(\$|\(([^)]*)\))")
"""``$$`` or ``$(NAME)`` in a container's env values, command and args."""


def expand(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with ``$(NAME)`` replaced as the kubelet does: by ``variables[NAME]`` when
    defined, left as written when not; ``$$`` is one literal ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "$":
            return "$"
        name = match.group(2)
        return variables.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


@dataclass(frozen=True, slots=True)
class Deployment:
    """The rendered resources around one Deployment (the gateway's unless ``name`` says which),
    with the readers tests need."""

    docs: list[Manifest]
    name: str = GATEWAY

    def one(self, kind: str, name: str | None = None) -> Manifest:
        """The only resource of ``kind`` (named ``name`` when given)."""
        found = [
            d
            for d in self.docs
            if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
        ]
        what = f"{kind} {name!r}" if name else kind
        assert len(found) == 1, f"expected one {what}, found {len(found)}"
        return found[0]

    @property
    def deployment(self) -> Manifest:
        return self.one("Deployment", self.name)

    @property
    def pod(self) -> Manifest:
        """The pod template's ``spec``."""
        spec: Manifest = self.deployment["spec"]["template"]["spec"]
        return spec

    @property
    def pod_labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.deployment["spec"]["template"]["metadata"]["labels"]
        return labels

    @property
    def container(self) -> Manifest:
        """The gateway container (the pod's only one)."""
        containers = self.pod["containers"]
        assert len(containers) == 1, f"expected one container, found {len(containers)}"
        container: Manifest = containers[0]
        return container

    def env(self) -> dict[str, str]:
        """The container's literal environment (``value`` entries, as written)."""
        return {e["name"]: e["value"] for e in self.container.get("env", []) if "value" in e}

    def secret_refs(self) -> dict[str, tuple[Manifest, str]]:
        """The container's variables taken from a Secret: name -> (the rendered Secret, key)."""
        refs: dict[str, tuple[Manifest, str]] = {}
        for entry in self.container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                refs[entry["name"]] = (self.one("Secret", ref["name"]), ref["key"])
        return refs

    def environment(self, secrets: Mapping[str, str] | None = None) -> dict[str, str]:
        """The container's environment as the process gets it: ``secretKeyRef`` values from
        the rendered Secret (or from ``secrets``, by key, as a site's own Secret would hold
        them), and ``$(NAME)`` expanded in order (a variable sees only those before it)."""
        refs = self.secret_refs()
        resolved: dict[str, str] = {}
        for entry in self.container.get("env", []):
            name = entry["name"]
            if "value" in entry:
                resolved[name] = expand(entry["value"], resolved)
            elif name in refs:
                secret, key = refs[name]
                values = secret_values(secret)
                assert key in values, f"env {name}: Secret has no key {key!r} ({sorted(values)})"
                resolved[name] = (secrets or {}).get(key, values[key])
            else:
                raise AssertionError(f"env {name}: a source these tests do not read: {entry}")
        return resolved

    def args(self, secrets: Mapping[str, str] | None = None) -> list[str]:
        """The container's ``args`` as the process gets them (``$(NAME)`` expanded)."""
        variables = self.environment(secrets)
        return [expand(arg, variables) for arg in self.container.get("args", [])]

    def volume(self, mount_path: str) -> Manifest:
        """The volume mounted at ``mount_path`` in the container."""
        mounts = [m for m in self.container.get("volumeMounts", []) if m["mountPath"] == mount_path]
        assert len(mounts) == 1, f"expected one volume mounted at {mount_path}, found {mounts}"
        volumes = [v for v in self.pod.get("volumes", []) if v["name"] == mounts[0]["name"]]
        assert len(volumes) == 1, f"no volume named {mounts[0]['name']!r}"
        volume: Manifest = volumes[0]
        return volume

    @property
    def config_path(self) -> Path:
        """Where the gateway reads its configuration in the pod (``GATEWAY_CONFIG``)."""
        path = self.env().get("GATEWAY_CONFIG")
        assert path, "the container sets no GATEWAY_CONFIG"
        return Path(path)

    @property
    def configmap(self) -> Manifest:
        """The ConfigMap mounted where ``GATEWAY_CONFIG`` points."""
        volume = self.volume(str(self.config_path.parent))
        assert "configMap" in volume, f"{self.config_path.parent} is not a ConfigMap: {volume}"
        return self.one("ConfigMap", volume["configMap"]["name"])

    @property
    def config_text(self) -> str:
        """The gateway's configuration file as the pod sees it."""
        data: dict[str, str] = self.configmap.get("data", {})
        name = self.config_path.name
        assert name in data, f"ConfigMap has no key {name!r} (keys: {sorted(data)})"
        return data[name]

    def secret_mounts(self) -> dict[Path, Manifest]:
        """Every Secret mounted in the container: mount path -> the rendered Secret."""
        mounts: dict[Path, Manifest] = {}
        for mount in self.container.get("volumeMounts", []):
            volume = self.volume(mount["mountPath"])
            if "secret" in volume:
                secret = self.one("Secret", volume["secret"]["secretName"])
                mounts[Path(mount["mountPath"])] = secret
        return mounts

    def probe(self, kind: str) -> Manifest:
        """``startupProbe``, ``livenessProbe`` or ``readinessProbe`` of the container."""
        probe = self.container.get(kind)
        assert probe is not None, f"the container has no {kind}"
        return dict(probe)


def secret_values(secret: Manifest) -> dict[str, str]:
    """A Secret's keys and decoded values (``data`` is base64, ``stringData`` plain)."""
    values = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    values.update(secret.get("stringData", {}))
    return values


SECRET_KEYS: Final = ("password_file", "jwt_secret_file")
"""The configuration keys that name a file holding a secret."""


def secret_files(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every (key path, file) a parsed gateway.toml reads a secret from."""
    found: list[tuple[str, str]] = []
    auth = config.get("auth", {})
    if "jwt_secret_file" in auth:
        found.append(("auth.jwt_secret_file", auth["jwt_secret_file"]))
    for index, router in enumerate(config.get("routers", [])):
        if "password_file" in router:
            found.append((f"routers[{index}].password_file", router["password_file"]))
    return found


def site_secrets(deployment: Deployment) -> dict[str, str]:
    """A value for every key of every Secret the pod mounts or takes a variable from, as an
    operator sets them: random, 32 bytes of entropy or more, URL-safe (the shipped
    placeholders do not start a gateway)."""
    keys = {key for secret in deployment.secret_mounts().values() for key in secret_values(secret)}
    keys |= {key for _, key in deployment.secret_refs().values()}
    return {key: token_urlsafe(32) for key in sorted(keys)}


def pod_settings(
    deployment: Deployment,
    secret_dir: Path,
    routers: Mapping[str, tuple[str, int]] | None = None,
    *,
    secrets: Mapping[str, str] | None = None,
) -> Settings:
    """The gateway's settings as the pod would load them, from the ConfigMap's gateway.toml.

    The real loader (``settings_from_dict``, what ``load_settings`` runs after reading the file)
    gets the container's environment (Secret references and ``$(NAME)`` resolved, with
    ``secrets`` for the Secrets' keys when given), so ``GATEWAY_*`` overrides in the
    Deployment apply. Each secret file the config names must be a key of a Secret mounted at
    that file's folder: its value (or the value ``secrets`` gives for that key, as a site's own
    Secret would) is written to ``secret_dir`` and the config pointed there. ``routers`` maps
    router ids to a (host, port) to poll instead (plain API, no TLS): an emulator. Raises
    ConfigError as the gateway would refuse to start.
    """
    config = tomllib.loads(deployment.config_text)
    mounts = deployment.secret_mounts()
    redirected: dict[str, str] = {}
    for where, name in secret_files(config):
        path = Path(name)
        assert path.parent in mounts, f"{where}: {name} is not in a mounted Secret"
        values = secret_values(mounts[path.parent])
        assert path.name in values, (
            f"{where}: {name}: the Secret mounted at {path.parent} has no key {path.name!r} "
            f"(keys: {sorted(values)})"
        )
        local = secret_dir / path.name
        local.write_text((secrets or {}).get(path.name, values[path.name]))
        redirected[name] = str(local)
    if "jwt_secret_file" in config.get("auth", {}):
        config["auth"]["jwt_secret_file"] = redirected[config["auth"]["jwt_secret_file"]]
    for router in config.get("routers", []):
        if "password_file" in router:
            router["password_file"] = redirected[router["password_file"]]
        if routers is not None:
            router["host"], router["port"] = routers[router["id"]]
            router["tls"] = False
            for key in ("tls_ca_file", "tls_fingerprint"):
                router.pop(key, None)
    return settings_from_dict(
        config,
        source=f"ConfigMap {deployment.configmap['metadata']['name']}",
        env=deployment.environment(secrets),
    )


_SUFFIXES: Final = {
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
}


def quantity(value: str | int | float) -> Decimal:
    """A Kubernetes resource quantity as a number (``"250m"`` -> 0.25, ``"64Mi"`` -> 67108864)."""
    text = str(value)
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * _SUFFIXES[suffix]
    return Decimal(text)


def project_version() -> str:
    """The package version in pyproject.toml: the image tag the manifests must use."""
    with open(REPO / "pyproject.toml", "rb") as f:
        version: str = tomllib.load(f)["project"]["version"]
    return version


def relative(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` (kustomize wants relative paths to other kustomizations)."""
    return os.path.relpath(path, start)
