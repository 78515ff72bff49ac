"""costsgd.torch.microbatch: length grouping within optimizer steps, trimming, row bookkeeping."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from costsgd.torch.microbatch import (
    completion_widths,
    concat_rows,
    group_by_length,
    num_rows,
    padded_tokens,
    split_rows,
    step_micro_batches,
    take_rows,
    trim_columns,
)
from tests.helpers import tiny_llama

torch.set_num_threads(1)


def _batch(lengths, width, prompt_width=3, seed=0):
    """A TRL-like batch: right-padded completions of the given lengths, per-token logps."""
    g = torch.Generator().manual_seed(seed)
    n = len(lengths)
    mask = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()
    ids = torch.randint(3, 14, (n, width), generator=g) * mask
    return {
        "prompt_ids": torch.randint(3, 14, (n, prompt_width), generator=g),
        "prompt_mask": torch.ones(n, prompt_width, dtype=torch.long),
        "completion_ids": ids,
        "completion_mask": mask,
        "old_per_token_logps": torch.randn(n, width, generator=g) * mask,
        "advantages": torch.randn(n, generator=g),
        "row": torch.arange(n),
        "text": [f"r{i}" for i in range(n)],
        "num_items_in_batch": mask.sum(),
    }


def _rows(batch):
    w = completion_widths(batch["completion_mask"]).tolist()
    return sorted(
        (int(r), tuple(ids[:k].tolist()), tuple(lp[:k].tolist()), float(a), t)
        for r, ids, lp, a, k, t in zip(
            batch["row"],
            batch["completion_ids"],
            batch["old_per_token_logps"],
            batch["advantages"],
            w,
            batch["text"],
            strict=True,
        )
    )


@given(
    lengths=st.lists(st.integers(0, 12), min_size=1, max_size=6).map(lambda x: x * 4),
    parts=st.sampled_from([1, 2, 4]),
    multiple_of=st.sampled_from([None, 1, 4, 5]),
)
def test_grouping_keeps_every_row_and_trims_each_part_to_its_longest(lengths, parts, multiple_of):
    batch = _batch(lengths, width=12)
    out = group_by_length(batch, parts, multiple_of=multiple_of)
    assert len(out) == parts
    assert {num_rows(p) for p in out} == {len(lengths) // parts}
    assert sorted(r for p in out for r in _rows(p)) == _rows(batch)
    for p in out:
        need = max(int(completion_widths(p["completion_mask"]).max()), 1)
        if multiple_of is not None:
            need = min(-(-need // multiple_of) * multiple_of, 12)
        for key in ("completion_ids", "completion_mask", "old_per_token_logps"):
            assert p[key].shape[1] == need
            torch.testing.assert_close(p[key], batch[key][p["row"]][:, :need])
        assert p["prompt_ids"].shape[1] == 3  # left-padded prompts are not trimmed
        assert p["num_items_in_batch"] is batch["num_items_in_batch"]
    widths = [completion_widths(p["completion_mask"]).max() for p in out]
    assert widths == sorted(widths, reverse=True)  # longest first


def test_sorted_grouping_processes_fewer_tokens_than_the_split_in_row_order():
    batch = _batch([1, 12, 2, 11, 1, 12, 3, 10], width=12)
    grouped = group_by_length(batch, 4)
    in_order = [trim_columns(p, 12, full_width=12) for p in split_rows(batch, 4)]
    assert sum(padded_tokens(p) for p in grouped) == 2 * 3 * 4 + 2 * (
        12 + 11 + 3 + 1
    )  # pairs (12,12) (11,10) (3,2) (1,1)
    assert sum(padded_tokens(p) for p in in_order) == 8 * 15


def test_no_row_crosses_an_optimizer_step():
    batch = _batch([5, 1, 9, 2, 12, 3, 4, 8, 7, 6, 11, 10], width=12)
    micro = step_micro_batches(batch, 3, 2)
    assert len(micro) == 6
    for t, step in enumerate(split_rows(batch, 3)):
        assert sorted(r for p in micro[2 * t : 2 * t + 2] for r in _rows(p)) == _rows(step)


def test_per_token_advantages_are_trimmed_with_the_completions():
    batch = _batch([2, 5, 1, 3], width=6)
    batch["advantages"] = torch.randn(4, 6) * batch["completion_mask"]
    batch["importance_sampling_ratio"] = torch.ones(4, 1)  # sequence level: untouched
    for p in group_by_length(batch, 2):
        assert p["advantages"].shape == p["completion_mask"].shape
        assert p["importance_sampling_ratio"].shape == (2, 1)


def test_trimming_leaves_a_causal_models_completion_logprobs_unchanged():
    model = tiny_llama(14, hidden_size=16, num_layers=1).eval()
    batch = _batch([2, 6, 1, 4], width=8, prompt_width=3)

    def logps(b):
        ids = torch.cat([b["prompt_ids"], b["completion_ids"]], 1)
        attn = torch.cat([b["prompt_mask"], b["completion_mask"]], 1)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]
        lp = logits.log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0]
        return lp[:, -b["completion_ids"].shape[1] :] * b["completion_mask"]

    full = logps(batch)
    for p in group_by_length(batch, 2):
        width = p["completion_ids"].shape[1]
        assert width < 8
        torch.testing.assert_close(logps(p), full[p["row"]][:, :width], rtol=1e-5, atol=1e-6)


def test_row_helpers():
    batch = _batch([1, 2, 3], width=3)
    assert num_rows(batch) == 3
    taken = take_rows(batch, torch.tensor([2, 2, 0]))
    assert taken["row"].tolist() == [2, 2, 0] and taken["text"] == ["r2", "r2", "r0"]
    parts = split_rows(batch, 3)
    assert [p["row"].tolist() for p in parts] == [[0], [1], [2]]
    assert _rows(concat_rows(parts)) == _rows(batch)


def test_bad_input_names_the_argument():
    batch = _batch([1, 2, 3, 4], width=4)
    with pytest.raises(ValueError, match="num_chunks"):
        split_rows(batch, 3)
    with pytest.raises(ValueError, match="num_micro_batches"):
        group_by_length(batch, 0)
    with pytest.raises(ValueError, match="multiple_of"):
        group_by_length(batch, 2, multiple_of=0)
    with pytest.raises(ValueError, match="mask"):
        completion_widths(torch.ones(4))
    with pytest.raises(ValueError, match="width"):
        trim_columns(batch, 5, full_width=4)
    with pytest.raises(ValueError, match="rows"):
        num_rows({"a": torch.zeros(2), "b": torch.zeros(3)})
    with pytest.raises(ValueError, match="batches"):
        concat_rows([])


def test_take_rows_with_a_boolean_index_keeps_tensors_and_lists_aligned():
    batch = _batch([1, 2, 3], width=3)
    taken = take_rows(batch, torch.tensor([True, False, True]))
    assert taken["row"].tolist() == [0, 2] and taken["text"] == ["r0", "r2"]
    assert take_rows(batch, torch.tensor([-1]))["text"] == ["r2"]  # negative: from the end
    for index, error, match in [
        (torch.tensor([True, False]), ValueError, "index"),  # a mask of the wrong length
        (torch.tensor([3]), ValueError, "index"),  # out of range
        (torch.tensor([0.0, 1.0]), TypeError, "index"),
    ]:
        with pytest.raises(error, match=match):
            take_rows(batch, index)


def test_completion_keys_of_another_width_are_refused_not_left_untrimmed():
    """A per-token value whose width is not the mask's would stay wide while the mask is
    trimmed; (rows,) and (rows, 1) values are per sequence and pass through."""
    batch = _batch([1, 2, 3, 4], width=4)
    batch["old_per_token_logps"] = torch.zeros(4, 6)
    with pytest.raises(ValueError, match="old_per_token_logps"):
        group_by_length(batch, 2)
    batch["old_per_token_logps"] = torch.zeros(4, 1)
    assert all(p["old_per_token_logps"].shape == (2, 1) for p in group_by_length(batch, 2))


def test_empty_and_one_dimensional_inputs_and_zero_steps_name_the_argument():
    batch = _batch([1, 2, 3, 4], width=4)
    empty = take_rows(batch, torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="batch has no rows"):
        group_by_length(empty, 1)
    flat = {**batch, "completion_mask": torch.ones(4)}
    with pytest.raises(ValueError, match="completion_mask"):
        group_by_length(flat, 2)
    with pytest.raises(ValueError, match="num_steps"):
        step_micro_batches(batch, 0, 1)
    with pytest.raises(ValueError, match="num_steps"):
        step_micro_batches(batch, 3, 1)  # does not divide the 4 rows
    with pytest.raises(ValueError, match="micro_batches_per_step"):
        step_micro_batches(batch, 2, 0)
    with pytest.raises(ValueError, match="prompt_ids"):
        padded_tokens({**batch, "prompt_ids": torch.zeros(4)})
    with pytest.raises(ValueError, match="rows"):
        padded_tokens({**batch, "prompt_ids": torch.zeros(3, 3)})  # 3 prompts, 4 completions
