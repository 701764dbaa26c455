"""constraints.txt: the exact runtime dependency versions the image is built from.

The image itself is compared with the file in tests/deploy/test_image.py; these checks need no
container: the file is well formed, agrees with pyproject.toml's ranges, and names exactly the
package's runtime dependency closure.
"""

from __future__ import annotations

import importlib.metadata
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.podman import CONSTRAINTS, ROOT

PACKAGE = "routeros-traffic-gateway"


def pins() -> dict[str, Version]:
    """constraints.txt as canonical name -> pinned version; fails on anything but ``name==v``."""
    found: dict[str, Version] = {}
    for number, line in enumerate(CONSTRAINTS.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1, f"line {number}: {line!r} is not one exact pin"
        assert specifiers[0].operator == "==", f"line {number}: {line!r} is not pinned with =="
        assert not requirement.marker, f"line {number}: {line!r} has a marker"
        name = canonicalize_name(requirement.name)
        assert name not in found, f"line {number}: {name} is pinned twice"
        found[name] = Version(specifiers[0].version)
    return found


def runtime_closure(package: str) -> set[str]:
    """The canonical names of every distribution ``package`` needs at run time, transitively,
    as installed here (extras left out, markers evaluated for this Python)."""
    seen: set[str] = set()
    todo = [package]
    while todo:
        for text in importlib.metadata.distribution(todo.pop()).requires or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            name = canonicalize_name(requirement.name)
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def test_constraints_pin_every_requirement_within_its_range() -> None:
    """Each dependency in pyproject.toml is pinned to one version its range allows."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    pinned = pins()
    for text in dependencies:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in constraints.txt (run `make constraints`)"
        assert requirement.specifier.contains(pinned[name]), (
            f"constraints.txt pins {name}=={pinned[name]}, outside pyproject.toml's {text!r}"
        )


def test_constraints_name_exactly_the_runtime_closure() -> None:
    """constraints.txt names every runtime dependency, transitive ones included, and nothing
    else: a dependency added to pyproject.toml without `make constraints` is caught here."""
    assert set(pins()) == runtime_closure(PACKAGE)
