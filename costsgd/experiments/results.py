"""Results files shared by the experiments: one way to write, read and identify them.

Two formats, one set of rules:

* **npz** (Figures 2 and 6): the arrays an experiment produced plus a JSON
  ``meta`` entry ``{experiment, config, versions}``;
* **JSON** (the GRPO study): one object with an ``"experiment"`` key.

Every file records its layout's version, ``format`` (:data:`FORMAT_VERSION`;
a file without it predates the key and is format 1, the same layout). A reader
refuses a newer format, and :func:`load_results` checks a file against its
experiment's schema (:mod:`costsgd.experiments.schema`) before anything uses it,
so a file of the wrong shape is one ``ValueError`` naming the file and the entry.

Every file is written by :func:`write_atomic`: under a temporary name in the
same folder, then moved over the final name with ``os.replace``, so a reader
(or a kill at any moment) never sees half a file. The file gets the permissions
any file the user creates gets (the umask), and a temporary file left by a
killed writer is removed by the next write to the same name. Results whose
arrays are not finite are refused: a diverged run is never written.
"""

from __future__ import annotations

import json
import os
import platform
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from costsgd.experiments.schema import validate

__all__ = [
    "FORMAT_VERSION",
    "ConfigError",
    "check_common_fields",
    "check_finite",
    "check_step_size",
    "crossing",
    "experiment_of",
    "load_results",
    "read_results",
    "save_json_results",
    "save_results",
    "versions",
    "write_atomic",
    "write_text",
]

_ZIP_MAGIC = b"PK\x03\x04"

#: Layout version written into every results file (``format``); files without it are 1.
FORMAT_VERSION = 2


class ConfigError(ValueError):
    """A configuration value that is invalid, or that made a run diverge.

    Attributes:
      field: the configuration field at fault (the CLI names its option).
    """

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def check_common_fields(config: Any) -> None:
    """The fields Figures 2 and 6 share: sizes, seeds, ``L`` and ``step_scale``.

    Raises:
      ConfigError: naming the field.
    """
    for name in ("n", "d", "steps", "trials", "checkpoints", "seed", "problem_seed"):
        value, low = getattr(config, name), 0 if name.endswith("seed") else 1
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            what = "an integer >= 0" if low == 0 else "a positive integer"
            raise ConfigError(name, f"{name} must be {what}, got {value!r}")
    for name in ("L", "step_scale"):
        value = getattr(config, name)
        if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
            raise ConfigError(name, f"{name} must be finite and > 0, got {value!r}")


