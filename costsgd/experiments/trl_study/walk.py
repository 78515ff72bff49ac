r"""The GRPO study's modular walk as a TRL task: tokenizer, dataset, reward, policy, warm start.

Everything is built in code (nothing is downloaded):

* :func:`walk_tokenizer`: a word-level tokenizer whose ids are the task's own
  (``PAD`` 0, ``BOS`` 1, ``SEP`` 2, ``EOS`` 3, residue :math:`r` → :math:`4 + r`,
  written as the decimal number ``r``), so a prompt's text
  ``"<bos> x0 b <sep>"`` tokenizes to exactly
  :func:`~costsgd.experiments.grpo.task.sample_prompts`' tokens.
* :func:`prompt_dataset`: prompts as a ``datasets.Dataset`` (``prompt``,
  ``x0``, ``stride``), and :func:`walk_reward`, TRL's reward function: 1 when
  the completion's token ids (TRL passes them, ``EOS`` included) equal the
  reference exactly, 0 otherwise, as
  :func:`~costsgd.experiments.grpo.task.rewards`.
* :func:`build_policy`: a ``LlamaForCausalLM`` of a few layers.
* :func:`warm_start`: a short supervised phase (teacher-forced cross-entropy
  on reference responses), leaving a middling accuracy that RL can raise.
* :func:`correct_probability`: the exact held-out accuracy. TRL samples with
  temperature 1 and no top-k/top-p truncation (its defaults), and the reward
  is 1 only for the one reference response, so the probability that a sampled
  completion is correct is :math:`\prod_t \pi_\theta(o^\star_t \mid q, o^\star_{<t})`:
  one teacher-forced pass, no sampling noise.
"""

from __future__ import annotations

from typing import Any

import torch

from costsgd.experiments.grpo.task import (
    BOS,
    EOS,
    PAD,
    SEP,
    Prompts,
    WalkTask,
    references,
    sample_prompts,
)

__all__ = [
    "build_policy",
    "correct_probability",
    "prompt_dataset",
    "prompt_texts",
    "walk_reward",
    "walk_tokenizer",
    "warm_start",
]

_FIRST_SYMBOL = EOS + 1
_SPECIAL = {"<pad>": PAD, "<bos>": BOS, "<sep>": SEP, "<eos>": EOS}


def walk_tokenizer(task: WalkTask):
    """A ``PreTrainedTokenizerFast`` for ``task`` whose token ids are the task's ids.

    Examples:
      >>> tok = walk_tokenizer(WalkTask(modulus=7, max_steps=6))
      >>> tok("<bos> 5 3 <sep>")["input_ids"], tok.decode([8, 3], skip_special_tokens=True)
      ([1, 9, 7, 2], '4')
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = dict(_SPECIAL)
    vocab.update({str(r): _FIRST_SYMBOL + r for r in range(task.modulus)})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        additional_special_tokens=["<sep>"],
    )


def prompt_texts(prompts: Prompts) -> list[str]:
    """``"<bos> x0 b <sep>"`` for each walk prompt (residues as decimal numbers)."""
    body = (prompts.tokens[:, 1:3] - _FIRST_SYMBOL).tolist()
    return [f"<bos> {x0} {b} <sep>" for x0, b in body]


def prompt_dataset(task: WalkTask, n: int, generator: torch.Generator):
    """``n`` prompts of ``task`` as a ``datasets.Dataset`` with ``prompt``, ``x0``, ``stride``."""
    from datasets import Dataset

    prompts = sample_prompts(task, n, generator)
    body = (prompts.tokens[:, 1:3] - _FIRST_SYMBOL).tolist()
    return Dataset.from_dict(
        {
            "prompt": prompt_texts(prompts),
            "x0": [x0 for x0, _ in body],
            "stride": [b for _, b in body],
        }
    )


def _prompts(x0, stride) -> Prompts:
    x0 = torch.as_tensor(x0, dtype=torch.long)
    b = torch.as_tensor(stride, dtype=torch.long)
    n = x0.shape[0]
    tokens = torch.stack(
        [torch.full((n,), BOS), x0 + _FIRST_SYMBOL, b + _FIRST_SYMBOL, torch.full((n,), SEP)], 1
    )
    return Prompts(tokens, torch.full((n,), 4, dtype=torch.long))


def walk_reward(task: WalkTask):
    """TRL reward function for ``task``: 1.0 where ``completion_ids`` is the reference, else 0.0.

    TRL calls it with the dataset's ``x0`` and ``stride`` columns and
    ``completion_ids`` (each up to and including its first ``EOS``; a
    truncated completion has none and is wrong).

    Examples:
      >>> task = WalkTask(modulus=7, max_steps=6)
      >>> reward = walk_reward(task)
      >>> reward(completion_ids=[[8, 3], [8, 4, 3]], x0=[5, 5], stride=[3, 3])
      [0.0, 0.0]
      >>> reward(completion_ids=[[5, 8, 4, 3]], x0=[5], stride=[3])
      [1.0]
    """

    def walk_exact_match(*, completion_ids, x0, stride, **_: Any) -> list[float]:
        ref = references(task, _prompts(x0, stride))
        out = []
        for ids, row in zip(completion_ids, ref.tolist(), strict=True):
            answer = row[: row.index(EOS) + 1] if EOS in row else None
            out.append(float(answer is not None and list(ids) == answer))
        return out

    return walk_exact_match


def build_policy(
    task: WalkTask,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    seed: int = 0,
):
    """A randomly initialised ``LlamaForCausalLM`` for ``task`` (``torch.manual_seed(seed)`` first).

    Positions cover the prompt and the generation cap; the MLP is 4x the width.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=task.vocab_size,
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=task.max_prompt_len + task.max_response_len,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


