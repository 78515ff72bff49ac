"""Every public name imports, and importing costsgd stays light."""

import subprocess
import sys

import costsgd


def test_every_public_name_exists():
    for name in costsgd.__all__:
        assert hasattr(costsgd, name), name


def test_import_does_not_pull_torch_matplotlib_scipy_or_change_jax_config():
    code = (
        "import sys, costsgd\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
        "assert 'scipy.optimize' not in sys.modules, 'scipy.optimize imported'\n"
        "import jax\n"
        "assert not jax.config.jax_enable_x64, 'x64 forced on import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
