"""Pins: pyproject.toml states compatible ranges, constraints.txt the exact version of every
package of the tool's own .venv (one place), and the two agree with each other and with what
is installed."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]


def project_requirements() -> list[Requirement]:
    """Every dependency of pyproject.toml, the dev extra's too."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    listed = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [Requirement(text) for text in listed]


def constraints() -> dict[str, str]:
    """constraints.txt: canonical name -> exact version."""
    pins = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version and " " not in line, f"not an exact pin: {line!r}"
        pins[canonicalize_name(name)] = version
    return pins


def test_pyproject_states_ranges_not_pins():
    for requirement in project_requirements():
        operators = {spec.operator for spec in requirement.specifier}
        assert operators == {">=", "<"}, f"{requirement}: a range (>=, <) is expected"


def test_every_dependency_is_pinned_within_its_range():
    pins = constraints()
    for requirement in project_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} has no pin in constraints.txt"
        assert requirement.specifier.contains(pins[name]), (
            f"constraints.txt pins {requirement.name}=={pins[name]}, outside {requirement}"
        )


def test_the_venv_has_exactly_the_pinned_versions():
    pins = constraints()
    for name, version in pins.items():
        assert metadata.version(name) == version, f"{name}: installed {metadata.version(name)}"


def test_make_setup_installs_with_the_constraints():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "pip install --quiet --constraint constraints.txt --editable '.[dev]'" in makefile
    assert "$(STAMP): pyproject.toml constraints.txt" in makefile
