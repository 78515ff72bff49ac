r"""GRPO and Cost-Aware GRPO training of the tiny policy (Algorithm 2).

One iteration of :func:`train` is one pass of Algorithm 2:

1. *Data collection.* Draw ``n`` prompts, ``M`` rollouts each, score them, and
   normalise rewards within each group, :math:`A_u = (r_u - \bar r)/\operatorname{std}(r)`
   (§5.2; a zero-variance group gets :math:`A_u = 0`). Under zero-variance
   filtering (ZVF, §5.3) zero-variance groups are dropped and prompts are drawn
   again until ``n`` groups with signal are collected (at most
   ``zvf_max_rounds`` rounds; an iteration that keeps no group takes no
   gradient step and draws no tokens).
2. *Sampling distribution.* For a cost-aware method, :math:`p_u` comes from the
   adapter's :func:`costsgd.torch.cost_aware_probs` with
   :math:`c_u` = prompt + response tokens.
3. *Importance-weighted updates.* :math:`T = \lceil N/B \rceil` gradient steps,
   each on a mini-batch of ``B`` sequences: a shuffled partition of all rollouts
   ("no sampling"), or ``B`` draws from :math:`p` with importance weights
   :math:`1/(Np_u)` re-centred to mean 1 (Appendix G.2, G.3).

The per-sequence objective is Appendix G.3's
:math:`\ell(o) = \frac{1}{|o|}\sum_t \min(r_t A, \operatorname{clip}(r_t, 1-\epsilon_{low}, 1+\epsilon_{high})A)
- \beta\,\mathrm{KL}` (or CISPO's :math:`\operatorname{sg}(\min(r_t, 1+\epsilon))A\log\pi`),
and a mini-batch's loss is :math:`-\frac{1}{B}\sum_{u} w_u\,\ell(o_u)` with a
fixed denominator ``B`` (the adapter's :func:`costsgd.torch.weighted_policy_loss`,
mode ``seq-mean-token-mean``): with raw weights :math:`1/(Np_u)` this is an
unbiased estimate of Eq. 22's pool objective; the re-centring of Appendix G.2
(mean weight 1 over the iteration's draws) makes it a self-normalised estimate,
biased by O(1/draws), as in the paper. When every advantage of
an iteration is zero, the adapter falls back to uniform draws with weight 1
(the update then only moves the KL term), so the number of gradient steps per
iteration is the same for every method.

Policy-optimization tokens are counted two ways. *Drawn* tokens, as §5.4
counts them: prompt + response tokens of every sequence in every mini-batch
that enters a gradient step (a sequence drawn twice counts twice).
*Processed* tokens, what a padded implementation computes on: each mini-batch
is sorted by length and cut into micro-batches of ``micro_batch_size``
sequences, each trimmed to its own longest sequence (length-grouped
micro-batching); a micro-batch costs its size times that length. The policy
here runs each mini-batch in one pass trimmed to its longest sequence: the
same gradient as accumulating over those micro-batches (the loss has the
mini-batch's fixed denominator ``B``), in fewer, larger calls.

Every iteration also records the mechanism behind the token claim on its own
pool: :math:`\mathbb E_{p^*}[c]/\bar c`, the expected drawn tokens per
iteration of :math:`p^* \propto |A|/\sqrt c` relative to "no sampling"
(:math:`1 - ` that is the expected per-iteration saving), and the fraction of
zero-advantage rollouts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

import costsgd.torch as adapter
from costsgd.audit.pool import Pool, analyse_pool
from costsgd.experiments.grpo.policy import (
    GRUPolicy,
    Rollouts,
    correct_probability,
    generate,
    response_logprobs,
)
from costsgd.experiments.grpo.task import Prompts, Task, rewards, sample_prompts

__all__ = [
    "SAMPLINGS",
    "Batch",
    "GRPOConfig",
    "Method",
    "RunLog",
    "collect",
    "evaluate",
    "expected_ratios",
    "group_advantages",
    "micro_batches",
    "minibatch_plan",
    "pstar_cost_ratio",
    "sampling_probs",
    "token_objective",
    "train",
]


@dataclass(frozen=True)
class GRPOConfig:
    """Hyper-parameters of one training run (Appendix G.4's structure at small scale).

    Table 2 of the paper uses 256 prompts x 16 rollouts and a mini-batch of 64
    prompts (verl counts mini-batches in prompts), so 4 updates per iteration;
    here 16 prompts x 8 rollouts and mini-batches of 32 sequences keep those 4
    updates, with Table 2's clip ratios and KL coefficient.

    Attributes:
      prompts_per_step: ``n``, prompts per iteration.
      rollouts_per_prompt: ``M``, rollouts per prompt.
      minibatch_size: ``B``, sequences per gradient step.
      micro_batch_size: sequences per length-grouped, trimmed micro-batch
        within a gradient step (see the module doc).
      iterations: ``K``, iterations of Algorithm 2 (at most, with ``token_budget``).
      token_budget: stop after the first iteration whose cumulative
        policy-optimization tokens reach this many (``None``: run all
        ``iterations``). Equal budgets put every method on the same tokens
        axis, so a cheaper method also gets more iterations, as in the paper's
        accuracy-vs-tokens comparison.
      lr, weight_decay, grad_clip: AdamW and gradient-norm clipping.
      clip_low, clip_high: PPO/GRPO clip ratios :math:`\\epsilon_{low}, \\epsilon_{high}`.
      kl_coef: :math:`\\beta`, weight of the k3 KL estimate to the reference policy (0 turns it off).
      loss: ``"grpo"`` (clipped surrogate) or ``"cispo"``.
      cispo_clip_high: CISPO's truncation of the importance ratio at ``1 + cispo_clip_high``.
      zvf: zero-variance filtering (§5.3).
      zvf_max_rounds: at most this many generation rounds to fill a ZVF batch.
      temperature: rollout temperature.
      eval_every: evaluate held-out accuracy every this many iterations.
      diagnose_every: run the ``diagnose`` callback of :func:`train` every this
        many iterations (from the first).
    """

    prompts_per_step: int = 16
    rollouts_per_prompt: int = 8
    minibatch_size: int = 32
    micro_batch_size: int = 8
    iterations: int = 140
    token_budget: int | None = 240_000
    lr: float = 3e-4
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    clip_low: float = 0.2
    clip_high: float = 0.28
    kl_coef: float = 0.001
    loss: str = "grpo"
    cispo_clip_high: float = 5.0
    zvf: bool = False
    zvf_max_rounds: int = 8
    temperature: float = 1.0
    eval_every: int = 5
    diagnose_every: int = 25

    def validate(self) -> GRPOConfig:
        for name in (
            "prompts_per_step",
            "minibatch_size",
            "micro_batch_size",
            "iterations",
            "eval_every",
            "diagnose_every",
            "zvf_max_rounds",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not (isinstance(self.rollouts_per_prompt, int) and self.rollouts_per_prompt >= 2):
            raise ValueError(
                f"rollouts_per_prompt must be an int >= 2 (group advantages need a group), "
                f"got {self.rollouts_per_prompt!r}"
            )
        for name in ("lr", "temperature", "grad_clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("weight_decay", "clip_low", "clip_high", "kl_coef", "cispo_clip_high"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        if self.token_budget is not None and not (
            isinstance(self.token_budget, int) and self.token_budget >= 1
        ):
            raise ValueError(f"token_budget must be None or an int >= 1, got {self.token_budget!r}")
        if self.loss not in ("grpo", "cispo"):
            raise ValueError(f"loss must be 'grpo' or 'cispo', got {self.loss!r}")
        return self


SAMPLINGS = ("none", "advantage", "length", "uniform", "nonzero")


@dataclass(frozen=True)
class Method:
    """How mini-batches are filled (§5.3, §5.5, Appendix G.6).

    Attributes:
      name: label used in tables and plots.
      sampling: ``"none"`` (every rollout once, shuffled), ``"advantage"``
        (:math:`p \\propto |A|/\\sqrt{c}`), ``"length"`` (:math:`p \\propto 1/\\sqrt{c}`),
        and two controls that separate p*'s effects: ``"uniform"`` (uniform
        draws with replacement: the resampling noise alone) and ``"nonzero"``
        (:math:`p \\propto 1[A \\ne 0]`: zero-advantage removal alone).
      alpha: smoothing towards uniform, :math:`p^*_{smooth}(\\alpha)`.
      sigma2: :math:`\\sigma^2` of zero-mean noise added to :math:`|A|` (§5.5).
    """

    name: str
    sampling: str = "advantage"
    alpha: float = 0.0
    sigma2: float = 0.0

    def validate(self) -> Method:
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {self.alpha!r}")
        if not (math.isfinite(self.sigma2) and self.sigma2 >= 0):
            raise ValueError(f"sigma2 must be finite and >= 0, got {self.sigma2!r}")
        return self


class Batch(NamedTuple):
    """One iteration's rollout dataset :math:`\\mathcal D_{step}`.

    Attributes:
      rollouts, rewards, advantages: the pool (under ZVF, the groups kept; it
        can be empty when no generated group had signal).
      groups_kept: groups in the pool.
      generation_rounds: rounds of ``n`` prompts generated to fill it.
      groups_generated, zero_variance_groups: every group generated in those
        rounds, and those whose rewards were all equal (zero advantage), before
        any filtering: the pool's zero-advantage fraction as GRPO sees it.
      generated_reward: the mean reward of every generated rollout.
    """

    rollouts: Rollouts
    rewards: torch.Tensor
    advantages: torch.Tensor
    groups_kept: int
    generation_rounds: int
    groups_generated: int = 0
    zero_variance_groups: int = 0
    generated_reward: float = 0.0


@dataclass
class RunLog:
    """What one run records (arrays indexed by evaluation point or iteration)."""

    eval_iteration: list[int] = field(default_factory=list)
    eval_tokens: list[int] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    eval_processed_tokens: list[int] = field(default_factory=list)
    iter_tokens: list[int] = field(default_factory=list)
    iter_processed_tokens: list[int] = field(default_factory=list)
    iter_all_tokens: list[int] = field(default_factory=list)
    iter_zero_adv_frac: list[float] = field(default_factory=list)
    iter_pstar_cost_ratio: list[float] = field(default_factory=list)
    iter_expected_ratio_smooth: list[float] = field(default_factory=list)
    iter_expected_ratio_nonzero: list[float] = field(default_factory=list)
    iter_cost_spread: list[float] = field(default_factory=list)
    iter_generated_zero_adv_frac: list[float] = field(default_factory=list)
    iter_generation_rounds: list[int] = field(default_factory=list)
    iter_train_reward: list[float] = field(default_factory=list)
    iter_weight_max: list[float] = field(default_factory=list)
    diagnostics: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: list(v) for k, v in self.__dict__.items()}


def group_advantages(r: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    r"""GRPO's group-normalised advantages :math:`(r_i - \bar r)/\operatorname{std}(r)` (§5.2).

    ``r`` holds consecutive groups of ``group_size`` rewards; the standard
    deviation is the unbiased one (as verl computes it); a group whose rewards
    are all equal gets advantage 0.

    Examples:
      >>> import torch
      >>> [round(a, 4) for a in group_advantages(torch.tensor([1.0, 0.0, 1.0, 1.0]), 2).tolist()]
      [0.7071, -0.7071, 0.0, 0.0]
    """
    if r.ndim != 1 or r.shape[0] % group_size:
        raise ValueError(f"r must be 1-D with a multiple of group_size={group_size} entries")
    g = r.view(-1, group_size)
    return ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + eps)).reshape(-1)


def _repeat(prompts: Prompts, m: int) -> Prompts:
    return Prompts(prompts.tokens.repeat_interleave(m, 0), prompts.lengths.repeat_interleave(m, 0))


def collect(policy: GRUPolicy, task: Task, config: GRPOConfig, generator: torch.Generator) -> Batch:
    """Phase 1 of Algorithm 2: rollouts, rewards, advantages (with ZVF if configured)."""
    n, m = config.prompts_per_step, config.rollouts_per_prompt
    parts: list[tuple[Rollouts, torch.Tensor]] = []
    kept, rounds, zero_variance, reward_sum = 0, 0, 0, 0.0
    while kept < n and rounds < (config.zvf_max_rounds if config.zvf else 1):
        rounds += 1
        prompts = _repeat(sample_prompts(task, n, generator), m)
        roll = generate(
            policy, prompts, task.max_response_len, generator, temperature=config.temperature
        )
        r = rewards(task, prompts, roll.responses)
        signal = r.view(n, m).std(1) > 0
        zero_variance += int((~signal).sum())
        reward_sum += float(r.sum())
        if config.zvf:
            keep = signal
            keep = keep & (torch.cumsum(keep, 0) <= n - kept)
            rows = keep.repeat_interleave(m)
            roll = Rollouts(*(x[rows] for x in roll))
            r = r[rows]
            kept += int(keep.sum())
        else:
            kept = n
        parts.append((roll, r))
    roll = Rollouts(*(torch.cat(xs) for xs in zip(*(p[0] for p in parts), strict=True)))
    r = torch.cat([p[1] for p in parts])
    adv = group_advantages(r, m) if r.numel() else r
    return Batch(
        roll, r, adv, kept, rounds, rounds * n, zero_variance, reward_sum / (rounds * n * m)
    )


def minibatch_plan(
    method: Method, batch: Batch, minibatch_size: int, generator: torch.Generator
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Phases 2-3 of Algorithm 2: mini-batch indices and their importance weights.

    "No sampling" is a shuffled partition of the pool with weights 1. Every
    other method calls the adapter (:mod:`costsgd.torch`): ``ceil(N/B)``
    mini-batches of ``B`` draws from :math:`p`, weights :math:`1/(Np_u)`
    re-centred to mean 1 over the iteration's draws (Appendix G.2). When every
    advantage is zero the adapter falls back to uniform draws with weight 1.

    Returns:
      ``(indices, weights)``: one ``LongTensor`` and one ``FloatTensor`` per
      gradient step.
    """
    N = batch.advantages.shape[0]
    if method.sampling == "none":
        perm = torch.randperm(N, generator=generator)
        chunks = list(perm.split(minibatch_size))
        return chunks, [torch.ones(len(c)) for c in chunks]
    probs = sampling_probs(method, batch, generator)
    idx = adapter.sample_minibatches(probs, minibatch_size, generator=generator)
    w = adapter.importance_weights(probs, idx)
    return list(idx), list(w)


