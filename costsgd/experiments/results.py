"""Results files shared by the experiments: npz with a JSON ``meta`` entry, written atomically.

A results file holds the arrays an experiment produced plus ``meta`` = {experiment,
config, versions}, so a figure can be redrawn (``costsgd plot``) without rerunning.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["crossing", "experiment_of", "load_results", "save_results", "versions"]


def versions() -> dict[str, str]:
    """Library versions and the hardware JAX sees, recorded in every results file."""
    import jax

    import costsgd

    return {
        "costsgd": costsgd.__version__,
        "numpy": np.__version__,
        "jax": jax.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "devices": ", ".join(sorted({str(d.device_kind) for d in jax.devices()}))
        + f" x{jax.device_count()}",
    }


def save_results(results: dict[str, Any], path: str | os.PathLike, *, experiment: str) -> Path:
    """Write ``results`` (arrays + ``config`` + ``versions``) to ``path`` atomically.

    The file is written under a temporary name in the same folder, then moved
    over ``path`` with ``os.replace``: a reader never sees half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"experiment": experiment, "config": results["config"], "versions": results["versions"]}
    arrays = {k: np.asarray(v) for k, v in results.items() if k not in ("config", "versions")}
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def experiment_of(path: str | os.PathLike) -> str | None:
    """The ``experiment`` recorded in a results file, or ``None`` if there is none."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta"])).get("experiment") if "meta" in z.files else None
    except (OSError, ValueError):
        return None


def load_results(path: str | os.PathLike, *, experiment: str) -> dict[str, Any]:
    """Read a file written by :func:`save_results` for ``experiment``.

    Raises:
      ValueError: the file is missing, is not an npz, has no metadata, or holds
        another experiment.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"results file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise ValueError(f"{str(path)!r} is not a results file: {err}") from err
    if "meta" not in out:
        raise ValueError(f"{str(path)!r} has no metadata: not a costsgd results file")
    meta = json.loads(str(out.pop("meta")))
    if meta.get("experiment") != experiment:
        raise ValueError(
            f"{str(path)!r} holds experiment {meta.get('experiment')!r}, not {experiment}"
        )
    out["config"], out["versions"] = meta["config"], meta["versions"]
    return out


def crossing(steps, cost, mean_error, target) -> tuple[float, float]:
    """First crossing of ``target`` by a mean error curve, interpolated in log-log.

    Returns:
      ``(steps, cost)`` at the crossing; ``(nan, nan)`` if the curve never reaches it.

    Examples:
      >>> crossing(np.array([1, 100]), np.array([10, 1000]), np.array([1.0, 0.01]), 0.1)
      (10.0, 100.0)
    """
    below = np.flatnonzero(mean_error <= target)
    if below.size == 0:
        return float("nan"), float("nan")
    k = below[0]
    if k == 0:
        return float(steps[0]), float(cost[0])
    le = np.log([mean_error[k - 1], mean_error[k]])
    w = (np.log(target) - le[0]) / (le[1] - le[0])

    def interp(y):
        return float(np.exp((1 - w) * np.log(y[k - 1]) + w * np.log(y[k])))

    return interp(steps), interp(cost)
