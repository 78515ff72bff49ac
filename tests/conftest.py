"""Test-run settings: the hypothesis profile and the compile cache.

float64 is enabled locally by the tests that need it. Long runs live in
``benchmarks/`` and behind the CLI's flags, not in the suite.
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


@pytest.fixture
def torch_one_thread():
    """torch on one intra-op thread for the test (tiny models: more threads only contend;
    the studies' workers run with one, too)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