def sampling_probs(method: Method, batch: Batch, generator: torch.Generator) -> torch.Tensor:
    r"""The method's :math:`p` over the pool (float64; not defined for ``"none"``).

    The adapter's :func:`costsgd.torch.cost_aware_probs` with ``proxy`` =
    ``method.sampling``: ``"advantage"`` (:math:`p^*`), ``"length"``,
    ``"uniform"`` (:math:`1/N`) or ``"nonzero"`` (uniform over the rollouts
    with :math:`A_u \ne 0`; uniform over all when there are none), smoothed
    by ``alpha``.

    Examples:
      >>> import torch
      >>> from costsgd.experiments.grpo.policy import Rollouts
      >>> seq = torch.zeros(4, 1, dtype=torch.long)
      >>> roll = Rollouts(seq, torch.ones(4, dtype=torch.long), seq, torch.ones(4, dtype=torch.long))
      >>> b = Batch(roll, torch.zeros(4), torch.tensor([1.0, 0.0, -2.0, 0.0]), 1, 1)
      >>> sampling_probs(Method("nz", "nonzero"), b, torch.Generator()).tolist()
      [0.5, 0.0, 0.5, 0.0]
    """
    return adapter.cost_aware_probs(
        batch.advantages,
        batch.rollouts.costs,
        alpha=method.alpha,
        proxy=method.sampling,
        sigma2=method.sigma2,
        generator=generator,
    )


