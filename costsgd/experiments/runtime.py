"""How the engine's process starts: one JAX device per core, a persistent compilation cache.

Both act on process-wide JAX state, so the command line (and benchmark
scripts) call them once, at start-up; importing :mod:`costsgd` never does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["NO_COMPILE_CACHE_ENV", "compile_cache_dir", "enable_compile_cache", "use_all_cores"]

#: Set to ``1`` (or ``true``/``yes``) to turn the persistent compilation cache off.
NO_COMPILE_CACHE_ENV = "COSTSGD_NO_COMPILE_CACHE"


def use_all_cores() -> None:
    """Expose every CPU core as a JAX device so trials shard across them.

    Only effective before JAX is first imported, and only when the caller has
    not set the device count already.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "jax" in sys.modules or "xla_force_host_platform_device_count" in flags:
        return
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if count and count > 1:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def compile_cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The per-user folder of JAX's persistent compilation cache, or ``None`` when turned off.

    ``$XDG_CACHE_HOME/costsgd/jax`` (default ``~/.cache/costsgd/jax``);
    ``None`` when ``COSTSGD_NO_COMPILE_CACHE`` is ``1``, ``true`` or ``yes``.

    Examples:
      >>> compile_cache_dir({"XDG_CACHE_HOME": "/tmp/c"}).as_posix()
      '/tmp/c/costsgd/jax'
      >>> compile_cache_dir({"COSTSGD_NO_COMPILE_CACHE": "1"}) is None
      True
    """
    env = os.environ if environ is None else environ
    if env.get(NO_COMPILE_CACHE_ENV, "").strip().lower() in ("1", "true", "yes"):
        return None
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "costsgd" / "jax"


def enable_compile_cache(folder: Path | None) -> None:
    """Point JAX's persistent compilation cache at ``folder`` (``None``: leave it off).

    Call before the first compilation; later compilations of the same program
    (a second ``costsgd figure2``, say) load it from disk instead of compiling.
    """
    if folder is None:
        return
    import jax

    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
