r"""The engine's compiled step loop for least-squares components on CPUs (XLA FFI).

:func:`linear_sgd_steps` runs steps ``lo..hi`` of :func:`costsgd.engine.linear_sgd_step`
for a batch of trials in one XLA custom call, a C++ loop (``_native.cc``)
that keeps each trial's iterate and average in registers over all its steps.
XLA's own program for the same step makes one pass over the whole batch per
operation (the gather of :math:`a_i`, the reduction :math:`a_i^\top x_t`, the
update), each bound by the L2 cache; the loop is about 1.5x faster on the
Figure 2 work (docs/benchmarks.md). The random draws, the events, the
checkpoints and the sharding stay in the JAX program; only the steps between
two events are in the custom call.

The loop is compiled from source on first use with the machine's C++ compiler
(``$CXX``, else ``c++``/``g++``/``clang++``), against the XLA FFI headers that
ship with jaxlib, into the per-user cache folder
(``$XDG_CACHE_HOME/costsgd/native``), and reused by later processes. The file
name holds a hash of the source, the compiler, its flags, jaxlib's version and
the CPU, so a change to any of them builds a new library. Without a compiler,
or when the build fails, :func:`status` says why and the engine takes XLA's
step (the results agree to rounding). ``COSTSGD_NATIVE=0`` turns the loop off.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = ["LANES", "NATIVE_ENV", "KernelStatus", "linear_sgd_steps", "load", "pad_rows", "status"]

#: Set to ``0`` (or ``false``/``no``) to run XLA's step instead of the compiled loop.
NATIVE_ENV = "COSTSGD_NATIVE"

#: Rows of ``a`` are padded with zeros to a multiple of this many coordinates
#: (``kLanes`` in ``_native.cc``): every pass then runs over whole blocks.
LANES = 16

SOURCE = Path(__file__).with_name("_native.cc")
_SYMBOL = "CostsgdLinearSgdSteps"
_LOG = logging.getLogger(__name__)
_FLAGS = ("-std=c++17", "-O3", "-fopenmp-simd", "-fPIC", "-shared", "-w")


class KernelStatus(NamedTuple):
    """Whether the compiled step loop is in use, and why not when it is not."""

    available: bool
    reason: str  #: empty when available
    library: Path | None  #: the shared library loaded


_STATE: dict[str, Any] = {}
_LOCK = threading.Lock()


def status() -> KernelStatus:
    """Build (on first use) and register the step loop; say whether it is available.

    Examples:
      >>> st = status()
      >>> st.available or bool(st.reason)
      True
    """
    if os.environ.get(NATIVE_ENV, "").strip().lower() in ("0", "false", "no"):
        return KernelStatus(False, f"turned off by {NATIVE_ENV}={os.environ[NATIVE_ENV]}", None)
    with _LOCK:
        if "status" not in _STATE:
            _STATE["status"] = _load()
    return _STATE["status"]


def load() -> str:
    """The registered XLA target's name; raises ``RuntimeError`` with the reason when unavailable."""
    st = status()
    if not st.available:
        raise RuntimeError(f"the native step loop is unavailable: {st.reason}")
    return _STATE["target"]


