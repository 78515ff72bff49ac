"""costsgd.audit: pool analysis against the library's samplers, readers, bad input, the CLI."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import costsgd as cs
from costsgd.audit import (
    SAMPLERS,
    Audit,
    AuditInputError,
    Pool,
    analyse_pool,
    analyse_pools,
    audit,
    audit_files,
    group_advantages,
    read_pools,
)
from costsgd.audit._stream import pools
from costsgd.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _pool(rng, n=48, zero=0.5, step=0):
    A = rng.normal(size=n)
    A[rng.random(n) < zero] = 0.0
    return Pool(step, A, rng.integers(5, 50, n) * 1.0, rng.integers(1, 3000, n) * 1.0)


def _rows(rng, steps=4, groups=6, k=4):
    """Generic-format rows: rewards in {0, 1}, some groups all-equal."""
    out = []
    for s in range(steps):
        for g in range(groups):
            same = g % 3 == 0
            for _ in range(k):
                out.append(
                    {
                        "step": s,
                        "group": f"{s}-{g}",
                        "reward": 1.0 if same else float(rng.integers(0, 2)),
                        "prompt_tokens": int(rng.integers(5, 40)),
                        "completion_tokens": int(rng.integers(1, 900)),
                        "truncated": bool(rng.random() < 0.1),
                    }
                )
    return out


def _write(rows, path: Path, kind: str = "jsonl") -> Path:
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif kind == "csv":
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    else:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


# ---- the analysis ------------------------------------------------------------------


def test_ratios_are_expected_cost_of_each_sampler():
    rng = np.random.default_rng(0)
    pool = _pool(rng)
    a = analyse_pool(pool)
    G, c = np.abs(pool.advantages), pool.prompt_tokens + pool.completion_tokens
    u = cs.uniform(G, c)
    for name, sampler in SAMPLERS.items():
        p = np.asarray(sampler(G, c))
        want = cs.expected_cost(p, c) / cs.expected_cost(u, c)
        assert a.expected_drawn_ratio[name] == pytest.approx(want, rel=1e-12)
        support = (p > 0).astype(float)
        ess = (support.mean() ** 2) / cs.second_moment(p, support)
        assert a.ess_fraction[name] == pytest.approx(ess, rel=1e-12)
        w = 1 / (c.size * p[p > 0])  # the importance weights of the draws, under p
        ess = (p[p > 0] @ w) ** 2 / (p[p > 0] @ w**2)
        assert a.ess_fraction[name] == pytest.approx(ess, rel=1e-12)
    # p* never draws a zero-advantage rollout; nonzero draws them with probability 0 too
    assert a.zero_advantage_fraction == pytest.approx(np.mean(pool.advantages == 0))
    assert a.ess_fraction["nonzero"] == pytest.approx(1.0)


def test_ratio_metamorphic_scale_and_permutation():
    rng = np.random.default_rng(1)
    pool = _pool(rng)
    base = analyse_pool(pool).expected_drawn_ratio
    perm = rng.permutation(pool.advantages.size)
    scaled = Pool(
        0, 3 * pool.advantages[perm], 7 * pool.prompt_tokens[perm], 7 * pool.completion_tokens[perm]
    )
    other = analyse_pool(scaled).expected_drawn_ratio
    for name in SAMPLERS:
        assert other[name] == pytest.approx(base[name], rel=1e-12)


def test_no_signal_pool_counts_as_one_and_masked_rows_get_no_draws():
    pool = Pool(0, np.zeros(4), np.ones(4), np.array([1.0, 2.0, 3.0, 4.0]))
    a = analyse_pool(pool)
    assert a.no_signal and set(a.expected_drawn_ratio.values()) == {1.0}
    # masking the only rollout with signal leaves no signal either
    pool = Pool(0, np.array([1.0, 0, 0, 0]), np.ones(4), np.ones(4), np.array([1, 0, 0, 0], bool))
    assert analyse_pool(pool).no_signal
    # masked expensive rollout: p* draws only the cheap ones
    pool = Pool(0, np.array([1.0, 1.0]), np.zeros(2), np.array([1.0, 99.0]), np.array([0, 1], bool))
    a = analyse_pool(pool)
    assert a.expected_drawn_ratio["p*"] == pytest.approx(1 / 50) and a.masked_fraction == 0.5


def test_variance_ratio_uses_second_moment():
    rng = np.random.default_rng(2)
    pool = _pool(rng, n=32)
    G, c = np.abs(pool.advantages), pool.prompt_tokens + pool.completion_tokens
    want = 31 / 32 * cs.second_moment(cs.optimal(G, c), G) / cs.second_moment(cs.uniform(G, c), G)
    assert analyse_pool(pool).Sp_over_Su == pytest.approx(want, rel=1e-12)


def test_summary_is_token_weighted():
    rng = np.random.default_rng(3)
    ps = [_pool(rng, n=int(n), step=i) for i, n in enumerate((8, 40, 120))]
    out = audit(ps)
    for name in SAMPLERS:
        drawn = sum(
            analyse_pool(p).expected_drawn_ratio[name]
            * (p.prompt_tokens + p.completion_tokens).sum()
            for p in ps
        )
        total = sum((p.prompt_tokens + p.completion_tokens).sum() for p in ps)
        assert out["summary"]["expected_drawn_ratio"][name] == pytest.approx(drawn / total)
    assert [s["step"] for s in out["steps"]] == [0, 1, 2]
    assert out["summary"]["regime"]["regime"] == "unknown"
    chosen = Audit(noise_scale=10.0, minibatch_size=64)
    for p in ps:
        chosen.add(p)
    g = chosen.result()["summary"]["regime"]
    assert g["regime"] == "step-limited" and g["prediction"] == g["step_limited"]


def test_group_advantages_match_trl_formula():
    rng = np.random.default_rng(4)
    r = rng.integers(0, 3, 24).astype(float)
    g = np.repeat(np.arange(6), 4)
    r[:4] = 0.1  # an all-equal group of floats: exactly 0, not a rounding residue
    grouped = r.reshape(6, 4)
    mean = grouped.mean(1, keepdims=True)
    std = grouped.std(1, ddof=1, keepdims=True)
    want = ((grouped - mean) / (std + 1e-4)).ravel()
    want[:4] = 0.0
    np.testing.assert_allclose(group_advantages(r, g, "group"), want, rtol=1e-12, atol=1e-15)
    assert np.all(group_advantages(r, g, "group")[:4] == 0.0)
    np.testing.assert_allclose(group_advantages(r, g, "none")[4:], (grouped - mean).ravel()[4:])
    batch = (grouped - mean).ravel() / (r.std(ddof=1) + 1e-4)
    np.testing.assert_allclose(group_advantages(r, g, "batch")[4:], batch[4:])
    with pytest.raises(ValueError, match="normalization"):
        group_advantages(r, g, "std")


# ---- readers -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_formats_agree(tmp_path, kind):
    rows = _rows(np.random.default_rng(5))
    want = audit_files([_write(rows, tmp_path / "r.jsonl")])
    got = audit_files([_write(rows, tmp_path / f"r.{kind}", kind)])
    assert got["steps"] == want["steps"]
    assert got["summary"] == want["summary"]
    assert want["advantages_from"] == "reward" and want["reward_normalization"] == "group"


def test_reader_pools_equal_direct_pools(tmp_path):
    rows = _rows(np.random.default_rng(6))
    for r in rows:
        r["extra"] = {"ignored": True}
    path = _write(rows, tmp_path / "r.jsonl")
    got = list(read_pools([path], reward_normalization="none"))
    assert [p.step for p in got] == [0, 1, 2, 3]
    first = [r for r in rows if r["step"] == 0]
    codes = np.unique([r["group"] for r in first], return_inverse=True)[1]
    A = group_advantages([r["reward"] for r in first], codes, "none")
    np.testing.assert_array_equal(got[0].advantages, A)
    np.testing.assert_array_equal(got[0].masked, [r["truncated"] for r in first])


def test_steps_split_across_files_and_folders(tmp_path):
    rows = _rows(np.random.default_rng(7))
    whole = audit_files([_write(rows, tmp_path / "all.jsonl")])
    parts = tmp_path / "parts"
    parts.mkdir()
    _write(rows[:30], parts / "1.jsonl")
    _write(rows[30:], parts / "2.csv", "csv")
    (parts / "notes.txt").write_text("not rollouts")
    split = audit_files([parts])
    assert split["steps"] == whole["steps"]
    assert split["skipped_files"] == [str(parts / "notes.txt")]
    assert [i["rows"] for i in split["inputs"]] == [30, len(rows) - 30]


def test_pools_are_streamed_one_step_at_a_time(tmp_path):
    rows = _rows(np.random.default_rng(8), steps=3)
    source = read_pools([_write(rows, tmp_path / "r.jsonl")])
    consumed = []

    def chunks():
        for chunk in source._chunks:
            for s in np.unique(chunk.step):
                keep = np.flatnonzero(chunk.step == s)
                consumed.append(int(s))
                yield chunk._replace(
                    lines=chunk.lines[keep],
                    step=chunk.step[keep],
                    group=[chunk.group[i] for i in keep],
                    value=chunk.value[keep],
                    prompt_tokens=chunk.prompt_tokens[keep],
                    completion_tokens=chunk.completion_tokens[keep],
                    truncated=None if chunk.truncated is None else chunk.truncated[keep],
                )

    stream = pools(chunks(), value="reward")
    first = next(stream)
    assert first.step == 0 and consumed == [0, 1]  # step 0 is out once step 1 begins
    assert [p.step for p in stream] == [1, 2]


def test_blank_lines_are_counted_not_dropped(tmp_path):
    rows = _rows(np.random.default_rng(9), steps=1)
    text = "".join(json.dumps(r) + "\n" for r in rows)
    path = tmp_path / "r.jsonl"
    path.write_text(text.replace("\n", "\n\n", 2))
    out = audit_files([path])
    assert out["excluded"] == {"blank lines": 2}
    assert out["summary"]["rows"] == len(rows)


def test_advantage_column_wins_and_refuses_a_normalization(tmp_path):
    rows = _rows(np.random.default_rng(10), steps=1)
    for i, r in enumerate(rows):
        r["advantage"] = float(i % 3 - 1)
    path = _write(rows, tmp_path / "r.jsonl")
    (pool,) = read_pools([path])
    np.testing.assert_array_equal(pool.advantages, [r["advantage"] for r in rows])
    with pytest.raises(AuditInputError, match="applies only to rewards"):
        read_pools([path], reward_normalization="none")


def _bad(tmp_path, rows, kind="jsonl", text=None):
    path = tmp_path / f"bad.{kind}"
    if text is not None:
        path.write_text(text)
    else:
        _write(rows, path, kind)
    with pytest.raises(AuditInputError) as err:
        audit_files([path])
    return str(err.value)


def _base(n=3, **change):
    rows = [
        {
            "step": 0,
            "group": "a",
            "reward": float(i % 2),
            "prompt_tokens": 4,
            "completion_tokens": 10 + i,
        }
        for i in range(n)
    ]
    rows[-1].update(change)
    return rows


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        ({"completion_tokens": -1}, ":3: column 'completion_tokens'", "negative"),
        ({"prompt_tokens": float("nan")}, ":3: column 'prompt_tokens'", "not finite"),
        ({"reward": float("inf")}, ":3: column 'reward'", "not finite"),
        ({"completion_tokens": "12"}, ":3: column 'completion_tokens'", "not a number"),
        ({"step": 1.5}, ":3: column 'step'", "not an integer"),
        ({"group": True}, ":3: column 'group'", "not a string or integer"),
        ({"truncated": 1}, ":3: column 'truncated'", "not true or false"),
        ({"prompt_tokens": 0, "completion_tokens": 0}, ":3: column 'completion_tokens'", "is 0"),
    ],
)
def test_bad_values_name_file_line_column(tmp_path, change, where, message):
    text = _bad(tmp_path, _base(**change))
    assert f"bad.jsonl{where}" in text and message in text and "\n" not in text


def test_bad_structure_is_located(tmp_path):
    rows = _base()
    del rows[1]["prompt_tokens"]
    assert "bad.jsonl:2: column 'prompt_tokens': missing" in _bad(tmp_path, rows)
    good = "".join(json.dumps(r) + "\n" for r in _base())
    assert "bad.jsonl:2: not valid JSON" in _bad(
        tmp_path, None, text=good.replace("\n", "\n{oops\n", 1)
    )
    assert "bad.jsonl:1: a JSON list" in _bad(tmp_path, None, text="[1, 2]\n" + good)
    no_value = [{k: v for k, v in r.items() if k != "reward"} for r in _base()]
    assert "needs a column 'advantage' or 'reward'" in _bad(tmp_path, no_value)


def test_group_in_two_steps_and_step_not_contiguous(tmp_path):
    rows = _base(4)
    rows[2]["step"] = rows[3]["step"] = 1
    rows[3]["group"] = "b"
    text = _bad(tmp_path, rows)
    assert "bad.jsonl:3: column 'group': group 'a' is in step 1 and in step 0" in text
    rows = _base(4)
    rows[1]["step"], rows[1]["group"] = 1, "b"
    rows[2]["group"] = rows[3]["group"] = "c"
    text = _bad(tmp_path, rows)
    assert "bad.jsonl:3: column 'step': step 0 reappears" in text


def test_bad_csv_and_parquet(tmp_path):
    rows = _base()
    path = _write(rows, tmp_path / "bad.csv", "csv")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:2], lines[2] + ",9", *lines[3:]]) + "\n")
    with pytest.raises(AuditInputError, match=r"bad\.csv:3: 6 fields, the header has 5"):
        audit_files([path])
    path.write_text("\n".join([*lines[:3], lines[3].replace(",4,", ",x,")]) + "\n")
    with pytest.raises(AuditInputError, match=r"bad\.csv:4: column 'prompt_tokens': 'x'"):
        audit_files([path])
    pytest.importorskip("pyarrow")
    rows[1]["completion_tokens"] = None
    assert "bad.parquet: row 2: column 'completion_tokens': null" in _bad(tmp_path, rows, "parquet")
    rows = _base()
    for r in rows:
        r["step"] = "zero"
    assert "column 'step': has type string" in _bad(tmp_path, rows, "parquet")


def test_missing_inputs(tmp_path):
    with pytest.raises(AuditInputError, match="no such file or folder"):
        audit_files([tmp_path / "nope.jsonl"])
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(AuditInputError, match="no rollouts"):
        audit_files([tmp_path / "empty.jsonl"])
    with pytest.raises(AuditInputError, match="unknown suffix"):
        audit_files([_write(_base(), tmp_path / "r.txt")])
    (tmp_path / "latin.jsonl").write_bytes(b'{"step": 0, "group": "\xe9"}\n')
    with pytest.raises(AuditInputError, match=r"latin\.jsonl: not UTF-8"):
        audit_files([tmp_path / "latin.jsonl"])
    pytest.importorskip("pyarrow")
    path = _write(_base(), tmp_path / "cut.parquet", "parquet")
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(AuditInputError, match=r"cut\.parquet: not a readable Parquet file"):
        audit_files([path])


# ---- the command -------------------------------------------------------------------


def test_cli_writes_table_json_png(tmp_path, capsys):
    path = _write(_rows(np.random.default_rng(11)), tmp_path / "r.jsonl")
    assert (
        main(["audit", str(path), "--out", str(tmp_path / "out"), "--reward-normalization", "none"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "p*_smooth(0.05)" in printed and "regime unknown" in printed
    result = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert result["reward_normalization"] == "none"
    assert set(result["summary"]["expected_drawn_ratio"]) == {
        "p*",
        "p*_smooth(0.01)",
        "p*_smooth(0.05)",
        "p*_smooth(0.1)",
        "nonzero",
        "length",
    }
    step = result["steps"][0]
    assert {"step", "n", "zero_advantage_fraction", "expected_drawn_ratio"} <= set(step)
    assert (tmp_path / "out" / "audit.png").stat().st_size > 10_000


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _base(completion_tokens=-3)))
    run = subprocess.run(
        [sys.executable, "-m", "costsgd.cli", "audit", str(path), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.strip() == (
        f"costsgd audit: error: {path}:3: column 'completion_tokens': -3 is negative: "
        "a token count is >= 0"
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--format", "verl"], "--format verl needs it"),
        (["--advantages", "--reward-normalization", "none"], "applies only to rewards"),
        (["--noise-scale", "3"], "go together"),
        (["--tokenizer", "x"], "only for --format verl"),
    ],
)
def test_cli_option_errors(tmp_path, capsys, flags, message):
    rows = _base()
    if "--advantages" in flags:
        flags = [f for f in flags if f != "--advantages"]
        for r in rows:
            r["advantage"] = r.pop("reward")
    path = _write(rows, tmp_path / "r.jsonl")
    assert main(["audit", str(path), "--out", str(tmp_path / "o"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def _keys(obj, prefix=""):
    """Every key path of an audit.json body (list entries through their first item)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _keys(v, prefix)
    elif isinstance(obj, list) and obj and isinstance(obj[0], dict):
        yield from _keys(obj[0], prefix)