def versions(*modules: str) -> dict[str, str]:
    """Library versions recorded in every results file (provenance).

    Args:
      modules: extra libraries to record (``"jax"`` also records the devices
        JAX sees, ``"torch"`` the torch version).

    Examples:
      >>> sorted(versions())
      ['costsgd', 'numpy', 'platform', 'python']
    """
    import costsgd

    out = {
        "costsgd": costsgd.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if "jax" in modules:
        import jax

        kinds = ", ".join(sorted({str(d.device_kind) for d in jax.devices()}))
        out.update(jax=jax.__version__, devices=f"{kinds} x{jax.device_count()}")
    if "torch" in modules:
        import torch

        out["torch"] = torch.__version__
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temps(path: Path) -> None:
    """Delete temporaries of ``path`` whose writer is no longer running."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 : -len(".tmp")]
        if pid.isdigit() and not _pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Write a file by calling ``write(binary_file)``; atomic, with the umask's permissions.

    Args:
      path: final name; its folder is created if needed.
      write: writes the content to the open binary file it is given.

    Returns:
      ``path`` as a :class:`~pathlib.Path`.

    Examples:
      >>> import tempfile
      >>> folder = Path(tempfile.mkdtemp())
      >>> write_atomic(folder / "a.txt", lambda f: f.write(b"hi")).read_text()
      'hi'
      >>> sorted(p.name for p in folder.iterdir())  # no temporary left
      ['a.txt']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # Mode 0o666 filtered by the umask: the permissions of any file the user creates.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` with :func:`write_atomic`."""
    return write_atomic(path, lambda f: f.write(text.encode()))


def save_results(results: dict[str, Any], path: str | os.PathLike, *, experiment: str) -> Path:
    """Write ``results`` (arrays + ``config`` + ``versions``) to an npz file atomically.

    Raises:
      ValueError: an array holds NaN or infinity (a diverged run is not written).
    """
    meta = {
        "experiment": experiment,
        "format": FORMAT_VERSION,
        "config": results["config"],
        "versions": results["versions"],
    }
    arrays = {k: np.asarray(v) for k, v in results.items() if k not in ("config", "versions")}
    for key, value in arrays.items():
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            raise ValueError(f"results[{key!r}] is not finite: refusing to write {str(path)!r}")
    return write_atomic(path, lambda f: np.savez(f, meta=np.array(json.dumps(meta)), **arrays))


def save_json_results(results: dict[str, Any], path: str | os.PathLike, *, experiment: str) -> Path:
    """Write ``results`` (a JSON-ready dict) to a JSON file atomically, tagged with ``experiment``."""
    text = json.dumps(
        {"experiment": experiment, "format": FORMAT_VERSION, **results}, allow_nan=True
    )
    return write_text(path, text)


def _open(path: str | os.PathLike) -> tuple[Path, str, bytes]:
    name = repr(str(path))
    path = Path(path)
    if not path.exists():
        raise ValueError(f"results file {name} does not exist")
    if not path.is_file():
        raise ValueError(f"results file {name} is not a file")
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as err:
        raise ValueError(f"cannot read results file {name}: {err.strerror}") from err
    if not head:
        raise ValueError(f"results file {name} is empty")
    return path, name, head


def _parse_meta(text: str | None, name: str, kind: str) -> dict[str, Any]:
    if text is None:
        raise ValueError(f"{name} has no metadata: not a {kind} results file")
    try:
        meta = json.loads(text)
        if not isinstance(meta.get("experiment"), str) or not {"config", "versions"} <= set(meta):
            raise KeyError("experiment, config or versions")
    except RecursionError as err:
        raise ValueError(f"{name} has metadata nested too deeply to be a results file") from err
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{name} has unreadable metadata: {err}") from err
    return meta


def _check_format(found: Any, name: str) -> None:
    """Refuse a layout this costsgd does not know (a newer one, or garbage)."""
    if isinstance(found, bool) or not isinstance(found, int) or found < 1:
        raise ValueError(f"{name} has an invalid results format {found!r}")
    if found > FORMAT_VERSION:
        raise ValueError(
            f"{name} is results format {found}, newer than this costsgd reads "
            f"(up to {FORMAT_VERSION}): upgrade costsgd to read it"
        )


def _read(
    path: str | os.PathLike, *, arrays: bool, kind: str = "costsgd"
) -> tuple[str, dict[str, Any]]:
    path, name, head = _open(path)
    if head == _ZIP_MAGIC:
        try:
            with path.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
                text = str(z["meta"]) if "meta" in z.files else None
                out = {k: z[k] for k in z.files if k != "meta"} if arrays else {}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(
                f"{name} is not a results file (truncated or corrupt?): {err}"
            ) from err
        meta = _parse_meta(text, name, kind)
        _check_format(meta.get("format", 1), name)
        out["config"], out["versions"] = meta["config"], meta["versions"]
        return meta["experiment"], out
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError as err:
        raise ValueError(f"{name} is nested too deeply to be a results file") from err
    except (OSError, ValueError) as err:
        raise ValueError(f"{name} is not a results file (neither npz nor JSON): {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("experiment"), str):
        raise ValueError(f"{name} has no 'experiment' entry: not a {kind} results file")
    _check_format(data.pop("format", 1), name)
    return data.pop("experiment"), data


def read_results(path: str | os.PathLike) -> tuple[str, dict[str, Any]]:
    """Read any results file: ``(experiment, results)``.

    npz files give their arrays plus ``config`` and ``versions``; JSON files
    give their object without the ``experiment`` key.

    Raises:
      ValueError: naming the file, when it is missing, a folder, empty,
        truncated, corrupt, or not a costsgd results file.
    """
    return _read(path, arrays=True)


def experiment_of(path: str | os.PathLike) -> str:
    """The experiment a results file records (reads only an npz file's metadata).

    Raises:
      ValueError: as :func:`read_results`.
    """
    return _read(path, arrays=False)[0]


def load_results(path: str | os.PathLike, *, experiment: str, schema: Any = None) -> dict[str, Any]:
    """Read a results file written for ``experiment``, checked against ``schema``.

    Args:
      path: the file.
      experiment: the experiment it must record.
      schema: its layout (:mod:`costsgd.experiments.schema`), checked before returning.

    Raises:
      ValueError: as :func:`read_results`, or the file holds another experiment, or
        an entry does not match ``schema`` (one line naming the file and the entry).
    """
    found, out = _read(path, arrays=True, kind=experiment)
    if found != experiment:
        raise ValueError(f"{str(path)!r} holds experiment {found!r}, not {experiment}")
    if schema is not None:
        try:
            validate(out, schema)
        except ValueError as err:
            raise ValueError(
                f"{str(path)!r} is not a valid {experiment} results file: {err}"
            ) from None
    return out


def check_step_size(eta: np.ndarray, step_scale: float) -> None:
    """Refuse step sizes the engine's float32 run cannot hold.

    Raises:
      ConfigError: naming ``step_scale``.
    """
    limit = float(np.finfo(np.float32).max)
    if not np.all(np.isfinite(eta) & (eta < limit)):
        raise ConfigError(
            "step_scale",
            f"step_scale={step_scale!r} gives step sizes up to {float(np.max(eta)):.3g},"
            f" which overflow the run (limit {limit:.3g}): use a smaller step_scale",
        )


def check_finite(names, error, cost, step_scale: float) -> None:
    """Stop a run whose errors or costs are not finite (it diverged).

    Raises:
      ConfigError: naming ``step_scale``, the option that sets how far each step goes.
    """
    bad = [
        n
        for n, e, k in zip(names, error, cost, strict=True)
        if not np.all(np.isfinite(e) & np.isfinite(k))
    ]
    if bad:
        raise ConfigError(
            "step_scale",
            f"the run diverged (non-finite errors for {', '.join(map(str, bad))})"
            f" with step_scale={step_scale!r}: use a smaller step_scale",
        )


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
