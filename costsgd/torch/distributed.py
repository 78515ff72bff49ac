r"""Cost-aware draws under ``torch.distributed``: global and stratified strategies.

Data-parallel policy training holds the rollout pool split over :math:`W`
ranks (rank :math:`r` holds :math:`N_r` rollouts, :math:`N = \sum_r N_r`). Two
ways to run Algorithm 2's Phase 2–3 keep every rank in step:

* **global** (:func:`global_plan`): every rank gathers the per-rollout
  advantages and lengths (two scalars per rollout), forms :math:`p` over the
  whole pool, and draws the *same* :math:`T \times BW` indices from a shared
  seed; rank :math:`r` then takes columns :math:`[rB, (r+1)B)`. Weights are
  :math:`1/(Np_u)`, normalised over all draws of all ranks. The drawn rollouts
  may live on another rank: :class:`ShardPlan` says which (``owner``,
  ``local_index``), and the caller moves them (e.g. verl's driver, which holds
  the whole batch, needs no move at all).
* **stratified** (:func:`stratified_plan`): each rank draws :math:`TB` of its
  own rollouts from its local :math:`p^{(r)}`, with weights
  :math:`\frac{1}{N_r p^{(r)}_u}\cdot\frac{WN_r}{N} = \frac{W}{Np^{(r)}_u}`
  (the second factor is 1 when shards are equal; it keeps the DDP mean over
  ranks unbiased when they are not). No rollout moves; normalisation uses one
  all-reduce.

Both give every rank the same number of mini-batches
:math:`T = \lceil N/(BW)\rceil` (by default) of :math:`B` draws, so collective
operations in the backward pass stay matched. Without an initialised process
group both reduce to the single-process :func:`plan_update`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.distributed as dist

from costsgd._validate import check_positive_int
from costsgd.torch._inputs import check_generator, pool_inputs
from costsgd.torch._kernels import draw_indices, draw_weights, num_minibatches, pool_probs
from costsgd.torch.options import SamplingOptions
from costsgd.torch.plan import UpdatePlan

__all__ = ["ShardPlan", "global_plan", "stratified_plan"]


class ShardPlan(NamedTuple):
    """This rank's share of a global plan.

    Attributes:
      plan: :class:`UpdatePlan` whose ``probs`` and ``lengths`` cover the global
        pool (ranks' pools concatenated in rank order) and whose ``indices`` /
        ``weights`` are this rank's ``(num_batches, batch_size)`` shard.
      owner: rank holding each drawn rollout, shaped like ``plan.indices``.
      local_index: row of each drawn rollout within its owner's pool.
    """

    plan: UpdatePlan
    owner: torch.Tensor
    local_index: torch.Tensor


def _world(group) -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(group), dist.get_world_size(group)
    return 0, 1


def _all_reduce(x: torch.Tensor, group, op=None) -> torch.Tensor:
    if _world(group)[1] > 1:
        dist.all_reduce(x, op=op or dist.ReduceOp.SUM, group=group)
    return x


def _on_every_rank(group, device, fn):
    """Run ``fn`` (input checks) on every rank; if it raises on any rank, raise on all.

    Without this, a rank with bad input would raise alone and the other ranks
    would wait forever in the next collective.
    """
    error, result = None, None
    try:
        result = fn()
    except ValueError as err:
        error = err
    if _world(group)[1] > 1:
        flag = torch.tensor([0.0 if error is None else 1.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=group)
        if error is None and flag.item() > 0:
            raise ValueError("another rank passed invalid input to the plan; no rank draws")
    if error is not None:
        raise error
    return result


def _device_of(x: Any) -> torch.device:
    return x.device if isinstance(x, torch.Tensor) else torch.device("cpu")


def _gather_rows(x: torch.Tensor, sizes: list[int], group) -> torch.Tensor:
    """Concatenate every rank's 1-D ``x`` (lengths ``sizes``) in rank order."""
    world = len(sizes)
    if world == 1:
        return x
    padded = torch.zeros(max(sizes), dtype=x.dtype, device=x.device)
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded, group=group)
    return torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)])


def _normalised(raw: torch.Tensor, normalize: str, expected: torch.Tensor, group) -> torch.Tensor:
    if normalize == "draws":
        stats = _all_reduce(torch.stack([raw.sum(), raw.new_tensor(raw.numel())]), group)
        return raw / (stats[0] / stats[1])
    if normalize == "expected":
        return raw / expected
    return raw


