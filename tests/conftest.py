"""Test-run settings: the hypothesis profile, the compile cache, and the ``slow`` marker.

float64 is enabled locally by the tests that need it. Tests marked
``@pytest.mark.slow`` (long statistical or end-to-end runs) are skipped unless
pytest is given ``--runslow``.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

# Keep hypothesis away from the repository root (and CI's clean clone).
settings.register_profile(
    "costsgd",
    max_examples=int(os.environ.get("COSTSGD_MAX_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
settings.load_profile("costsgd")

# No test writes JAX's persistent compilation cache into the user's home: commands run
# in-process keep it off (tests/test_cli.py turns it on in a subprocess, in a tmp folder).
os.environ["COSTSGD_NO_COMPILE_CACHE"] = "1"


def pytest_addoption(parser):
    parser.addoption(
        "--runslow", action="store_true", default=False, help="also run tests marked slow"
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running; skipped unless --runslow is given")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow test: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
