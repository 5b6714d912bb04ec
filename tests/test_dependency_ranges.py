"""The fine-tuning dependencies' ranges in pyproject.toml are the versions this test run uses: a range may not
promise versions the suite never ran on."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _nlp_requirements() -> list[Requirement]:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    return [Requirement(r) for r in extras["nlp"]]


@pytest.mark.parametrize("requirement", _nlp_requirements(), ids=lambda r: r.name)
def test_installed_version_is_in_the_declared_minor_series(requirement: Requirement) -> None:
    try:
        version = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{requirement.name} is not installed (the nlp extra is absent)")
    assert requirement.specifier.contains(version, prereleases=True), (requirement, version)
    lower = [s for s in requirement.specifier if s.operator == ">="]
    upper = [s for s in requirement.specifier if s.operator == "<"]
    assert lower and upper, f"{requirement}: give both ends, the tested series only"
    low, high = lower[0].version.split("."), upper[0].version.split(".")
    assert high[:-1] == low[:-1] and int(high[-1]) == int(low[-1]) + 1, f"{requirement}: one series only"
