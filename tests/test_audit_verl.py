"""``costsgd audit --format verl`` on dumps written by verl 0.9.1's own ``_write_generations``.

The tokenizer is a word-level Hugging Face tokenizer built here (nothing is
downloaded), so every token count is known. Advantages are compared with
verl's own ``compute_grpo_outcome_advantage``. Runs where verl is installed
(``make test``: ``.venv-verl``).
"""

import json
import warnings

import numpy as np
import pytest

with warnings.catch_warnings():
    # import-time notices about optional verl backends and ray's moved state API
    warnings.filterwarnings("ignore", message=r".*engine is not available", category=UserWarning)
    warnings.filterwarnings("ignore", message=r"Ray state API", category=DeprecationWarning)
    pytest.importorskip(
        "verl", reason="verl is not installed here; `make test` runs this file in .venv-verl"
    )
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

from costsgd.audit import audit_files, read_pools
from costsgd.cli import main

PROMPTS, N = 3, 4  # rollouts per prompt


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """A word-level tokenizer folder: one token per whitespace-separated word."""
    words = ["[UNK]", "[PAD]", *(f"w{i}" for i in range(50))]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    folder = tmp_path_factory.mktemp("tokenizer")
    PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]"
    ).save_pretrained(folder)
    return folder


def _step(rng, step):
    """One step's rollouts: texts of known lengths, 0/1 scores, one all-equal group."""
    inputs, outputs, scores, uids, lengths = [], [], [], [], []
    for g in range(PROMPTS):
        prompt = " ".join(f"w{i}" for i in range(int(rng.integers(2, 9))))
        for k in range(N):
            n_out = int(rng.integers(0, 30))
            inputs.append(prompt)
            outputs.append(" ".join(f"w{i % 50}" for i in range(n_out)))
            scores.append(1.0 if g == 0 else float(rng.integers(0, 2)))
            uids.append(f"{step}-prompt{g}_{k}_0")
            lengths.append((len(prompt.split()), n_out))
    return inputs, outputs, scores, uids, lengths


def _dump(writer, folder, rng, steps=3, padding=2):
    """Dumps of ``steps`` steps through ``writer`` (verl's static ``_write_generations``)."""
    truth = []
    for step in range(1, steps + 1):
        inputs, outputs, scores, uids, lengths = _step(rng, step)
        pad = "pad" + "0123456789abcdef" * 2
        inputs += ["w1"] * padding
        outputs += ["w2"] * padding
        scores += [0.0] * padding
        uids += [f"{pad}_{i}_0" for i in range(padding)]
        extra = {"uid": uids} if writer is PPOTrainer._write_generations else {}
        writer(inputs, outputs, [None] * len(inputs), scores, extra, str(folder), step)
        truth.append((scores[: len(lengths)], lengths, uids[: len(lengths)]))
    return truth


@pytest.mark.parametrize("trainer", ["v1", "legacy"])
def test_dumps_written_by_verl(tmp_path, tokenizer_dir, trainer):
    rng = np.random.default_rng(0)
    writer = PPOTrainer._write_generations if trainer == "v1" else RayPPOTrainer._write_generations
    truth = _dump(writer, tmp_path / "dumps", rng, padding=2 if trainer == "v1" else 0)
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    for norm, by_std in (("none", False), ("group", True)):
        pools = list(
            read_pools(
                [tmp_path / "dumps"], format="verl", tokenizer=tok, reward_normalization=norm
            )
        )
        assert [p.step for p in pools] == [1, 2, 3]
        for pool, (scores, lengths, uids) in zip(pools, truth, strict=True):
            np.testing.assert_array_equal(pool.prompt_tokens, [a for a, _ in lengths])
            np.testing.assert_array_equal(pool.completion_tokens, [b for _, b in lengths])
            index = np.array([u.rsplit("_", 2)[0] for u in uids], dtype=object)
            rewards = torch.zeros(len(scores), 3)
            rewards[:, -1] = torch.tensor(scores)
            verl_adv, _ = compute_grpo_outcome_advantage(
                rewards, torch.ones(len(scores), 3), index, norm_adv_by_std_in_grpo=by_std
            )
            # verl divides by std + 1e-6, TRL (our "group") by std + 1e-4
            np.testing.assert_allclose(
                pool.advantages, verl_adv[:, 0].double().numpy(), rtol=2e-4, atol=1e-6
            )
            assert np.all(pool.advantages[:N] == 0.0)  # group 0 is all-equal
    out = audit_files([tmp_path / "dumps"], format="verl", tokenizer=tok)
    assert out["excluded"] == ({"verl padding": 6} if trainer == "v1" else {})
    assert out["summary"]["rows"] == 3 * PROMPTS * N
    assert [i["rows"] for i in out["inputs"]] == [PROMPTS * N] * 3


def test_cli_on_verl_dumps(tmp_path, tokenizer_dir, capsys):
    _dump(PPOTrainer._write_generations, tmp_path / "dumps", np.random.default_rng(1))
    code = main(
        [
            "audit",
            str(tmp_path / "dumps"),
            "--format",
            "verl",
            "--tokenizer",
            str(tokenizer_dir),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "excluded rows: verl padding 6" in printed
    result = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert result["format"] == "verl" and result["reward_normalization"] == "group"
    # a dump line with a non-numeric score: one line naming file, line and column
    path = tmp_path / "dumps" / "2.jsonl"
    lines = path.read_text().splitlines()
    row = json.loads(lines[4])
    row["score"] = "high"
    lines[4] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    code = main(
        [
            "audit",
            str(tmp_path / "dumps"),
            "--format",
            "verl",
            "--tokenizer",
            str(tokenizer_dir),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert (
        code == 2
        and err == f"costsgd audit: error: {path}:5: column 'score': \"high\" is not a number"
    )