def pstar_cost_ratio(batch: Batch) -> float:
    r""":math:`\mathbb E_{p^*}[c]/\bar c` over the pool, :math:`p^* \propto |A|/\sqrt c` (1 without signal).

    The expected drawn tokens per iteration of p* relative to "no sampling"
    (Algorithm 2 with ``ceil(N/B)`` mini-batches of ``B`` draws either way).

    Examples:
      >>> import torch
      >>> from costsgd.experiments.grpo.policy import Rollouts
      >>> roll = Rollouts(*(torch.zeros(2, 1, dtype=torch.long),) * 3, torch.tensor([0, 0]))
      >>> roll = roll._replace(prompt_lengths=torch.tensor([1, 4]), response_lengths=torch.tensor([0, 5]))
      >>> round(pstar_cost_ratio(Batch(roll, torch.zeros(2), torch.tensor([1.0, 0.0]), 1, 1)), 4)
      0.2
    """
    c = batch.rollouts.costs.double()
    p = adapter.cost_aware_probs(batch.advantages, c)
    return float((p * c).sum() / c.mean())


def expected_ratios(batch: Batch) -> dict[str, float]:
    r"""Expected drawn tokens per iteration relative to "no sampling", :math:`\mathbb E_p[c]/\bar c`, per sampler.

    The audit's computation (:func:`costsgd.audit.pool.analyse_pool`) on this
    iteration's pool, with :math:`|A_u|` as the proxy: keys ``"p*"``,
    ``"p*_smooth(0.01)"``, ``"p*_smooth(0.05)"``, ``"p*_smooth(0.1)"``,
    ``"nonzero"`` (:math:`p \propto 1[A \ne 0]`) and ``"length"``
    (:math:`p_{LEN}`); every ratio is 1 on a pool without signal.
    """
    roll = batch.rollouts
    pool = Pool(
        None,
        batch.advantages.double().numpy(),
        roll.prompt_lengths.double().numpy(),
        roll.response_lengths.double().numpy(),
    )
    return analyse_pool(pool).expected_drawn_ratio


