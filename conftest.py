"""Collection settings for the repository root (tests/conftest.py holds the test-run settings)."""

import importlib.util

# costsgd.integrations.verl_trainer subclasses verl's trainers, so it imports only where verl is
# installed: `make test` runs its doctests in .venv-verl, the main environment skips the module.
collect_ignore = (
    [] if importlib.util.find_spec("verl") else ["costsgd/integrations/verl_trainer.py"]
)
