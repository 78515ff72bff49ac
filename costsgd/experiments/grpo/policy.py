r"""A tiny autoregressive policy: a GRU language model over the task's tokens.

The policy :math:`\pi_\theta(o_t \mid q, o_{<t})` of §5.2 at laptop scale. A
sequence is the prompt followed by the response, right-padded with ``PAD``.
Only ``EOS`` and the symbols can be generated (the other tokens' logits are
masked), so a response is a run of symbols ended by ``EOS`` or by the length cap.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from costsgd.experiments.grpo.task import (
    BOS,
    EOS,
    PAD,
    SEP,
    Prompts,
    Task,
    reference_lengths,
    references,
    sample_prompts,
)

__all__ = [
    "GRUPolicy",
    "Rollouts",
    "correct_probability",
    "generate",
    "reference_sequences",
    "response_logprobs",
    "warm_start",
]


class GRUPolicy(nn.Module):
    """Embedding, a GRU, and a linear head over the vocabulary.

    Args:
      vocab_size: number of token ids.
      embed_dim, hidden_dim, num_layers: sizes of the network.

    Examples:
      >>> import torch
      >>> _ = torch.manual_seed(0)
      >>> GRUPolicy(8)(torch.zeros(2, 5, dtype=torch.long)).shape
      torch.Size([2, 5, 8])
    """

    def __init__(
        self, vocab_size: int, embed_dim: int = 32, hidden_dim: int = 96, num_layers: int = 1
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.gru = nn.GRU(embed_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_dim, vocab_size)
        banned = torch.zeros(vocab_size)
        banned[[PAD, BOS, SEP]] = float("-inf")
        self.register_buffer("logit_mask", banned, persistent=False)

    def forward(
        self, tokens: torch.Tensor, state: torch.Tensor | None = None, *, return_state=False
    ):
        out, state = self.gru(self.embed(tokens), state)
        logits = self.head(out) + self.logit_mask
        return (logits, state) if return_state else logits


class Rollouts(NamedTuple):
    """Sampled responses, laid out for training.

    Attributes:
      sequences: ``LongTensor[N, P + R]``, prompt then response then ``PAD``.
      prompt_lengths: ``LongTensor[N]``.
      responses: ``LongTensor[N, R]``, ``PAD`` after the response.
      response_lengths: ``LongTensor[N]`` (``EOS`` included when generated).
    """

    sequences: torch.Tensor
    prompt_lengths: torch.Tensor
    responses: torch.Tensor
    response_lengths: torch.Tensor

    @property
    def costs(self) -> torch.Tensor:
        """Per-sequence cost :math:`c_u` = prompt + response tokens (§5.2)."""
        return self.prompt_lengths + self.response_lengths


@torch.no_grad()
def generate(
    policy: GRUPolicy,
    prompts: Prompts,
    max_response_len: int,
    generator: torch.Generator,
    *,
    temperature: float = 1.0,
) -> Rollouts:
    r"""Sample one response per prompt row (repeat rows for several rollouts).

    All rows advance together, one token per step; a row stops at ``EOS`` or at
    ``max_response_len`` tokens. Sampling uses the Gumbel-max trick with draws
    from ``generator``, so a seed fixes the rollouts.

    Args:
      policy: the policy :math:`\pi_\theta`.
      prompts: one row per rollout.
      max_response_len: generation cap ``R``.
      generator: CPU ``torch.Generator`` for the draws.
      temperature: softmax temperature (> 0).

    Returns:
      :class:`Rollouts`.

    Examples:
      >>> import torch
      >>> from costsgd.experiments.grpo.task import SortTask, sample_prompts
      >>> task = SortTask()
      >>> _ = torch.manual_seed(0)
      >>> g = torch.Generator().manual_seed(0)
      >>> r = generate(GRUPolicy(task.vocab_size), sample_prompts(task, 4, g), 17, g)
      >>> r.responses.shape, bool((r.response_lengths <= 17).all())
      (torch.Size([4, 17]), True)
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    tokens, plen = prompts
    n, P = tokens.shape
    R = max_response_len
    seq = torch.full((n, P + R), PAD, dtype=torch.long)
    seq[:, :P] = tokens
    rlen = torch.zeros(n, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    first = int(plen.min()) - 1
    _, state = policy(seq[:, :first], return_state=True) if first > 0 else (None, None)
    for t in range(first, int(plen.max()) + R - 1):
        logits, state = policy(seq[:, t : t + 1], state, return_state=True)
        u = torch.rand(logits.shape[0], logits.shape[2], generator=generator)
        tok = torch.argmax(logits[:, 0] / temperature - torch.log(-torch.log(u)), dim=-1)
        active = (t + 1 >= plen) & ~done
        seq[:, t + 1] = torch.where(active, tok, seq[:, t + 1])
        rlen += active
        done |= active & ((tok == EOS) | (rlen == R))
        if bool(done.all()):
            break
    responses = seq.gather(1, plen[:, None] + torch.arange(R))
    return Rollouts(seq, plen, responses, rlen)


def response_logprobs(
    policy: GRUPolicy,
    sequences: torch.Tensor,
    prompt_lengths: torch.Tensor,
    response_lengths: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-token :math:`\log\pi_\theta(o_t \mid q, o_{<t})` of the responses.

    One teacher-forced pass over the batch, cut at its longest sequence.

    Args:
      policy: the policy.
      sequences: ``LongTensor[N, P + R]`` as in :class:`Rollouts`.
      prompt_lengths, response_lengths: ``LongTensor[N]``.

    Returns:
      ``(logp, mask)``, both ``[N, R_max]`` where ``R_max`` is the longest
      response in the batch; ``logp`` is 0 and ``mask`` False past each response.
    """
    end = int((prompt_lengths + response_lengths).max())
    logits = policy(sequences[:, : end - 1])
    logp_all = torch.log_softmax(logits, dim=-1)
    targets = sequences[:, 1:end]
    lp = logp_all.gather(-1, targets[..., None])[..., 0]
    R = max(int(response_lengths.max()), 1)
    k = torch.arange(R)
    idx = (prompt_lengths[:, None] - 1 + k).clamp(max=end - 2)
    mask = k < response_lengths[:, None]
    return torch.where(mask, lp.gather(1, idx), 0.0), mask


def reference_sequences(task: Task, prompts: Prompts) -> tuple[torch.Tensor, torch.Tensor]:
    """Each prompt followed by its :func:`references` response, laid out as :class:`Rollouts`.

    Returns:
      ``(sequences, response_lengths)``: ``LongTensor[n, P + R]`` and ``LongTensor[n]``.

    Examples:
      >>> import torch
      >>> from costsgd.experiments.grpo.task import WalkTask
      >>> walk = Prompts(torch.tensor([[BOS, 4 + 5, 4 + 3, SEP]]), torch.tensor([4]))
      >>> seq, rlen = reference_sequences(WalkTask(modulus=7, max_steps=6), walk)
      >>> seq[0, :8].tolist(), rlen.tolist()
      ([1, 9, 7, 2, 5, 8, 4, 3], [4])
    """
    ref = references(task, prompts)
    n, P = prompts.tokens.shape
    R = ref.shape[1]
    seq = torch.full((n, P + R), PAD, dtype=torch.long)
    seq[:, :P] = prompts.tokens
    seq.scatter_(1, prompts.lengths[:, None] + torch.arange(R), ref)
    return seq, reference_lengths(task, prompts)


@torch.no_grad()
def correct_probability(policy: GRUPolicy, task: Task, prompts: Prompts) -> torch.Tensor:
    r"""Probability that :func:`generate` (temperature 1) answers each prompt correctly.

    The reward is 1 only for the exact reference response :math:`o^\star` (EOS
    included), so :math:`P(r = 1 \mid q) = \prod_t \pi_\theta(o^\star_t \mid q,
    o^\star_{<t})`: one teacher-forced pass. It is the expectation of the
    0/1 reward of a sampled response, the limit of mean@k as :math:`k \to \infty`
    (0 for a walk longer than the cap, which no response can answer).

    Returns:
      ``FloatTensor[n]``.

    Examples:
      >>> import torch
      >>> from costsgd.experiments.grpo.task import SortTask, sample_prompts
      >>> task = SortTask()
      >>> _ = torch.manual_seed(0)
      >>> p = correct_probability(GRUPolicy(task.vocab_size), task,
      ...                         sample_prompts(task, 3, torch.Generator().manual_seed(0)))
      >>> p.shape, bool(((p > 0) & (p < 1)).all())
      (torch.Size([3]), True)
    """
    seq, rlen = reference_sequences(task, prompts)
    solvable = (references(task, prompts) == EOS).any(dim=1)
    out = torch.zeros(len(rlen))
    if bool(solvable.any()):
        lp, _ = response_logprobs(policy, seq[solvable], prompts.lengths[solvable], rlen[solvable])
        out[solvable] = lp.sum(dim=1).exp()
    return out


def warm_start(
    policy: GRUPolicy,
    task: Task,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    generator: torch.Generator,
) -> list[float]:
    """Supervised warm start: teacher-forced cross-entropy on correct responses.

    A short warm start leaves the policy at a middling accuracy that RL can
    raise (the role of the instruction-tuned starting checkpoint in §5.1).

    Args:
      policy: trained in place.
      task: prompts are drawn from it; targets are :func:`references`.
      steps, batch_size, lr: Adam steps, prompts per step, learning rate.
      generator: draws the prompts.

    Returns:
      the training loss (mean token negative log-likelihood) at every step.
    """
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        prompts = sample_prompts(task, batch_size, generator)
        seq, rlen = reference_sequences(task, prompts)
        lp, mask = response_logprobs(policy, seq, prompts.lengths, rlen)
        loss = -(lp.sum() / mask.sum())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
