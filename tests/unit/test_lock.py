"""The lock files pin the whole dependency tree, and they agree with what pyproject.toml asks for.

`make` installs from the lock files, so a dependency added to pyproject.toml without `make lock`
would silently be missing on a fresh machine; these tests catch that before CI does.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\],]+)==([^\s;]+)(\s*;.*)?$")


def read_lock(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = PIN.match(line)
        assert m, f"{path.name}:{lineno}: not an exact pin: {raw!r}"
        name = canonicalize_name(re.sub(r"\[.*\]", "", m.group(1)))
        pins.setdefault(name, m.group(2))
    return pins


def pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        reqs += [Requirement(r) for r in extra]
    return reqs


@pytest.mark.parametrize("req", pyproject_requirements(), ids=str)
def test_every_project_dependency_is_locked_at_its_pin(req):
    pins = read_lock(ROOT / "requirements.lock")
    name = canonicalize_name(req.name)
    assert name in pins, f"{req} is in pyproject.toml but not in requirements.lock: run `make lock`"
    assert req.specifier.contains(pins[name], prereleases=True), (
        f"requirements.lock has {req.name}=={pins[name]} but pyproject.toml asks for {req}: run `make lock`")


def test_this_environment_is_the_locked_tree():
    """Every distribution installed in the test environment is in the lock at the locked version, transitive
    ones included: `make` installs from the lock, so a fresh machine gets exactly this tree."""
    from importlib.metadata import distributions

    pins = read_lock(ROOT / "requirements.lock")
    own = {canonicalize_name(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"])}
    tooling = {"pip", "setuptools", "wheel"}
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    off = {n: v for n, v in installed.items() if n not in own | tooling and pins.get(n) != v}
    assert not off, f"installed but not as locked (name: installed version, lock has {{...}}): " + ", ".join(
        f"{n}: {v} (lock: {pins.get(n, 'absent')})" for n, v in sorted(off.items()))


def test_checkov_lock_pins_checkov():
    pins = read_lock(ROOT / "tools" / "checkov.lock")
    assert "checkov" in pins and len(pins) > 10