def _reference_batch(task: WalkTask, prompts: Prompts) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompt + reference (``PAD`` after it) and the mask of the reference tokens."""
    ref = references(task, prompts)
    seq = torch.cat([prompts.tokens, ref], dim=1)
    mask = torch.zeros_like(seq, dtype=torch.bool)
    mask[:, prompts.tokens.shape[1] :] = ref != PAD
    return seq, mask


def _token_logprobs(model, seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log π(seq_t | seq_<t) at the masked positions (0 elsewhere), ``[n, L]``."""
    end = int(mask.nonzero()[:, 1].max()) + 1 if bool(mask.any()) else 1
    device = next(model.parameters()).device
    seq, mask = seq.to(device), mask.to(device)
    logits = model(input_ids=seq[:, : end - 1]).logits.float()
    lp = torch.log_softmax(logits, dim=-1).gather(-1, seq[:, 1:end, None])[..., 0]
    return torch.where(mask[:, 1:end], lp, 0.0)


def warm_start(
    model,
    task: WalkTask,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
) -> list[float]:
    """Supervised warm start: Adam on the mean token cross-entropy of reference responses.

    Returns:
      the loss at every step.
    """
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        seq, mask = _reference_batch(task, sample_prompts(task, batch_size, generator))
        lp = _token_logprobs(model, seq, mask)
        loss = -lp.sum() / mask.sum().to(lp.device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def correct_probability(
    model, task: WalkTask, prompts: Prompts, *, chunk: int = 256
) -> torch.Tensor:
    r"""Probability that a temperature-1 sample answers each prompt exactly: :math:`\prod_t \pi(o^\star_t)`.

    0 for a walk longer than the generation cap (no completion can answer it).

    Returns:
      ``FloatTensor[n]``.
    """
    was_training = model.training
    model.eval()
    try:
        out = []
        for start in range(0, prompts.tokens.shape[0], chunk):
            part = Prompts(*(x[start : start + chunk] for x in prompts))
            seq, mask = _reference_batch(task, part)
            solvable = (seq == EOS).any(dim=1)
            p = torch.zeros(seq.shape[0])
            if bool(solvable.any()):
                lp = _token_logprobs(model, seq[solvable], mask[solvable])
                p[solvable] = lp.sum(dim=1).exp().cpu()
            out.append(p)
        return torch.cat(out)
    finally:
        model.train(was_training)
