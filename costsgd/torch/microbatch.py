r"""Length-grouped micro-batches: the forward pass processes what was drawn.

Algorithm 2 draws :math:`B` rollouts per optimizer step from
:math:`p_u \propto |A_u|/\sqrt{c_u}`, which favours short rollouts (§5). The
saving is real only if the policy update's forward and backward passes shrink
with the drawn tokens. A batch padded to the widest rollout of the whole
generation batch does not shrink, so this module

1. keeps each optimizer step's rows together (:func:`split_rows` in row order:
   no draw moves from one step to another, so each step's gradient is still the
   estimate from its own :math:`B` i.i.d. draws, Eq. 22);
2. sorts the rows of one step by completion width and cuts them into equal
   micro-batches (:func:`group_by_length`): a gradient accumulated over a
   step's micro-batches is a sum over its rows, so the order does not change it
   when every micro-batch holds the same number of rows;
3. trims each micro-batch to its own longest completion (:func:`trim_columns`).

Completions are right-padded, so for a causal model the dropped trailing
columns cannot influence the kept ones: trimming leaves every kept
log-probability unchanged (up to floating-point reassociation). Prompts are
left-padded and left as they are: removing leading columns would shift the
absolute positions a model derives from ``arange`` when it gets no
``position_ids``.

The functions work on TRL-style batches: a ``dict`` whose row-aligned values are
tensors (first dimension = rows) or lists, plus scalars (0-d tensors, numbers,
``None``) shared by every row.
"""

from __future__ import annotations

from typing import Any

import torch

from costsgd._validate import check_positive_int

__all__ = [
    "COMPLETION_KEYS",
    "completion_widths",
    "concat_rows",
    "group_by_length",
    "num_rows",
    "padded_tokens",
    "split_rows",
    "step_micro_batches",
    "take_rows",
    "trim_columns",
]

#: Keys of TRL's ``GRPOTrainer`` batch laid out along the completion tokens.
COMPLETION_KEYS = (
    "completion_ids",
    "completion_mask",
    "old_per_token_logps",
    "ref_per_token_logps",
    "sampling_per_token_logps",
    "importance_sampling_ratio",
    "tool_mask",
    "advantages",
)


def _rows(value: Any) -> int | None:
    if isinstance(value, torch.Tensor):
        return value.shape[0] if value.ndim >= 1 else None
    if isinstance(value, list):
        return len(value)
    return None


def num_rows(batch: dict[str, Any]) -> int:
    """Rows of a batch: the common first dimension of its tensors and lists.

    Raises:
      ValueError: if ``batch`` has no row-aligned value or two disagree.

    Examples:
      >>> import torch
      >>> num_rows({"ids": torch.zeros(3, 5), "text": ["a", "b", "c"], "total": torch.tensor(9)})
      3
    """
    sizes = {key: n for key, value in batch.items() if (n := _rows(value)) is not None}
    if not sizes:
        raise ValueError("batch has no row-aligned tensor or list")
    if len(set(sizes.values())) > 1:
        raise ValueError(f"batch values disagree on the number of rows: {sizes}")
    return next(iter(sizes.values()))


def take_rows(batch: dict[str, Any], index: Any) -> dict[str, Any]:
    """The rows ``index`` of every row-aligned value; scalars are kept.

    ``index`` holds row numbers (repeats allowed, negative ones count from the end)
    or is a bool mask with one entry per row; tensors and lists get the same rows.

    Raises:
      TypeError: ``index`` holds neither integers nor bools.
      ValueError: a row number out of range, or a mask of another length.

    Examples:
      >>> import torch
      >>> out = take_rows({"x": torch.tensor([5, 6, 7]), "s": ["a", "b", "c"], "n": 3},
      ...                 torch.tensor([2, 2, 0]))
      >>> out["x"].tolist(), out["s"], out["n"]
      ([7, 7, 5], ['c', 'c', 'a'], 3)
      >>> take_rows({"s": ["a", "b", "c"]}, torch.tensor([True, False, True]))["s"]
      ['a', 'c']
    """
    n = num_rows(batch)
    index = _row_numbers(index, n)
    rows = index.tolist()
    out = {}
    for key, value in batch.items():
        if _rows(value) != n:
            out[key] = value
        elif isinstance(value, torch.Tensor):
            out[key] = value[index.to(value.device)]
        else:
            out[key] = [value[i] for i in rows]
    return out


