"""The pins of CI's oldest-versions run are the floors of pyproject.toml."""

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def floors():
    """``name -> version`` of the ``>=`` floor of each runtime and dask requirement."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dask"]
    result = {}
    for line in requirements:
        requirement = Requirement(line)
        lower = [s.version for s in requirement.specifier if s.operator == ">="]
        assert len(lower) == 1, f"{line!r} needs exactly one '>=' floor"
        result[canonicalize_name(requirement.name)] = Version(lower[0])
    return result


def pins():
    """``name -> version`` of the ``==`` pins in .ci/min-requirements.txt."""
    result = {}
    for line in (ROOT / ".ci" / "min-requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            result[canonicalize_name(requirement.name)] = Version(specifier.version)
    return result


def test_ci_pins_are_the_floors_of_pyproject():
    assert pins() == floors()


def test_ci_runs_the_suite_at_the_pins():
    run = (ROOT / ".ci" / "run").read_text()
    assert "-c .ci/min-requirements.txt" in run
    # the README's command stays the first run's, word for word
    command = 'python -m pip install ".[test]" && python -m pytest'
    assert command in (ROOT / "README.md").read_text()
    assert command in run
