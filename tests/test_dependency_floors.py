"""The dependency floors in pyproject.toml are versions the test suite runs on.

A floor the suite never runs at is a promise nobody checked (the floor once said
``jax>=0.4.30`` while the engine called ``jax.shard_map(check_vma=)`` and ``jax.ffi``).
Here each floor must be at or below the installed version and in its release series
(same major.minor): upgrading the environment to a new series fails this test until
the floor follows (or a run at the old floor shows it still holds).
"""

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

#: distribution -> the requirement lists of pyproject.toml that must give it a tested floor
CHECKED = {
    "numpy": ["dependencies"],
    "scipy": ["dependencies"],
    "jax": ["dependencies"],
    "array-api-compat": ["dependencies"],
    "torch": ["torch", "grpo", "trl", "verl"],
}


def release(text: str) -> tuple[int, ...]:
    """``"2.13.0+cpu"`` -> ``(2, 13, 0)``."""
    return tuple(int(part) for part in re.match(r"\d+(\.\d+)*", text).group().split("."))


def floor(requirements: list[str], name: str) -> str:
    (req,) = [r for r in requirements if re.match(rf"{re.escape(name)}\s*[><=]", r)]
    found = re.search(r">=\s*([\d.]+)", req)
    assert found, f"{req!r} has no floor"
    return found.group(1)


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_floors_are_the_tested_release_series(name):
    installed = release(importlib.metadata.version(name))
    for where in CHECKED[name]:
        reqs = (
            PYPROJECT["project"]["dependencies"]
            if where == "dependencies"
            else PYPROJECT["project"]["optional-dependencies"][where]
        )
        low = release(floor(reqs, name))
        assert low <= installed, f"{name} {installed} is below its floor {low} ({where})"
        assert low[:2] == installed[:2], (
            f"{name}: the floor {low} ({where}) is not the release series the tests run on, "
            f"{installed}: raise the floor, or run the suite at it"
        )


def test_requires_python_is_what_the_floors_need():
    """numpy 2.4, scipy 1.17 and jax 0.10 need Python 3.11."""
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
