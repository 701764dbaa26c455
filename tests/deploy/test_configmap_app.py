"""The shipped ConfigMap runs a real gateway: loaded as the pod loads it, probed as the kubelet
probes it, scraped as Prometheus scrapes it."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import aiohttp
import jwt
import pytest

from gateway.emulator.device import Device, sized_config
from gateway.emulator.server import RouterEmulator
from tests.deploy.manifests import Deployment, pod_settings, render, site_secrets
from tests.support.gateway import gateway, metric, running
from tests.support.timing import eventually, seconds


def routers_of(
    deployment: Deployment, tmp_path: Path, secrets: dict[str, str]
) -> dict[str, RouterEmulator]:
    """One emulated router per router of the ConfigMap, with its user and its password (the
    site's value of the Secret key the ConfigMap names)."""
    # Loaded once only to learn the routers, their users and their passwords.
    settings = pod_settings(deployment, tmp_path, secrets=secrets)
    return {
        router.id: RouterEmulator(
            Device(sized_config(8, pppoe=20)),
            username=router.username,
            password=router.password.reveal(),
        )
        for router in settings.routers
    }


@pytest.fixture
def deployment() -> Deployment:
    """The supported layout, rendered (outside the test's event loop: kustomize runs its own)."""
    return Deployment(render("single"))


async def test_configmap_gateway_answers_probes_and_metrics(
    deployment: Deployment, tmp_path: Path
) -> None:
    """The shipped config, with the Secret's keys set as a site sets them, runs a gateway:
    probes in time, routers polled, metrics."""
    # The shipped placeholders stop the gateway (test_manifests): a site brings its own values.
    secrets = site_secrets(deployment)
    emulators = routers_of(deployment, tmp_path, secrets)
    async with running(*emulators.values()):
        settings = pod_settings(
            deployment,
            tmp_path,
            {rid: ("127.0.0.1", emu.port) for rid, emu in emulators.items()},
            secrets=secrets,
        )
        assert settings.auth.mode == "jwt"
        async with gateway(settings) as gw:
            expected = {"/healthz": {"status": "ok"}, "/readyz": {"status": "ready"}}
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = deployment.probe(kind)
                started = time.monotonic()
                status, body = await gw.get_json(probe["httpGet"]["path"])
                assert time.monotonic() - started < seconds(probe["timeoutSeconds"]), kind
                assert (status, body) == (200, expected[probe["httpGet"]["path"]]), kind

            # A dashboard's token, signed with the site's JWT secret, makes both routers polled.
            token = jwt.encode(
                {"sub": "noc", "exp": int(time.time()) + 300, "routers": "*"},
                secrets["jwt-secret"],
                algorithm="HS256",
            )
            headers = {"Authorization": f"Bearer {token}"}

            async def up(router: str) -> bool:
                async with gw.http.get(
                    gw.url(f"/api/routers/{router}/traffic"),
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=seconds(5)),
                ) as response:
                    return response.status == 200 and (await response.json())["state"] == "up"

            for router in emulators:
                await eventually(
                    functools.partial(up, router),
                    timeout=seconds(10),
                    interval=0.2,
                    message=f"router {router} up",
                )

            async with gw.http.get(gw.url("/metrics")) as response:
                assert response.status == 200
                assert response.content_type == "text/plain"
                text = await response.text()
            for router in emulators:
                assert metric(text, "gateway_router_up", f'router="{router}"') == 1.0
                requests = metric(
                    text, "gateway_router_requests_total", f'outcome="ok",router="{router}"'
                )
                assert requests >= 1
            assert metric(text, "gateway_ws_connections") == 0.0
