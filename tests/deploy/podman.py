"""Build and run the container image with podman, offline, as CI does.

No image registry is reachable from the test machines, so the Dockerfile's public base cannot be
pulled: the base is made here with ``debootstrap`` (Debian bookworm, minbase, python3) and kept in
podman's image store, so later runs on the same machine skip it. The wheels are made on the host
for the base's Python and the image is built with ``--network=none`` from them, exactly the
Dockerfile's documented air-gapped build.

``python -m tests.deploy.podman`` (``make image``) builds ``routeros-traffic-gateway:VERSION``
this way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
CONTAINERS_CONF: Final = Path(__file__).with_name("containers.conf")
WHEELHOUSE: Final = ROOT / "wheelhouse"
CONSTRAINTS: Final = ROOT / "constraints.txt"
"""The exact runtime dependency versions the image is built from (``make constraints``)."""

BASE_TAG: Final = "localhost/gateway-base:bookworm-1"
"""The debootstrapped base. Bump the suffix when its recipe below changes."""

DEBIAN_MIRROR: Final = os.environ.get("GATEWAY_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")

TOOLS: Final = ("podman", "debootstrap")


def version() -> str:
    """The package version (the image tag)."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        project: dict[str, str] = tomllib.load(f)["project"]
    return project["version"]


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def env() -> dict[str, str]:
    """The environment podman needs on these machines (see containers.conf)."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(
    *args: str, timeout: float, check: bool = True, input: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS`` to completion within ``timeout`` seconds; text output captured."""
    result = subprocess.run(
        ["podman", *args],
        env=env(),
        input=input.decode() if input is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"podman {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag, timeout=30, check=False).returncode == 0


def ensure_base(tag: str = BASE_TAG) -> str:
    """A Debian bookworm base with python3 and venv in podman's store (made once, ~40 s)."""
    if image_exists(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="gateway-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                "bookworm",
                str(rootfs),
                DEBIAN_MIRROR,
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
        # Package caches are no part of a base image.
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(rootfs, arcname=".")
        podman("import", str(archive), tag, timeout=300)
    return tag


def base_python(base: str) -> str:
    """The ``major.minor`` of the base image's python3 (the wheels must match it)."""
    script = "import sys; print('%d.%d' % sys.version_info[:2])"
    result = podman("run", "--rm", "--network=none", base, "python3", "-c", script, timeout=120)
    return result.stdout.strip()


def build_wheelhouse(python: str) -> Path:
    """The wheels of everything the package needs, at the versions of constraints.txt, for
    CPython ``python`` on x86_64 glibc, in ./wheelhouse. Not the package's own: the image
    builds that from its clean source copy (a wheel built here may carry stale files from an
    old ./build, and pip could pick either)."""
    shutil.rmtree(WHEELHOUSE, ignore_errors=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    with tempfile.TemporaryDirectory(prefix="gateway-wheel-") as tmp:
        # Its metadata names the dependencies to download; built from the checkout, in place.
        subprocess.run(
            [*pip, "wheel", "--no-deps", "--wheel-dir", tmp, str(ROOT)], check=True, timeout=300
        )
        (package,) = Path(tmp).glob("routeros_traffic_gateway-*.whl")
        _download(pip, python, package)
    for own in WHEELHOUSE.glob("routeros_traffic_gateway-*.whl"):
        own.unlink()
    return WHEELHOUSE


def _download(pip: list[str], python: str, package: Path) -> None:
    platforms = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
    subprocess.run(
        [
            *pip,
            "download",
            "--only-binary=:all:",
            "--python-version",
            python,
            "--implementation",
            "cp",
            *(f"--platform={p}" for p in platforms),
            # The versions the Dockerfile's build stage will ask for (PIP_CONSTRAINT).
            "--constraint",
            str(CONSTRAINTS),
            "--dest",
            str(WHEELHOUSE),
            str(package),
            # What building the package from source needs inside the image's build stage.
            "setuptools>=77",
        ],
        check=True,
        timeout=600,
    )


def build_image(tag: str, base: str) -> str:
    """Build the Dockerfile offline on ``base`` as ``tag``; returns the image's ID.

    Run the ID rather than the tag: another build of the same tag (a second checkout on the
    machine) may move the tag meanwhile, never the ID.
    """
    build_wheelhouse(base_python(base))
    with tempfile.TemporaryDirectory(prefix="gateway-iid-") as tmp:
        iidfile = Path(tmp) / "iid"
        podman(
            "build",
            "--format=docker",  # OCI format would drop HEALTHCHECK
            "--network=none",
            f"--build-arg=BASE_IMAGE={base}",
            "--build-arg=PIP_NO_INDEX=1",
            "--build-arg=PIP_FIND_LINKS=/src/wheelhouse",
            f"--tag={tag}",
            f"--iidfile={iidfile}",
            str(ROOT),
            timeout=900,
        )
        return iidfile.read_text().strip()


def main(argv: Sequence[str] | None = None) -> int:
    tag = (argv or sys.argv[1:] or [f"routeros-traffic-gateway:{version()}"])[0]
    if missing := missing_tools():
        print(f"missing: {', '.join(missing)} (apt-get install podman runc debootstrap)")
        return 1
    print(f"built {tag} ({build_image(tag, ensure_base())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