def test_every_audit_json_key_is_documented(tmp_path):
    path = _write(_rows(np.random.default_rng(12)), tmp_path / "r.jsonl")
    result = audit_files([path], noise_scale=5.0, minibatch_size=8)
    doc = (ROOT / "docs" / "audit.md").read_text()
    sampler_names = set(SAMPLERS)
    missing = sorted({k for k in _keys(result) if k not in sampler_names and f"`{k}`" not in doc})
    assert not missing, f"keys of audit.json not documented in docs/audit.md: {missing}"


def test_batched_analysis_equals_pool_by_pool():
    rng = np.random.default_rng(13)
    ps = [
        _pool(rng, n=int(n), zero=z, step=i)
        for i, (n, z) in enumerate(
            [(1, 0.0), (2, 0.5), (7, 0.9), (64, 0.3), (5, 1.0), (300, 0.6), (3, 0.0)]
        )
    ]
    ps.append(
        Pool(
            7,
            np.array([1.0, 0.0, 2.0]),
            np.ones(3),
            np.array([5.0, 1.0, 9.0]),
            np.array([True, False, True]),
        )
    )  # masked: no signal left
    ps.append(Pool(8, np.array([0.0, 0.0]), np.ones(2), np.array([5.0, 1.0])))
    batched = analyse_pools(ps)
    for p, got in zip(ps, batched, strict=True):
        want = analyse_pool(p)
        assert got.n == want.n and got.no_signal == want.no_signal
        for field in ("tokens", "zero_advantage_fraction", "masked_fraction"):
            assert getattr(got, field) == pytest.approx(getattr(want, field), rel=1e-12)
        for field in ("expected_drawn_ratio", "ess_fraction", "cost"):
            g, w = getattr(got, field), getattr(want, field)
            assert g.keys() == w.keys()
            for k in g:
                assert g[k] == pytest.approx(w[k], rel=1e-10), (p.step, field, k)
        assert got.Sp_over_Su == pytest.approx(want.Sp_over_Su, rel=1e-10, nan_ok=True)


def test_group_advantages_codes_or_ids_give_one_answer():
    rng = np.random.default_rng(14)
    for _ in range(100):
        n = int(rng.integers(1, 30))
        codes = rng.integers(0, 6, n)  # codes with gaps take the fast path
        r = rng.integers(0, 3, n) * 0.1
        for norm in ("group", "none", "batch"):
            a = group_advantages(r, codes, norm)
            b = group_advantages(r, np.array([f"id{k}" for k in codes]), norm)
            np.testing.assert_array_equal(a, b)
            for k in np.unique(codes):
                same = codes == k
                if np.all(r[same] == r[same][0]):
                    assert np.all(a[same] == 0.0)
