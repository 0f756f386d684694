"""The install is the locked one: every package in the environment is at the version
requirements.lock names, and the lock satisfies the project's own ranges."""

import re
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.helpers import ROOT


def locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line).groups()
            pins[canonicalize_name(name)] = version
    return pins


def installed() -> dict[str, str]:
    return {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()
            if canonicalize_name(d.metadata["Name"]) != "rugpt-tui"}


def test_every_installed_package_is_at_its_locked_version():
    pins, found = locked(), installed()
    # torch's build tag (+cpu, +cu128) is the machine's choice; the release is locked
    differ = {name: (version, pins.get(name)) for name, version in found.items()
              if Version(version).public != pins.get(name)}
    assert differ == {}, "installed (version, locked) — run scripts/setup-venv.sh"
    assert set(pins) - set(found) == set(), "locked but not installed"


def test_the_lock_satisfies_every_requirement_of_the_project():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = locked()
    wanted = [Requirement(r) for r in
              (*project["dependencies"], *project["optional-dependencies"]["dev"])]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in the lock"
        assert requirement.specifier.contains(pins[name]), f"{requirement}: the lock has {pins[name]}"
        assert "<" in str(requirement.specifier), f"{requirement}: no upper bound"
