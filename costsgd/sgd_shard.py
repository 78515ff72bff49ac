"""Batching and sharding of the Cost-Aware SGD engine: strategies x trials, over devices.

:func:`simulate` is ``vmap`` (strategies) of ``vmap`` (trials) of
:func:`costsgd.sgd_kernel.run_trial`; with a device mesh it runs under
``shard_map``, each device taking a slice of the trials (no communication:
trials are independent). On a CPU, XLA runs one scan on one core, so trials are
split over host devices (``--xla_force_host_platform_device_count``, set by
:func:`costsgd.experiments.runtime.use_all_cores`). :func:`compiled` is the one
jitted program; its static arguments are the problem's functions and the
chunk/indices/mesh options, so a second call with the same shapes reuses it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from costsgd.sgd_kernel import TrialInputs, run_trial

__all__ = ["compiled", "shard_trials", "simulate"]


def simulate(arrays, eta, sources, x0, schedule, *, loss, grad, chunk, predrawn, segmented, mesh):
    """All strategies x all trials (shapes ``(S, M, ...)``).

    Random keys are shared across strategies (common random numbers); pre-drawn
    indices are per strategy. ``segmented`` picks the loop structure of
    :func:`costsgd.sgd_kernel.run_trial` (True on CPUs).
    """
    import jax
    from jax.sharding import PartitionSpec

    def trial(arrays, weight, threshold, alias, eta, source, x0, schedule):
        inputs = TrialInputs(weight, threshold, alias, eta, source, x0)
        kernel = partial(
            run_trial, loss=loss, grad=grad, chunk=chunk, predrawn=predrawn, segmented=segmented
        )
        return kernel(arrays, inputs, schedule)

    over_trials = jax.vmap(trial, in_axes=(None, None, None, None, None, 0, None, None))
    source_axis = 0 if predrawn else None
    over_strategies = jax.vmap(over_trials, in_axes=(None, 0, 0, 0, 0, source_axis, None, None))
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


_COMPILED = []


def compiled():
    """The jitted :func:`simulate` (created on first use, so importing costsgd stays JAX-free)."""
    if not _COMPILED:
        import jax

        _COMPILED.append(
            jax.jit(
                simulate, static_argnames=("loss", "grad", "chunk", "predrawn", "segmented", "mesh")
            )
        )
    return _COMPILED[0]


def shard_trials(sources: Any, *, axis: int, enabled: bool):
    """Split the trial axis of ``sources`` over all devices (padded to a multiple of their number).

    Returns:
      ``(sources, pad, mesh)``; ``mesh`` is ``None`` on a single device or when
      ``enabled`` is false.
    """
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = jax.devices()
    if not enabled or len(devices) == 1:
        return sources, 0, None
    count = sources.shape[axis]
    pad = -count % len(devices)
    if pad:
        reps = np.r_[np.arange(count), np.zeros(pad, np.int64)]
        sources = jax.numpy.take(sources, reps, axis=axis)
    mesh = Mesh(np.asarray(devices), ("trials",))
    spec = PartitionSpec(*([None] * axis), "trials")
    return jax.device_put(sources, NamedSharding(mesh, spec)), pad, mesh