def stratified_plan(
    advantages: Any,
    lengths: Any,
    batch_size: int,
    *,
    sampling: SamplingOptions | None = None,
    num_batches: int | None = None,
    mask: Any = None,
    generator: torch.Generator | None = None,
    group: Any = None,
) -> UpdatePlan:
    r"""Stratified-per-rank draws: each rank samples its own rollouts from its local :math:`p`.

    Call it on every rank with that rank's pool (arguments as in
    :func:`plan_update`; ``batch_size`` is per rank). Seed ``generator``
    differently on each rank (e.g. ``seed + rank``). ``sampling.normalize="draws"``
    re-centres with the mean weight over **all** ranks' draws (one
    all-reduce), so the relative scale of the ranks is kept.

    Returns:
      An :class:`UpdatePlan` over the local pool; ``num_batches`` defaults to
      :math:`\lceil N/(BW)\rceil` with :math:`N` the global pool size, the
      same on every rank.

    Examples:
      >>> import torch
      >>> from costsgd.torch.distributed import stratified_plan
      >>> plan = stratified_plan(torch.tensor([1.0, -1.0, 0.0]), torch.tensor([4.0, 4.0, 9.0]), 2)
      >>> tuple(plan.indices.shape), round(float(plan.weights.mean()), 6)
      ((2, 2), 1.0)
    """
    sampling = SamplingOptions.of(sampling)
    batch_size = check_positive_int(batch_size, "batch_size")
    check_generator(generator, _device_of(advantages))

    def local_probs():
        G, c = pool_inputs(advantages, lengths, mask, generator)
        return pool_probs(G, c, sampling, generator), c

    probs, costs = _on_every_rank(group, _device_of(advantages), local_probs)
    _, world = _world(group)
    n_local = probs.shape[0]
    counts = torch.tensor(
        [float(n_local), float((probs > 0).sum())], dtype=torch.float64, device=probs.device
    )
    n_global, support_global = _all_reduce(counts, group).tolist()
    num_batches = num_minibatches(num_batches, int(n_global), batch_size * world)
    # probs and costs are validated above: draw and weigh without re-checking (no host syncs).
    indices = draw_indices(probs, batch_size, num_batches, generator)
    raw = draw_weights(probs, indices, "none", torch.float64)
    raw = raw * (world * n_local / n_global)  # = W / (N p_u)
    expected = torch.tensor(support_global / n_global, dtype=torch.float64)
    weights = _normalised(raw, sampling.normalize, expected, group).to(torch.float32)
    return UpdatePlan(probs, indices, weights, costs)


def global_plan(
    advantages: Any,
    lengths: Any,
    batch_size: int,
    *,
    seed: int,
    sampling: SamplingOptions | None = None,
    num_batches: int | None = None,
    mask: Any = None,
    group: Any = None,
) -> ShardPlan:
    r"""Global draws from a shared seed; each rank keeps its shard of every mini-batch.

    Call it on every rank with that rank's pool. The per-rollout advantage
    magnitudes and lengths are all-gathered (pools of unequal size are
    allowed), :math:`p` is formed over the whole pool, and
    :math:`T \times BW` indices are drawn with a ``torch.Generator`` seeded by
    ``seed`` on every rank (the seeds are checked to agree). Rank :math:`r`
    keeps columns :math:`[rB, (r+1)B)` of each mini-batch. The other arguments
    are as in :func:`plan_update` (the noise of a noisy proxy is drawn from the
    shared seed too, so every rank forms the same :math:`p`).

    Args:
      seed: shared integer seed (same on every rank; use a new one each step).
      batch_size: :math:`B`, draws per rank per mini-batch.

    Returns:
      A :class:`ShardPlan`.

    Raises:
      ValueError: if ranks pass different seeds (then their draws would differ).

    Examples:
      >>> import torch
      >>> from costsgd.torch.distributed import global_plan
      >>> shard = global_plan(torch.tensor([1.0, -1.0, 0.0]), torch.tensor([4.0, 4.0, 9.0]), 2, seed=0)
      >>> tuple(shard.plan.indices.shape), shard.owner.unique().tolist()
      ((2, 2), [0])
    """
    sampling = SamplingOptions.of(sampling)
    batch_size = check_positive_int(batch_size, "batch_size")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int shared by all ranks, got {seed!r}")
    rank, world = _world(group)

    G, c = _on_every_rank(
        group, _device_of(advantages), lambda: pool_inputs(advantages, lengths, mask, None)
    )
    seeds = torch.tensor([seed, -seed], dtype=torch.int64, device=G.device)
    _all_reduce(seeds, group, dist.ReduceOp.MAX if world > 1 else None)
    if int(seeds[0]) != seed or int(seeds[1]) != -seed:
        raise ValueError(f"seed differs across ranks (this rank has {seed}): draws would disagree")
    size = torch.tensor([G.shape[0]], device=G.device)
    if world > 1:
        parts = [torch.empty_like(size) for _ in range(world)]
        dist.all_gather(parts, size, group=group)
        sizes = [int(s) for s in parts]
    else:
        sizes = [G.shape[0]]
    G_all, c_all = _gather_rows(G, sizes, group), _gather_rows(c, sizes, group)
    generator = torch.Generator(device=G_all.device).manual_seed(seed)
    probs = pool_probs(G_all, c_all, sampling, generator)
    num_batches = num_minibatches(num_batches, probs.shape[0], batch_size * world)
    # probs is pool_probs' output on checked inputs: draw and weigh without re-checking it.
    everyone = draw_indices(probs, batch_size * world, num_batches, generator)
    weights = draw_weights(probs, everyone, sampling.normalize, torch.float32)
    cols = slice(rank * batch_size, (rank + 1) * batch_size)
    indices = everyone[:, cols]
    offsets = torch.tensor([0, *sizes], device=probs.device).cumsum(0)
    owner = torch.searchsorted(offsets[1:], indices, right=True)
    plan = UpdatePlan(probs, indices, weights[:, cols], c_all)
    return ShardPlan(plan, owner, indices - offsets[owner])