def _row_numbers(index: Any, n: int) -> torch.Tensor:
    """``index`` as a 1-D int64 tensor of row numbers in ``[0, n)``."""
    index = torch.as_tensor(index)
    if index.dtype == torch.bool:
        if index.shape != (n,):
            raise ValueError(
                f"index: a bool mask needs one entry per row ({n}), got shape {tuple(index.shape)}"
            )
        return torch.nonzero(index.cpu()).reshape(-1)
    if index.dtype.is_floating_point or index.dtype.is_complex:
        raise TypeError(f"index must hold integers or bools, got {index.dtype}")
    index = index.reshape(-1).to(torch.int64).cpu()
    if index.numel() and not bool(((index >= -n) & (index < n)).all()):
        raise ValueError(f"index holds row numbers outside [-{n}, {n}): {index.tolist()[:8]}")
    return torch.where(index < 0, index + n, index)


def split_rows(batch: dict[str, Any], num_chunks: int) -> list[dict[str, Any]]:
    """Cut a batch into ``num_chunks`` consecutive chunks of equal size (scalars shared).

    Raises:
      ValueError: if ``num_chunks`` is not a positive divisor of the number of rows.

    Examples:
      >>> import torch
      >>> [c["x"].tolist() for c in split_rows({"x": torch.arange(6)}, 3)]
      [[0, 1], [2, 3], [4, 5]]
    """
    num_chunks = check_positive_int(num_chunks, "num_chunks")
    n = num_rows(batch)
    if n % num_chunks:
        raise ValueError(f"num_chunks ({num_chunks}) must divide the number of rows ({n})")
    size = n // num_chunks
    return [
        {
            key: value[i * size : (i + 1) * size] if _rows(value) == n else value
            for key, value in batch.items()
        }
        for i in range(num_chunks)
    ]


def concat_rows(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack batches with the same keys row-wise; scalars are taken from the first.

    Row-aligned tensors must have the same trailing shape (untrimmed batches).

    Examples:
      >>> import torch
      >>> concat_rows([{"x": torch.tensor([1]), "n": 2}, {"x": torch.tensor([2]), "n": 2}])["x"]
      tensor([1, 2])
    """
    if not batches:
        raise ValueError("batches is empty")
    sizes = [num_rows(b) for b in batches]
    out = {}
    for key, value in batches[0].items():
        if _rows(value) != sizes[0]:
            out[key] = value
        elif isinstance(value, torch.Tensor):
            out[key] = torch.cat([b[key] for b in batches])
        else:
            out[key] = [item for b in batches for item in b[key]]
    return out


def completion_widths(mask: torch.Tensor) -> torch.Tensor:
    """Columns each row needs: one past its last non-zero entry (0 for an empty row).

    Examples:
      >>> import torch
      >>> completion_widths(torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])).tolist()
      [2, 3, 0]
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (rows, tokens), got shape {tuple(mask.shape)}")
    columns = torch.arange(1, mask.shape[1] + 1, device=mask.device)
    return torch.where(mask != 0, columns, torch.zeros_like(columns)).amax(1)


def trim_columns(
    batch: dict[str, Any],
    width: int,
    *,
    full_width: int,
    keys: tuple[str, ...] = COMPLETION_KEYS,
) -> dict[str, Any]:
    """Keep the first ``width`` completion columns of the values named in ``keys``.

    A value is trimmed when it is a tensor whose second dimension is
    ``full_width`` (so per-sequence advantages ``(rows,)`` and sequence-level
    ratios ``(rows, 1)`` pass through untouched).

    Examples:
      >>> import torch
      >>> b = {"completion_ids": torch.ones(2, 5), "advantages": torch.ones(2), "prompt_ids": torch.ones(2, 5)}
      >>> {k: tuple(v.shape) for k, v in trim_columns(b, 3, full_width=5).items()}
      {'completion_ids': (2, 3), 'advantages': (2,), 'prompt_ids': (2, 5)}
    """
    width = check_positive_int(width, "width")
    if width > full_width:
        raise ValueError(f"width ({width}) must not exceed full_width ({full_width})")
    out = dict(batch)
    for key in keys:
        value = batch.get(key)
        if not isinstance(value, torch.Tensor) or value.ndim < 2:
            continue
        if value.shape[1] == full_width:
            out[key] = value[:, :width]
        elif value.shape[1] != 1:  # per token, but not along the completion: out of step
            raise ValueError(
                f"batch[{key!r}] has {value.shape[1]} columns, the completion mask "
                f"{full_width}: a per-token value must have the mask's width (or 1 column)"
            )
    return out