def micro_batches(costs: torch.Tensor, idx: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Length-grouped micro-batches of one gradient step's draws ``idx``.

    Sorts the draws by cost and cuts them into chunks of ``size``; each chunk
    is then run trimmed to its own longest sequence.

    Examples:
      >>> import torch
      >>> [m.tolist() for m in micro_batches(torch.tensor([5, 1, 9, 3]), torch.tensor([0, 1, 2, 3, 0]), 2)]
      [[1, 3], [0, 0], [2]]
    """
    order = torch.argsort(costs[idx], stable=True)
    return list(idx[order].split(size))


def token_objective(
    logp: torch.Tensor,
    mask: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    config: GRPOConfig,
    logp_ref: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Per-token terms of Appendix G.3's objective :math:`\ell(o_u)`, shape ``[B, T]`` (0 off ``mask``).

    GRPO: :math:`\min(r_t A, \operatorname{clip}(r_t, 1-\epsilon_{low}, 1+\epsilon_{high})A)`;
    CISPO: :math:`\operatorname{sg}(\min(r_t, 1+\epsilon))\,A\log\pi_\theta(o_t)`; both
    minus :math:`\beta` times the k3 estimate of :math:`\mathrm{KL}(\pi_\theta\|\pi_{ref})`.
    :math:`\ell(o_u)` is their mean over the response (``seq-mean-token-mean``).
    """
    ratio = torch.exp(logp - logp_old)
    A = advantages[:, None]
    if config.loss == "grpo":
        clipped = torch.clamp(ratio, 1 - config.clip_low, 1 + config.clip_high)
        tok = torch.minimum(ratio * A, clipped * A)
    else:
        tok = torch.clamp(ratio, max=1 + config.cispo_clip_high).detach() * A * logp
    if logp_ref is not None and config.kl_coef > 0:
        d = logp_ref - logp
        tok = tok - config.kl_coef * (torch.exp(d) - d - 1)
    return torch.where(mask, tok, 0.0)


@torch.no_grad()
def evaluate(
    policy: GRUPolicy, task: Task, prompts: Prompts, samples: int | None = None, seed: int = 0
) -> float:
    """Held-out accuracy: the mean reward of a temperature-1 response (pass@1).

    With ``samples=None``, its exact expectation over the policy's sampling,
    the mean of :func:`~costsgd.experiments.grpo.policy.correct_probability`
    (mean@k in the limit of infinitely many samples); otherwise mean@``samples``
    estimated from that many sampled responses per prompt, drawn from ``seed``.
    """
    if samples is None:
        return float(correct_probability(policy, task, prompts).mean())
    rep = _repeat(prompts, samples)
    roll = generate(policy, rep, task.max_response_len, torch.Generator().manual_seed(seed))
    return float(rewards(task, rep, roll.responses).mean())


class _Progress(NamedTuple):
    """Cumulative counters of a run: drawn tokens, processed tokens, gradient steps."""

    tokens: int = 0
    processed: int = 0
    steps: int = 0


def _old_logprobs(
    policy: GRUPolicy, reference: GRUPolicy | None, roll: Rollouts, config: GRPOConfig
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:math:`\\log\\pi_{\\theta_{old}}` and, with a KL term, :math:`\\log\\pi_{ref}` of the pool."""
    with torch.no_grad():
        args = (roll.sequences, roll.prompt_lengths, roll.response_lengths)
        logp_old, _ = response_logprobs(policy, *args)
        logp_ref = response_logprobs(reference, *args)[0] if config.kl_coef > 0 else None
    return logp_old, logp_ref


def _gradient_step(
    policy: GRUPolicy,
    opt: torch.optim.Optimizer,
    batch: Batch,
    idx: torch.Tensor,
    w: torch.Tensor,
    old: tuple[torch.Tensor, torch.Tensor | None],
    config: GRPOConfig,
) -> int:
    """One optimizer step on the mini-batch ``idx`` with weights ``w``; returns its processed tokens.

    The mini-batch runs in one pass trimmed to its longest sequence; its
    processed tokens are counted over length-grouped micro-batches of
    ``config.micro_batch_size`` (module doc), whose accumulated gradient is the
    same (every micro-batch shares the fixed denominator ``B``).
    """
    roll, (logp_old, logp_ref) = batch.rollouts, old
    costs = roll.costs[idx]
    opt.zero_grad(set_to_none=True)
    lp, mask = response_logprobs(
        policy, roll.sequences[idx], roll.prompt_lengths[idx], roll.response_lengths[idx]
    )
    R = lp.shape[1]
    tok = token_objective(
        lp,
        mask,
        logp_old[idx, :R],
        batch.advantages[idx],
        config,
        None if logp_ref is None else logp_ref[idx, :R],
    )
    loss = adapter.weighted_policy_loss(
        -tok, mask, w, mode="seq-mean-token-mean", num_sequences=config.minibatch_size
    )
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
    opt.step()
    pos = torch.arange(len(idx))
    return sum(
        len(m) * int(costs[m].max()) for m in micro_batches(costs, pos, config.micro_batch_size)
    )


def _record_iteration(log: RunLog, batch: Batch, tokens: int, processed: int, wmax: float) -> None:
    costs = batch.rollouts.costs
    empty = not len(costs)
    log.iter_tokens.append(tokens)
    log.iter_processed_tokens.append(processed)
    log.iter_pstar_cost_ratio.append(1.0 if empty else pstar_cost_ratio(batch))
    log.iter_all_tokens.append(int(costs.sum()))
    log.iter_zero_adv_frac.append(1.0 if empty else float((batch.advantages == 0).float().mean()))
    ratios = {} if empty else expected_ratios(batch)
    log.iter_expected_ratio_smooth.append(ratios.get("p*_smooth(0.01)", 1.0))
    log.iter_expected_ratio_nonzero.append(ratios.get("nonzero", 1.0))
    log.iter_cost_spread.append(1.0 if empty else float(costs.max() / costs.min()))
    log.iter_generated_zero_adv_frac.append(batch.zero_variance_groups / batch.groups_generated)
    log.iter_generation_rounds.append(batch.generation_rounds)
    log.iter_train_reward.append(batch.generated_reward)
    log.iter_weight_max.append(wmax)


def _record_eval(log: RunLog, it: int, done: _Progress, accuracy: float) -> None:
    log.eval_iteration.append(it)
    log.eval_tokens.append(done.tokens)
    log.eval_processed_tokens.append(done.processed)
    log.eval_steps.append(done.steps)
    log.eval_accuracy.append(accuracy)


def train(
    policy: GRUPolicy,
    task: Task,
    config: GRPOConfig,
    method: Method,
    *,
    seed: int,
    eval_prompts: Prompts,
    eval_samples: int | None = None,
    reference: GRUPolicy | None = None,
    diagnose: Callable[[GRUPolicy, Batch, torch.Tensor | None], dict] | None = None,
    on_iteration: Callable[[], None] | None = None,
) -> RunLog:
    """Train ``policy`` in place by (Cost-Aware) GRPO and record a :class:`RunLog`.

    Args:
      policy: the warm-started policy (modified in place).
      task, config, method: what to train on, how, and how mini-batches are filled.
      seed: seeds prompts, rollouts and mini-batch draws.
      eval_prompts, eval_samples: the held-out set and how accuracy is taken
        on it (:func:`evaluate`; a sampled evaluation uses the same seed at
        every evaluation: common random numbers).
      reference: :math:`\\pi_{ref}` for the KL term (required when ``kl_coef > 0``).
      diagnose: called at iterations ``1, 1 + diagnose_every, ...`` with the
        current rollout batch before its updates (Figure 3's proxy diagnostics); its dict is recorded.
      on_iteration: called after every iteration (progress bars).
    """
    config.validate()
    method.validate()
    if config.kl_coef > 0 and reference is None:
        raise ValueError("reference must be given when kl_coef > 0")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(policy.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    log = RunLog()
    done = _Progress()

    def accuracy() -> float:
        return evaluate(policy, task, eval_prompts, eval_samples, seed + 10_000)

    _record_eval(log, 0, done, accuracy())
    for it in range(1, config.iterations + 1):
        batch = collect(policy, task, config, gen)
        plan: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
        if len(batch.advantages):  # under ZVF an iteration can keep no group: no step
            old = _old_logprobs(policy, reference, batch.rollouts, config)
            if diagnose is not None and (it - 1) % config.diagnose_every == 0:
                log.diagnostics.append({"iteration": it, **diagnose(policy, batch, old[1])})
            plan = minibatch_plan(method, batch, config.minibatch_size, gen)
        tokens = processed = 0
        for idx, w in zip(*plan, strict=True):
            processed += _gradient_step(policy, opt, batch, idx, w, old, config)
            tokens += int(batch.rollouts.costs[idx].sum())
        _record_iteration(
            log, batch, tokens, processed, max([1.0, *(float(w.max()) for w in plan[1])])
        )
        done = _Progress(
            done.tokens + tokens, done.processed + processed, done.steps + len(plan[0])
        )
        last = it == config.iterations or (
            config.token_budget is not None and done.tokens >= config.token_budget
        )
        if it % config.eval_every == 0 or last:
            _record_eval(log, it, done, accuracy())
        if on_iteration is not None:
            on_iteration()
        if last:
            break
    return log
