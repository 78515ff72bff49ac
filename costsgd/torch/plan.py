r"""One update step's plan (Algorithm 2, Phase 2–3) and a PyTorch batch sampler.

:func:`plan_update` runs the three calls of Algorithm 2's policy-update phase
(:func:`cost_aware_probs`, :func:`sample_minibatches`,
:func:`importance_weights`) and keeps their results together in an
:class:`UpdatePlan`, whose :meth:`UpdatePlan.summary` gives the numbers worth
logging. :class:`CostAwareBatchSampler` plugs the draws into a
``torch.utils.data.DataLoader``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch.utils.data import Sampler

from costsgd._validate import check_positive_int, check_probabilities
from costsgd.torch._inputs import as_tensor, check_generator, pool_inputs
from costsgd.torch._kernels import draw_indices, draw_weights, num_minibatches, pool_probs
from costsgd.torch.draws import sample_minibatches
from costsgd.torch.options import NORMALIZATIONS, SamplingOptions
from costsgd.torch.weights import importance_weights

__all__ = ["CostAwareBatchSampler", "UpdatePlan", "plan_update"]


class UpdatePlan(NamedTuple):
    """The draws of one policy update step.

    Attributes:
      probs: ``(N,)`` float64 sampling distribution over the pool.
      indices: ``(num_batches, batch_size)`` int64 drawn rollouts.
      weights: ``(num_batches, batch_size)`` importance weights.
      lengths: ``(N,)`` float64 rollout costs (tokens).
    """

    probs: torch.Tensor
    indices: torch.Tensor
    weights: torch.Tensor
    lengths: torch.Tensor

    def summary(self) -> dict[str, float]:
        r"""Logging numbers (Python floats; one host sync).

        * ``weight_mean``, ``weight_std``, ``weight_min``, ``weight_max`` over all draws;
        * ``ess``: Kish effective sample size :math:`(\sum w)^2/\sum w^2`, and
          ``ess_fraction`` = ess / draws;
        * ``tokens_selected``: :math:`\sum_k c_{u_k}` over the draws (a rollout drawn
          twice is processed twice), ``tokens_pool``: :math:`\sum_u c_u` (one uniform
          pass), and their ratio ``token_fraction``;
        * ``draws``, ``unique_fraction`` (distinct rollouts drawn / N).
        """
        w = self.weights.double().reshape(-1)
        idx = self.indices.reshape(-1)
        selected = self.lengths[idx].sum()
        pool = self.lengths.sum()
        ess = w.sum() ** 2 / (w * w).sum()
        stats = torch.stack(
            [
                w.mean(),
                w.std(unbiased=False),
                w.min(),
                w.max(),
                ess,
                ess / w.numel(),
                selected,
                pool,
                selected / pool,
            ]
        ).tolist()
        stats.append(torch.unique(idx).numel() / self.probs.numel())
        names = (
            "weight_mean",
            "weight_std",
            "weight_min",
            "weight_max",
            "ess",
            "ess_fraction",
            "tokens_selected",
            "tokens_pool",
            "token_fraction",
            "unique_fraction",
        )
        return {"draws": float(w.numel()), **dict(zip(names, stats, strict=True))}


def plan_update(
    advantages: Any,
    lengths: Any,
    batch_size: int,
    *,
    sampling: SamplingOptions | None = None,
    num_batches: int | None = None,
    mask: Any = None,
    generator: torch.Generator | None = None,
) -> UpdatePlan:
    r"""Algorithm 2's policy-update plan for one rollout pool.

    Phase 2 forms :math:`p` over the pool (:class:`SamplingOptions`; by default
    Theorem 4.1's :math:`p^* \propto |A_u|/\sqrt{c_u}`), Phase 3 draws
    ``num_batches`` mini-batches of ``batch_size`` rollouts from it with
    replacement and weights each draw by :math:`1/(Np_u)` (Eq. 22), normalised
    as ``sampling.normalize`` says. The weights are float32.

    Args:
      advantages: ``(N,)`` per-sequence or ``(N, T)`` per-token advantages.
      lengths: ``(N,)`` rollout costs :math:`c_u > 0` (prompt + response tokens).
      batch_size: rollouts per mini-batch, :math:`B`.
      sampling: the distribution and weight normalisation (default
        ``SamplingOptions()``).
      num_batches: default :math:`\lceil N/B \rceil`, as many as one uniform pass.
      mask: ``(N, T)`` response mask for per-token advantages.
      generator: ``torch.Generator`` on the data's device (draws and proxy noise).

    Returns:
      An :class:`UpdatePlan`.

    Raises:
      ValueError: as :func:`cost_aware_probs`, or a ``batch_size`` /
        ``num_batches`` that is not a positive integer.

    Examples:
      >>> import torch
      >>> from costsgd.torch import plan_update
      >>> plan = plan_update(torch.tensor([1.0, 0.0, -2.0, 0.5]), torch.tensor([10, 20, 40, 5]), 2,
      ...                    generator=torch.Generator().manual_seed(0))
      >>> tuple(plan.indices.shape), bool((plan.indices != 1).all())
      ((2, 2), True)
      >>> round(plan.summary()["weight_mean"], 6)
      1.0
    """
    sampling = SamplingOptions.of(sampling)
    batch_size = check_positive_int(batch_size, "batch_size")
    G, costs = pool_inputs(advantages, lengths, mask, generator)
    probs = pool_probs(G, costs, sampling, generator)
    num_batches = num_minibatches(num_batches, probs.shape[0], batch_size)
    # probs and costs were validated above: draw and weigh without re-checking (no host syncs).
    indices = draw_indices(probs, batch_size, num_batches, generator)
    weights = draw_weights(probs, indices, sampling.normalize, torch.float32)
    return UpdatePlan(probs, indices, weights, costs)


class CostAwareBatchSampler(Sampler[list[int]]):
    r"""A batch sampler drawing mini-batches from ``probs`` (with replacement).

    Usable as ``DataLoader(dataset, batch_sampler=...)``. Each pass (each
    ``iter``) draws a fresh set of ``num_batches`` mini-batches (default
    :math:`\lceil N/B\rceil`) and exposes their importance weights, aligned
    with the yielded batches, as :attr:`weights` (``(num_batches, batch_size)``,
    normalised over the whole pass as in :func:`importance_weights`).

    Examples:
      >>> import torch
      >>> from costsgd.torch import CostAwareBatchSampler
      >>> s = CostAwareBatchSampler(torch.tensor([0.5, 0.5, 0.0]), 2,
      ...                           generator=torch.Generator().manual_seed(0))
      >>> batches = list(s)
      >>> len(batches), len(batches[0]), 2 in sum(batches, [])
      (2, 2, False)
      >>> tuple(s.weights.shape)
      (2, 2)
    """

    def __init__(
        self,
        probs: torch.Tensor,
        batch_size: int,
        *,
        num_batches: int | None = None,
        generator: torch.Generator | None = None,
        normalize: str = "draws",
    ) -> None:
        # Validate eagerly, so that a bad sampler fails where it is built.
        probs = as_tensor(probs, "probs")
        check_probabilities(probs, "probs")
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        batch_size = check_positive_int(batch_size, "batch_size")
        check_generator(generator, probs.device)
        self.probs = probs
        self.batch_size = batch_size
        self.num_batches = num_minibatches(num_batches, probs.shape[0], batch_size)
        self.generator = generator
        self.normalize = normalize
        self.indices: torch.Tensor | None = None
        self.weights: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        self.indices = sample_minibatches(
            self.probs, self.batch_size, num_batches=self.num_batches, generator=self.generator
        )
        self.weights = importance_weights(self.probs, self.indices, normalize=self.normalize)
        yield from self.indices.tolist()
