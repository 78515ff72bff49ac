"""The package as a user gets it: an sdist without the test suite, a wheel built from that sdist
that installs and runs outside the repository, and metadata that agrees with LICENSE and
CITATION.cff.

The sdist and the wheel are built with setuptools' PEP 517 backend in this environment (no
build isolation, so no download), from a copy of the tracked files: what ``pip wheel .`` builds.
"""

import email
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

import costsgd

ROOT = Path(__file__).resolve().parents[1]


def _backend(call: str, source: Path, out: Path) -> tuple[str, str]:
    """Run ``setuptools.build_meta.<call>(out)`` in ``source``; the file name and the output."""
    proc = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::DeprecationWarning",
            "-c",
            f"from setuptools import build_meta; print(build_meta.{call}({str(out)!r}))",
        ],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip().splitlines()[-1], proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path | str]:
    work = tmp_path_factory.mktemp("pkg")
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False
    ).stdout
    if not tracked:
        pytest.skip("not a git checkout: the files to package are the tracked ones")
    source = work / "src"
    for name in tracked.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    sdist_name, sdist_log = _backend("build_sdist", source, work / "dist")
    sdist = work / "dist" / sdist_name
    with tarfile.open(sdist) as tar:
        tar.extractall(work / "unpacked", filter="data")
    (unpacked,) = (work / "unpacked").iterdir()
    wheel_name, wheel_log = _backend("build_wheel", unpacked, work / "dist")
    return {
        "sdist": sdist,
        "wheel": work / "dist" / wheel_name,
        "log": sdist_log + wheel_log,
        "work": work,
    }


def test_the_sdist_ships_license_and_citation_but_not_the_tests(built):
    with tarfile.open(built["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"LICENSE", "CITATION.cff", "README.md", "pyproject.toml"} <= names
    assert [n for n in names if n.startswith("costsgd/") and n.endswith(".cc")], "the C++ loop"
    # The suite reads the repository around the package (docs, notebooks, benchmarks):
    # it runs from a clone, so the sdist does not ship a half of it that cannot import.
    assert not [n for n in names if n.startswith("tests/")]


def test_metadata_uses_the_spdx_license_and_lists_python_versions(built):
    assert "Deprecat" not in built["log"], built["log"]  # the TOML-table license form
    with zipfile.ZipFile(built["wheel"]) as whl:
        (meta,) = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(whl.read(meta))
        licenses = [n for n in whl.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert licenses and whl.read(licenses[0]) == (ROOT / "LICENSE").read_bytes()
        assert "costsgd/py.typed" in whl.namelist()
        assert [n for n in whl.namelist() if n.startswith("costsgd/") and n.endswith(".cc")]
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Version"] == costsgd.__version__
    versions = [c for c in metadata.get_all("Classifier") if "Python :: 3." in c]
    floor = metadata["Requires-Python"].removeprefix(">=")
    assert versions and versions[0].endswith(f":: {floor}")


def test_the_wheel_runs_outside_the_repository(built, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(built["wheel"]),
        ],
        check=True,
        capture_output=True,
    )
    # PYTHONPATH wins over the editable install of the repository in this environment.
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import costsgd, sys; print(costsgd.__file__); print(costsgd.optimal([1.0, 1.0], [1, 4]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(target))
    version = subprocess.run(
        [sys.executable, "-m", "costsgd", "--version"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert version.stdout == f"costsgd {costsgd.__version__}\n", version.stderr


def test_license_and_citation_agree_with_the_metadata():
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")[:200]
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["cff-version"] == "1.2.0"
    assert citation["version"] == costsgd.__version__
    assert citation["license"] == "Apache-2.0"
    assert citation["authors"] and citation["message"]
    assert citation["preferred-citation"]["title"] == "Cost-Aware Learning"


def test_the_docs_name_the_wheel_that_is_built(built):
    # README and docs/index.md spell the wheel's file name in their install commands.
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    named = {
        name
        for page in pages
        for name in re.findall(r"costsgd-[\w.]+-py3-none-any\.whl", page.read_text("utf-8"))
    }
    assert named == {built["wheel"].name}