def group_by_length(
    batch: dict[str, Any],
    num_micro_batches: int,
    *,
    mask_key: str = "completion_mask",
    keys: tuple[str, ...] = COMPLETION_KEYS,
    multiple_of: int | None = None,
) -> list[dict[str, Any]]:
    """Sort one optimizer step's rows by completion width, split them, trim each part.

    Every micro-batch gets the same number of rows (longest first); each is
    trimmed to its own widest row of ``batch[mask_key]`` (at least one column;
    rounded up to a multiple of ``multiple_of``, TRL's ``pad_to_multiple_of``,
    when given). The rows of the micro-batches together are exactly the rows of
    ``batch``.

    Raises:
      ValueError: if ``num_micro_batches`` does not divide the rows, or
        ``multiple_of`` is not a positive integer.

    Examples:
      >>> import torch
      >>> mask = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]])
      >>> parts = group_by_length({"completion_mask": mask, "advantages": torch.arange(4.0)}, 2)
      >>> [tuple(p["completion_mask"].shape) for p in parts], [p["advantages"].tolist() for p in parts]
      ([(2, 4), (2, 2)], [[1.0, 3.0], [2.0, 0.0]])
    """
    num_micro_batches = check_positive_int(num_micro_batches, "num_micro_batches")
    if multiple_of is not None:
        multiple_of = check_positive_int(multiple_of, "multiple_of")
    if num_rows(batch) == 0:
        raise ValueError("batch has no rows: nothing to group")
    mask = batch[mask_key]
    if not isinstance(mask, torch.Tensor) or mask.ndim != 2:
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"batch[{mask_key!r}] must be a 2-D tensor (rows, tokens), got {shape}")
    full_width = mask.shape[1]
    order = torch.argsort(completion_widths(mask), descending=True, stable=True)
    parts = split_rows(take_rows(batch, order), num_micro_batches)
    out = []
    for part in parts:
        width = max(int(completion_widths(part[mask_key]).max()), 1)
        if multiple_of is not None:
            width = min(-(-width // multiple_of) * multiple_of, full_width)
        out.append(trim_columns(part, width, full_width=full_width, keys=keys))
    return out


def step_micro_batches(
    batch: dict[str, Any],
    num_steps: int,
    micro_batches_per_step: int,
    **options: Any,
) -> list[dict[str, Any]]:
    """Micro-batches of ``num_steps`` optimizer steps, grouped by length within each step.

    The rows of ``batch`` are taken as ``num_steps`` consecutive blocks, one per
    optimizer step; each block goes through :func:`group_by_length` (``options``
    are its keywords). The list holds the steps in order.

    Examples:
      >>> import torch
      >>> mask = torch.tensor([[1, 0, 0], [1, 1, 1], [1, 1, 0], [1, 0, 0]])
      >>> parts = step_micro_batches({"completion_mask": mask, "row": torch.arange(4)}, 2, 2)
      >>> [p["row"].tolist() for p in parts], [p["completion_mask"].shape[1] for p in parts]
      ([[1], [0], [2], [3]], [3, 1, 2, 1])
    """
    num_steps = check_positive_int(num_steps, "num_steps")
    micro_batches_per_step = check_positive_int(micro_batches_per_step, "micro_batches_per_step")
    n = num_rows(batch)
    if n % num_steps:
        raise ValueError(f"num_steps ({num_steps}) must divide the number of rows ({n})")
    return [
        micro
        for step in split_rows(batch, num_steps)
        for micro in group_by_length(step, micro_batches_per_step, **options)
    ]


def padded_tokens(batch: dict[str, Any]) -> int:
    """Token positions a forward pass over the batch processes: rows x (prompt + completion width).

    Examples:
      >>> import torch
      >>> padded_tokens({"prompt_ids": torch.zeros(3, 4), "completion_ids": torch.zeros(3, 6)})
      30
    """
    prompt, completion = batch["prompt_ids"], batch["completion_ids"]
    for key, value in (("prompt_ids", prompt), ("completion_ids", completion)):
        if not isinstance(value, torch.Tensor) or value.ndim != 2:
            raise ValueError(f"batch[{key!r}] must be a 2-D tensor (rows, tokens)")
    if prompt.shape[0] != completion.shape[0]:
        raise ValueError(
            f"prompt_ids and completion_ids disagree on the rows: {prompt.shape[0]} and "
            f"{completion.shape[0]}"
        )
    return int(prompt.shape[0] * (prompt.shape[1] + completion.shape[1]))
