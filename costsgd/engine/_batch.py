"""Batching and sharding of the Cost-Aware SGD engine: strategies x trials, over devices.

:func:`simulate` is ``vmap`` (strategies) of ``vmap`` (trials) of
:func:`costsgd.engine._trial.run_trial`; with a device mesh it runs under
``shard_map``, each device taking a slice of the trials (no communication:
trials are independent). On a CPU, XLA runs one scan on one core, so trials are
split over host devices (``--xla_force_host_platform_device_count``, set by
:func:`costsgd.experiments.runtime.use_all_cores`). :func:`compiled` is the one
jitted program; its static arguments are the problem's loss and step, the
native target, the chunk/indices/mesh options and the trial count, so a second
call with the same shapes reuses it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from costsgd.engine._checks import THREEFRY
from costsgd.engine._trial import TrialInputs, run_trial

__all__ = ["COMPILER_OPTIONS", "compiled", "place_indices", "simulate", "trial_mesh"]


def simulate(
    arrays, eta, sources, x0, schedule, *, loss, step, target, chunk, predrawn, segmented, mesh,
    trials,
):  # fmt: skip
    """All strategies x all trials (shapes ``(S, M, ...)``).

    ``sources`` is one PRNG key (typed, or the ``uint32[2]`` data of a threefry
    key), split here into ``trials`` per-trial keys
    shared across strategies (common random numbers), or the ``(S, M, T)``
    pre-drawn indices (``predrawn``). Splitting inside the program keeps the
    key split and the per-device slicing of the keys out of separately
    compiled programs. ``segmented`` picks the loop structure of
    :func:`costsgd.engine._trial.run_trial` (True on CPUs).
    """
    import jax
    from jax.sharding import PartitionSpec

    def trial(arrays, weight, threshold, alias, eta, source, x0, schedule):
        inputs = TrialInputs(weight, threshold, alias, eta, source, x0)
        kernel = partial(
            run_trial, loss=loss, step=step, target=target, chunk=chunk, predrawn=predrawn,
            segmented=segmented,
        )  # fmt: skip
        return kernel(arrays, inputs, schedule)

    over_trials = jax.vmap(trial, in_axes=(None, None, None, None, None, 0, None, None))
    source_axis = 0 if predrawn else None
    over_strategies = jax.vmap(over_trials, in_axes=(None, 0, 0, 0, 0, source_axis, None, None))
    if not predrawn:
        if not jax.dtypes.issubdtype(sources.dtype, jax.dtypes.prng_key):
            sources = jax.random.wrap_key_data(sources, impl=THREEFRY)
        sources = jax.random.split(sources, trials)
    args = (arrays, arrays.weight, arrays.threshold, arrays.alias, eta, sources, x0, schedule)
    if mesh is None:
        return over_strategies(*args)
    rep = PartitionSpec()
    split = PartitionSpec(None, "trials") if predrawn else PartitionSpec("trials")
    sharded = jax.shard_map(
        over_strategies,
        mesh=mesh,
        in_specs=(rep, rep, rep, rep, rep, split, rep, rep),
        out_specs=PartitionSpec(None, "trials"),
        check_vma=False,  # carries start replicated and become per-device: fine here
    )
    return sharded(*args)


#: Compiler options per platform (docs/engine.md). On CPUs, LLVM's optimisation
#: level 1 compiles the engine's program about a third faster than the default
#: with the same run time; the sharded and the single-device programs then
#: round differently (their results agree to about 3e-6 relative in float32,
#: not bit for bit). Copy insertion with region analysis drops copies of the
#: iterate XLA otherwise makes in every step: about 4% faster on average over
#: four interleaved comparisons (-3% to +10%). Both are compared by
#: ``benchmarks/bench_compiler_options.py``.
COMPILER_OPTIONS = {
    "cpu": {
        "xla_backend_optimization_level": 1,
        "xla_cpu_copy_insertion_use_region_analysis": True,
    }
}

_COMPILED: dict[tuple, Any] = {}


def compiled(platform: str = "cpu", options: dict | None = None):
    """The jitted :func:`simulate` for ``platform`` with XLA compiler ``options``
    (default :data:`COMPILER_OPTIONS` of the platform; created on first use, so
    importing costsgd stays JAX-free; one per option set, so a benchmark can
    compare option sets)."""
    options = COMPILER_OPTIONS.get(platform) if options is None else options
    key = (platform, tuple(sorted(options.items())) if options else None)
    if key not in _COMPILED:
        import jax

        _COMPILED[key] = jax.jit(
            simulate,
            static_argnames=(
                "loss", "step", "target", "chunk", "predrawn", "segmented", "mesh", "trials"
            ),
            compiler_options=options or None,
        )  # fmt: skip
    return _COMPILED[key]


def trial_mesh(trials: int, *, enabled: bool):
    """The device mesh the trials are split over, and the padding that makes
    ``trials`` a multiple of the number of devices.

    Returns:
      ``(mesh, pad)``; ``mesh`` is ``None`` on a single device or when
      ``enabled`` is false (then ``pad`` is 0).
    """
    import jax
    from jax.sharding import Mesh

    devices = jax.devices()
    if not enabled or len(devices) == 1:
        return None, 0
    return Mesh(np.asarray(devices), ("trials",)), -trials % len(devices)


def place_indices(indices: np.ndarray, mesh, pad: int):
    """Pre-drawn ``(S, M, T)`` indices padded by ``pad`` trials and split over ``mesh``."""
    if mesh is None:
        return indices
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    if pad:
        indices = np.concatenate([indices, np.repeat(indices[:, :1], pad, axis=1)], axis=1)
    return jax.device_put(indices, NamedSharding(mesh, PartitionSpec(None, "trials")))