def pad_rows(a: np.ndarray) -> np.ndarray:
    """``a`` ``(n, d)`` with zero columns appended up to a multiple of :data:`LANES`.

    Examples:
      >>> pad_rows(np.ones((2, 3), np.float32)).shape
      (2, 16)
    """
    n, d = a.shape
    out = np.zeros((n, -(-d // LANES) * LANES), a.dtype)
    out[:, :d] = a
    return out


def linear_sgd_steps(x, average, cost, indices, eta, bounds, rows, b, a_norm2, weight, c, radius):
    r"""Steps ``t = lo..hi`` of :func:`costsgd.engine.linear_sgd_step` in one custom call.

    Args:
      x, average, cost: the :class:`costsgd.SGDState` fields,
        :math:`x_t`, :math:`\bar x_{t-1}`, :math:`\mathcal K_{t-1}`.
      indices: ``(L,)`` int32 component indices; step ``t`` reads ``indices[t - 1 - offset]``.
      eta: ``(T,)`` step sizes; step ``t`` reads ``eta[t - 1]``.
      bounds: int32 ``[lo, hi, offset]``.
      rows: :math:`a` padded with zero columns by :func:`pad_rows`; ``b``, ``a_norm2``
        (:math:`\|a_i\|^2`), ``weight`` (:math:`1/(np_i)`) and ``c`` of shape ``(n,)``;
        ``radius`` :math:`R`.

    Returns:
      ``(x, average, cost)`` after step ``hi``. Under ``jax.vmap`` every argument
      may carry batch dimensions (``vmap_method="expand_dims"``): shared arrays
      are not copied per trial.
    """
    import jax
    import jax.numpy as jnp

    _check_shapes(x, average, cost, indices, eta, bounds, rows, b, a_norm2, weight, c, radius)
    for name, value in (("indices", indices), ("bounds", bounds)):
        if not jnp.issubdtype(jnp.result_type(value), jnp.integer):
            raise ValueError(f"{name} must be integers, got {jnp.result_type(value)}")
    x = jnp.asarray(x)  # the run's dtype (float32 unless x64 is on); the rest follows it
    floats = (average, cost, eta, rows, b, a_norm2, weight, c, radius)
    average, cost, eta, rows, b, a_norm2, weight, c, radius = (
        jnp.asarray(v, x.dtype) for v in floats
    )
    shapes = tuple(jax.ShapeDtypeStruct(v.shape, v.dtype) for v in (x, average, cost))
    call = jax.ffi.ffi_call(load(), shapes, vmap_method="expand_dims")
    index = jnp.int32
    return call(
        x, average, cost, jnp.asarray(indices, index), eta, jnp.asarray(bounds, index),
        rows, b, a_norm2, weight, c, radius,
    )  # fmt: skip


def _check_shapes(x, average, cost, indices, eta, bounds, rows, b, a_norm2, weight, c, radius):
    """One trial's shapes (``vmap`` adds the batch dimensions); ``ValueError`` naming the argument."""
    if np.ndim(x) != 1:
        raise ValueError(f"x must be one trial's iterate, shape (d,), got {np.shape(x)}")
    d = np.shape(x)[0]
    if np.ndim(rows) != 2 or np.shape(rows)[1] % LANES or np.shape(rows)[1] < d:
        raise ValueError(
            f"rows must be (n, w), w >= d = {d} a multiple of {LANES} (pad_rows); "
            f"got {np.shape(rows)}"
        )
    n = np.shape(rows)[0]
    fixed = {"average": (average, (d,)), "cost": (cost, ()), "bounds": (bounds, (3,)),
             "b": (b, (n,)), "a_norm2": (a_norm2, (n,)), "weight": (weight, (n,)),
             "c": (c, (n,)), "radius": (radius, ())}  # fmt: skip
    for name, (value, shape) in fixed.items():
        if np.shape(value) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {np.shape(value)}")
    for name, value in (("indices", indices), ("eta", eta)):
        if np.ndim(value) != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {np.shape(value)}")


def _load() -> KernelStatus:
    import jax

    try:
        library = _build()
        try:
            handler = _symbol(library)
        except (OSError, AttributeError):  # a truncated or foreign file: build it again, once
            library.unlink(missing_ok=True)
            library = _build()
            handler = _symbol(library)
    except (OSError, AttributeError, RuntimeError, subprocess.SubprocessError) as err:
        return KernelStatus(False, str(err), None)
    target = f"costsgd_linear_sgd_steps_{library.stem.rsplit('-', 1)[-1]}"
    jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(handler), platform="cpu")
    _STATE["target"] = target
    return KernelStatus(True, "", library)


def _symbol(library: Path):
    return getattr(ctypes.CDLL(str(library)), _SYMBOL)


def _compiler() -> list[str]:
    """The compiler command: ``$CXX`` (which may hold arguments, ``ccache g++``), else the first
    of ``c++``, ``g++``, ``clang++`` on the ``PATH``."""
    cxx = os.environ.get("CXX", "").strip()
    if cxx:
        cmd = shlex.split(cxx)
        if not shutil.which(cmd[0]):
            raise RuntimeError(f"CXX={cxx!r}: {cmd[0]} not found")
        return cmd
    for name in ("c++", "g++", "clang++"):
        if shutil.which(name):
            return [shutil.which(name)]
    raise RuntimeError("no C++ compiler found (set CXX, or install g++ or clang++)")


def _cpu() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    keep = [ln for ln in lines if ln.startswith(("model name", "flags", "Features"))]
    return "\n".join(dict.fromkeys(keep)) or platform.machine()


def _private(folder: Path) -> bool:
    """Whether ``folder`` is this user's and writable by nobody else (a library loaded from
    a folder another user can write to could be replaced by theirs)."""
    st = folder.stat()
    mine = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    return mine and not st.st_mode & 0o022 and os.access(folder, os.W_OK)


def _folder() -> Path:
    """``$XDG_CACHE_HOME/costsgd/native``, else a private folder in the temporary directory."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "costsgd" / "native"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if _private(folder):
            return folder
    except OSError:
        pass
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    folder = Path(tempfile.gettempdir()) / f"costsgd-native-{user}"
    folder.mkdir(exist_ok=True, mode=0o700)
    if not _private(folder):
        raise RuntimeError(
            f"{folder} is not private to this user; set XDG_CACHE_HOME to a folder of yours"
        )
    return folder


def _first_error(stderr: str, returncode: int) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or [f"exit status {returncode}"])[0]


def _build() -> Path:
    """The shared library for this source, compiler, jaxlib and CPU: built once, then reused."""
    import jax
    import jaxlib

    cxx = _compiler()
    version = subprocess.run(
        [*cxx, "--version"], capture_output=True, text=True, timeout=60
    ).stdout.split("\n", 1)[0]
    folder = _folder()
    candidates = []
    for flags in ((*_FLAGS, "-march=native"), _FLAGS):
        key = [SOURCE.read_text(), " ".join(cxx), version, " ".join(flags), jaxlib.__version__]
        digest = hashlib.sha256("\n".join([*key, _cpu()]).encode()).hexdigest()[:16]
        candidates.append((flags, folder / f"linear_sgd_steps-{digest}.so"))
    for _, library in candidates:
        if library.exists():
            return library
    error = ""
    for flags, library in candidates:
        _LOG.info("building the native step loop into %s (once per machine)", library)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{library.name}.", suffix=".tmp")
        os.close(fd)
        try:
            cmd = [*cxx, *flags, f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o", tmp]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if done.returncode == 0:
                os.replace(tmp, library)
                return library
            error = _first_error(done.stderr, done.returncode)
        finally:
            Path(tmp).unlink(missing_ok=True)
    raise RuntimeError(f"building {SOURCE.name} with {' '.join(cxx)} failed: {error}")
