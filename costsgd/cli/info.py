"""``costsgd info``: versions, the engine's backends and the cache folders."""

from __future__ import annotations

import argparse
import json
import platform

__all__ = ["register"]


def register(sub) -> None:
    """Add ``info``."""
    p = sub.add_parser(
        "info", help="versions, the engine's backends (XLA, native loop) and cache folders"
    )
    p.add_argument(
        "--build",
        action="store_true",
        help="build the native step loop now if it is not built (else only report)",
    )
    p.set_defaults(run=_info, parser=p)


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "not installed"


def _info(args: argparse.Namespace) -> int:
    import jax

    import costsgd as cs
    from costsgd.engine import BACKENDS, cache_folder, native_status
    from costsgd.engine._batch import COMPILER_OPTIONS
    from costsgd.experiments.runtime import compile_cache_dir

    libraries = ", ".join(f"{m} {_version(m)}" for m in ("numpy", "scipy", "jax", "jaxlib"))
    print(f"costsgd {cs.__version__} (python {platform.python_version()}, {libraries})")
    kinds = ", ".join(sorted({str(d.device_kind) for d in jax.devices()}))
    platform_ = jax.devices()[0].platform
    print(f"JAX devices: {kinds} x{jax.device_count()} ({platform_})")
    print(f"engine backends ({', '.join(BACKENDS)}; default auto):")
    shipped = COMPILER_OPTIONS.get(platform_, {})
    print(f"  xla: available; compiler options on {platform_}: {json.dumps(shipped)}")
    loop = cs.LeastSquares.gradient_step.native
    st = native_status(loop, build=args.build)
    state = f"available, {st.library}" if st.available else st.reason
    if not (st.available or st.compiler):
        state = f"unavailable: {st.reason}"
    print(f"  native (least squares, CPUs): {state}")
    if st.compiler:
        print(f"    compiler: {st.compiler}; flags: {st.flags}")
    if platform_ != "cpu":
        print(f"    (not used on {platform_}: the engine runs XLA's step there)")
    try:
        native_folder = str(cache_folder())
    except RuntimeError as err:
        native_folder = f"unusable: {err}"
    print("cache folders:")
    print(f"  native loops: {native_folder}")
    jax_folder = compile_cache_dir()
    print(f"  JAX compilation cache (CLI runs): {jax_folder or 'off (COSTSGD_NO_COMPILE_CACHE)'}")
    return 0
